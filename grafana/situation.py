"""« Situation opérationnelle »: the wall screen (1920×1080, read from 5 m, refresh 5 s, kiosk).

Current state comes from ``vehicle_state`` / ``interventions`` (FINAL: one row per key), staffed capacity
and staff from ``station_capacity`` / ``station_staff``; trends from the 1-minute ``station_windows``;
response times from ``engagements`` and ``interventions`` over the time
range. The situation clock is the newest event time seen (so replays read right, and live it is now).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from grafana.common import (
    AREA_VARIABLE_SQL,
    AVAILABILITY_TRACKED,
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    RUN,
    all_values,
    at,
    availability_variable,
    available_trend_sql,
    big_text,
    engagement_partitions,
    in_selected,
    legend_bottom,
    percent_cells,
    query_variable,
    run_variable,
    staff_pivot,
    text_value,
    text_variable,
    thresholds,
)
from grafana.datasources import CLICKHOUSE, SQL
from grafana.forecasts import expected_vs_observed_panel, expected_vs_observed_sql

UID = "vigie-situation"
AREA_FILTER = in_selected("area", "area")



def _count_by_type(category: str, where: str = "1") -> str:
    return f"""
SELECT vehicle_type, countIf(category = '{category}') AS vehicles
FROM {RUN}.vehicle_state FINAL
WHERE {AREA_FILTER} AND {where}
GROUP BY vehicle_type
ORDER BY vehicle_type"""


AVAILABLE_BY_TYPE = _count_by_type("available", AVAILABILITY_TRACKED)
ENGAGED_BY_TYPE = _count_by_type("engaged")
OUT_OF_SERVICE_BY_TYPE = _count_by_type("out_of_service")

# only stations that report crews count: elsewhere staffed capacity is not known (not zero)
STAFFED_BY_TYPE = f"""
SELECT vehicle_type, sum(staffed) AS vehicles
FROM {RUN}.station_capacity FINAL
WHERE crew_tracked = 1 AND {AREA_FILTER} AND {AVAILABILITY_TRACKED}
GROUP BY vehicle_type
ORDER BY vehicle_type"""

STAFF_AVAILABLE_PER_AREA = f"""
SELECT area, {staff_pivot('available')}, sum(uncrewed) AS vehicules_sans_equipage
FROM
(
    SELECT area, qualification, available, 0 AS uncrewed
    FROM {RUN}.station_staff FINAL
    WHERE {AREA_FILTER}
    UNION ALL
    SELECT area, '' AS qualification, 0 AS available, uncrewed
    FROM {RUN}.station_capacity FINAL
    WHERE crew_tracked = 1 AND {AREA_FILTER}
)
GROUP BY area
ORDER BY area"""

EXHAUSTED_TYPES_PER_AREA = f"""
SELECT area, countIf(available = 0) AS types_with_nothing_left
FROM
(
    SELECT area, vehicle_type, countIf(category = 'available') AS available
    FROM {RUN}.vehicle_state FINAL
    WHERE {AREA_FILTER} AND {AVAILABILITY_TRACKED}
    GROUP BY area, vehicle_type
)
GROUP BY area
ORDER BY area"""

SHORTAGES = f"""
SELECT area, vehicle_type, engaged, out_of_service
FROM
(
    SELECT area, vehicle_type, countIf(category = 'available') AS available,
           countIf(category = 'engaged') AS engaged, countIf(category = 'out_of_service') AS out_of_service
    FROM {RUN}.vehicle_state FINAL
    WHERE {AREA_FILTER} AND {AVAILABILITY_TRACKED}
    GROUP BY area, vehicle_type
)
WHERE available = 0
ORDER BY area, vehicle_type"""

CAPACITY_PER_AREA = f"""
SELECT area, round(100 * countIf(category = 'available') / count(), 1) AS available_pct
FROM {RUN}.vehicle_state FINAL
WHERE {AREA_FILTER} AND {AVAILABILITY_TRACKED}
GROUP BY area
ORDER BY area"""

# FINAL only over the interventions that have an open version (a condition on the sorting key, read by
# index), not over the whole history: 43 -> 19 ms on four months; the newest version must still be open.
OPEN_INTERVENTIONS = f"""
SELECT intervention_id, nature, priority, sector, opened_at,
       toInt64((SELECT max(event_time) FROM {RUN}.vehicle_state)) - toInt64(opened_at) AS elapsed_s,
       units, unit_list
