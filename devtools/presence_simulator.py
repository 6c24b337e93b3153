"""Simulated population present per sector (hourly counts, as a mobile operator delivers them), for `make run` and
the tests. Per sector: its residents (reference ``sector_residents.csv``) x a profile of the hour of the week
(business sectors fill up on weekdays, residential ones empty; Paris local time) x 3 % noise, tourists x 3 in July
and August, plus *injected events*, the tests' ground truth: a match at a stadium (+40,000 for 4 h), an evacuation
(-60 % for 6 h). Counts are delivered 1 to 3 hours after their period; 3 % are delivered again up to a day later,
corrected by up to 2 %; 0.5 % are suppressed (withheld by the operator). For `make run`, the feed starts with its
last four weeks (an operator's backfill), so the live picture has a usual from the start."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from schemas.presence import PresenceEvent, Segment
from schemas.reference import Reference

TOPIC = "population-presence"
SOURCE = "sim-flux"
PERIOD_S = 3600
BACKFILL_WEEKS = 4
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Injected:
    """An event the simulator adds to a sector's count: ``add`` people and x ``factor``, from ``start`` to ``end``."""

    sector_id: str
    start: float
    end: float
    factor: float = 1.0
    add: float = 0.0

    def applies(self, t: float) -> bool:
        return self.start <= t < self.end


@lru_cache(maxsize=4096)
def _local_hour(p: float) -> tuple[float, bool]:
    """At ``p`` (Paris time): how much of a working day it is (0 at night, 1 from 9 to 17 on weekdays, with ramps; a
    third of that on weekends), and whether it is summer (July, August). A sector's residents present are
    1 + (its day factor - 1) x that share: business sectors fill up by day, residential ones empty."""
    local = datetime.fromtimestamp(p, PARIS)
    h = local.hour + local.minute / 60
    work = min(1.0, max(0.0, (h - 7) / 2)) * min(1.0, max(0.0, (19 - h) / 2))
    return (work * 0.3 if local.weekday() >= 5 else work), local.month in (7, 8)


def _sectors(reference: Reference) -> dict[str, int]:
    ids = sorted(reference.sectors.centroids()) or sorted(reference.residents)
    return {sid: reference.residents.get(sid, 20_000) for sid in ids}


class PresenceFeed:
    """Counts of ``sectors`` (id -> residents) with ``injected`` events; deliveries in delivery-time order."""

    def __init__(self, sectors: dict[str, int], injected: Iterable[Injected], seed: int) -> None:
        self.sectors = sectors
        self.injected: dict[str, list[Injected]] = {}
        for e in injected:
            self.injected.setdefault(e.sector_id, []).append(e)
        shape = random.Random(f"presence-shape-{seed}")
        self.day_factor = {s: shape.uniform(0.6, 1.8) for s in sectors}
        self.rng = random.Random(f"presence-{seed}")
        self.n = 0

    def count(self, sector: str, p: float) -> float:
        work, summer = _local_hour(p)
        base = self.sectors[sector] * (1.0 + (self.day_factor[sector] - 1.0) * work)
        tourists = 0.08 * base * (3.0 if summer else 1.0)
        value = (0.92 * base + tourists) * math.exp(self.rng.gauss(0, 0.03))
        for e in self.injected.get(sector, ()):
            if e.applies(p):
                value = value * e.factor + e.add
        return float(round(value))

    def deliveries(self, start: float, end: float) -> Iterator[PresenceEvent]:
        """Every hourly period from ``start`` to ``end``, delivered (event time) in order; those delivered after
        ``end`` are left out."""
        for t, n, sector, p, count, suppressed in self.raw(start, end):
            yield PresenceEvent(schema_version=1, event_id=f"pr-{n}", event_time=datetime.fromtimestamp(int(t), UTC),
                                sector_id=sector, period_start=datetime.fromtimestamp(p, UTC), period_minutes=60,
                                count=count, segment=Segment.ALL, source=SOURCE, suppressed=suppressed)

    def raw(self, start: float, end: float) -> Iterator[Delivery]:
        """What ``deliveries`` gives, as plain tuples (``Delivery``): for the tests' months of counts."""
        pending: list[Delivery] = []
        p = start - start % PERIOD_S
        while p < end:
            while pending and pending[0][0] <= p:
                yield heapq.heappop(pending)
            for sector in self.sectors:
                for d in self._delivered(sector, p):
                    heapq.heappush(pending, d)
            p += PERIOD_S
        while pending and pending[0][0] <= end:
            yield heapq.heappop(pending)

    def _delivered(self, sector: str, p: float) -> list[Delivery]:
        """Deliveries of one period (the first one, then now and then a correction)."""
        count = self.count(sector, p)
        suppressed = self.rng.random() < 0.005
        late = float(int(p + PERIOD_S + self.rng.uniform(3600, 3 * 3600)))
        out = [self._keyed(sector, p, late, None if suppressed else count, suppressed)]
        if not suppressed and self.rng.random() < 0.03:
            again = float(int(late + self.rng.uniform(600, 86400)))
            out.append(self._keyed(sector, p, again, float(round(count * self.rng.uniform(0.98, 1.02))), False))
        return out

    def _keyed(self, sector: str, p: float, t: float, count: float | None, suppressed: bool) -> Delivery:
        self.n += 1
        return (t, self.n, sector, p, count, suppressed)


#: (delivery time, number, sector, period start, count or None, suppressed): in delivery order as tuples sort
Delivery = tuple[float, int, str, float, "float | None", bool]


def stadium_and_evacuations(sectors: list[str], start: float, seconds: float, seed: int) -> list[Injected]:
    """For `make run`: a match at the stadium of the sector of station S41 (or the first) every third Saturday evening
    from the first Saturday of the run (+40,000 for 4 h; weekly, it would be the usual), and now and then an
    evacuation (-60 % for 6 h) somewhere."""
    rng = random.Random(f"presence-events-{seed}")
    stadium = "Z41" if "Z41" in sectors else sectors[0]
    out = []
    first = datetime.fromtimestamp(start, PARIS).date()
    first += timedelta(days=(5 - first.weekday()) % 7)  # the run's first Saturday
    day = datetime.fromtimestamp(start - BACKFILL_WEEKS * 7 * 86400, PARIS).replace(hour=0, minute=0, second=0)
    while day.timestamp() < start + seconds:
        if day.weekday() == 5 and (day.date() - first).days // 7 % 3 == 0:
            kick_off = day.replace(hour=19).timestamp()
            out.append(Injected(stadium, kick_off, kick_off + 4 * 3600, add=40_000))
        if rng.random() < 0.15:
            at = day.timestamp() + rng.randrange(0, 24) * 3600
            out.append(Injected(rng.choice(sectors), at, at + 6 * 3600, factor=0.4))
        day = (day + timedelta(days=1)).replace(hour=0)
    return out


def events(reference: Reference, start: datetime, seconds: float, seed: int) -> Iterator[tuple[str, str, BaseModel]]:
    """``(logical topic, key, event)`` in event-time order: the last four weeks' deliveries, then the live ones."""
    sectors = _sectors(reference)
    if not sectors:
        return
    t0 = start.timestamp()
    feed = PresenceFeed(sectors, stadium_and_evacuations(sorted(sectors), t0, seconds, seed), seed)
    for ev in feed.deliveries(t0 - BACKFILL_WEEKS * 7 * 86400, t0 + seconds):
        yield TOPIC, ev.sector_id, ev
