"""Vigie's event and reference-data schemas (pydantic v2), and their wire codec."""
