"""Rows the processors emit, one NamedTuple per ClickHouse table (field order = column order).

Times are float epoch seconds (UTC); the sink turns them into ClickHouse DateTime values.
``version`` columns (milliseconds) let ReplacingMergeTree keep the newest row for a natural key,
so a row re-emitted after a crash replaces itself instead of counting twice.
"""

from __future__ import annotations

from typing import NamedTuple


class VehicleStateRow(NamedTuple):
    vehicle_id: str
    vehicle_type: str
    home_station: str
    area: str
    status: str
    category: str
    intervention_id: str
    status_since: float
    event_time: float
    lat: float
    lon: float
    version: int


class EngagementRow(NamedTuple):
    intervention_id: str
    vehicle_id: str
    vehicle_type: str
    home_station: str
    area: str
    started_at: float
    dispatched_at: float
    en_route_at: float
    on_scene_at: float
    transport_at: float
    hospital_at: float
    released_at: float
    turnout_s: float
    travel_s: float
    version: int


class StationWindowRow(NamedTuple):
    window_start: float
    window_seconds: int
    station_id: str
    area: str
    vehicle_type: str
    available: int
    engaged: int
    out_of_service: int
    unknown: int
    min_available: int
    engaged_vehicle_minutes: float
    # crewing (see streams/crewing.py); 0 where the station reports no crews (crew_tracked = 0)
    staffed: int
    min_staffed: int
    crew_tracked: int


class InterventionRow(NamedTuple):
    intervention_id: str
    nature: str
    priority: int
    sector: str
    lat: float
    lon: float
    status: str
    opened_at: float
    closed_at: float
    version: int


class SectorWindowRow(NamedTuple):
    window_start: float
    window_seconds: int
    sector: str
    source_partition: int
    interventions_opened: int


class StaffStateRow(NamedTuple):
    """One firefighter's current status (pseudonymous id, no personal data)."""

    person_id: str
    station_id: str
    area: str
    status: str
    qualifications: list[str]
    vehicle_id: str
    intervention_id: str
    status_since: float
    event_time: float
    version: int


class StationCapacityRow(NamedTuple):
    """Per station and vehicle type, now: vehicles available and how many of them can be crewed."""

    station_id: str
    area: str
    vehicle_type: str
    vehicles: int
    available: int
    staffed: int
    uncrewed: int  # available but not crewable (0 where crews are not tracked)
    crew_tracked: int
    as_of: float
    version: int


class StationStaffRow(NamedTuple):
    """Per station and qualification, now: people on duty holding it, by status."""

    station_id: str
    area: str
    qualification: str
    on_duty: int
    assigned: int
    available: int
    unavailable: int
    as_of: float
    version: int


class StaffWindowRow(NamedTuple):
    window_start: float
    window_seconds: int
    station_id: str
    area: str
    qualification: str
    on_duty: int
    assigned: int
    available: int
    unavailable: int
    min_available: int


#: 0.0 stands for "no time" in the optional time columns (ClickHouse DateTime 0 = 1970-01-01).
NO_TIME = 0.0