FROM
(
    SELECT intervention_id, nature, priority, sector, opened_at
    FROM {RUN}.interventions FINAL
    WHERE intervention_id IN (SELECT intervention_id FROM {RUN}.interventions WHERE status = 'open')
      AND status = 'open'
) AS i
ANY LEFT JOIN
(
    SELECT intervention_id, count() AS units, arrayStringConcat(groupArray(vehicle_id), ' ') AS unit_list
    FROM {RUN}.vehicle_state FINAL
    WHERE category = 'engaged' AND intervention_id != '' AND {AREA_FILTER}
    GROUP BY intervention_id
) AS e USING intervention_id
WHERE $__conditionalAll(units > 0, $area)
ORDER BY priority, opened_at, intervention_id
LIMIT 100"""

AVAILABLE_TREND = available_trend_sql(AREA_FILTER)

EXPECTED_VS_OBSERVED = expected_vs_observed_sql("1", "'*'")

# the alerts firing now (their latest transition), the most severe first; area-scoped and station-scoped
# alerts follow the area selector
MOVE_UP = f"""
SELECT vehicle_type AS type,
       if(unit_id = '', '—', concat(unit_id, ' : ', from_station, ' → ', to_station)) AS mouvement,
       drive_s / 60 AS trajet_min, 100 * coverage_before AS couverture_pct, 100 * coverage_after AS apres_pct,
       computed_at AS calcule_a
FROM {RUN}.moveup_advice FINAL
ORDER BY vehicle_type"""

FIRING_ALERTS = f"""
SELECT multiIf(severity = 'critical', 'critique', severity = 'warning', 'alerte', 'info') AS niveau,
       since AS depuis, message, rule AS regle,
       multiIf(silenced, concat('silence -> ', formatDateTime(silenced_until, '%H:%M'), ' (', silenced_by, ')'),
               acknowledged_by != '', concat('pris en compte (', acknowledged_by, ')'), '') AS suivi
FROM
(
    SELECT severity, since, message, rule, scope_key, acknowledged_by, silenced_until, silenced_by,
           silenced_until > (SELECT max(event_time) FROM {RUN}.vehicle_state) AS silenced
    FROM {RUN}.alerts_current
    WHERE state = 'firing' AND {AREA_FILTER}
)
ORDER BY silenced, multiIf(severity = 'critical', 0, severity = 'warning', 1, 2), since, rule, scope_key"""

#: the wall screen's annotations: each alert episode that fired, from firing to its resolution (to the situation
#: clock while it still fires), overlapping the time range; the area selector applies
ALERT_EPISODES = f"""
SELECT fired AS time, if(resolved_at > toDateTime(0), resolved_at, clock) AS timeEnd,
       concat(message, ' — ', rule, ' [', scope_key, ']') AS text, concat(severity, ',', rule) AS tags
