"""« Détail centre et groupement »: one station or area in depth. Every panel honours the area, station
and vehicle-type variables (multi-select with All) and the time range where it shows history."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from grafana.common import (
    AREA_VARIABLE_SQL,
    AVAILABILITY_TRACKED,
    RUN,
    at,
    availability_variable,
    available_trend_sql,
    engagement_partitions,
    in_selected,
    legend_bottom,
    query_variable,
    run_variable,
    staff_pivot,
    staffed_trend_sql,
)
from grafana.datasources import SQL

UID = "vigie-station-detail"


def scope(station_column: str) -> str:
    """The filter every panel applies: area, station, vehicle type (each 1=1 when All is selected)."""
    return f"{station_scope(station_column)} AND {in_selected('vehicle_type', 'vehicle_type')}"


def station_scope(station_column: str) -> str:
    """The area and station part of :func:`scope`, for tables without a vehicle type (staff)."""
    return f"{in_selected('area', 'area')} AND {in_selected(station_column, 'station')}"


STATION_VARIABLE_SQL = (f"SELECT DISTINCT home_station FROM {RUN}.vehicle_state "
                        f"WHERE {in_selected('area', 'area')} ORDER BY home_station")
TYPE_VARIABLE_SQL = f"SELECT DISTINCT vehicle_type FROM {RUN}.vehicle_state ORDER BY vehicle_type"

CAPACITY_NOW = f"""
SELECT home_station AS station, area, vehicle_type,
       if({AVAILABILITY_TRACKED}, countIf(category = 'available'), NULL) AS available,
       countIf(category = 'engaged') AS engaged,
       countIf(category = 'out_of_service') AS out_of_service
FROM {RUN}.vehicle_state FINAL
WHERE {scope('home_station')}
GROUP BY home_station, area, vehicle_type
ORDER BY station, vehicle_type"""

AVAILABLE_TREND = available_trend_sql(scope('station_id'))

STAFFED_NOW = f"""
SELECT station_id AS station, area, vehicle_type, available, staffed, uncrewed
FROM {RUN}.station_capacity FINAL
WHERE crew_tracked = 1 AND {scope('station_id')} AND {AVAILABILITY_TRACKED}
ORDER BY station, vehicle_type"""

STAFFED_TREND = staffed_trend_sql(scope('station_id'))

STAFF_NOW = f"""
SELECT station_id AS station, area, {staff_pivot('available')}
FROM {RUN}.station_staff FINAL
WHERE {station_scope('station_id')}
GROUP BY station_id, area
ORDER BY station"""

# the minutes summed as whole millionths (exact, in any order: a float sum's order moved a rounding from one engine
# to the other)
ENGAGED_HOURS_PER_HOUR = f"""
SELECT toStartOfHour(window_start) AS t, vehicle_type,
       round(sum(round(engaged_vehicle_minutes * 1000000)) / 60000000, 2) AS vehicle_hours
FROM {RUN}.station_windows FINAL
WHERE $__timeFilter(window_start) AND {scope('station_id')}
GROUP BY t, vehicle_type
ORDER BY t, vehicle_type"""

INTERVENTIONS_SERVED_PER_HOUR = f"""
SELECT toStartOfHour(dispatched_at) AS t, uniqExact(intervention_id) AS interventions
FROM {RUN}.engagements FINAL
WHERE $__timeFilter(dispatched_at) AND {engagement_partitions()} AND {scope('home_station')}
GROUP BY t
ORDER BY t"""

RESPONSE_PER_STATION = f"""
SELECT home_station AS station, count() AS engagements,
       quantileExactIf(0.5)(turnout_s, turnout_s >= 0) AS turnout_p50_s,
       quantileExactIf(0.9)(turnout_s, turnout_s >= 0) AS turnout_p90_s,
       quantileExactIf(0.5)(travel_s, travel_s >= 0) AS travel_p50_s,
       quantileExactIf(0.9)(travel_s, travel_s >= 0) AS travel_p90_s
FROM {RUN}.engagements FINAL
WHERE $__timeFilter(dispatched_at) AND {engagement_partitions()} AND {scope('home_station')}
GROUP BY home_station
ORDER BY station"""

RECENT_ENGAGEMENTS = f"""
SELECT dispatched_at, vehicle_id, vehicle_type, home_station AS station, intervention_id,
       turnout_s, travel_s, if(released_at > toDateTime(0), toString(released_at), 'engaged') AS released
