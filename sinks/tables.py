"""Which rows go to which ClickHouse table, and which columns hold DateTime values."""

from __future__ import annotations

from dataclasses import dataclass

from streams.rows import (
    EngagementRow,
    InterventionRow,
    SectorWindowRow,
    StaffStateRow,
    StaffWindowRow,
    StationCapacityRow,
    StationStaffRow,
    StationWindowRow,
    VehicleStateRow,
)


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    datetime_columns: frozenset[str]
    # window tables: blocks with runs of windows go to this Null table, which a materialized view expands
    # into ``name`` (one entry per run instead of one row per window; ``repeat`` -> ``window_count``)
    runs_table: str | None = None

    @property
    def datetime_indexes(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c in self.datetime_columns)


def _spec(name: str, columns: tuple[str, ...], runs_table: str | None = None) -> TableSpec:
    times = frozenset(c for c in columns
                      if c.endswith(("_at", "_since")) or c in ("event_time", "window_start", "as_of"))
    return TableSpec(name, columns, times, runs_table)


VEHICLE_EVENTS = _spec(
    "vehicle_status_events",
    ("event_id", "event_time", "event_ts_ms", "vehicle_id", "vehicle_type", "home_station", "status",
     "intervention_id", "lat", "lon", "source_partition", "source_offset", "payload"),
)
INTERVENTION_EVENTS = _spec(
    "intervention_events",
    ("event_id", "event_time", "event_ts_ms", "intervention_id", "nature", "lifecycle", "sector", "lat", "lon",
     "priority", "source_partition", "source_offset", "payload"),
)
CREW_EVENTS = _spec(
    "crew_status_events",
    ("event_id", "event_time", "event_ts_ms", "person_id", "station_id", "status", "qualifications", "vehicle_id",
     "intervention_id", "source_partition", "source_offset", "payload"),
)
VEHICLE_STATE = _spec("vehicle_state", VehicleStateRow._fields)
ENGAGEMENTS = _spec("engagements", EngagementRow._fields)
STATION_WINDOWS = _spec("station_windows", StationWindowRow._fields, "station_window_runs")
INTERVENTIONS = _spec("interventions", InterventionRow._fields)
SECTOR_WINDOWS = _spec("sector_windows", SectorWindowRow._fields)
STAFF_STATE = _spec("staff_state", StaffStateRow._fields)
STATION_CAPACITY = _spec("station_capacity", StationCapacityRow._fields)
STATION_STAFF = _spec("station_staff", StationStaffRow._fields)
STAFF_WINDOWS = _spec("staff_windows", StaffWindowRow._fields, "staff_window_runs")

ALL_TABLES = (VEHICLE_EVENTS, INTERVENTION_EVENTS, CREW_EVENTS, VEHICLE_STATE, ENGAGEMENTS, STATION_WINDOWS,
              INTERVENTIONS, SECTOR_WINDOWS, STAFF_STATE, STATION_CAPACITY, STATION_STAFF, STAFF_WINDOWS)
