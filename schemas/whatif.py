"""The what-if scenario file (TOML): what changes from the history re-run (README "What-if").

::

    name = "station 28 closed"
    close_stations = ["SF28"]             # its units leave the fleet (unless moved below)
    remove_units = ["53"]
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
    demand_scale = 1.2                    # each call kept or copied (shifted within ±30 min) on average 1.2 times
    [targets]                             # call -> first arrival target per priority (default: 1 -> 8m, 2 -> 20m)
    1 = "8m"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("baseline", min_length=1, max_length=100)
    close_stations: tuple[Identifier, ...] = ()
    remove_units: tuple[Identifier, ...] = ()
    add_units: tuple[AddedUnit, ...] = ()
    move_units: tuple[MovedUnit, ...] = ()
    add_stations: tuple[AddedStation, ...] = ()
    demand_scale: float = Field(1.0, gt=0, le=5)
    targets: dict[int, Duration] = Field(default_factory=lambda: {1: 480.0, 2: 1200.0})

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        added = [u.unit_id for u in self.add_units]
        if len(set(added)) < len(added):
            raise ValueError("add_units names a unit twice")
        if set(added) & set(self.remove_units):
            raise ValueError("a unit is both added and removed")
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
