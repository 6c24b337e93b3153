"""Live move-up advice (``vigie moveup``): the DMEXCLP move (streams/whatif/moveup.py) for each unit type on the live
picture, from what ClickHouse holds — the free units (their home station's place), the demand (each sector's
interventions of the last weeks at their mean location), the type's share engaged over the last 24 h (q) and the
travel model fitted on the last weeks' trips (home station -> intervention; until ``MIN_TRIPS``, ``DEFAULT_MODEL``).
Pure: the rows in, the advice rows out (the queries are ``sinks/queries.py``'s, the loop ``vigie/moveup.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from core.geo import haversine_m
from streams.rows import MoveUpAdviceRow
from streams.whatif.moveup import assess
from streams.whatif.travel import TravelModel, TravelModels

#: the SF Fire week's engines at priority 1 (README "What-if"): the travel model until the live data has trips
DEFAULT_MODEL = TravelModel(accel=0.7, cruise=15.0, start_s=80.0, sigma=0.39)
MIN_TRIPS = 50
MAX_BUSY = 0.95  # q: a type engaged all the time would make every unit worthless to the formula (q^n = 1)


def travel_models(trips: Iterable[tuple[str, str, str, int, str, float, float, float]],
                  stations: Mapping[str, tuple[float, float]]) -> tuple[TravelModels | None, int]:
    """The models fitted on (intervention, vehicle, type, priority, home station, lat, lon, travel s) trips, and how
    many trips; None with fewer than ``MIN_TRIPS`` usable ones."""
    usable = [(vtype, int(prio), haversine_m(*stations[home], lat, lon), travel)
              for _, _, vtype, prio, home, lat, lon, travel in trips if home in stations]
    if len(usable) < MIN_TRIPS:
        return None, len(usable)
    try:
        return TravelModels.fit(usable), len(usable)
    except ValueError:  # too few trips over the clock artefacts' floor
        return None, len(usable)


def advice(clock: float, types: Sequence[str], limit_s: float, stations: Mapping[str, tuple[float, float]],
           free_units: Iterable[tuple[str, str, str]], demand: Iterable[tuple[str, float, float, int]],
           trips: Iterable[tuple[str, str, str, int, str, float, float, float]], busy: Iterable[tuple[str, float]],
           version: int = 0) -> list[MoveUpAdviceRow]:
    """One row per type: its best move now (or none), with the coverage before and after; ``version``: the rows'
    (the caller's wall clock, ms)."""
    models, n_trips = travel_models(trips, stations)
    points = [(float(lat), float(lon), float(n)) for _, lat, lon, n in demand]
    shares = {vtype: min(max(float(q), 0.0), MAX_BUSY) for vtype, q in busy if q == q}  # NaN: no window
    free = list(free_units)
    rows = []
    for vtype in types:
        mine = [(vid, home, *stations[home]) for vid, t, home in sorted(free) if t == vtype and home in stations]
        model = models.get(vtype, 1) if models is not None else DEFAULT_MODEL
        q = shares.get(vtype, 0.0)
        before, move = assess(mine, stations, points, model, q, limit_s)
        rows.append(MoveUpAdviceRow(
            clock, vtype, move.unit_id if move else "", move.from_station if move else "",
            move.to_station if move else "", move.drive_s if move else 0.0, before,
            before + move.gain if move else before, len(mine), q, limit_s, n_trips if models is not None else 0,
            version))
    return rows
