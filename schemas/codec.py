"""Wire codec: JSON bytes <-> event models, with precise rejection reasons."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.events import CrewStatusEvent, InterventionEvent, VehicleStatusEvent

M = TypeVar("M", bound=BaseModel)


class InvalidEvent(ValueError):
    """The bytes are not a valid event. ``reason`` says which field and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "event"
        given = item.get("input")
        # a field outside the schema: its name only (its value may be personal data a producer added)
        hidden = item["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
        shown = "" if hidden else f" (got {given!r:.60})"
        parts.append(f"{where}: {item['msg']}{shown}")
    return "; ".join(parts)


def decode(model: type[M], raw: bytes | None) -> M:
    """The event a record's value holds, or ``InvalidEvent`` with which field and why (any event model)."""
    if raw is None:
        raise InvalidEvent("empty message (no value)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        if any(item["type"] == "json_invalid" for item in e.errors()):
            raise InvalidEvent(f"not valid JSON: {e.errors()[0]['msg']}") from None
        raise InvalidEvent(describe_validation_error(e)) from None


def decode_vehicle_status(raw: bytes | None) -> VehicleStatusEvent:
    return decode(VehicleStatusEvent, raw)


def decode_intervention(raw: bytes | None) -> InterventionEvent:
    return decode(InterventionEvent, raw)


def decode_crew_status(raw: bytes | None) -> CrewStatusEvent:
    return decode(CrewStatusEvent, raw)


def encode(event: BaseModel) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def event_line(topic: str, key: str, event: BaseModel) -> str:
    """One line of an ``events.jsonl`` (``vigie import``, ``vigie whatif run --out``; ``vigie replay`` reads it)."""
    return f'{{"topic":"{topic}","key":{json.dumps(key)},"event":{encode(event).decode()}}}\n'
