"""Population present per sector against its usual, in plain Python (no Kafka): the state of one sector's series.

A series is one (source, segment, period length) of a sector: per period, the newest delivery (an operator
re-delivers a period hours later: the newest in (delivery time, event id) wins, older ones and repeats change
nothing; a delivery may come up to a week after the series' newest period, later it is ``late``, not applied).
Each period is scored against the *usual* for its slot of the week — the same local weekday and time in
the ``weeks`` weeks before it (``PresenceRules.weeks``), leaving out suppressed periods and those that deviated
themselves — as a median and a MAD:

- ratio = present / usual; z = (present - usual) / max(1.4826 x MAD, 5 % of usual, 1) (robust z-score; the floors
  keep a flat past from making every wobble infinite);
- a period *deviates* when at least ``min_weeks`` of its slot's past weeks count, |z| >= ``z`` and the ratio is at
  least ``ratio_high`` or at most ``ratio_low``; a suppressed period never does;
- the sector is *unusual* at a period that deviates the same way as the period before it (two periods in a row).

For the alert rules (``streams/presence_alerts.py``), a series' periods are *sealed* in time order
(:meth:`Series.seal`): a period once it and every period before it have come — so the alerts never depend on the
order deliveries arrive in — and a period still missing ``lateness`` after the series' newest is given up. A
delivery for a period already sealed changes the rows, not the alerts (an alert is a notification already given).

Everything derives from the set of newest deliveries, whatever order they came in: a late delivery rescores its
period, the next one and the same slot of the following weeks, and what those change in turn. Periods older than
``weeks + 1`` weeks before the series' newest leave the state (a period a delivery may still change has its whole
past kept).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from statistics import median
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

WEEK_S = 7 * 86400
#: how far before the series' newest period a delivery is still applied
LATE_S = WEEK_S


@dataclass(frozen=True)
class PresenceRules:
    weeks: int = 4
    min_weeks: int = 3
    z: float = 4.0
    ratio_high: float = 1.3
    ratio_low: float = 0.7
    timezone: str = "Europe/Paris"


# A period's entry, one flat list: the delivery (count or None, suppressed, delivery time, event id) and its
# deviation (+1, -1, 0), which the next period and the following weeks' usual read. Past the late horizon a
# period can no longer be delivered: its delivery time and id are dropped from the stored state.
COUNT, SUPPRESSED, T, ID, DEV = range(5)


class Score(NamedTuple):
    """What a period's scoring gives (besides its deviation, kept in its entry)."""

    usual: float
    mad: float
    weeks: int
    ratio: float
    z: float
    deviation: int
    unusual: int


def series_key(source: str, segment: str, minutes: int) -> str:
    return f"{source}|{segment}|{minutes}"


@dataclass(slots=True)
class Series:
    source: str
    segment: str
    minutes: int
    periods: dict[int, list[Any]] = field(default_factory=dict)
    newest: int = 0
    evicted_to: int = 0  # periods before this have left
    sealed_to: int = 0  # the periods before this are sealed for the alerts (0: none yet)

    @property
    def key(self) -> str:
        """Its key among its sector's series."""
        return series_key(self.source, self.segment, self.minutes)

    def to_list(self) -> list[Any]:
        final = self.newest - LATE_S  # no delivery can come for these any more
        periods = [[p, e[COUNT], e[SUPPRESSED], 0, "", e[DEV]] if p < final else [p, *e]
                   for p, e in self.periods.items()]
        return [self.source, self.segment, self.minutes, self.newest, periods, self.evicted_to, self.sealed_to]

    @classmethod
    def from_list(cls, d: list[Any]) -> Series:
        sealed_to = int(d[6]) if len(d) > 6 else 0  # a state written before the alerts on presence
        return cls(d[0], d[1], int(d[2]), {int(e[0]): list(e[1:]) for e in d[4]}, int(d[3]), int(d[5]), sealed_to)

    def seal(self, lateness_s: float) -> list[int]:
        """The periods sealed now, in time order: from where sealing stopped, each period present, as long as
        every earlier one is (a period missing more than ``lateness_s`` before the newest is skipped). The first
        seal waits until the oldest period is ``lateness_s`` behind the newest (an earlier one may still come)."""
        if not self.periods:
            return []
        horizon = self.newest - lateness_s
        if not self.sealed_to:
            first = min(self.periods)
            if first > horizon:
                return []
            self.sealed_to = first
        step = self.minutes * 60
        out = []
        p = self.sealed_to
        while p <= self.newest:
            if p in self.periods:
                out.append(p)
            elif p > horizon:
                break
            p += step
        self.sealed_to = p
        return out


