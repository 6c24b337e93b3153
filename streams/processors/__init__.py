"""Vigie's own processors: each module defines ``PROCESSOR`` (found by ``streams/registry.py``)."""
