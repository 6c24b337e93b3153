"""« Population présente »: per sector, the people present at the newest period delivered against the usual for that
slot of the week (table and map, unusual sectors first), present vs usual over time for chosen sectors, and the
unusual periods of the time range (``presence_periods``; rules: ``streams/presence.py``)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import geomap, table, timeseries
from grafana_foundation_sdk.models import common, dashboard

from grafana.common import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    RUN,
    at,
    in_selected,
    legend_bottom,
    query_variable,
    run_variable,
    text_value,
)
from grafana.datasources import SQL
from sinks.queries import latest_presence_query

UID = "vigie-presence"
SEGMENT = text_value("segment")

SECTOR_VARIABLE_SQL = f"SELECT DISTINCT sector_id FROM {RUN}.presence_periods ORDER BY sector_id"
SEGMENT_VARIABLE_SQL = f"SELECT DISTINCT segment FROM {RUN}.presence_periods ORDER BY segment"

# a period's state in words: unusual (two deviating periods in a row), deviating, suppressed, no usual yet, usual
STATE = ("multiIf(unusual = 1 AND deviating = 1, 'inhabituel +', unusual = 1, 'inhabituel -', deviating != 0, "
         "'écart', suppressed = 1, 'masqué', weeks = 0, 'sans historique', 'habituel')")

#: per sector and source, the newest period delivered (of the selected segment and sectors)
LATEST = latest_presence_query(RUN, SEGMENT, in_selected("sector_id", "sector"))

NOW_TABLE = f"""
SELECT sector_id AS secteur, source, period AS periode, present AS presents, usual AS habituel,
       round(ratio, 2) AS rapport, round(z, 1) AS z, {STATE} AS etat, residents AS residents
FROM ({LATEST})
ORDER BY unusual DESC, deviating != 0 DESC, abs(z) DESC, sector_id, source"""

NOW_MAP = f"""
SELECT sector_id AS secteur, lat, lon, present AS presents, round(ratio, 2) AS rapport, {STATE} AS etat
FROM ({LATEST})
WHERE NOT (lat = 0 AND lon = 0)
ORDER BY sector_id, source"""

# the ORDER BY outside the UNION ALL (inside, it would order the second SELECT only)
OVER_TIME = f"""
SELECT time, serie, value FROM (
SELECT period_start AS time, concat(sector_id, ' présents') AS serie, present AS value
FROM {RUN}.presence_periods FINAL
WHERE $__timeFilter(period_start) AND segment = {SEGMENT} AND suppressed = 0 AND {in_selected('sector_id', 'sector')}
UNION ALL
SELECT period_start AS time, concat(sector_id, ' habituel') AS serie, usual AS value
FROM {RUN}.presence_periods FINAL
WHERE $__timeFilter(period_start) AND segment = {SEGMENT} AND weeks > 0 AND {in_selected('sector_id', 'sector')})
ORDER BY time, serie"""

UNUSUAL_PERIODS = f"""
SELECT period_start AS periode, sector_id AS secteur, source, present AS presents, usual AS habituel,
       round(ratio, 2) AS rapport, round(z, 1) AS z
FROM {RUN}.presence_periods FINAL
WHERE $__timeFilter(period_start) AND segment = {SEGMENT} AND unusual = 1 AND {in_selected('sector_id', 'sector')}
ORDER BY period_start DESC, sector_id, source
LIMIT 500"""

_STATE_COLOURS = {"inhabituel +": RED, "inhabituel -": BLUE, "écart": ORANGE, "masqué": GREY,
                  "sans historique": GREY, "habituel": GREEN}


def _state_mapping() -> list[dashboard.ValueMap]:
    return [dashboard.ValueMap(options={k: dashboard.ValueMappingResult(color=c, text=k)
                                        for k, c in _STATE_COLOURS.items()})]


def build() -> dash_b.Dashboard:
    state_cells = [dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                   dashboard.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                       k: {"color": c, "index": i} for i, (k, c) in enumerate(_STATE_COLOURS.items())}}])]
    segment = query_variable("segment", "Segment", SEGMENT_VARIABLE_SQL, multi=False).current(
        dashboard.VariableOption(selected=True, text="all", value="all"))
    return (
        dash_b.Dashboard("Population présente").uid(UID).tags(["vigie"]).refresh("1m")
        .time("now-2d", "now").timezone("browser")
        .with_variable(run_variable())
        .with_variable(segment)
        .with_variable(query_variable("sector", "Secteur", SECTOR_VARIABLE_SQL))
        .with_panel(table.Panel().title("Présents / habituel, dernière période livrée").grid_pos(at(0, 0, 14, 14))
                    .description("Per sector, the newest period a source delivered: people present, the usual "
                                 "(median of the same slot of the week in the weeks before), ratio and robust "
                                 "z-score. Unusual: two periods in a row beyond the thresholds; unusual sectors "
                                 "first.")
                    .with_target(SQL(NOW_TABLE).table())
                    .override_by_name("etat", state_cells)
                    .no_value("Aucune livraison"))
        .with_panel(geomap.Panel().title("Secteurs").grid_pos(at(14, 0, 10, 14))
                    .description("Each sector at its centroid, sized by the people present, coloured by its state.")
                    .with_target(SQL(NOW_MAP).table())
                    .view(geomap.MapViewConfig().id("fit").lat(0).lon(0).zoom(10))
                    .basemap(common_b.MapLayerOptions().type("osm-standard").name("OpenStreetMap"))
                    .layers([common_b.MapLayerOptions().type("markers").name("secteurs").config({
                        "showLegend": True,
                        "style": {"size": {"field": "presents", "min": 4, "max": 24, "fixed": 6},
                                  "color": {"field": "etat"}, "opacity": 0.8,
                                  "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}},
                    }).location(common_b.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                                .latitude("lat").longitude("lon"))])
                    .mappings(_state_mapping()))
        .with_panel(timeseries.Panel().title("Présents et habituel").grid_pos(at(0, 14, 14, 10))
                    .description("People present per period and the usual for its slot of the week, for the "
                                 "selected sectors (choose a few).")
                    .with_target(SQL(OVER_TIME).time_series())
                    .line_width(2).legend(legend_bottom()).min(0).decimals(0))
        .with_panel(table.Panel().title("Périodes inhabituelles").grid_pos(at(14, 14, 10, 10))
                    .with_target(SQL(UNUSUAL_PERIODS).table())
                    .no_value("Aucune période inhabituelle")))
