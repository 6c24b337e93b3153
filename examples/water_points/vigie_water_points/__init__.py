"""Water points (hydrants, cisterns) in or out of service per area: an example Vigie processor, written
outside Vigie's package and registered through the ``vigie.processors`` entry point (``pyproject.toml``)."""
