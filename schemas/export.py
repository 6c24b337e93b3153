"""JSON Schema export of every event model (checked in under ``schemas/jsonschema/``)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS

JSONSCHEMA_DIR = Path(__file__).resolve().parent / "jsonschema"


def json_schemas() -> dict[str, str]:
    """File name -> JSON text, for every event model."""
    out = {}
    for name, model in EVENT_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://vigie.dev/schemas/{name}.json"
        out[f"{name}.json"] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def write_json_schemas(directory: Path = JSONSCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in json_schemas().items():
        path = directory / fname
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
