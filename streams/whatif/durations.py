"""Turnout and the times after arrival, resampled from the history (a scenario's ``durations = "fitted"``).

By default a re-run keeps each replaced response's own turnout and times from arrival to available again, so paired
runs differ only by what the scenario changes. Fitted, each response draws instead:

- its **turnout** (dispatched -> en route) from the history's turnouts of its unit type in the same hour of the day
  (UTC: the hour's shift to local time is the same all year round for the grouping's purpose, not for reading it),
  pooled over the type's hours when that hour has fewer than ``MIN_SAMPLES``;
- its **times after arrival** (on scene -> transporting, -> at hospital, -> available again) together, from one
  response of the same call nature and unit type (so a transport goes with its hospital stay), pooled over the
  type's natures when that nature has fewer than ``MIN_SAMPLES``.

Empirical resampling (a bootstrap, Efron 1979): no parametric shape to get wrong; the draws come from a random stream
per (seed, call, request), the same in every scenario."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from streams.whatif.history import Call, Response

MIN_SAMPLES = 30
After = tuple[float | None, float | None, float | None]  # on scene -> transporting, at hospital, available


@dataclass(frozen=True)
class Durations:
    turnouts: dict[tuple[str, int], list[float]]  # (unit type, hour UTC) -> turnouts (s)
    type_turnouts: dict[str, list[float]]
    after: dict[tuple[str, str], list[After]]  # (nature, unit type) -> times after arrival
    type_after: dict[str, list[After]]

    @classmethod
    def fit(cls, calls: Sequence[Call]) -> Durations:
        turnouts: dict[tuple[str, int], list[float]] = {}
        after: dict[tuple[str, str], list[After]] = {}
        for c in calls:
            for r in c.responses:
                if r.turnout_s is not None and r.turnout_s >= 0:
                    turnouts.setdefault((r.vehicle_type, hour(r.dispatched)), []).append(r.turnout_s)
                if r.on_scene is not None and r.available is not None:
                    after.setdefault((c.nature, r.vehicle_type), []).append(_after(r, r.on_scene))
        type_turnouts: dict[str, list[float]] = {}
        for (vtype, _), xs in sorted(turnouts.items()):
            type_turnouts.setdefault(vtype, []).extend(xs)
        type_after: dict[str, list[After]] = {}
        for (_, vtype), xs in sorted(after.items()):
            type_after.setdefault(vtype, []).extend(xs)
        return cls({k: v for k, v in turnouts.items() if len(v) >= MIN_SAMPLES}, type_turnouts,
                   {k: v for k, v in after.items() if len(v) >= MIN_SAMPLES}, type_after)

    def redraw(self, seen: Response, nature: str, rng: random.Random) -> Response:
        """``seen`` with a turnout and times after arrival drawn (the engine then shifts them to its unit's own
        dispatch and arrival); a response that never arrived, or of a type the history has no sample of, kept."""
        if seen.on_scene is None:
            return seen
        pool = self.turnouts.get((seen.vehicle_type, hour(seen.dispatched))) or self.type_turnouts.get(
            seen.vehicle_type)
        ends = self.after.get((nature, seen.vehicle_type)) or self.type_after.get(seen.vehicle_type)
        if not pool or not ends:
            return seen
        turnout = pool[rng.randrange(len(pool))]
        transporting, hospital, available = ends[rng.randrange(len(ends))]
        at = seen.on_scene

        def shifted(x: float | None) -> float | None:
            return None if x is None else at + x
        return Response(seen.unit, seen.vehicle_type, seen.dispatched, seen.dispatched + turnout, at,
                        shifted(transporting), shifted(hospital), shifted(available))


def hour(t: float) -> int:
    """The hour of the day (UTC) of an epoch time."""
    return int(t // 3600) % 24


def _after(r: Response, arrived: float) -> After:
    return tuple(None if x is None else x - arrived  # type: ignore[return-value]
                 for x in (r.transporting, r.at_hospital, r.available))
