"""What processors publish to one another (``Processor.outputs``): not input from the outside, but checked as
carefully, since a reader must never be stopped by one bad record; and what they publish for consumers outside
Vigie (``Processor.publishes``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Identifier, InterventionNature, VehicleStatus
from schemas.presence import Segment


class StationStepsPart(BaseModel):
    """The stations of one partition (``source``), sealed up to ``until`` (epoch s; null: the partition has no data
    at all, read to its end: it holds nothing back); ``steps``: every change of
    their values since the previous part of the same source, each ``[time, station, kind, subject, count, second
    count]`` — kind 0: a vehicle type, vehicles available and how many of them can be crewed (-1: crews not
    tracked); kind 1: a qualification, people on duty holding it and how many of them are available
    (``streams/windows.py`` ``Step``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-z-]+/\d+$")
    until: float | None
    steps: list[tuple[float, Identifier, int, str, int, int]] = Field(default_factory=list)
    # each unit's changes of status since the previous part: ``[time, station, vehicle, status, intervention
    # ("": none)]`` (``streams/windows.py`` ``UnitStep``)
    units: list[tuple[float, Identifier, Identifier, VehicleStatus, str]] = Field(default_factory=list)
    # live: the partition had records not read yet when this part was sealed (a reader must not take its silence
    # for the end of the input)
    behind: bool = False


class StationSteps(BaseModel):
    """Topic ``station-steps`` (key ``all``): what one batch of the stations processor sealed, per partition."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    parts: list[StationStepsPart] = Field(min_length=1)


class InterventionStepsPart(BaseModel):
    """The interventions of one partition (``source``: ``interventions/<partition>``), sealed up to ``until`` (as
    :class:`StationStepsPart`): those opened since the previous part of the same source, each ``[time,
    intervention, sector, nature, lat, lon]``, and those closed, each ``[time, intervention]``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-z-]+/\d+$")
    until: float | None
    opened: list[tuple[float, Identifier, Identifier, InterventionNature, float, float]] = Field(
        default_factory=list)
    closed: list[tuple[float, Identifier]] = Field(default_factory=list)
    behind: bool = False


class InterventionSteps(BaseModel):
    """Topic ``intervention-steps`` (key ``all``): what one batch of the interventions processor sealed, per
    partition (read by the alerts: an intervention waiting for a unit, surges of calls)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    parts: list[InterventionStepsPart] = Field(min_length=1)


class PresenceStepsPart(BaseModel):
    """One presence series (a sector, source, segment and period length): its periods newly sealed
    (``streams/presence.py`` ``Series.seal``: in time order, every earlier one in), each ``[period start (epoch s),
    present (null: suppressed), usual, ratio, robust z, significant]`` — significant: beyond chance under the
    deployment's presence settings (what the alert rules read)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sector_id: Identifier
    source: Identifier
    segment: Segment
    minutes: int = Field(gt=0, le=1440)
    periods: list[tuple[int, float | None, float, float, float, bool]] = Field(min_length=1)


class PresenceSteps(BaseModel):
    """Topic ``presence-steps`` (key ``all``): what one batch of the presence processor sealed (read by the alerts)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    parts: list[PresenceStepsPart] = Field(min_length=1)


class AlertNotice(BaseModel):
    """Topic ``alerts`` (for consumers outside Vigie: a CAD, a paging bridge; key ``<rule>/<scope_key>``, one
    partition, in the order of the alerts' clock — the rules on population present move with their series' periods,
    delivered hours late: theirs come dated hours earlier): one transition of one alert, as the ``alerts`` table
    holds it.
    At least once: after a worker crash a transition may come again, identical — a consumer takes a repeat of
    (rule, scope_key, at, transition) as a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    rule: str
    severity: str
    measure: str
    scope: str
    scope_key: str
    area: str
    station_id: str
    subject: str
    transition: Literal["pending", "firing", "cancelled", "resolved"]
    at: datetime
    value: float
    fire_at: float
    message: str
