-- What-if figures (`vigie whatif run --store`): per study (a history and the user's name for the comparison),
-- scenario and figure, the history unchanged against the scenario over paired seeds. Running a scenario again
-- replaces its figures (version: computed_at).
CREATE TABLE IF NOT EXISTS {db}.whatif_figures (
    study String,
    scenario String,
    seeds UInt16,
    figure String,
    baseline Float64,
    value Float64,
    diff Float64,
    half_width Float64,
    computed_at DateTime,
    written_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (study, scenario, figure);