class Scorer:
    """Scores the periods of series under one set of rules (local weeks in the rules' time zone)."""

    def __init__(self, rules: PresenceRules) -> None:
        self.rules = rules
        ZoneInfo(rules.timezone)  # an unknown zone fails here, not at the first delivery

    def weeks_before(self, p: int) -> tuple[int, ...]:
        """The same local weekday and time 1..weeks weeks before ``p`` (a clock change keeps the local time)."""
        return _local_weeks(p, -self.rules.weeks, self.rules.timezone)

    def weeks_after(self, p: int) -> tuple[int, ...]:
        return _local_weeks(p, self.rules.weeks, self.rules.timezone)

    def apply(self, s: Series, p: int, count: float | None, suppressed: bool, t: float, event_id: str) -> str:
        """One delivery: ``applied``, ``duplicate``, ``stale`` (an older delivery of the period) or ``late``."""
        if s.newest and p < s.newest - LATE_S:
            return "late"
        old = s.periods.get(p)
        if old is not None:
            if (t, event_id) == (old[T], old[ID]):
                return "duplicate"
            if (t, event_id) < (old[T], old[ID]):
                return "stale"
        s.periods[p] = [count, suppressed, t, event_id, 0]
        s.newest = max(s.newest, p)
        return "applied"

    def rescore(self, s: Series, dirty: set[int]) -> list[tuple[int, Score]]:
        """Score the ``dirty`` periods (delivered anew) and those their change affects: the next period (« two in a
        row ») and the same slot in the following weeks (their usual), in time order, as far as deviations change.
        Every period scored, with its score, in order."""
        queue = sorted(dirty)
        seen: set[int] = set()
        out: list[tuple[int, Score]] = []
        while queue:
            p = heapq.heappop(queue)
            if p in seen or p not in s.periods:
                continue
            seen.add(p)
            entry = s.periods[p]
            before = entry[DEV]
            score = self._score(s, p, entry)
            out.append((p, score))
            if p in dirty or score.deviation != before:
                for q in (p + s.minutes * 60, *self.weeks_after(p)):
                    if q in s.periods and q not in seen:
                        heapq.heappush(queue, q)
        self.evict(s)
        return out

    def score(self, s: Series, p: int) -> Score:
        """A present period's score as the series stands."""
        return self._score(s, p, s.periods[p])

    def significant(self, s: Series, p: int, score: Score) -> bool:
        """Whether a period's distance from its usual is beyond chance (``z``, on ``min_weeks`` past weeks at least),
        whichever its ratio: what the alert rules on presence read."""
        entry = s.periods[p]
        return (entry[COUNT] is not None and not entry[SUPPRESSED] and score.weeks >= self.rules.min_weeks
                and abs(score.z) >= self.rules.z)

    def _score(self, s: Series, p: int, entry: list[Any]) -> Score:
        r = self.rules
        past = [s.periods[q][COUNT] for q in self.weeks_before(p)
                if q in s.periods and not s.periods[q][SUPPRESSED] and s.periods[q][COUNT] is not None
                and s.periods[q][DEV] == 0]
        usual = float(median(past)) if past else 0.0
        mad = float(median(abs(x - usual) for x in past)) if past else 0.0
        count = entry[COUNT]
        ratio = z = 0.0
        dev = 0
        if count is not None and not entry[SUPPRESSED] and past:
            ratio = count / usual if usual > 0 else (0.0 if count == 0 else float(count))
            z = (count - usual) / max(1.4826 * mad, 0.05 * usual, 1.0)
            if len(past) >= r.min_weeks and abs(z) >= r.z and (ratio >= r.ratio_high or ratio <= r.ratio_low):
                dev = 1 if z > 0 else -1
        entry[DEV] = dev
        prev = s.periods.get(p - s.minutes * 60)
        unusual = int(dev != 0 and prev is not None and prev[DEV] == dev)
        return Score(usual, mad, len(past), ratio, z, dev, unusual)

    def evict(self, s: Series) -> None:
        """Periods before the horizon leave, a day's worth at a time (a scan of the series per delivery would be
        most of the cost)."""
        horizon = s.newest - (self.rules.weeks + 1) * WEEK_S
        if horizon - s.evicted_to < 86400:
            return
        for p in [p for p in s.periods if p < horizon]:
            del s.periods[p]
        s.evicted_to = horizon


@lru_cache(maxsize=16384)
def _local_weeks(p: int, weeks: int, timezone: str) -> tuple[int, ...]:
    """``p`` moved by 1..|weeks| local weeks (forwards if ``weeks`` > 0): every sector's periods share these."""
    local = datetime.fromtimestamp(p, ZoneInfo(timezone))
    step = 1 if weeks > 0 else -1
    return tuple(int((local + timedelta(weeks=step * k)).timestamp()) for k in range(1, abs(weeks) + 1))


@dataclass(slots=True)
class PresenceSector:
    """One state entry: a sector's series and the version its last row carried (rows' versions only grow, so the
    newest scoring of a period wins in ClickHouse)."""

    sector_id: str
    series: dict[str, Series] = field(default_factory=dict)
    version: int = 0

    def series_of(self, source: str, segment: str, minutes: int) -> Series:
        key = series_key(source, segment, minutes)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series(source, segment, minutes)
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.sector_id, "v": self.version, "x": [x.to_list() for x in self.series.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PresenceSector:
        series = [Series.from_list(x) for x in d["x"]]
        return cls(d["s"], {x.key: x for x in series}, int(d["v"]))
