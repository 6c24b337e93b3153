"""« Stocks et moyens »: what is near a place — the stocks of the chosen categories within a radius of a point
(map sized by quantity available, red below the site's minimum; table nearest first) and Vigie's own available
vehicles there. The point and the radius are variables (URL ``var-lat``, ``var-lon``, ``var-radius_km``), checked
in the queries: out of range, no row, and the « Recherche » panel says so."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import geomap, stat, table
from grafana_foundation_sdk.models import common, dashboard

from grafana.common import GREEN, RED, RUN, at, in_selected, query_variable, run_variable, text_value, text_variable
from grafana.datasources import SQL
from sinks.near import MAX_RADIUS_KM, haversine_sql

UID = "vigie-stocks"

LAT = f"toFloat64OrZero({text_value('lat')})"
LON = f"toFloat64OrZero({text_value('lon')})"
RADIUS_KM = f"toFloat64OrZero({text_value('radius_km')})"
# a point and radius Vigie can search (a text that is no number reads 0: a radius of 0 is refused)
VALID = (f"({LAT} BETWEEN -90 AND 90 AND {LON} BETWEEN -180 AND 180 AND {RADIUS_KM} > 0 "
         f"AND {RADIUS_KM} <= {MAX_RADIUS_KM:g})")
DISTANCE = haversine_sql(LAT, LON, "lat", "lon")

CATEGORY_VARIABLE_SQL = f"SELECT DISTINCT item_category FROM {RUN}.stock_levels FINAL ORDER BY item_category"
SECTOR_VARIABLE_SQL = f"SELECT DISTINCT sector_id FROM {RUN}.stock_levels FINAL ORDER BY sector_id"

SEARCH = f"SELECT toUInt8({VALID}) AS valide"

_STOCK_ROWS = f"""
    SELECT site_id, site_type, item_id, item_category, unit, qty_available, qty_on_hand, qty_min, below_min,
           sector_id, lat, lon, {DISTANCE} AS d
    FROM {RUN}.stock_levels FINAL
    WHERE {VALID} AND {in_selected('item_category', 'category')} AND {in_selected('sector_id', 'sector')}"""

STOCKS_NEAR = f"""
SELECT site_id AS site, site_type AS type, item_id AS article, item_category AS categorie,
       qty_available AS disponible, unit AS unite, qty_min AS minimum,
       if(below_min = 1, 'sous le minimum', 'ok') AS niveau, sector_id AS secteur, round(d / 1000, 2) AS distance_km
FROM ({_STOCK_ROWS})
WHERE d <= {RADIUS_KM} * 1000
ORDER BY round(d, 1), site_id, item_id
LIMIT 500"""

SITES_MAP = f"""
SELECT site_id AS site, any(site_type) AS type, any(lat) AS lat, any(lon) AS lon,
       sum(qty_available) AS disponible, max(below_min) AS sous_minimum, count() AS articles,
       round(min(d) / 1000, 2) AS distance_km
FROM ({_STOCK_ROWS})
WHERE d <= {RADIUS_KM} * 1000
GROUP BY site_id
ORDER BY site_id"""

VEHICLES_NEAR = f"""
SELECT vehicle_id AS vehicule, vehicle_type AS type, home_station AS centre, area AS groupement,
       round(d / 1000, 2) AS distance_km
