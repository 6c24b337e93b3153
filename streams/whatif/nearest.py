"""Each call's nearest units of a type by median travel, computed for many calls at once (a year of calls asks a
million rankings: one by one, numpy's per-call overhead and sorting every unit dominate a re-run).

For each (call, unit type) the engine needs the units in order of median travel, then id — but almost always only
its first idle one, among the first few. So a ranking is kept as its exact prefix: the units whose median is at
most the ``TOP_K``-th smallest (ties included, so no unit outside it ranks before any inside), sorted; the engine asks
for the whole ranking (:func:`full_ranking`) only when every unit of the prefix is busy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.geo import haversine_m_many, haversine_m_matrix
from streams.whatif.history import Call
from streams.whatif.travel import TravelModel

TOP_K = 8
CHUNK = 2048  # calls per distance matrix (CHUNK x units of the type)
Ranked = list[tuple[float, str]]  # (median travel s, unit id), in rank order


def full_ranking(call: Call, ids: Sequence[str], lats: np.ndarray, lons: np.ndarray, model: TravelModel) -> Ranked:
    medians = model.medians_s(haversine_m_many(call.lat, call.lon, lats, lons)).tolist()
    return sorted(zip(medians, ids, strict=True))


def prefixes(calls: Sequence[Call], ids: Sequence[str], lats: np.ndarray, lons: np.ndarray, model: TravelModel,
             k: int = TOP_K) -> list[tuple[Ranked, bool]]:
    """For each call: its ranking's prefix (at least ``k`` units, all of them when there are no more) and whether
    it is the whole ranking."""
    if len(ids) <= k:
        return [(full_ranking(c, ids, lats, lons, model), True) for c in calls]
    out: list[tuple[Ranked, bool]] = []
    for start in range(0, len(calls), CHUNK):
        part = calls[start:start + CHUNK]
        medians = model.medians_s(haversine_m_matrix(np.array([c.lat for c in part]), np.array([c.lon for c in part]),
                                                     lats, lons))
        kth = np.partition(medians, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(medians <= kth[:, None])
        values = medians[rows, cols].tolist()
        bounds = np.searchsorted(rows, np.arange(len(part) + 1)).tolist()
        cols_l = cols.tolist()
        for r in range(len(part)):
            lo, hi = bounds[r], bounds[r + 1]
            ranked = sorted(zip(values[lo:hi], [ids[c] for c in cols_l[lo:hi]], strict=True))
            out.append((ranked, hi - lo == len(ids)))
    return out
