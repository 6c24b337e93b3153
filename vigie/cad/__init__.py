"""Importing real CAD exports (declarative mappings) and replaying them."""
