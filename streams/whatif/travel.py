"""Travel time (en route -> on scene) as a function of the distance, fitted from the history.

The median follows Kolesar et al. (1975), as refitted by Budge, Ingolfsson and Zerom (2010): a vehicle accelerates
at ``accel`` up to a cruise speed ``cruise`` and brakes alike, so ``2 sqrt(d / accel)`` for a short trip, then
``cruise / accel + d / cruise`` once it reaches the cruise speed (beyond ``cruise² / accel``), plus a fixed
``start_s`` (leaving the station, finding the address). Around the median, a fitted model draws from the history's
own spread: the ratios of its trips' times to the median, per band of distance (bands of equal count). A lognormal
spread ``sigma`` would be too thin on both sides: a unit not at its base when sent (returning from a call, an
ambulance roaming) arrives far sooner or later than its base's distance says, and that share grows with the
distance (SF week, medics at emergencies over 4 km from their base: 14.5 % of trips under 4 min; the bands give
14.2 %, a lognormal around the same median 10.8 %). A model given by hand (no trips) keeps the lognormal.
Distances are great-circle metres (the streets' detour is absorbed by the fitted speeds)."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

MIN_GROUP_TRIPS = 50  # a unit type and priority class with fewer trips uses its type's model (or the overall one)
MIN_TRAVEL_S = 10.0  # a recorded travel shorter than this is no drive (see ``fit``): left out of the median's fit
START_GRID_S = tuple(float(x) for x in range(0, 601, 20))
BAND_TRIPS = 30  # trips per band of distance at least: a band's 90th percentile rests on 3 trips or more
MAX_BANDS = 20


@dataclass(frozen=True, slots=True)
class TravelModel:
    accel: float  # m/s²
    cruise: float  # m/s
    start_s: float
    sigma: float  # the lognormal spread: the log ratios' MAD x 1.4826
    band_edges_m: tuple[float, ...] = ()  # each band's lower distance but the first's
    band_log_ratios: tuple[tuple[float, ...], ...] = ()  # per band, its trips' log(time / median), sorted

    def median_s(self, distance_m: float) -> float:
        d = max(distance_m, 0.0)
        if d <= self.cruise ** 2 / self.accel:
            return self.start_s + 2.0 * math.sqrt(d / self.accel)
        return self.start_s + self.cruise / self.accel + d / self.cruise

    def medians_s(self, distances_m: np.ndarray) -> np.ndarray:
        """``median_s`` of many distances at once."""
        d = np.maximum(distances_m, 0.0)
        moving = np.where(d <= self.cruise ** 2 / self.accel, 2.0 * np.sqrt(d / self.accel),
                          self.cruise / self.accel + d / self.cruise)
        return self.start_s + moving

    def sample_s(self, distance_m: float, rng: random.Random) -> float:
        if not self.band_log_ratios:
            return self.median_s(distance_m) * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        ratios = self._band(distance_m)
        return self.median_s(distance_m) * math.exp(ratios[int(rng.random() * len(ratios))])

    def prob_within(self, distance_m: float, seconds: float) -> float:
        """P(travel <= seconds) at that distance."""
        if seconds <= 0:
            return 0.0
        log_ratio = math.log(seconds) - math.log(self.median_s(distance_m))
        if not self.band_log_ratios:
            return float(norm.cdf(log_ratio / self.sigma))
        ratios = self._band(distance_m)
        return bisect.bisect_right(ratios, log_ratio) / len(ratios)

    def _band(self, distance_m: float) -> tuple[float, ...]:
        """The log ratios of the fitted trips at about that distance (its band's)."""
        return self.band_log_ratios[bisect.bisect_right(self.band_edges_m, distance_m)]

    @classmethod
    def fit(cls, trips: Sequence[tuple[float, float]]) -> TravelModel:
        """Least absolute deviations on log times (a median regression: the median model) over a grid (acceleration
        0.05-4 m/s², cruise 5-30 m/s, start 0-600 s):
        ``trips`` are (distance m, travel s); those under ``MIN_TRAVEL_S`` are left out of it. The spread: the
        residuals' MAD x 1.4826 (robust: a few trips hours long, a unit that stopped on the way, do not widen every
        trip); the draws: every trip's own log ratio to the median (a travel under 1 s counted as 1 s), in up to
        ``MAX_BANDS`` bands of distance of ``BAND_TRIPS`` trips at least. The travels under ``MIN_TRAVEL_S`` are no
        drive — a unit already there (a supervisor at the scene of the call before), "on scene" pressed with "en
        route" — but they are in the records the response times are counted from, as often in a re-run (SF week:
        287 of 6,148 trips; 16 of the rescue captains' 108 at emergencies, whose median first arrival a re-run
        without them put 47 s late)."""
        every_d = np.array([x for x, _ in trips], dtype=float)
        every_t = np.array([t for _, t in trips], dtype=float)
        kept = every_t >= MIN_TRAVEL_S
        if kept.sum() < 20:
            raise ValueError(f"{kept.sum()} trips with a travel time: too few to fit a travel model (20 at least)")
        d = every_d[kept]
        logs = np.log(every_t[kept])
        best: tuple[float, TravelModel] | None = None
        for accel in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 4.0):
            for cruise in (5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0):
                short = 2.0 * np.sqrt(d / accel)
                long = cruise / accel + d / cruise
                moving = np.where(d <= cruise ** 2 / accel, short, long)
                for start in START_GRID_S:
                    sad = float(np.sum(np.abs(logs - np.log(start + moving + 1e-9))))
                    if best is None or sad < best[0]:
                        best = (sad, cls(accel, cruise, start, 1.0))
        assert best is not None
        m = best[1]
        log_ratios = np.log(np.maximum(every_t, 1.0)) - np.log(m.medians_s(every_d))
        resid = log_ratios[kept]
        edges, ratios = _bands(every_d, log_ratios)
        return cls(m.accel, m.cruise, m.start_s, float(1.4826 * np.median(np.abs(resid - np.median(resid)))),
                   edges, ratios)