FROM {RUN}.engagements FINAL
WHERE $__timeFilter(dispatched_at) AND {engagement_partitions()} AND {scope('home_station')}
ORDER BY dispatched_at DESC, vehicle_id
LIMIT 200"""


def build() -> dash_b.Dashboard:
    d = (dash_b.Dashboard("Détail centre et groupement").uid(UID).tags(["vigie"])
         .description("One area or station in depth: capacity now, availability over time, activity, response times.")
         .refresh("30s").time("now-24h", "now").timezone("browser").editable()
         .with_variable(run_variable())
         .with_variable(availability_variable())
         .with_variable(query_variable("area", "Groupement / area", AREA_VARIABLE_SQL))
         .with_variable(query_variable("station", "Centre / station", STATION_VARIABLE_SQL))
         .with_variable(query_variable("vehicle_type", "Type", TYPE_VARIABLE_SQL)))
    d = d.with_panel(
        table.Panel().title("Capacité actuelle par centre et type${availability}").grid_pos(at(0, 0, 12, 10))
        .description("Vehicles available / engaged / out of service now, per station and type.")
        .with_target(SQL(CAPACITY_NOW).table()).filterable(True)
        .override_by_name("available", [
            dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            dashboard.DynamicConfigValue(id_val="thresholds", value={"mode": "absolute", "steps": [
                {"color": "red", "value": None}, {"color": "green", "value": 1}]}),
        ]))
    d = d.with_panel(
        timeseries.Panel().title("Disponibles — tendance${availability}").grid_pos(at(12, 0, 12, 10))
        .description("Available vehicles per type over the selected stations; lowest 1-minute value per interval.")
        .with_target(SQL(AVAILABLE_TREND).time_series())
        .line_width(2).fill_opacity(10).legend(legend_bottom()).min(0).decimals(0))
    d = d.with_panel(
        barchart.Panel().title("Heures-véhicules engagées par heure").grid_pos(at(0, 10, 12, 8))
        .description("Engaged vehicle-hours in each hour, per type (from the 1-minute windows).")
        .with_target(SQL(ENGAGED_HOURS_PER_HOUR).time_series())
        .stacking(common.StackingMode.NORMAL).legend(legend_bottom()).x_tick_label_spacing(100))
    d = d.with_panel(
        timeseries.Panel().title("Interventions servies par heure").grid_pos(at(12, 10, 12, 8))
        .description("Distinct interventions that the selected stations' vehicles were dispatched to, per hour.")
        .with_target(SQL(INTERVENTIONS_SERVED_PER_HOUR).time_series())
        .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60).legend(legend_bottom()).decimals(0))
    d = d.with_panel(
        table.Panel().title("Délais par centre").grid_pos(at(0, 18, 12, 10))
        .description("Turnout (dispatched to en route) and travel (en route to on scene) per station, "
                     "median and 90th percentile over the time range.")
        .with_target(SQL(RESPONSE_PER_STATION).table()).filterable(True)
        .unit("s"))
    d = d.with_panel(
        table.Panel().title("Engagements récents").grid_pos(at(12, 18, 12, 10))
        .description("The 200 latest engagements of the selected stations and types in the time range.")
        .with_target(SQL(RECENT_ENGAGEMENTS).table()).filterable(True))
    d = d.with_panel(
        table.Panel().title("Capacité armée par centre et type${availability}").grid_pos(at(0, 28, 8, 10))
        .description("Now, at stations that report crews: vehicles available, how many the available qualified "
                     "staff can crew (crewing rule, streams/crewing.py), and how many cannot leave for lack of crew.")
        .with_target(SQL(STAFFED_NOW).table()).filterable(True).no_value("Équipages non suivis")
        .override_by_name("uncrewed", [
            dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
            dashboard.DynamicConfigValue(id_val="thresholds", value={"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "orange", "value": 1}]}),
        ]))
    d = d.with_panel(
        timeseries.Panel().title("Armables — tendance${availability}").grid_pos(at(8, 28, 8, 10))
        .description("Vehicles that could be crewed per type over the selected stations that report crews; "
                     "lowest 1-minute value per interval (each minute's own minimum).")
        .with_target(SQL(STAFFED_TREND).time_series())
        .line_width(2).fill_opacity(10).legend(legend_bottom()).min(0).decimals(0))
    d = d.with_panel(
        table.Panel().title("Personnel disponible par centre").grid_pos(at(16, 28, 8, 10))
        .description("Now, per station: firefighters on duty and free to leave, by qualification (a person "
                     "counts under each qualification held). The vehicle type filter does not apply.")
        .with_target(SQL(STAFF_NOW).table()).filterable(True).no_value("Équipages non suivis"))
    return d
