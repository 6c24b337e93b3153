-- Forecasts of interventions opened per bin (1 h, 3 h, local day) and sector ('*': all sectors together), from
-- `vigie forecast predict`. A newer forecast of a bin replaces the older one (version: issued_at), so the row kept
-- is the freshest forecast issued before the bin began: what the room expected, never revised afterwards.
CREATE TABLE IF NOT EXISTS {db}.forecasts (
    bin_start DateTime,
    bin_end DateTime,
    bin_hours UInt8,
    sector String,
    model String,
    issued_at DateTime,
    mean Float64,
    q10 UInt32,
    q50 UInt32,
    q80 UInt32,
    q90 UInt32,
    alpha Float64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(issued_at)
PARTITION BY toYYYYMM(bin_start)
ORDER BY (bin_hours, sector, model, bin_start);
