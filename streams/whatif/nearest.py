"""Each call's nearest units of a type by median travel, computed for many calls at once (a year of calls asks a
million rankings: one by one, numpy's per-call overhead and sorting every unit dominate a re-run).

For each (call, unit type) the engine needs the units in order of median travel, then id — but almost always only
its first idle one, among the first few. So a ranking is kept as its prefix: the units at most as far as the
``TOP_K``-th nearest (ties included, so no unit outside it ranks before any inside — a median grows with the
distance), sorted; the engine asks for the whole ranking (:func:`full_ranking`) only when every unit of the prefix
is busy."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from core.geo import haversine_m_many, haversine_m_pairs, unit_vectors
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
    it is the whole ranking. The nearest units by a matrix product of unit vectors (the cosine of the angle orders
    distances; units at one place tie exactly, and all tied with the ``k``-th are kept), then their medians by
    ``haversine_m`` and the ranking's order (median, id)."""
    if len(ids) <= k:
        return [(full_ranking(c, ids, lats, lons, model), True) for c in calls]
    units = unit_vectors(lats, lons)
    id_rank = np.argsort(np.argsort(np.array(ids, dtype=object), kind="stable"), kind="stable")  # ids' order
    out: list[tuple[Ranked, bool]] = []
    for start in range(0, len(calls), CHUNK):
        part = calls[start:start + CHUNK]
        clat, clon = np.array([c.lat for c in part]), np.array([c.lon for c in part])
        closeness = unit_vectors(clat, clon) @ units.T
        kth = -np.partition(-closeness, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(closeness >= kth[:, None])
        medians = model.medians_s(haversine_m_pairs(clat[rows], clon[rows], lats[cols], lons[cols]))
        order = np.lexsort((id_rank[cols], medians, rows))  # per call (rows ascending): median, then id
        ranked = list(zip(medians[order].tolist(), [ids[c] for c in cols[order].tolist()], strict=True))
        bounds = np.searchsorted(rows, np.arange(len(part) + 1)).tolist()
        out += [(ranked[lo:hi], hi - lo == len(ids)) for lo, hi in pairwise(bounds)]
    return out
