"""One alert's life over a measured value, in event time: hysteresis, ``for`` and ``keep_firing_for``.

The value is a step function of time (it holds from one observation to the next: an area's available VSAV,
the minutes an intervention has waited). The condition turns *on* when the value reaches ``fire_at`` and
*off* only once it is back past ``clear_at`` (hysteresis: a value hovering at the threshold does not flap).
An alert is

- **pending** from the moment the condition turns on;
- **firing** once it has stayed on for ``for_s`` (a pending alert whose condition turns off first is
  **cancelled**: nobody is notified);
- **resolved** once the condition has stayed off for ``keep_firing_for_s`` (turning on again before that keeps
  it firing, as one episode).

Every transition carries the event time it happened at, computed from the observations and the clock given
to :meth:`Alert.advance` — never from when the call is made — so a replay gives the same transitions, and a
deadline (``for``, ``keep_firing_for``) passes with no further observation as soon as the clock passes it.
Observations must come in time order (the caller feeds sealed, ordered data); an older one is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    BELOW = "below"  # on when value <= fire_at, off when value >= clear_at (capacity running out)
    ABOVE = "above"  # on when value >= fire_at, off when value <= clear_at (a wait, a surge)


class Phase(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class Transition(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    CANCELLED = "cancelled"  # was pending, the condition cleared before ``for``: never notified
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Threshold:
    direction: Direction
    fire_at: float
    clear_at: float
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0

    def __post_init__(self) -> None:
        below = self.direction is Direction.BELOW
        if (self.clear_at < self.fire_at) if below else (self.clear_at > self.fire_at):
            side = "at or above" if below else "at or below"
            raise ValueError(f"clear_at {self.clear_at:g} must be {side} fire_at {self.fire_at:g} "
                             f"for a '{self.direction}' rule (hysteresis)")
        if self.for_s < 0 or self.keep_firing_for_s < 0:
            raise ValueError("for and keep_firing_for cannot be negative")

    def turns_on(self, value: float) -> bool:
        return value <= self.fire_at if self.direction is Direction.BELOW else value >= self.fire_at

    def turns_off(self, value: float) -> bool:
        """Strictly past the clear level when it equals the fire level (else the two would overlap)."""
        if self.direction is Direction.BELOW:
            return value > self.clear_at if self.clear_at == self.fire_at else value >= self.clear_at
        return value < self.clear_at if self.clear_at == self.fire_at else value <= self.clear_at


@dataclass(frozen=True, slots=True)
class Change:
    """One transition of one alert: when (event time), to what, and the value then (the worst value of the
    episode so far for ``firing`` and ``resolved``)."""

    at: float
    transition: Transition
    value: float
    context: str | None = None  # what the caller says of its scope then (a unit's intervention), once said


class StaleObservation(ValueError):
    pass


@dataclass(slots=True)
class Alert:
    """The alert of one rule on one scope (an area and vehicle type, a unit, an intervention)."""

    threshold: Threshold
    phase: Phase = Phase.INACTIVE
    on: bool = False  # the condition, after hysteresis
    since: float = math.nan  # when ``on`` last changed
    worst: float = math.nan  # the worst value of the current episode
    clock: float = -math.inf  # the latest time advanced to
    changes: list[Change] = field(default_factory=list)  # transitions not yet taken by the caller

    def observe(self, t: float, value: float) -> None:
        """The value from ``t`` on (``t`` at or after every earlier observation and clock)."""
        if t < self.clock:
            raise StaleObservation(f"observation at {t:g} is older than the alert's clock {self.clock:g}")
        th = self.threshold
        if self.phase is Phase.INACTIVE and not self.on and not th.turns_on(value):
            self.clock = t  # nothing going on, nothing starting (most observations): no deadline to pass
            return
        self.advance(t)
        if not self.on and th.turns_on(value):
            self.on, self.since = True, t
            if self.phase is Phase.INACTIVE:
                self.worst = value
                self._to(Phase.PENDING, Change(t, Transition.PENDING, value))
        elif self.on and th.turns_off(value):
            self.on, self.since = False, t
            if self.phase is Phase.PENDING:
                self._to(Phase.INACTIVE, Change(t, Transition.CANCELLED, self.worst))
        if self.on and self.phase is not Phase.INACTIVE:
            self.worst = min(self.worst, value) if th.direction is Direction.BELOW else max(self.worst, value)
        self.advance(t)  # a zero ``for`` fires at once

    def advance(self, now: float) -> None:
        """Deadlines up to ``now`` pass (``for`` held: firing; ``keep_firing_for`` off: resolved)."""
        if now < self.clock:
            return
        self.clock = now
        th = self.threshold
        if self.phase is Phase.PENDING and self.on and now >= self.since + th.for_s:
            self._to(Phase.FIRING, Change(self.since + th.for_s, Transition.FIRING, self.worst))
        if self.phase is Phase.FIRING and not self.on and now >= self.since + th.keep_firing_for_s:
            self._to(Phase.INACTIVE, Change(self.since + th.keep_firing_for_s, Transition.RESOLVED, self.worst))

    def end(self, at: float) -> None:
        """The rule is gone (removed or changed): a pending alert is cancelled, a firing one resolved, at ``at``."""
        if self.phase is Phase.PENDING:
            self._to(Phase.INACTIVE, Change(at, Transition.CANCELLED, self.worst))
        elif self.phase is Phase.FIRING:
            self._to(Phase.INACTIVE, Change(at, Transition.RESOLVED, self.worst))

    def take(self) -> list[Change]:
        """The transitions since the last call (the caller stores and routes them)."""
        out, self.changes = self.changes, []
        return out

    def _to(self, phase: Phase, change: Change) -> None:
        self.phase = phase
        self.changes.append(change)

    def to_list(self) -> list[object]:
        """The state for a changelog (pending changes are emitted in the same batch, never kept); the unset
        times and value (NaN, -inf) as null: JSON has no such numbers."""
        return [self.phase.value, self.on, _finite(self.since), _finite(self.worst), _finite(self.clock)]

    @classmethod
    def from_list(cls, threshold: Threshold, data: list[object]) -> Alert:
        phase, on, since, worst, clock = data
        return cls(threshold, Phase(str(phase)), bool(on), _number(since, math.nan), _number(worst, math.nan),
                   _number(clock, -math.inf))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _number(x: object, unset: float) -> float:
    return unset if x is None else float(x)  # type: ignore[arg-type]


DAY_S = 86400
WEEK_S = 7 * DAY_S


@dataclass(slots=True)
class SurgeBaseline:
    """How unusual a window's count of interventions opened is, for one area: the same window of the week over
    the last ``weeks`` weeks is the usual (a week the area was not yet watched does not count; a watched window
    without any opening counts 0). The score is the count's distance above their mean in standard deviations,
    the deviation floored at the Poisson one (sqrt of the mean, at least 1): a quiet slot's one extra call is no
    surge. Fewer than ``min_weeks`` weeks of history, or a count below ``min_count``: no score (-inf).

    The counts are kept by day (``weeks`` weeks and a day at most) and stored so too: a window changes its day's
    record, not the whole history (issue #13: rewriting weeks of counts at every window made each batch of a live
    month slower and the heap larger as the history grew)."""

    window_s: int = 600
    weeks: int = 8
    min_weeks: int = 3
    first_window: float = math.inf  # the first window watched
    days: dict[int, dict[int, int]] = field(default_factory=dict)  # day (window start // DAY_S) -> start -> count
    changed: set[int] = field(default_factory=set)  # days changed (or dropped) since :meth:`take_changed`
    kept_from: int = 0  # the oldest day kept (older days were dropped)

    def add(self, window_start: float, count: int) -> None:
        """A sealed window's count (again for the same window: replaced, so a re-delivery counts once)."""
        w = int(window_start)
        self.first_window = min(self.first_window, w)
        day = w // DAY_S
        if count:
            self.days.setdefault(day, {})[w] = count
        elif w in self.days.get(day, ()):
            del self.days[day][w]
            if not self.days[day]:
                del self.days[day]
        self.changed.add(day)
        oldest = (w - self.weeks * WEEK_S) // DAY_S  # the day of the oldest window :meth:`usual` can still ask for
        if oldest > self.kept_from:  # once a day
            self.kept_from = oldest
            for gone in [d for d in self.days if d < oldest]:
                del self.days[gone]
                self.changed.add(gone)

    def usual(self, window_start: float) -> list[int]:
        """The counts of the same window in the previous weeks watched (most recent first)."""
        w = int(window_start)
        past = (w - k * WEEK_S for k in range(1, self.weeks + 1))
        return [self.days.get(p // DAY_S, {}).get(p, 0) for p in past if p >= self.first_window]

    def take_changed(self) -> tuple[list[int], list[int]]:
        """The days changed since the last call: (those held, those now empty or dropped)."""
        changed, self.changed = sorted(self.changed), set()
        return [d for d in changed if d in self.days], [d for d in changed if d not in self.days]

    def day_counts(self, day: int) -> list[list[int]]:
        """One day's record: [window start, count] pairs."""
        return [[w, c] for w, c in sorted(self.days.get(day, {}).items())]

    def to_dict(self) -> dict[str, object]:
        """The baseline's own record: its parameters and the days held (each day a record of its own)."""
        first = None if self.first_window == math.inf else self.first_window
        return {"w": self.window_s, "k": self.weeks, "m": self.min_weeks, "f": first, "d": sorted(self.days)}

    @classmethod
    def from_dict(cls, d: dict[str, object], days: dict[int, list[list[int]]] | None = None) -> SurgeBaseline:
        """Back from :meth:`to_dict` and the days' records it names (a record of before the days were stored
        apart holds every count under "c")."""
        first = d.get("f")
        base = cls(int(d["w"]), int(d["k"]), int(d["m"]),  # type: ignore[call-overload]
                   math.inf if first is None else float(first))  # type: ignore[arg-type]
        pairs = [p for chunk in (days or {}).values() for p in chunk] + list(d.get("c", ()))  # type: ignore[call-overload]
        for w, c in pairs:
            base.days.setdefault(int(w) // DAY_S, {})[int(w)] = int(c)
        return base

    def score(self, window_start: float, count: int, min_count: int) -> float:
        history = self.usual(window_start)
        if len(history) < self.min_weeks or count < min_count:
            return -math.inf
        mean = sum(history) / len(history)
        sd = math.sqrt(sum((c - mean) ** 2 for c in history) / (len(history) - 1)) if len(history) > 1 else 0.0
        return (count - mean) / max(sd, math.sqrt(max(mean, 1.0)))


@dataclass(frozen=True, slots=True)
class BaselineDay:
    """One day of a baseline as the state store holds it: read from the baseline when its record is written."""

    baseline: SurgeBaseline
    day: int

    def to_dict(self) -> list[list[int]]:
        return self.baseline.day_counts(self.day)
