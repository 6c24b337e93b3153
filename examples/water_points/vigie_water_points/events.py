"""The event model of the ``water-points`` topic (key: the water point id)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import EventTime, Identifier


class WaterPointStatus(StrEnum):
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"


class WaterPointKind(StrEnum):
    HYDRANT = "hydrant"
    CISTERN = "cistern"


class WaterPointEvent(BaseModel):
    """A water point's whole current status, as the water utility reports it (the newest one wins)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    event_time: EventTime  # Vigie's: an instant ClickHouse can store
    water_point_id: Identifier
    area: Identifier
    kind: WaterPointKind
    status: WaterPointStatus
    flow_m3h: float = Field(ge=0, le=1000, description="rated flow, m³/h")
