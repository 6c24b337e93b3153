-- Operators' actions on alerts (acknowledge, silence until, unsilence), and alerts_current with, per alert,
-- who acknowledged its episode and the silence in force. (DROP TABLE drops a view on every ClickHouse.)
CREATE TABLE IF NOT EXISTS {db}.alert_actions (
    event_id String,
    at DateTime,
    action String,
    rule String,
    scope_key String,
    until DateTime,
    by String,
    why String,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (rule, scope_key, at, event_id);

DROP TABLE IF EXISTS {db}.alerts_current;

-- Each alert's latest transition (cancelled/resolved < pending < firing at the same second), the start of its
-- episode (its latest pending), the latest acknowledgement at or after that start, and the latest silence or
-- unsilence (silenced_until: 1970-01-01 after an unsilence; a silence holds while the clock is before it).
CREATE VIEW IF NOT EXISTS {db}.alerts_current AS
SELECT
    rule, scope_key, severity, scope, area, station_id, subject, state, since, episode_start, value, message,
    if(last_ack_at >= episode_start AND last_ack_at > toDateTime(0), last_ack_by, '') AS acknowledged_by,
    if(last_ack_at >= episode_start, last_ack_at, toDateTime(0)) AS acknowledged_at,
    silenced_until, silenced_by, silence_why
FROM
(
    SELECT
        rule, scope_key,
        argMax(severity, k) AS severity,
        argMax(scope, k) AS scope,
        argMax(area, k) AS area,
        argMax(station_id, k) AS station_id,
        argMax(subject, k) AS subject,
        argMax(transition, k) AS state,
        argMax(at, k) AS since,
        maxIf(at, transition = 'pending') AS episode_start,
        argMax(value, k) AS value,
        argMax(message, k) AS message
    FROM
    (
        SELECT rule, scope_key, severity, scope, area, station_id, subject, transition, at, value, message,
               toUInt64(at) * 4 + multiIf(transition = 'firing', 2, transition = 'pending', 1, 0) AS k
        FROM {db}.alerts FINAL
    )
    GROUP BY rule, scope_key
) AS current
ANY LEFT JOIN
(
    SELECT
        rule, scope_key,
        argMaxIf(by, at, action = 'acknowledge') AS last_ack_by,
        maxIf(at, action = 'acknowledge') AS last_ack_at,
        argMaxIf(until, at, action != 'acknowledge') AS silenced_until,
        argMaxIf(by, at, action = 'silence') AS silenced_by,
        argMaxIf(why, at, action = 'silence') AS silence_why
    FROM {db}.alert_actions FINAL
    GROUP BY rule, scope_key
) AS actions USING (rule, scope_key);
