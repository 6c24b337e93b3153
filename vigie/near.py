"""``vigie near``: the stocks and the available vehicles near a point (or the stocks of a sector), nearest first."""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from sinks.clickhouse import make_client
from sinks.near import Around, stocks_in_sector_query, stocks_near_query, vehicles_near_query


def render_stocks(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "no stock found"
    lines = [f"{len(rows)} stocks (distance km, site [type], item [category], available / on hand, minimum, sector)"]
    for (site, site_type, item, category, unit, available, on_hand, minimum, below, sector, _lat, _lon, _t,
         distance_m) in rows:
        flag = "  BELOW MINIMUM" if below else ""
        lines.append(f"{distance_m / 1000:8.2f}  {site} [{site_type}]  {item} [{category}]  {available:g} / "
                     f"{on_hand:g} {unit}  min {minimum:g}  {sector or '-'}{flag}")
    return "\n".join(lines)


def render_vehicles(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "no available vehicle with a known position in the radius"
    lines = [f"{len(rows)} available vehicles (distance km, vehicle [type], station, area, position at)"]
    for vehicle, vtype, station, area, _status, _lat, _lon, at, distance_m in rows:
        lines.append(f"{distance_m / 1000:8.2f}  {vehicle} [{vtype}]  {station}  {area}  {at:%Y-%m-%d %H:%M:%S}")
    return "\n".join(lines)


def near(settings: Settings, around: Around | None, sector: str | None = None, category: str | None = None,
         vehicle_type: str | None = None, limit: int = 50) -> str:
    """What ``vigie near`` prints: the stocks (within the radius, or of the sector: sorted by distance from the
    point if one is given), then the available vehicles within the radius (a point is needed)."""
    db = settings.clickhouse_database
    if sector is not None:
        stocks_sql = stocks_in_sector_query(db, sector, category, around, limit)
    elif around is not None:
        stocks_sql = stocks_near_query(db, around, category, limit)
    else:
        raise ValueError("give a point and a radius (--lat --lon --radius-km), or a sector (--sector)")
    client = make_client(settings, db)
    try:
        parts = [render_stocks(client.execute(stocks_sql))]
        if around is not None:
            parts.append(render_vehicles(client.execute(vehicles_near_query(db, around, vehicle_type, limit))))
        return "\n\n".join(parts)
    finally:
        client.disconnect()
