"""The event model of the ``population-presence`` topic (key: the sector id): how many people a source counted in a
sector during one period (mobile-network counts such as Orange Flux Vision)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import EventTime, Identifier

PERIOD_MINUTES = (15, 30, 60)


class Segment(StrEnum):
    ALL = "all"
    RESIDENT = "resident"
    TOURIST = "tourist"
    EXCURSIONIST = "excursionist"
    FOREIGN = "foreign"


class PresenceEvent(BaseModel):
    """One delivery of one period's count. ``event_time`` is the delivery's time: a newer delivery for the same
    (source, sector, period, segment) replaces an older one, whatever order they arrive in. ``suppressed``: the
    operator withheld the count (too few people to publish); ``count`` is then absent."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    event_time: EventTime
    sector_id: Identifier
    period_start: EventTime
    period_minutes: Literal[15, 30, 60]
    count: float | None = Field(default=None, ge=0, le=1e8, allow_inf_nan=False)
    segment: Segment
    source: Identifier
    suppressed: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> PresenceEvent:
        start = self.period_start.timestamp()
        if start % (self.period_minutes * 60):
            raise ValueError(f"period_start {self.period_start.isoformat()} is not on a {self.period_minutes}-minute "
                             "boundary")
        if self.suppressed and self.count is not None:
            raise ValueError("a suppressed period has no count")
        if not self.suppressed and self.count is None:
            raise ValueError("count is required unless the period is suppressed")
        if self.event_time < self.period_start:
            raise ValueError("event_time (the delivery) is before the period starts")
        return self
