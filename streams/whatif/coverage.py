"""Coverage: the share of demand that free units could reach in time, averaged over the run.

Demand is the history's calls, grouped by first-due area (``sector``) at their mean location and weighted by their
number. Every ``step_s`` (5 min) of the run, a unit is free unless one of its responses is going on (from dispatch to
available again) or it is off duty (a pool's unit outside its spans on duty); an area is covered k times when at least k
free units of the type reach its point within ``limit_s`` by the median of the travel model (the type's, priority 1: an
emergency). Coverage ≥ k is the demand share of the areas covered k times, averaged over the samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.geo import haversine_m
from streams.whatif.engine import Unit
from streams.whatif.history import Call
from streams.whatif.travel import TravelModels


def demand_points(calls: Sequence[Call]) -> list[tuple[float, float, float]]:
    """(lat, lon, calls) per first-due area, at the mean location of its calls."""
    acc: dict[str, list[float]] = {}
    for c in calls:
        a = acc.setdefault(c.sector, [0.0, 0.0, 0.0])
        a[0] += c.lat
        a[1] += c.lon
        a[2] += 1
    return [(lat / n, lon / n, n) for _, (lat, lon, n) in sorted(acc.items())]


def coverage(run_calls: Sequence[Call], fleet: Mapping[str, Unit], models: TravelModels,
             points: Sequence[tuple[float, float, float]], vehicle_type: str, start: float, end: float,
             limit_s: float = 480.0, step_s: float = 300.0) -> tuple[float, float]:
    """(coverage ≥ 1, coverage ≥ 2) in % for ``vehicle_type`` over [start, end)."""
    units = sorted((u for u in fleet.values() if u.vehicle_type == vehicle_type), key=lambda u: u.unit_id)
    if not units or not points:
        return 0.0, 0.0
    model = models.get(vehicle_type, 1)
    reach = np.array([[model.median_s(haversine_m(u.lat, u.lon, lat, lon)) <= limit_s for lat, lon, _ in points]
                      for u in units], dtype=np.int32)
    weights = np.array([n for *_, n in points])
    samples = np.arange(start, end, step_s)
    free = np.ones((len(samples), len(units)), dtype=np.int32)
    index = {u.unit_id: i for i, u in enumerate(units)}
    for i, u in enumerate(units):
        if u.on_duty:  # off duty outside its spans (streams/whatif/bases.py)
            free[:, i] = 0
            for a, b in u.on_duty:
                free[(samples >= a) & (samples < b), i] = 1
    for c in run_calls:
        for r in c.responses:
            i = index.get(r.unit)
            if i is None:
                continue
            stop = r.available if r.available is not None else end
            free[(samples >= r.dispatched) & (samples < stop), i] = 0
    counts = free @ reach  # samples x areas: free units reaching each area in time
    total = weights.sum() * len(samples)
    return (100.0 * float(((counts >= 1) * weights).sum()) / total,
            100.0 * float(((counts >= 2) * weights).sum()) / total)
