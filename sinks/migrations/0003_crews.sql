-- Crews: firefighters' status (pseudonymous ids, no names), staffed capacity next to vehicle capacity.
-- Staffed capacity follows the crewing rule of streams/crewing.py. crew_tracked = 0 where a station
-- reports no crews: its staffed figures are then 0 and mean "not reported", not "none".

ALTER TABLE {db}.station_windows ADD COLUMN staffed UInt16 DEFAULT 0 AFTER engaged_vehicle_minutes;
ALTER TABLE {db}.station_windows ADD COLUMN min_staffed UInt16 DEFAULT 0 AFTER staffed;
ALTER TABLE {db}.station_windows ADD COLUMN crew_tracked UInt8 DEFAULT 0 AFTER min_staffed;

CREATE TABLE IF NOT EXISTS {db}.crew_status_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    person_id String,
    station_id String,
    status String,
    qualifications Array(String),
    vehicle_id String,
    intervention_id String,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);

-- One row per person (the newest event wins: version = its event time in ms).
CREATE TABLE IF NOT EXISTS {db}.staff_state (
    person_id String,
    station_id String,
    area String,
    status String,
    qualifications Array(String),
    vehicle_id String,
    intervention_id String,
    status_since DateTime,
    event_time DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY person_id;

-- Now, per station and vehicle type: vehicles available and how many of them can be crewed.
-- version = newest event time of the station (ms) x 10^6 + records of it consumed so far (both only grow with
-- the input read, also across a crash's replay; the time also across a state lost on an old database).
CREATE TABLE IF NOT EXISTS {db}.station_capacity (
    station_id String,
    area String,
    vehicle_type String,
    vehicles UInt16,
    available UInt16,
    staffed UInt16,
    uncrewed UInt16,
    crew_tracked UInt8,
    as_of DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY (station_id, vehicle_type);

-- Now, per station and qualification: people on duty holding it, by status (a person counts under
-- each qualification they hold).
CREATE TABLE IF NOT EXISTS {db}.station_staff (
    station_id String,
    area String,
    qualification String,
    on_duty UInt16,
    assigned UInt16,
    available UInt16,
    unavailable UInt16,
    as_of DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY (station_id, qualification);

CREATE TABLE IF NOT EXISTS {db}.staff_windows (
    window_start DateTime,
    window_seconds UInt32,
    station_id String,
    area String,
    qualification String,
    on_duty UInt16,
    assigned UInt16,
    available UInt16,
    unavailable UInt16,
    min_available UInt16,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, station_id, qualification, window_seconds);
