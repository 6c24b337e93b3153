-- Stocks (streams/processors/stocks.py): one row per (site, item), the newest snapshot winning (version = its
-- time in ms; at the same ms the later insert wins, and the processor never inserts an older id after a newer one),
-- and the raw snapshots (history, replays). Queries near a place: sinks/near.py.
CREATE TABLE IF NOT EXISTS {db}.stock_levels (
    site_id String,
    item_id String,
    site_type String,
    item_category String,
    unit String,
    qty_on_hand Float64,
    qty_reserved Float64,
    qty_available Float64,
    qty_min Float64,
    below_min UInt8,
    lat Float64,
    lon Float64,
    sector_id String,
    event_time DateTime,
    event_id String,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY (site_id, item_id);

CREATE TABLE IF NOT EXISTS {db}.stock_events (
    event_id String,
    event_time DateTime,
    event_ts_ms UInt64,
    site_id String,
    item_id String,
    source_partition UInt16,
    source_offset UInt64,
    payload String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id);
