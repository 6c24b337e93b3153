"""Vigie's event and reference-data schemas (pydantic v2), and their wire codec."""

from schemas.events import (
    ENGAGED_STATUSES,
    SCHEMA_VERSION,
    InterventionEvent,
    InterventionNature,
    Lifecycle,
    Location,
    Position,
    StatusCategory,
    VehicleStatus,
    VehicleStatusEvent,
    category_of,
)

__all__ = [
    "ENGAGED_STATUSES",
    "SCHEMA_VERSION",
    "InterventionEvent",
    "InterventionNature",
    "Lifecycle",
    "Location",
    "Position",
    "StatusCategory",
    "VehicleStatus",
    "VehicleStatusEvent",
    "category_of",
]
