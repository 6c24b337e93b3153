"""What a run gives, per unit type and priority: call -> first arrival (median, p90, share within the target),
turnout and travel (medians), the units' utilisation, the calls that waited for a free unit and their total wait.
Quantiles interpolate linearly between order statistics (numpy's default)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streams.whatif.history import Call

ALL = "*"


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between order statistics; NaN when empty."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class ArrivalKpi:
    vehicle_type: str  # ALL: the first unit of any type
    priority: int | None  # None: every priority
    responses: int  # calls where a unit of the type arrived
    p50_s: float
    p90_s: float
    within_pct: float  # of those arrivals, within the priority's target
    turnout_p50_s: float
    travel_p50_s: float


@dataclass(frozen=True, slots=True)
class RunKpis:
    arrivals: tuple[ArrivalKpi, ...]
    utilisation: Mapping[str, float]  # unit -> share of the horizon engaged
    calls_waited: int
    total_wait_s: float

    def arrival(self, vehicle_type: str = ALL, priority: int | None = None) -> ArrivalKpi | None:
        return next((a for a in self.arrivals if (a.vehicle_type, a.priority) == (vehicle_type, priority)), None)


def kpis(calls: Iterable[Call], targets: Mapping[int, float], start: float, end: float) -> RunKpis:
    """The run's figures over its calls; ``targets``: priority -> call-to-arrival target (s; a priority without
    one uses the largest); utilisation over [start, end)."""
    arrivals: dict[tuple[str, int], list[float]] = defaultdict(list)
    within: dict[tuple[str, int], int] = defaultdict(int)
    turnout: dict[str, list[float]] = defaultdict(list)
    travel: dict[str, list[float]] = defaultdict(list)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)  # unit -> its responses' busy spans
    waited, wait_s = 0, 0.0
    default_target = max(targets.values()) if targets else math.inf
    for call in calls:
        first: dict[str, float] = {}
        for r in call.responses:
            if r.on_scene is not None:
                for key in (r.vehicle_type, ALL):
                    first[key] = min(first.get(key, math.inf), r.on_scene - call.opened)
            for key in (r.vehicle_type, ALL):
                if r.turnout_s is not None:
                    turnout[key].append(r.turnout_s)
                if r.travel_s is not None:
                    travel[key].append(r.travel_s)
            spans[r.unit].append((max(start, r.dispatched), min(end, r.available if r.available is not None else end)))
        target = targets.get(call.priority, default_target)
        for vtype, s in first.items():
            arrivals[(vtype, call.priority)].append(s)
            within[(vtype, call.priority)] += s <= target
        if any(r.waited_s > 0 for r in call.responses):
            waited += 1
            wait_s += sum(r.waited_s for r in call.responses)
    rows = []
    for vtype in sorted({v for v, _ in arrivals}):
        groups = [(p, arrivals[(vtype, p)], within[(vtype, p)]) for p in sorted({p for v, p in arrivals if v == vtype})]
        everything = [s for _, xs, _ in groups for s in xs]
        for priority, xs, ok in [*groups, (None, everything, sum(n for _, _, n in groups))]:
            rows.append(ArrivalKpi(vtype, priority, len(xs), quantile(xs, 0.5), quantile(xs, 0.9),
                                   100.0 * ok / len(xs), quantile(turnout.get(vtype, []), 0.5),
                                   quantile(travel.get(vtype, []), 0.5)))
    horizon = max(end - start, 1.0)
    return RunKpis(tuple(rows), {u: _covered(xs) / horizon for u, xs in sorted(spans.items())}, waited, wait_s)


def _covered(spans: list[tuple[float, float]]) -> float:
    """The time the spans cover, each instant once: a history's unit sent again before it reported free (SF: 32
    responses of the week never do) is not busy twice over."""
    total, reach = 0.0, -math.inf
    for a, b in sorted(spans):
        if b > reach and b > a:
            total += b - max(a, reach)
            reach = b
    return total
