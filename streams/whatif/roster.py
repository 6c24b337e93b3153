"""Who was on duty at each station, from a history's crew records (``crew-status``), and when a station's staff can
crew one more of its units (a scenario's ``crews = "history"``).

A person counts at their station while ``available`` or ``assigned`` (the history's assignments are replaced by the
re-run's: a unit out in the re-run holds a crew until it is free again), not while ``unavailable`` or
``off_duty``. A station absent from the records is not limited (its crews are unknown). The crewing rule is
Vigie's own (``streams/crewing.py``: the reference's seats per vehicle type, exact feasibility)."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from streams.crewing import QUAL_BIT, Crewing

CREWING_STATUSES = frozenset({"available", "assigned"})
_BIT_OF = {q.value: bit for q, bit in QUAL_BIT.items()}

#: staff on duty and able to crew, as (profile mask, people) pairs
Staff = tuple[tuple[int, int], ...]
NO_STAFF: Mapping[int, int] = {}  # before a station's first record (one object: snapshots are told apart by id)
#: a crew-status event as the roster needs it: (time, event id, person, station, profile mask if able to crew else 0)
CrewRecord = tuple[float, str, str, str, int]


def record_of(ev: dict[str, Any]) -> CrewRecord:
    mask = 0
    if ev["status"] in CREWING_STATUSES:
        for q in ev["qualifications"]:
            mask |= _BIT_OF.get(q, 0)  # a qualification the rule does not know fills no seat
    return (datetime.fromisoformat(ev["event_time"]).timestamp(), ev["event_id"], ev["person_id"], ev["station_id"],
            mask)


class Roster:
    """Each station's staff able to crew after each change, and the crewing rule."""

    def __init__(self, changes: Mapping[str, list[tuple[float, Staff]]], crewing: Crewing) -> None:
        self.crewing = crewing
        self.times = {s: [t for t, _ in c] for s, c in changes.items()}
        self.staff = {s: [dict(x) for _, x in c] for s, c in changes.items()}

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]], crewing: Crewing) -> Roster | None:
        """``crew-status`` events in any order (the newest per person wins, by time then event id); None without
        any."""
        return cls.from_records(map(record_of, events), crewing)

    @classmethod
    def from_records(cls, records: Iterable[CrewRecord], crewing: Crewing) -> Roster | None:
        """As :meth:`from_events`, from the events' :func:`record_of` (what a long history keeps in memory)."""
        ordered = sorted(records)
        if not ordered:
            return None
        where: dict[str, tuple[str, int]] = {}  # person -> (station, profile mask if able to crew, else 0)
        counts: dict[str, Counter[int]] = {}
        changes: dict[str, list[tuple[float, Staff]]] = {}
        for t, _, person, station, mask in ordered:
            before = where.get(person)
            where[person] = (station, mask)
            touched = {station} | ({before[0]} if before else set())
            if before and before[1]:
                counts[before[0]][before[1]] -= 1
            if mask:
                counts.setdefault(station, Counter())[mask] += 1
            for st in touched:
                staff = tuple(sorted((m, n) for m, n in counts.get(st, Counter()).items() if n > 0))
                log = changes.setdefault(st, [])
                if log and log[-1][0] == t:
                    log.pop()  # several records at one instant: the state after the last
                if not log or log[-1][1] != staff:
                    log.append((t, staff))
        return cls(changes, crewing)

    def staff_at(self, station: str, t: float) -> Mapping[int, int] | None:
        """The station's staff able to crew at ``t`` (people per profile mask); None for a station the records do not
        know."""
        times = self.times.get(station)
        if times is None:
            return None
        i = bisect.bisect_right(times, t) - 1
        return self.staff[station][i] if i >= 0 else NO_STAFF

    def next_change(self, station: str, t: float) -> float:
        """The station's first change after ``t`` (inf: none)."""
        times = self.times.get(station, [])
        i = bisect.bisect_right(times, t)
        return times[i] if i < len(times) else math.inf
