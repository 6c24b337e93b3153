"""What processors publish to one another (``Processor.outputs``): not input from the outside, but checked as
carefully, since a reader must never be stopped by one bad record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Identifier


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
    # live: the partition had records not read yet when this part was sealed (a reader must not take its silence
    # for the end of the input)
    behind: bool = False


class StationSteps(BaseModel):
    """Topic ``station-steps`` (key ``all``): what one batch of the stations processor sealed, per partition."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    parts: list[StationStepsPart] = Field(min_length=1)
