"""JSON Schema export of event models. Each model's schema is written beside the module that defines it, in
``jsonschema/`` (Vigie's: ``schemas/jsonschema/``; a plugin's: in its own folder); the CLI passes the models
of every registered processor."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel


def schema_path(model: type[BaseModel]) -> Path:
    return Path(inspect.getfile(model)).resolve().parent / "jsonschema" / f"{model.__name__}.json"


def json_schema(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://vigie.dev/schemas/{model.__name__}.json"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def json_schemas(models: Iterable[type[BaseModel]]) -> dict[Path, str]:
    """File -> JSON text, for every model."""
    return {schema_path(m): json_schema(m) for m in models}


def write_json_schemas(models: Iterable[type[BaseModel]]) -> list[Path]:
    written = []
    for path, text in json_schemas(models).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
