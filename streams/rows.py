"""Rows the processors emit, one NamedTuple per ClickHouse table (field order = column order).

Times are float epoch seconds (UTC); the sink turns them into ClickHouse DateTime values.
``version`` columns (milliseconds) let ReplacingMergeTree keep the newest row for a natural key,
so a row re-emitted after a crash replaces itself instead of counting twice.
"""

from __future__ import annotations

from typing import NamedTuple

from core.tables import DateTime, Float64, String, Strings, UInt8, UInt16, UInt32, UInt64


class VehicleEventRow(NamedTuple):
    """One vehicle-status event as received (the raw history the batch path and replays read back)."""

    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    vehicle_id: String
    vehicle_type: String
    home_station: String
    status: String
    intervention_id: String
    lat: Float64
    lon: Float64
    source_partition: UInt16
    source_offset: UInt64
    payload: String


class CrewEventRow(NamedTuple):
    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    person_id: String
    station_id: String
    status: String
    qualifications: Strings
    vehicle_id: String
    intervention_id: String
    source_partition: UInt16
    source_offset: UInt64
    payload: String


class InterventionEventRow(NamedTuple):
    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    intervention_id: String
    nature: String
    lifecycle: String
    sector: String
    lat: Float64
    lon: Float64
    priority: UInt8
    source_partition: UInt16
    source_offset: UInt64
    payload: String


class VehicleStateRow(NamedTuple):
    vehicle_id: String
    vehicle_type: String
    home_station: String
    area: String
    status: String
    category: String
    intervention_id: String
    status_since: DateTime
    event_time: DateTime
    lat: Float64
    lon: Float64
    version: UInt64


class EngagementRow(NamedTuple):
    intervention_id: String
    vehicle_id: String
    vehicle_type: String
    home_station: String
    area: String
    started_at: DateTime
    dispatched_at: DateTime
    en_route_at: DateTime
    on_scene_at: DateTime
    transport_at: DateTime
    hospital_at: DateTime
    released_at: DateTime
    turnout_s: Float64
    travel_s: Float64
    version: UInt64


class StationWindowRow(NamedTuple):
    window_start: DateTime
    window_seconds: UInt32
    station_id: String
    area: String
    vehicle_type: String
    available: UInt16
    engaged: UInt16
    out_of_service: UInt16
    unknown: UInt16
    min_available: UInt16
    engaged_vehicle_minutes: Float64
    # crewing (see streams/crewing.py); 0 where the station reports no crews (crew_tracked = 0)
    staffed: UInt16
    min_staffed: UInt16
    crew_tracked: UInt8


class InterventionRow(NamedTuple):
    intervention_id: String
    nature: String
    priority: UInt8
    sector: String
    lat: Float64
    lon: Float64
    status: String
    opened_at: DateTime
    closed_at: DateTime
    version: UInt64


class SectorWindowRow(NamedTuple):
    window_start: DateTime
    window_seconds: UInt32
    sector: String
    source_partition: UInt16
    interventions_opened: UInt32


class StaffStateRow(NamedTuple):
    """One firefighter's current status (pseudonymous id, no personal data)."""

    person_id: String
    station_id: String
    area: String
    status: String
    qualifications: Strings
    vehicle_id: String
    intervention_id: String
    status_since: DateTime
    event_time: DateTime
    version: UInt64


class StationCapacityRow(NamedTuple):
    """Per station and vehicle type, now: vehicles available and how many of them can be crewed."""

    station_id: String
    area: String
    vehicle_type: String
    vehicles: UInt16
    available: UInt16
    staffed: UInt16
    uncrewed: UInt16  # available but not crewable (0 where crews are not tracked)
    crew_tracked: UInt8
    as_of: DateTime
    version: UInt64


class StationStaffRow(NamedTuple):
    """Per station and qualification, now: people on duty holding it, by status."""

    station_id: String
    area: String
    qualification: String
    on_duty: UInt16
    assigned: UInt16
    available: UInt16
    unavailable: UInt16
    as_of: DateTime
    version: UInt64


class StaffWindowRow(NamedTuple):
    window_start: DateTime
    window_seconds: UInt32
    station_id: String
    area: String
    qualification: String
    on_duty: UInt16
    assigned: UInt16
    available: UInt16
    unavailable: UInt16
    min_available: UInt16


class ForecastRow(NamedTuple):
    """Interventions expected in one bin (1 h, 3 h or a local day) of one sector (``*``: all together)."""

    bin_start: DateTime
    bin_end: DateTime  # a local day lasts 23 or 25 hours when clocks change
    bin_hours: UInt8
    sector: String
    model: String
    issued_at: DateTime  # the forecast's origin: it saw the counts before it
    mean: Float64
    q10: UInt32
    q50: UInt32
    q80: UInt32
    q90: UInt32
    alpha: Float64  # dispersion of the negative binomial around the mean (0: Poisson)


class WhatifFigureRow(NamedTuple):
    """One figure of one what-if scenario against the history unchanged (``vigie whatif run --store``)."""

    study: String  # what the scenarios compared share: the history and the user's name for the study
    scenario: String
    seeds: UInt16
    figure: String
    baseline: Float64  # the history unchanged (mean over the seeds)
    value: Float64  # under the scenario
    diff: Float64  # mean of the paired differences
    half_width: Float64  # of its 95 % interval (NaN with one seed)
    computed_at: DateTime


class MoveUpAdviceRow(NamedTuple):
    """The live move-up advice for one unit type (``vigie moveup``): the one move that raises the expected coverage
    most now, or none (``unit_id`` empty)."""

    computed_at: DateTime  # the situation clock (the newest vehicle status)
    vehicle_type: String
    unit_id: String  # '' : no move gains 0.1 point
    from_station: String
    to_station: String
    drive_s: Float64  # median travel from the unit's station to the new one
    coverage_before: Float64  # expected share of demand reached within the limit, 0-1
    coverage_after: Float64
    free_units: UInt16
    busy_share: Float64  # the type's share of vehicles engaged over the last 24 h (q)
    limit_s: Float64
    trips: UInt32  # trips the travel model was fitted on (0: the default model)
    version: UInt64  # when computed (wall clock, ms): the latest replaces the type's row, even at one situation time


class AlertRow(NamedTuple):
    """One transition of one alert (pending, firing, cancelled, resolved) of one rule on one scope."""

    rule: String
    severity: String
    measure: String
    scope: String  # area | station
    scope_key: String  # "<area or station>/<vehicle type or qualification>"
    area: String
    station_id: String
    subject: String  # the vehicle type or the qualification
    transition: String
    at: DateTime
    value: Float64  # the value then (for firing and resolved: the worst of the episode)
    fire_at: Float64
    message: String


class AlertActionRow(NamedTuple):
    """An operator's action on an alert (schemas/alert_actions.py)."""

    event_id: String
    at: DateTime
    action: String
    rule: String
    scope_key: String
    until: DateTime  # a silence's end (0: none)
    by: String
    why: String
    at_ms: UInt64  # ``at`` to the millisecond: of two actions in one second, the later wins
