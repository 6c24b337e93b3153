-- Live move-up advice (`vigie moveup`): per unit type, the one move of a free unit to another station that raises
-- the expected coverage most now, or none (unit_id ''). Each computation replaces the type's row (version: the
-- wall clock in ms, so two computations at one situation time still replace); the board and « Situation » read it
-- with FINAL.
CREATE TABLE IF NOT EXISTS {db}.moveup_advice (
    computed_at DateTime,
    vehicle_type String,
    unit_id String,
    from_station String,
    to_station String,
    drive_s Float64,
    coverage_before Float64,
    coverage_after Float64,
    free_units UInt16,
    busy_share Float64,
    limit_s Float64,
    trips UInt32,
    version UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(version)
ORDER BY vehicle_type;
