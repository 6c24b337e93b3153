-- Population present (streams/processors/presence.py): one row per sector, segment, source and period, its newest
-- scoring winning (version: grows with every row written, across restarts too), and the raw deliveries.
CREATE TABLE IF NOT EXISTS {db}.presence_periods (
    sector_id String,
    segment String,
    source String,
    period_start DateTime,
    period_minutes UInt16,
    present Float64,
    suppressed UInt8,
    usual Float64,
    mad Float64,
    weeks UInt8,
    ratio Float64,
    z Float64,
    deviating UInt8,
    unusual UInt8,
    lat Float64,
    lon Float64,
    residents Float64,
    delivered_at DateTime,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(period_start)
ORDER BY (sector_id, segment, source, period_minutes, period_start);

CREATE TABLE IF NOT EXISTS {db}.presence_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    sector_id String,
    period_start DateTime,
    segment String,
    source String,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);
