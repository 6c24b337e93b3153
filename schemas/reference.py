"""Reference data loaded at start: vehicle-type catalogue, stations and fleet (CSV files)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Identifier, VehicleStatusEvent, VehicleTypeCode

#: The built-in catalogue. A reference directory may extend it with ``vehicle_types.csv``.
DEFAULT_VEHICLE_TYPES: dict[str, str] = {
    "VSAV": "Véhicule de secours et d'assistance aux victimes",
    "FPT": "Fourgon pompe-tonne",
    "EPA": "Échelle pivotante automatique",
    "VSR": "Véhicule de secours routier",
    "CCF": "Camion-citerne feux de forêts",
    "VL": "Véhicule léger de commandement",
    "PSE": "Premier secours évacuation",
}


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: Identifier
    name: str = Field(min_length=1)
    area: Identifier
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class FleetVehicle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vehicle_id: Identifier
    vehicle_type: VehicleTypeCode
    home_station: Identifier


class ReferenceError(ValueError):
    """The reference files are inconsistent (the worker refuses to start on them)."""


class UnknownReference(ValueError):
    """An event names a vehicle, type or station the reference data does not know."""


@dataclass(frozen=True)
class Reference:
    vehicle_types: dict[str, str]
    stations: dict[str, Station]
    fleet: dict[str, FleetVehicle]
    fleet_by_station: dict[str, tuple[FleetVehicle, ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, stations: Iterable[Station], fleet: Iterable[FleetVehicle], extra_types: dict[str, str] | None = None
    ) -> Reference:
        types = {**DEFAULT_VEHICLE_TYPES, **(extra_types or {})}
        by_id = {s.station_id: s for s in stations}
        vehicles: dict[str, FleetVehicle] = {}
        grouped: dict[str, list[FleetVehicle]] = {sid: [] for sid in by_id}
        for v in fleet:
            if v.vehicle_id in vehicles:
                raise ReferenceError(f"fleet: vehicle {v.vehicle_id} listed twice")
            if v.vehicle_type not in types:
                raise ReferenceError(f"fleet: vehicle {v.vehicle_id} has unknown type {v.vehicle_type}")
            if v.home_station not in by_id:
                raise ReferenceError(f"fleet: vehicle {v.vehicle_id} has unknown station {v.home_station}")
            vehicles[v.vehicle_id] = v
            grouped[v.home_station].append(v)
        return cls(types, by_id, vehicles, {k: tuple(v) for k, v in grouped.items()})

    @classmethod
    def load(cls, directory: Path) -> Reference:
        directory = Path(directory)
        stations = load_stations(directory / "stations.csv")
        fleet = load_fleet(directory / "fleet.csv")
        types_file = directory / "vehicle_types.csv"
        extra = {r["code"]: r["label"] for r in _read_csv(types_file)} if types_file.exists() else {}
        return cls.build(stations, fleet, extra)

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        _write_csv(directory / "stations.csv", [s.model_dump() for s in self.stations.values()])
        _write_csv(directory / "fleet.csv", [v.model_dump() for v in self.fleet.values()])

    def check_vehicle_event(self, event: VehicleStatusEvent) -> None:
        """Raise :class:`UnknownReference` with a precise reason when the event contradicts the fleet."""
        if event.vehicle_type not in self.vehicle_types:
            raise UnknownReference(
                f"vehicle_type: unknown type {event.vehicle_type!r} "
                f"(catalogue: {', '.join(sorted(self.vehicle_types))})"
            )
        known = self.fleet.get(event.vehicle_id)
        if known is None:
            raise UnknownReference(f"vehicle_id: unknown vehicle {event.vehicle_id!r} (not in the fleet)")
        if known.vehicle_type != event.vehicle_type:
            raise UnknownReference(
                f"vehicle_type: vehicle {event.vehicle_id} is a {known.vehicle_type} in the fleet, "
                f"the event says {event.vehicle_type}"
            )
        if known.home_station != event.home_station:
            raise UnknownReference(
                f"home_station: vehicle {event.vehicle_id} belongs to {known.home_station} in the fleet, "
                f"the event says {event.home_station}"
            )


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise ReferenceError(f"reference file missing: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load_stations(path: Path) -> list[Station]:
    return [Station.model_validate(r) for r in _read_csv(Path(path))]


def load_fleet(path: Path) -> list[FleetVehicle]:
    return [FleetVehicle.model_validate(r) for r in _read_csv(Path(path))]
