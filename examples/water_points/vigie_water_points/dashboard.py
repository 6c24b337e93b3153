"""The processor's dashboard: water points out of service per area, and the list of those out now."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import table

from grafana.common import RUN, at, run_variable
from grafana.datasources import SQL

UID = "vigie-water-points"

PER_AREA = ("SELECT area AS groupement, countIf(status = 'out_of_service') AS hors_service, count() AS total, "
            "sumIf(flow_m3h, status = 'in_service') AS debit_disponible_m3h "
            f"FROM {RUN}.water_point_state FINAL GROUP BY area ORDER BY hors_service DESC, area")
OUT_NOW = (f"SELECT water_point_id, area, kind, status_since FROM {RUN}.water_point_state FINAL "
           "WHERE status = 'out_of_service' ORDER BY status_since, water_point_id")


def build() -> dash_b.Dashboard:
    return (dash_b.Dashboard("Points d'eau").uid(UID).tags(["vigie"]).refresh("30s")
            .time("now-24h", "now").timezone("browser").with_variable(run_variable())
            .with_panel(table.Panel().title("Points d'eau hors service par groupement").grid_pos(at(0, 0, 12, 10))
                        .with_target(SQL(PER_AREA).table()))
            .with_panel(table.Panel().title("Hors service maintenant").grid_pos(at(12, 0, 12, 10))
                        .with_target(SQL(OUT_NOW).table())))
