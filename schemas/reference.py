"""Reference data loaded at start: vehicle-type catalogue, stations and fleet (CSV files), and the sectors' polygons
(``sectors.geojson``, optional: ``core/geo.py``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.geo import Sectors
from schemas.events import CrewStatusEvent, Identifier, Qualification, VehicleStatusEvent, VehicleTypeCode

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


#: Seats of a vehicle's minimum crew, by the qualification each seat needs; and the order in which a
#: station crews its vehicle types when its staff cannot crew them all (see ``streams/crewing.py``).
#: A reference directory may replace it with ``crew_requirements.csv``
#: (``vehicle_type,priority,crew_leader,driver,team_leader,team_member``).
DEFAULT_CREW_REQUIREMENTS: dict[str, dict[Qualification, int]] = {
    "VSAV": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1, Qualification.TEAM_MEMBER: 1},
    "FPT": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1, Qualification.TEAM_LEADER: 2,
            Qualification.TEAM_MEMBER: 2},
    "PSE": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1, Qualification.TEAM_LEADER: 2,
            Qualification.TEAM_MEMBER: 2},
    "EPA": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1},
    "CCF": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1, Qualification.TEAM_MEMBER: 2},
    "VSR": {Qualification.CREW_LEADER: 1, Qualification.DRIVER: 1, Qualification.TEAM_MEMBER: 1},
    "VL": {Qualification.DRIVER: 1},
}
DEFAULT_CREW_PRIORITY: tuple[str, ...] = ("VSAV", "FPT", "PSE", "EPA", "VSR", "CCF", "VL")


@dataclass(frozen=True)
class CrewRules:
    """Reference data of the crewing rule: seats per vehicle type and the types' crewing order."""

    requirements: dict[str, dict[Qualification, int]]
    priority: tuple[str, ...]

    @classmethod
    def default(cls) -> CrewRules:
        return cls(DEFAULT_CREW_REQUIREMENTS, DEFAULT_CREW_PRIORITY)

    @classmethod
    def load(cls, path: Path, vehicle_types: Iterable[str]) -> CrewRules:
        known = set(vehicle_types)
        rows = []
        for r in _read_csv(path):
            vtype = r.get("vehicle_type", "")
            if vtype not in known:
                raise ReferenceError(f"{path.name}: unknown vehicle type {vtype!r}")
            try:
                seats = {q: int(r.get(q.value) or 0) for q in Qualification}
                priority = int(r["priority"])
            except (KeyError, ValueError) as e:
                raise ReferenceError(f"{path.name}: {vtype}: priority and seat counts must be integers ({e})") from e
            if any(n < 0 for n in seats.values()) or not any(seats.values()):
                raise ReferenceError(f"{path.name}: {vtype}: seat counts must be >= 0 with at least one seat")
            rows.append((priority, vtype, {q: n for q, n in seats.items() if n}))
        rows.sort(key=lambda r: (r[0], r[1]))
        return cls({vtype: seats for _, vtype, seats in rows}, tuple(vtype for _, vtype, _ in rows))

    def crew_size(self, vehicle_type: str) -> int:
        return sum(self.requirements.get(vehicle_type, {}).values())


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
    crew_rules: CrewRules = field(default_factory=CrewRules.default)
    sectors: Sectors = field(default_factory=lambda: Sectors(()))  # none: no point is given a sector
    residents: dict[str, int] = field(default_factory=dict)  # resident population per sector (sector_residents.csv)

    @classmethod
    def build(
        cls, stations: Iterable[Station], fleet: Iterable[FleetVehicle], extra_types: dict[str, str] | None = None,
        crew_rules: CrewRules | None = None, sectors: Sectors | None = None, residents: dict[str, int] | None = None,
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
        return cls(types, by_id, vehicles, {k: tuple(v) for k, v in grouped.items()}, crew_rules or CrewRules.default(),
                   sectors or Sectors(()), residents or {})

    @classmethod
    def load(cls, directory: Path) -> Reference:
        directory = Path(directory)
        stations = load_stations(directory / "stations.csv")
        fleet = load_fleet(directory / "fleet.csv")
        types_file = directory / "vehicle_types.csv"
        extra = {r["code"]: r["label"] for r in _read_csv(types_file)} if types_file.exists() else {}
        crew_file = directory / "crew_requirements.csv"
        crew_rules = CrewRules.load(crew_file, {**DEFAULT_VEHICLE_TYPES, **extra}) if crew_file.exists() else None
        sectors_file = directory / "sectors.geojson"
        sectors = Sectors.load(sectors_file) if sectors_file.exists() else None
        residents_file = directory / "sector_residents.csv"
        residents = load_residents(residents_file) if residents_file.exists() else None
        return cls.build(stations, fleet, extra, crew_rules, sectors, residents)

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        _write_csv(directory / "stations.csv", [s.model_dump() for s in self.stations.values()])
        _write_csv(directory / "fleet.csv", [v.model_dump() for v in self.fleet.values()])
        extra = {k: v for k, v in self.vehicle_types.items() if DEFAULT_VEHICLE_TYPES.get(k) != v}
        if extra:
            _write_csv(directory / "vehicle_types.csv", [{"code": k, "label": v} for k, v in sorted(extra.items())])
        rules = self.crew_rules
        _write_csv(directory / "crew_requirements.csv", [
            {"vehicle_type": t, "priority": i + 1, **{q.value: rules.requirements[t].get(q, 0) for q in Qualification}}
            for i, t in enumerate(rules.priority)])
        if self.residents:
            _write_csv(directory / "sector_residents.csv",
                       [{"sector_id": k, "residents": v} for k, v in sorted(self.residents.items())])
        if self.sectors.sectors:
            (directory / "sectors.geojson").write_text(json.dumps(self.sectors.to_geojson(), indent=None) + "\n")

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


    def check_crew_event(self, event: CrewStatusEvent) -> None:
        """Raise :class:`UnknownReference` when a crew event names an unknown station or vehicle."""
        if event.station_id not in self.stations:
            raise UnknownReference(f"station_id: unknown station {event.station_id!r}")
        if event.vehicle_id is not None and event.vehicle_id not in self.fleet:
            raise UnknownReference(f"vehicle_id: unknown vehicle {event.vehicle_id!r} (not in the fleet)")


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


def load_residents(path: Path) -> dict[str, int]:
    """``sector_id,residents``: the resident population per sector (a census grid summed per sector, say)."""
    out: dict[str, int] = {}
    for n, row in enumerate(_read_csv(path), start=2):
        try:
            residents = int(row["residents"])
        except (KeyError, ValueError) as e:
            raise ReferenceError(f"{path.name} line {n}: residents must be a whole number ({e})") from e
        if residents < 0 or not row.get("sector_id"):
            raise ReferenceError(f"{path.name} line {n}: a sector_id and residents >= 0 are needed")
        out[row["sector_id"]] = residents
    return out


def load_fleet(path: Path) -> list[FleetVehicle]:
    return [FleetVehicle.model_validate(r) for r in _read_csv(Path(path))]
