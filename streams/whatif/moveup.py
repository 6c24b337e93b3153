"""Move-up advice: which free unit to move to which station to raise the expected coverage of demand (DMEXCLP,
Jagtenberg, Bhulai and van der Mei 2015, greedy on one move).

Each demand point (an area's calls, weighted by their number) is covered by the free units of the type that reach it
within ``limit_s`` by the median travel (priority 1). A unit is busy with probability ``q`` (the type's share of
time engaged); a point covered by n free units is then served in time with probability 1 - q^n, and the expected
coverage is the weighted mean of that over the points. The advice is the one move (a free unit from where it waits
to another station) that raises it most, with the gain and the drive time; none when no move gains ``min_gain``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.geo import haversine_m, haversine_m_many
from streams.whatif.travel import TravelModel

MIN_GAIN = 0.001  # a move must raise the expected coverage by 0.1 point at least


@dataclass(frozen=True, slots=True)
class MoveUp:
    unit_id: str
    from_station: str
    to_station: str
    gain: float  # expected coverage, in share of demand (0.02: two points)
    coverage_before: float
    drive_s: float  # median travel from where the unit waits to the station


def covers(lats: np.ndarray, lons: np.ndarray, points: Sequence[tuple[float, float, float]], model: TravelModel,
           limit_s: float) -> np.ndarray:
    """places x points: 1 where a unit at the place reaches the point in time."""
    out = np.zeros((len(lats), len(points)), dtype=np.int32)
    for j, (lat, lon, _) in enumerate(points):
        out[:, j] = model.medians_s(haversine_m_many(lat, lon, lats, lons)) <= limit_s
    return out


def expected_coverage(counts: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Σ w (1 - q^n) / Σ w."""
    return float((weights * (1.0 - q ** counts)).sum() / weights.sum())


def recommend(free: Sequence[tuple[str, str, float, float]], stations: Mapping[str, tuple[float, float]],
              points: Sequence[tuple[float, float, float]], model: TravelModel, q: float, limit_s: float = 480.0,
              min_gain: float = MIN_GAIN) -> MoveUp | None:
    """``free``: the type's free units as (unit id, station it waits at, lat, lon); ``points``: (lat, lon, weight)."""
    return assess(free, stations, points, model, q, limit_s, min_gain)[1]


def assess(free: Sequence[tuple[str, str, float, float]], stations: Mapping[str, tuple[float, float]],
           points: Sequence[tuple[float, float, float]], model: TravelModel, q: float, limit_s: float = 480.0,
           min_gain: float = MIN_GAIN) -> tuple[float, MoveUp | None]:
    """The expected coverage the free units give now, and the best move (``recommend``'s), if any."""
    if not free or not points:
        return 0.0, None
    weights = np.array([w for *_, w in points], dtype=float)
    unit_cover = covers(np.array([u[2] for u in free]), np.array([u[3] for u in free]), points, model, limit_s)
    counts = unit_cover.sum(axis=0)
    before = expected_coverage(counts, weights, q)
    if not stations:
        return before, None
    names = sorted(stations)
    station_cover = covers(np.array([stations[s][0] for s in names]), np.array([stations[s][1] for s in names]),
                           points, model, limit_s)
    best: tuple[float, float, str, str, int] | None = None  # (-gain, drive, unit, station, index)
    for i, (uid, at_station, lat, lon) in enumerate(free):
        without = counts - unit_cover[i]
        after = ((1.0 - q ** (without[None, :] + station_cover)) * weights).sum(axis=1) / weights.sum()
        if at_station in stations:
            after[names.index(at_station)] = -1.0  # staying is no move
        top = float(after.max())
        for k in np.flatnonzero(after >= top - 1e-9):  # this unit's best stations: the shortest drive decides
            gain = float(after[k]) - before
            drive = model.median_s(haversine_m(lat, lon, *stations[names[k]]))
            key = (-round(gain, 9), drive, uid, names[k], i)
            if best is None or key < best:
                best = key
    if best is None or -best[0] < min_gain:
        return before, None
    neg_gain, drive, uid, station, i = best
    return before, MoveUp(uid, free[i][1], station, -neg_gain, before, drive)
