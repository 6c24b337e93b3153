"""Small builders shared by the tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core.tables import TableSpec
from schemas.events import CrewStatusEvent, InterventionEvent, VehicleStatusEvent
from schemas.reference import FleetVehicle, Reference, Station

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()
_ids = itertools.count()


def small_reference() -> Reference:
    stations = [Station(station_id="S1", name="One", area="A", lat=48.85, lon=2.35),
                Station(station_id="S2", name="Two", area="B", lat=48.86, lon=2.36)]
    fleet = [FleetVehicle(vehicle_id="V1", vehicle_type="VSAV", home_station="S1"),
             FleetVehicle(vehicle_id="V2", vehicle_type="VSAV", home_station="S1"),
             FleetVehicle(vehicle_id="F1", vehicle_type="FPT", home_station="S1"),
             FleetVehicle(vehicle_id="V3", vehicle_type="VSAV", home_station="S2")]
    return Reference.build(stations, fleet)


def vev(vehicle: str, status: str, t: float, intervention: str | None = None, event_id: str | None = None,
        vtype: str = "VSAV", station: str = "S1") -> VehicleStatusEvent:
    return VehicleStatusEvent.model_validate({
        "schema_version": 1, "event_id": event_id or f"e{next(_ids)}",
        "event_time": datetime.fromtimestamp(t, UTC), "vehicle_id": vehicle, "vehicle_type": vtype,
        "home_station": station, "status": status, "intervention_id": intervention,
    }, strict=False)


def iev(intervention: str, lifecycle: str, t: float, sector: str = "Z1", event_id: str | None = None,
        nature: str = "fire") -> InterventionEvent:
    return InterventionEvent.model_validate({
        "schema_version": 1, "event_id": event_id or f"i{next(_ids)}",
        "event_time": datetime.fromtimestamp(t, UTC), "intervention_id": intervention, "nature": nature,
        "lifecycle": lifecycle, "location": {"lat": 48.8, "lon": 2.3, "sector": sector}, "priority": 2,
    }, strict=False)


def cev(person: str, status: str, t: float, quals: tuple[str, ...] = ("team_member",), vehicle: str | None = None,
        intervention: str | None = None, station: str = "S1", event_id: str | None = None) -> CrewStatusEvent:
    return CrewStatusEvent.model_validate({
        "schema_version": 1, "event_id": event_id or f"c{next(_ids)}",
        "event_time": datetime.fromtimestamp(t, UTC), "person_id": person, "station_id": station,
        "status": status, "qualifications": list(quals), "vehicle_id": vehicle, "intervention_id": intervention,
    }, strict=False)


def recording_server(version: str, sent: list[str]) -> Callable[[str], Any]:
    """An ``execute`` of a ClickHouse of ``version``: it answers ``SELECT version()`` and records every statement."""
    def execute(sql: str) -> Any:
        sent.append(sql)
        return [(version,)] if sql == "SELECT version()" else []
    return execute


#: the shipped rule "no VSAV available in an area" (deploy/alerts/rules.toml), for the alert tests
NO_VSAV_IN_AREA = '''
[[rule]]
name = "no-vsav-in-area"
measure = "available"
scope = "area"
vehicle_type = "VSAV"
fire_at = 0
clear_at = 1
keep_firing_for = "2m"
severity = "critical"
message = "No VSAV available in {area}"
'''


class NoRows:
    """A row writer that stores nothing (the engines' work alone, on the batch path)."""

    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> Sequence[Any]:
        return []