FROM
(
    SELECT rule, scope_key, severity, message, fired, arrayFirst(r -> r >= fired, resolved_times) AS resolved_at,
           (SELECT max(event_time) FROM {RUN}.vehicle_state) AS clock
    FROM
    (
        SELECT rule, scope_key, any(severity) AS severity, anyLast(message) AS message,
               groupArrayIf(at, transition = 'firing' AND at <= $__toTime) AS fired_times,
               arraySort(groupArrayIf(at, transition = 'resolved')) AS resolved_times
        FROM {RUN}.alerts FINAL
        WHERE {AREA_FILTER}
        GROUP BY rule, scope_key
    )
    ARRAY JOIN fired_times AS fired
)
WHERE resolved_at = toDateTime(0) OR resolved_at >= $__fromTime
ORDER BY time, rule, scope_key"""

VEHICLE_POSITIONS = f"""
SELECT vehicle_id, vehicle_type, home_station, status, category, intervention_id, lat, lon
FROM {RUN}.vehicle_state FINAL
WHERE (lat != 0 OR lon != 0) AND {AREA_FILTER}
ORDER BY vehicle_id"""

def _target(var: str) -> str:
    """A target in seconds typed in a text box (or the URL): a number, whatever was typed (0 if it is none)."""
    return f"toFloat64OrZero({text_value(var)})"


RESPONSE_TIMES = f"""
SELECT segment, count() AS n, quantileExact(0.5)(s) AS p50_s, quantileExact(0.9)(s) AS p90_s, any(target) AS target_s,
       round(100 * countIf(s <= target) / count(), 1) AS within_target_pct
