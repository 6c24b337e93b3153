-- Vigie schema v1. Every statement must run on ClickHouse 18.16 (local) and 24.x+ (production).
-- Tables whose rows can be re-sent after a crash are ReplacingMergeTree on their natural key:
-- a re-inserted row replaces itself. Read them with FINAL (or argMax on the version).

CREATE TABLE IF NOT EXISTS {db}.vehicle_status_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    vehicle_id String,
    vehicle_type String,
    home_station String,
    status String,
    intervention_id String,
    lat Float64,
    lon Float64,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);

CREATE TABLE IF NOT EXISTS {db}.intervention_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    intervention_id String,
    nature String,
    lifecycle String,
    sector String,
    lat Float64,
    lon Float64,
    priority UInt8,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);

CREATE TABLE IF NOT EXISTS {db}.vehicle_state (
    vehicle_id String,
    vehicle_type String,
    home_station String,
    area String,
    status String,
    category String,
    intervention_id String,
    status_since DateTime,
    event_time DateTime,
    lat Float64,
    lon Float64,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY vehicle_id;

CREATE TABLE IF NOT EXISTS {db}.engagements (
    intervention_id String,
    vehicle_id String,
    vehicle_type String,
    home_station String,
    area String,
    started_at DateTime,
    dispatched_at DateTime,
    en_route_at DateTime,
    on_scene_at DateTime,
    transport_at DateTime,
    hospital_at DateTime,
    released_at DateTime,
    turnout_s Float64,
    travel_s Float64,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (intervention_id, vehicle_id);

CREATE TABLE IF NOT EXISTS {db}.interventions (
    intervention_id String,
    nature String,
    priority UInt8,
    sector String,
    lat Float64,
    lon Float64,
    status String,
    opened_at DateTime,
    closed_at DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY intervention_id;

CREATE TABLE IF NOT EXISTS {db}.station_windows (
    window_start DateTime,
    window_seconds UInt32,
    station_id String,
    area String,
    vehicle_type String,
    available UInt16,
    engaged UInt16,
    out_of_service UInt16,
    unknown UInt16,
    min_available UInt16,
    engaged_vehicle_minutes Float64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, station_id, vehicle_type, window_seconds);

CREATE TABLE IF NOT EXISTS {db}.sector_windows (
    window_start DateTime,
    window_seconds UInt32,
    sector String,
    source_partition UInt16,
    interventions_opened UInt32,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, sector, source_partition, window_seconds);

-- Per intervention: call -> first arrival, and the turnout / travel of the first unit on scene.
CREATE VIEW IF NOT EXISTS {db}.intervention_response_times AS
SELECT
    intervention_id, nature, priority, sector, status, opened_at, closed_at,
    units, first_dispatch_at, first_arrival_at,
    if(first_arrival_at > toDateTime(0) AND opened_at > toDateTime(0),
       toInt64(first_arrival_at) - toInt64(opened_at), toInt64(-1)) AS call_to_first_arrival_s,
    first_unit_turnout_s, first_unit_travel_s
FROM
(
    SELECT intervention_id, nature, priority, sector, status, opened_at, closed_at
    FROM {db}.interventions FINAL
) AS i
ANY LEFT JOIN
(
    SELECT
        intervention_id,
        count() AS units,
        minIf(dispatched_at, dispatched_at > toDateTime(0)) AS first_dispatch_at,
        minIf(on_scene_at, on_scene_at > toDateTime(0)) AS first_arrival_at,
        argMinIf(turnout_s, on_scene_at, on_scene_at > toDateTime(0)) AS first_unit_turnout_s,
        argMinIf(travel_s, on_scene_at, on_scene_at > toDateTime(0)) AS first_unit_travel_s
    FROM {db}.engagements FINAL
    GROUP BY intervention_id
) AS e USING intervention_id;
