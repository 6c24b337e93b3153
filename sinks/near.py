"""What is near a place: stocks of a category within a radius (or in a sector), and Vigie's own available
vehicles, sorted by distance — SQL that ClickHouse 18.16 and current ClickHouse both run.

Distances are the haversine formula written out (18.16 has no ``geoDistance``), on ``core.geo``'s sphere, so
they equal ``core.geo.haversine_m``; a bounding box on lat/lon first lets the scan skip what is obviously too
far. Results are ordered by the distance rounded to the decimetre, then by ids: the same rows in the same order
on both engines. Every value is checked here before it reaches the SQL (numbers in range, ids by the schemas'
pattern): nothing a caller passes can change the query's shape.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from core.geo import EARTH_RADIUS_M

#: the schemas' identifier pattern (``schemas.events.Identifier``)
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
MAX_RADIUS_KM = 1000.0
MAX_ROWS = 10_000


class NearError(ValueError):
    """A point, radius, category or sector a query cannot take."""


@dataclass(frozen=True)
class Around:
    """A search: within ``radius_km`` of (``lat``, ``lon``)."""

    lat: float
    lon: float
    radius_km: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise NearError(f"lat {self.lat!r}: between -90 and 90")
        if not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise NearError(f"lon {self.lon!r}: between -180 and 180")
        if not (math.isfinite(self.radius_km) and 0 < self.radius_km <= MAX_RADIUS_KM):
            raise NearError(f"radius {self.radius_km!r} km: more than 0, at most {MAX_RADIUS_KM:g}")

    def distance_sql(self, lat: str = "lat", lon: str = "lon") -> str:
        """Metres from the point to the row's (``lat``, ``lon``) columns."""
        return haversine_sql(repr(float(self.lat)), repr(float(self.lon)), lat, lon)

    def box_sql(self, lat: str = "lat", lon: str = "lon") -> str:
        """A lat/lon box holding the whole circle (a little wider: rounding never drops a row inside)."""
        dlat = math.degrees(self.radius_km * 1000 / EARTH_RADIUS_M) * 1.001 + 1e-6
        cos_lat = math.cos(math.radians(min(89.0, abs(self.lat) + dlat)))
        dlon = min(180.0, dlat / cos_lat)
        box = f"{lat} BETWEEN {self.lat - dlat!r} AND {self.lat + dlat!r}"
        if dlon >= 180.0 or abs(self.lon) + dlon > 180.0:
            return box  # the circle wraps the antimeridian or a pole: no longitude bound
        return f"{box} AND {lon} BETWEEN {self.lon - dlon!r} AND {self.lon + dlon!r}"


def haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """The great-circle distance in metres between two points given as SQL expressions (degrees)."""
    half = "pi() / 360"
    a = (f"pow(sin(({lat2} - {lat1}) * {half}), 2) + cos({lat1} * pi() / 180) * cos({lat2} * pi() / 180) * "
         f"pow(sin(({lon2} - {lon1}) * {half}), 2)")
    return f"(2 * {EARTH_RADIUS_M!r} * asin(sqrt(least(1., {a}))))"


def identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise NearError(f"{what} {value!r}: letters, digits and _ . : - only (at most 64)")
    return value


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS:
        raise NearError(f"limit {limit}: between 1 and {MAX_ROWS}")
    return limit


def _within(table: str, columns: tuple[str, ...], around: Around, where: str, ids: str, limit: int) -> str:
    """``columns`` then ``distance_m`` of the rows of ``table`` (FINAL) meeting ``where`` (the box included) and
    within the radius: nearest first (to the decimetre), then by ``ids``."""
    cols = ", ".join(columns)
    return (f"SELECT {cols}, round(d, 1) AS distance_m FROM (SELECT {cols}, {around.distance_sql()} AS d "
            f"FROM {table} FINAL WHERE {where}) WHERE d <= {around.radius_km * 1000!r} "
            f"ORDER BY distance_m, {ids} LIMIT {_limit(limit)}")


STOCK_COLUMNS = ("site_id", "site_type", "item_id", "item_category", "unit", "qty_available", "qty_on_hand",
                 "qty_min", "below_min", "sector_id", "lat", "lon", "event_time")


def stocks_near_query(db: str, around: Around, category: str | None = None, limit: int = 200) -> str:
    """Stocks within the radius, nearest first: ``STOCK_COLUMNS`` then ``distance_m`` (decimetres)."""
    where = around.box_sql()
    if category is not None:
        where += f" AND item_category = '{identifier(category, 'category')}'"
    return _within(f"{db}.stock_levels", STOCK_COLUMNS, around, where, "site_id, item_id", limit)


def stocks_in_sector_query(db: str, sector: str, category: str | None = None, around: Around | None = None,
                           limit: int = 200) -> str:
    """Stocks of a sector (``STOCK_COLUMNS``, then ``distance_m`` from ``around``'s point, or 0 without one),
    nearest first, then by site and item."""
    where = f"sector_id = '{identifier(sector, 'sector')}'"
    if category is not None:
        where += f" AND item_category = '{identifier(category, 'category')}'"
    distance = around.distance_sql() if around is not None else "0."
    cols = ", ".join(STOCK_COLUMNS)
    return (f"SELECT {cols}, round({distance}, 1) AS distance_m FROM {db}.stock_levels FINAL WHERE {where} "
            f"ORDER BY distance_m, site_id, item_id LIMIT {_limit(limit)}")


VEHICLE_COLUMNS = ("vehicle_id", "vehicle_type", "home_station", "area", "status", "lat", "lon", "event_time")


def vehicles_near_query(db: str, around: Around, vehicle_type: str | None = None, limit: int = 200) -> str:
    """Vigie's available vehicles within the radius of their last known position, nearest first
    (``VEHICLE_COLUMNS`` then ``distance_m``); a vehicle that never reported a position (0, 0) is left out."""
    where = f"category = 'available' AND NOT (lat = 0 AND lon = 0) AND {around.box_sql()}"
    if vehicle_type is not None:
        where += f" AND vehicle_type = '{identifier(vehicle_type, 'vehicle type')}'"
    return _within(f"{db}.vehicle_state", VEHICLE_COLUMNS, around, where, "vehicle_id", limit)