FROM (
    SELECT vehicle_id, vehicle_type, home_station, area, {DISTANCE} AS d
    FROM {RUN}.vehicle_state FINAL
    WHERE category = 'available' AND NOT (lat = 0 AND lon = 0) AND {VALID}
)
WHERE d <= {RADIUS_KM} * 1000
ORDER BY round(d, 1), vehicle_id
LIMIT 200"""

BELOW_MIN_PER_SECTOR = f"""
SELECT sector_id AS secteur, item_category AS categorie, count() AS sites_sous_minimum
FROM {RUN}.stock_levels FINAL
WHERE below_min = 1 AND {in_selected('item_category', 'category')} AND {in_selected('sector_id', 'sector')}
GROUP BY sector_id, item_category
ORDER BY sites_sous_minimum DESC, sector_id, item_category"""


def _sites_map() -> geomap.Panel:
    return (geomap.Panel().title("Sites dans le rayon").grid_pos(at(0, 3, 12, 14))
            .description("Each site within the radius holding the chosen categories: size by quantity available "
                         "(sum over its items of those categories, whatever their units), red when any is below the "
                         "site's minimum.")
            .with_target(SQL(SITES_MAP).table())
            .view(geomap.MapViewConfig().id("fit").lat(0).lon(0).zoom(11))
            .basemap(common_b.MapLayerOptions().type("osm-standard").name("OpenStreetMap"))
            .layers([common_b.MapLayerOptions().type("markers").name("sites").config({
                "showLegend": True,
                "style": {"size": {"field": "disponible", "min": 4, "max": 20, "fixed": 6},
                          "color": {"field": "sous_minimum"}, "opacity": 0.8,
                          "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}},
            }).location(common_b.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                        .latitude("lat").longitude("lon"))])
            .mappings([dashboard.ValueMap(options={
                "0": dashboard.ValueMappingResult(color=GREEN, text="au-dessus du minimum"),
                "1": dashboard.ValueMappingResult(color=RED, text="sous le minimum"),
            })]))


def build() -> dash_b.Dashboard:
    niveau = [dashboard.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
              dashboard.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                  "sous le minimum": {"color": RED, "index": 0}, "ok": {"color": GREEN, "index": 1}}}])]
    return (
        dash_b.Dashboard("Stocks et moyens").uid(UID).tags(["vigie"]).refresh("30s")
        .time("now-24h", "now").timezone("browser")
        .with_variable(run_variable())
        .with_variable(text_variable("lat", "Latitude", "48.8566", hidden=False))
        .with_variable(text_variable("lon", "Longitude", "2.3522", hidden=False))
        .with_variable(text_variable("radius_km", "Rayon (km)", "5", hidden=False))
        .with_variable(query_variable("category", "Catégorie", CATEGORY_VARIABLE_SQL))
        .with_variable(query_variable("sector", "Secteur", SECTOR_VARIABLE_SQL))
        .with_panel(stat.Panel().title("Recherche").grid_pos(at(0, 0, 24, 3))
                    .description("Whether the point and radius can be searched: latitude -90..90, longitude "
                                 f"-180..180, radius above 0 and at most {MAX_RADIUS_KM:g} km.")
                    .with_target(SQL(SEARCH).table())
                    .mappings([dashboard.ValueMap(options={
                        "1": dashboard.ValueMappingResult(color=GREEN, text="point et rayon valides"),
                        "0": dashboard.ValueMappingResult(
                            color=RED, text=f"invalide : latitude -90..90, longitude -180..180, "
                                            f"rayon 0..{MAX_RADIUS_KM:g} km"),
                    })]))
        .with_panel(_sites_map())
        .with_panel(table.Panel().title("Stocks dans le rayon, du plus proche au plus loin")
                    .grid_pos(at(12, 3, 12, 14))
                    .with_target(SQL(STOCKS_NEAR).table())
                    .override_by_name("niveau", niveau)
                    .no_value("Aucun stock dans le rayon"))
        .with_panel(table.Panel().title("Véhicules disponibles dans le rayon").grid_pos(at(0, 17, 12, 10))
                    .description("Available vehicles by their last known position (a vehicle that never sent one "
                                 "is left out).")
                    .with_target(SQL(VEHICLES_NEAR).table())
                    .no_value("Aucun véhicule disponible dans le rayon"))
        .with_panel(table.Panel().title("Sous le minimum, par secteur").grid_pos(at(12, 17, 12, 10))
                    .with_target(SQL(BELOW_MIN_PER_SECTOR).table())
                    .no_value("Aucun stock sous le minimum")))
