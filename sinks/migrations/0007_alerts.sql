-- Alerts (streams/processors/alerts.py): one row per transition of one rule on one scope. A transition is
-- recomputed identically after a crash (same rule, scope, time and transition): the repeat replaces the row.
CREATE TABLE IF NOT EXISTS {db}.alerts (
    rule String,
    severity String,
    measure String,
    scope String,
    scope_key String,
    area String,
    station_id String,
    subject String,
    transition String,
    at DateTime,
    value Float64,
    fire_at Float64,
    message String,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (rule, scope_key, at, transition);

-- Each alert's latest transition: what is firing (or pending) now, and since when. Transitions at the same
-- second rank cancelled/resolved < pending < firing (an alert with no `for` is pending and firing at once).
CREATE VIEW IF NOT EXISTS {db}.alerts_current AS
SELECT
    rule, scope_key,
    argMax(severity, k) AS severity,
    argMax(scope, k) AS scope,
    argMax(area, k) AS area,
    argMax(station_id, k) AS station_id,
    argMax(subject, k) AS subject,
    argMax(transition, k) AS state,
    argMax(at, k) AS since,
    argMax(value, k) AS value,
    argMax(message, k) AS message
FROM
(
    SELECT rule, scope_key, severity, scope, area, station_id, subject, transition, at, value, message,
           toUInt64(at) * 4 + multiIf(transition = 'firing', 2, transition = 'pending', 1, 0) AS k
    FROM {db}.alerts FINAL
)
GROUP BY rule, scope_key;
