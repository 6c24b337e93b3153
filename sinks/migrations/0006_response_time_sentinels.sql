-- With no unit on scene, the first unit's turnout and travel read 0 (argMinIf's default), which a median taken
-- naively counts as instant responses: they are now -1, like call_to_first_arrival_s. Vigie's sentinels (README,
-- "Missing values"): a time that did not happen is 1970-01-01 00:00:00 (DateTime 0), a duration that cannot be
-- measured is -1. (DROP TABLE drops a view on every ClickHouse; 18.16 has no CREATE OR REPLACE VIEW.)
DROP TABLE IF EXISTS {db}.intervention_response_times;

CREATE VIEW IF NOT EXISTS {db}.intervention_response_times AS
SELECT
    intervention_id, nature, priority, sector, status, opened_at, closed_at,
    units, first_dispatch_at, first_arrival_at,
    if(first_arrival_at > toDateTime(0) AND opened_at > toDateTime(0),
       toInt64(first_arrival_at) - toInt64(opened_at), toInt64(-1)) AS call_to_first_arrival_s,
    if(first_arrival_at > toDateTime(0), first_unit_turnout_s, toFloat64(-1)) AS first_unit_turnout_s,
    if(first_arrival_at > toDateTime(0), first_unit_travel_s, toFloat64(-1)) AS first_unit_travel_s
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
