-- Per import / replay run: how far to trust each figure (shares of rows with missing or inconsistent
-- timestamps, every repair and rejection by reason), from `vigie import`'s report.
CREATE TABLE IF NOT EXISTS {db}.data_quality (
    run_id String,
    source String,
    kind String,
    detail String,
    rows UInt64,
    share Float64,
    recorded_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (run_id, kind, detail);
