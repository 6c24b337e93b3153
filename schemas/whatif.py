"""The what-if scenario file (TOML): what changes from the history re-run (README "What-if").

::

    name = "station 28 closed"
    close_stations = ["SF28"]             # its units leave the fleet (unless moved below)
    remove_units = ["53"]
    demand_scale = 1.2                    # each call kept or copied (shifted within ±30 min) on average 1.2 times
    dispatch = "run_cards"                # or "closest" (the default): the closest idle unit by median travel
    crossing_areas = false                # only units of the call's area (default true: any)
    durations = "fitted"                  # turnout and times after arrival drawn from the history, in both runs
                                          # (default "observed": each response keeps the replaced one's)
    # crews = "history"                   # instead of [staffing]: the staff on duty of the history's crew records,
                                          # in both runs: a unit leaves when its station's staff can crew it
    [[add_units]]
    unit_id = "E99"
    vehicle_type = "FPT"
    station = "SF02"
    [[move_units]]
    unit_id = "T28"
    station = "SF02"
    [[add_stations]]
    station_id = "SF99"
    lat = 37.77
    lon = -122.42
    [[surges]]                            # more calls for a while (a heat wave, a storm), optionally near a place
    start = 2017-01-03T12:00:00Z
    hours = 6
    scale = 2.0                           # the window's calls x 2: calls drawn from it again, at random times in it
    lat = 37.76                           # lat, lon, radius_km: only the window's calls within the radius
    lon = -122.42
    radius_km = 3
    [turnout_change_s]                    # seconds added to each response's turnout, per unit type (at least 0 s)
    VSAV = -30
    [staffing]                            # crews on duty: at most this many of the station's units out at once
    SF01 = 2
    [run_cards]                           # dispatch = "run_cards": a sector's stations in order (the rest after)
    "03" = ["SF03", "SF01", "SF13"]
    [targets]                             # call -> first arrival target per priority (default: 1 -> 8m, 2 -> 20m)
    1 = "8m"
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.geo import haversine_m
from schemas.alert_rules import Duration
from schemas.events import Identifier, VehicleTypeCode


class AddedUnit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: Identifier
    vehicle_type: VehicleTypeCode
    station: Identifier


class MovedUnit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: Identifier
    station: Identifier


class AddedStation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: Identifier
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Surge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    hours: float = Field(gt=0, le=24 * 14)
    scale: float = Field(gt=1, le=10)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    radius_km: float | None = Field(None, gt=0, le=500)

    @model_validator(mode="after")
    def _place(self) -> Surge:
        if self.start.tzinfo is None:
            raise ValueError("start: give the time zone (2017-01-03T12:00:00Z or +01:00)")
        if len({self.lat is None, self.lon is None, self.radius_km is None}) > 1:
            raise ValueError("lat, lon and radius_km go together (a place and its radius), or none of them")
        return self

    def holds(self, opened: float, lat: float, lon: float) -> bool:
        """Whether a call opened at ``opened`` (epoch s) at (lat, lon) is one of the surge's window."""
        start = self.start.timestamp()
        if not start <= opened < start + self.hours * 3600:
            return False
        if self.lat is None or self.lon is None or self.radius_km is None:
            return True
        return haversine_m(self.lat, self.lon, lat, lon) <= self.radius_km * 1000.0


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("baseline", min_length=1, max_length=100)
    close_stations: tuple[Identifier, ...] = ()
    remove_units: tuple[Identifier, ...] = ()
    add_units: tuple[AddedUnit, ...] = ()
    move_units: tuple[MovedUnit, ...] = ()
    add_stations: tuple[AddedStation, ...] = ()
    demand_scale: float = Field(1.0, gt=0, le=5)
    surges: tuple[Surge, ...] = ()
    turnout_change_s: dict[VehicleTypeCode, float] = Field(default_factory=dict)
    dispatch: Literal["closest", "run_cards"] = "closest"
    crossing_areas: bool = True
    durations: Literal["observed", "fitted"] = "observed"
    staffing: dict[Identifier, int] = Field(default_factory=dict)
    crews: Literal["none", "history"] = "none"
    run_cards: dict[str, tuple[Identifier, ...]] = Field(default_factory=dict)
    targets: dict[int, Duration] = Field(default_factory=lambda: {1: 480.0, 2: 1200.0})

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        added = [u.unit_id for u in self.add_units]
        if len(set(added)) < len(added):
            raise ValueError("add_units names a unit twice")
        if set(added) & set(self.remove_units):
            raise ValueError("a unit is both added and removed")
        if self.run_cards and self.dispatch != "run_cards":
            raise ValueError('run_cards: given with dispatch = "closest" (set dispatch = "run_cards")')
        if any(len(set(card)) < len(card) or not card for card in self.run_cards.values()):
            raise ValueError("run_cards: a card names a station twice, or none")
        if any(n < 1 for n in self.staffing.values()):
            raise ValueError("staffing: at least 1 crew per station (close_stations closes one)")
        if self.staffing and self.crews == "history":
            raise ValueError('staffing: given with crews = "history" (one or the other)')
        if any(not -3600 <= v <= 3600 for v in self.turnout_change_s.values()):
            raise ValueError("turnout_change_s: each change within ±3600 s")
        return self

    @classmethod
    def load(cls, path: Path) -> Scenario:
        """Reads and checks a scenario file; ``ValueError`` says which field is wrong, and why."""
        try:
            return cls.model_validate(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{path}: {e}") from None
        except ValidationError as e:
            raise ValueError(f"{path}: " + "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in e.errors())) from None