def _bands(distances: np.ndarray, log_ratios: np.ndarray) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """Bands of distance of equal count (``BAND_TRIPS`` at least, ``MAX_BANDS`` at most; trips at the same distance
    in the same band): each band's lower edge but the first's, and its log ratios, sorted."""
    order = np.argsort(distances, kind="stable")
    d, r = distances[order].tolist(), log_ratios[order].tolist()
    size = max(BAND_TRIPS, -(-len(d) // MAX_BANDS))
    starts = [0]
    for i in range(1, len(d)):
        if i - starts[-1] >= size and d[i] != d[i - 1]:
            starts.append(i)
    if len(starts) > 1 and len(d) - starts[-1] < size:
        starts.pop()  # a short last band joins the one before
    ends = [*starts[1:], len(d)]
    return (tuple(d[i] for i in starts[1:]),
            tuple(tuple(sorted(r[a:b])) for a, b in zip(starts, ends, strict=True)))


def priority_class(priority: int) -> int:
    """1: an emergency (lights and siren); 2: anything else."""
    return 1 if priority <= 1 else 2


@dataclass(frozen=True)
class TravelModels:
    """One model per unit type and priority class (an ambulance answering a non-urgent call drives otherwise than an
    engine to a fire), each fitted on its own trips when it has ``MIN_GROUP_TRIPS``, else the type's, else all."""

    by_group: dict[tuple[str, int], TravelModel]
    by_type: dict[str, TravelModel]
    overall: TravelModel

    def get(self, vehicle_type: str, priority: int) -> TravelModel:
        return (self.by_group.get((vehicle_type, priority_class(priority))) or self.by_type.get(vehicle_type)
                or self.overall)

    @classmethod
    def fit(cls, trips: Sequence[tuple[str, int, float, float]]) -> TravelModels:
        """``trips``: (unit type, call priority, distance m, travel s)."""
        groups: dict[tuple[str, int], list[tuple[float, float]]] = {}
        types: dict[str, list[tuple[float, float]]] = {}
        for vtype, priority, d, t in trips:
            groups.setdefault((vtype, priority_class(priority)), []).append((d, t))
            types.setdefault(vtype, []).append((d, t))
        return cls({k: TravelModel.fit(v) for k, v in sorted(groups.items()) if len(v) >= MIN_GROUP_TRIPS},
                   {k: TravelModel.fit(v) for k, v in sorted(types.items()) if len(v) >= MIN_GROUP_TRIPS},
                   TravelModel.fit([(d, t) for _, _, d, t in trips]))
