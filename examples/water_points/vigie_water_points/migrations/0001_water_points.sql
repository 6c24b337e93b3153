-- Water points: one row per point (the newest event wins), and the raw events (history, replays).
CREATE TABLE IF NOT EXISTS {db}.water_point_state (
    water_point_id String,
    area String,
    kind String,
    status String,
    flow_m3h Float64,
    status_since DateTime,
    event_time DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY water_point_id;

CREATE TABLE IF NOT EXISTS {db}.water_point_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    water_point_id String,
    status String,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);