FROM
(
    SELECT 'turnout (dispatched -> en route)' AS segment, turnout_s AS s, {_target('turnout_target_s')} AS target
    FROM {RUN}.engagements FINAL
    WHERE $__timeFilter(dispatched_at) AND {engagement_partitions()} AND turnout_s >= 0 AND {AREA_FILTER}
    UNION ALL
    SELECT 'travel (en route -> on scene)' AS segment, travel_s AS s, {_target('travel_target_s')} AS target
    FROM {RUN}.engagements FINAL
    WHERE $__timeFilter(dispatched_at) AND {engagement_partitions()} AND travel_s >= 0 AND {AREA_FILTER}
    UNION ALL
    SELECT 'call -> first arrival' AS segment, toFloat64(first_arrival - opened_at) AS s,
           {_target('arrival_target_s')} AS target
    FROM
    (
        SELECT intervention_id, opened_at FROM {RUN}.interventions FINAL
        WHERE $__timeFilter(opened_at) AND opened_at > toDateTime(0)
          -- the primary key: only the granules of interventions with a unit on scene lately are read
          AND intervention_id IN (SELECT intervention_id FROM {RUN}.engagements
                                  WHERE on_scene_at > toDateTime(0) AND {engagement_partitions(8)})
    ) AS i
    ANY INNER JOIN
    (
        SELECT intervention_id, min(on_scene_at) AS first_arrival
        FROM {RUN}.engagements FINAL
        WHERE on_scene_at > toDateTime(0) AND dispatched_at >= $__fromTime - 86400 AND {engagement_partitions(8)}
          AND {AREA_FILTER}
        GROUP BY intervention_id
    ) AS a USING intervention_id
)
GROUP BY segment
ORDER BY segment"""


def _stat_by_type(title: str, sql: str, pos: dashboard.GridPos, steps: dash_b.ThresholdsConfig,
                  description: str) -> stat.Panel:
    return (stat.Panel().title(title).description(description).grid_pos(pos)
            .with_target(SQL(sql).table())
            .reduce_options(all_values()).text(big_text(64, 22))
            .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME).justify_mode(common.BigValueJustifyMode.CENTER)
            .orientation(common.VizOrientation.HORIZONTAL)
            .thresholds(steps).no_value("—").decimals(0))


def build() -> dash_b.Dashboard:
    d = (dash_b.Dashboard("Situation opérationnelle").uid(UID).tags(["vigie", "wall-screen"])
         .description("Wall screen: what can still leave, what is engaged, where, and how fast.")
         .refresh("5s").time("now-6h", "now").timezone("browser")
         .editable()
         .with_variable(run_variable())
         .with_variable(availability_variable())
         .with_variable(query_variable("area", "Groupement / area", AREA_VARIABLE_SQL))
         .with_variable(text_variable("turnout_target_s", "Turnout target (s)", "120"))
         .with_variable(text_variable("travel_target_s", "Travel target (s)", "600"))
         .with_variable(text_variable("arrival_target_s", "Call to first arrival target (s)", "720"))
         .annotation(dash_b.AnnotationQuery().name("Alertes").datasource(CLICKHOUSE).enable(True)
                     .icon_color("red").target(SQL(ALERT_EPISODES).table())))
    d = d.with_panel(_stat_by_type(
        "Disponibles par type${availability}", AVAILABLE_BY_TYPE, at(0, 0, 8, 7),
        thresholds((None, RED), (1, ORANGE), (3, GREEN)),
        "Vehicles available (at station or on radio) per type, selected areas. Red: none left; orange: 1-2."))
    d = d.with_panel(_stat_by_type(
        "Armables par type${availability}", STAFFED_BY_TYPE, at(8, 0, 8, 7),
        thresholds((None, RED), (1, ORANGE), (3, GREEN)),
        "Available vehicles that the available qualified staff can crew (staffed capacity, crewing rule of "
        "streams/crewing.py), at the stations that report crews. Compare with Disponibles: the gap is vehicles "
        "that cannot leave for lack of crew."))
    d = d.with_panel(_stat_by_type(
        "Engagés par type", ENGAGED_BY_TYPE, at(16, 0, 4, 7), thresholds((None, BLUE)),
        "Vehicles engaged (dispatched, en route, on scene, transporting, at hospital, returning)."))
    d = d.with_panel(_stat_by_type(
        "Hors service par type", OUT_OF_SERVICE_BY_TYPE, at(20, 0, 4, 7), thresholds((None, GREY)),
        "Vehicles out of service per type."))
    d = d.with_panel(
        stat.Panel().title("Types épuisés par groupement${availability}").grid_pos(at(0, 7, 6, 7))
        .description("Per area, how many vehicle types have no vehicle available. Red as soon as one type is out.")
        .with_target(SQL(EXHAUSTED_TYPES_PER_AREA).table())
        .reduce_options(all_values()).text(big_text(56, 22))
        .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME).orientation(common.VizOrientation.VERTICAL)
        .thresholds(thresholds((None, GREEN), (1, RED))).decimals(0))
    d = d.with_panel(
        table.Panel().title("Ruptures : type sans véhicule disponible${availability}").grid_pos(at(6, 7, 6, 7))
        .description("Every area x vehicle type with nothing available, and where its vehicles are.")
        .with_target(SQL(SHORTAGES).table()).no_value("Aucune rupture").cell_height(common.TableCellHeight.LG))
    d = d.with_panel(
        bargauge.Panel().title("Capacité disponible par groupement${availability}").grid_pos(at(12, 7, 5, 7))
        .description("Share of each area's vehicles that are available now.")
        .with_target(SQL(CAPACITY_PER_AREA).table())
        .reduce_options(all_values()).unit("percent").min(0).max(100)
        .display_mode(common.BarGaugeDisplayMode.LCD).orientation(common.VizOrientation.HORIZONTAL)
        .text(big_text(40, 22))
        .thresholds(thresholds((None, RED), (20, ORANGE), (40, GREEN))))
    d = d.with_panel(
        table.Panel().title("Personnel disponible par qualification").grid_pos(at(17, 7, 7, 7))
        .description("Per area: firefighters on duty and free to leave, by qualification (a person counts under "
                     "each qualification held), and available vehicles that cannot be crewed.")
        .with_target(SQL(STAFF_AVAILABLE_PER_AREA).table())
        .override_by_name("vehicules_sans_equipage", [
            dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            dashboard.DynamicConfigValue(id_val="thresholds", value=thresholds((None, GREEN), (1, ORANGE)).build()),
        ])
        .no_value("Équipages non suivis").cell_height(common.TableCellHeight.SM))
    d = d.with_panel(
        table.Panel().title("Interventions en cours").grid_pos(at(0, 14, 12, 6))
        .description("Open interventions, oldest first within priority; elapsed on the situation clock "
                     "(newest event time). With an area selected: those with units from it.")
        .with_target(SQL(OPEN_INTERVENTIONS).table())
        .override_by_name("elapsed_s", [dashboard.DynamicConfigValue(id_val="unit", value="dtdurations")])
        .no_value("Aucune intervention en cours").cell_height(common.TableCellHeight.SM))
    d = d.with_panel(
        table.Panel().title("Mouvement conseillé (couverture)").grid_pos(at(0, 20, 12, 3))
        .description("Per unit type, the one move of a free unit to another station that raises most the expected "
                     "share of demand reached within 8 minutes (DMEXCLP, `vigie moveup`, README « Move-up advice »): "
                     "coverage now and after the move, the drive. « — »: no move gains 0.1 point. The area "
                     "selector does not apply (coverage is the whole brigade's).")
        .with_target(SQL(MOVE_UP).table())
        .decimals(1).no_value("Pas de calcul (vigie moveup)").cell_height(common.TableCellHeight.SM))
    d = d.with_panel(
        table.Panel().title("Alertes en cours").grid_pos(at(12, 14, 12, 4))
        .description("Alerts firing now (rules: deploy/alerts/rules.toml, README « Alerts »), the silenced ones "
                     "last, the most severe first, since when (event time); « suivi »: who took it in hand "
                     "(`vigie alerts ack`), or the silence in force (`vigie alerts silence`). Per area and station: "
                     "the area selector applies. `vigie alerts list` shows the pending ones and the history.")
        .with_target(SQL(FIRING_ALERTS).table())
        .override_by_name("niveau", [
            dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            dashboard.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                "critique": {"color": RED, "index": 0}, "alerte": {"color": ORANGE, "index": 1},
                "info": {"color": BLUE, "index": 2}}}]),
        ])
        .no_value("Aucune alerte").cell_height(common.TableCellHeight.SM))
    d = d.with_panel(
        timeseries.Panel().title("Capacité disponible — tendance${availability}").grid_pos(at(12, 18, 12, 5))
        .description("Vehicles available per type (sum over the selected areas), lowest 1-minute value "
                     "in each interval, from the windowed tables.")
        .with_target(SQL(AVAILABLE_TREND).time_series())
        .line_width(2).fill_opacity(10).legend(legend_bottom()).min(0).decimals(0))
    d = d.with_panel(
        geomap.Panel().title("Véhicules").grid_pos(at(0, 23, 8, 7))
        .description("Last known position of every vehicle; green available, blue engaged, grey out of service.")
        .with_target(SQL(VEHICLE_POSITIONS).table())
        .view(geomap.MapViewConfig().id("fit").lat(0).lon(0).zoom(10))
        .basemap(common_b.MapLayerOptions().type("osm-standard").name("OpenStreetMap"))
        .layers([common_b.MapLayerOptions().type("markers").name("vehicles").config({
            "showLegend": True,
            "style": {"size": {"fixed": 6}, "color": {"field": "category"}, "opacity": 0.9,
                      "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}},
        }).location(common_b.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                    .latitude("lat").longitude("lon"))])
        .mappings([dashboard.ValueMap(options={
            "available": dashboard.ValueMappingResult(color=GREEN, text="disponible"),
            "engaged": dashboard.ValueMappingResult(color=BLUE, text="engagé"),
            "out_of_service": dashboard.ValueMappingResult(color=GREY, text="hors service"),
        })]))
    d = d.with_panel(expected_vs_observed_panel(
        "Interventions : attendu / observé", at(8, 23, 8, 7), EXPECTED_VS_OBSERVED,
        "All sectors, per hour of the time range: interventions expected by the forecast (dashed, band: 80 % "
        "interval) against those opened (bars). The area selector does not apply (forecasts are per sector). Days "
        "ahead and per sector: dashboard « Prévisions »."))
    d = d.with_panel(
        table.Panel().title("Délais d'intervention vs objectifs").grid_pos(at(16, 23, 8, 7))
        .description("Over the time range: median and 90th percentile of turnout, travel and call to first "
                     "arrival, against the targets (variables turnout_target_s, travel_target_s, "
                     "arrival_target_s; set them in the URL).")
        .with_target(SQL(RESPONSE_TIMES).table())
        .override_by_name("within_target_pct", percent_cells(80, 90))
        .cell_height(common.TableCellHeight.LG))
    return d
