-- Runs of identical windows: the workers send a run of quiet 1-minute windows as one entry (its
-- first_window_start and window_count); these Null tables keep nothing, and the materialized views expand each
-- entry into window_count consecutive windows of the window tables, inside ClickHouse. Far fewer values
-- cross the wire and the Python serializer (most window rows over history are quiet repeats). The rows
-- stored are the same; a re-sent run replaces itself like any window row.

CREATE TABLE IF NOT EXISTS {db}.station_window_runs (
    first_window_start DateTime,
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
    staffed UInt16,
    min_staffed UInt16,
    crew_tracked UInt8,
    window_count UInt32
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.station_window_runs_expand TO {db}.station_windows AS
SELECT
    toDateTime(toUInt32(first_window_start) + window_index * window_seconds) AS window_start,
    window_seconds, station_id, area, vehicle_type, available, engaged, out_of_service, unknown,
    min_available, engaged_vehicle_minutes, staffed, min_staffed, crew_tracked,
    now() AS written_at  -- ClickHouse 18.16 fills no default when a view pushes to its TO table
FROM {db}.station_window_runs
ARRAY JOIN range(window_count) AS window_index;

CREATE TABLE IF NOT EXISTS {db}.staff_window_runs (
    first_window_start DateTime,
    window_seconds UInt32,
    station_id String,
    area String,
    qualification String,
    on_duty UInt16,
    assigned UInt16,
    available UInt16,
    unavailable UInt16,
    min_available UInt16,
    window_count UInt32
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.staff_window_runs_expand TO {db}.staff_windows AS
SELECT
    toDateTime(toUInt32(first_window_start) + window_index * window_seconds) AS window_start,
    window_seconds, station_id, area, qualification, on_duty, assigned, available, unavailable, min_available,
    now() AS written_at
FROM {db}.staff_window_runs
ARRAY JOIN range(window_count) AS window_index;
