"""« Scénarios »: what-if scenarios against the history unchanged, side by side (table ``whatif_figures``, written by
`vigie whatif run --store STUDY`): per figure, the baseline, each scenario's value and the difference with its 95 %
interval over the paired seeds; and the change of the first arrival per scenario."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, table
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard

from grafana.common import RUN, at, query_variable, run_variable, text_value
from grafana.datasources import SQL

UID = "vigie-scenarios"
STUDY = text_value("study")
STUDY_VARIABLE_SQL = f"SELECT DISTINCT study FROM {RUN}.whatif_figures ORDER BY study"
FIRST_ARRIVAL = "call -> first arrival p50 (s), all types, all priorities"

SIDE_BY_SIDE = f"""
SELECT figure AS indicateur, scenario AS scenario, baseline AS historique, value AS avec_scenario, diff AS ecart,
       half_width AS ic95, seeds AS graines, computed_at AS calcule
FROM {RUN}.whatif_figures FINAL
WHERE study = {STUDY}
ORDER BY figure, scenario"""

FIRST_ARRIVAL_CHANGE = f"""
SELECT scenario, diff AS ecart_s, diff - half_width AS bas, diff + half_width AS haut
FROM {RUN}.whatif_figures FINAL
WHERE study = {STUDY} AND figure = '{FIRST_ARRIVAL}'
ORDER BY scenario"""


def build() -> dash_b.Dashboard:
    return (
        dash_b.Dashboard("Scénarios").uid(UID).tags(["vigie"]).time("now-7d", "now").timezone("browser")
        .with_variable(run_variable())
        .with_variable(query_variable("study", "Étude", STUDY_VARIABLE_SQL, multi=False)
                       .current(dashboard.VariableOption(selected=True, text="", value="")))
        .with_panel(barchart.Panel().title("Arrivée du premier engin (médiane) : écart à l'historique, par scénario")
                    .description("Seconds added (or saved) by each scenario against the history unchanged, with "
                                 "the 95 % interval over the paired seeds (`vigie whatif run`).")
                    .grid_pos(at(0, 0, 24, 8)).with_target(SQL(FIRST_ARRIVAL_CHANGE).table()).unit("s"))
        .with_panel(table.Panel().title("Indicateurs : historique et scénarios côte à côte")
                    .description("Each figure of the history re-run unchanged (historique) and under each scenario "
                                 "(avec_scenario), the mean paired difference (ecart) and the half-width of its 95 % "
                                 "interval (ic95; NaN with one seed).")
                    .grid_pos(at(0, 8, 24, 20)).with_target(SQL(SIDE_BY_SIDE).table()).decimals(1)
                    .no_value("Aucune étude : vigie whatif run --store ÉTUDE")))
