"""How far a publishing processor's partitions are known, and what it tells its readers about it.

A processor that publishes sealed steps for another (the stations and the interventions, for the alerts) sends,
per input partition, parts ``{"source": "<name>/<partition>", "until": t, ...}``: everything of that partition
older than ``t`` is in this part or an earlier one. Its reader's clock is the oldest ``until`` of the sources, so
every source must keep talking: this class holds what both publishers share —

- live, a partition with nothing new is known up to its newest event plus the time since that event came (on the
  worker's clock: :meth:`follow_clock`), so a reader's deadlines pass without a further record;
- a partition without any data, read to its end, is announced once (a part without ``until``: it holds nothing);
- a part goes out when there is something in it, when its ``until`` moved by ``CLOCK_MESSAGE_EVERY_S`` at least,
  or when the partition's being behind (records not read yet) changed: a reader must not take the silence of a
  stalled partition for the end of the input.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from streams.processor import LIVE_DATA_WITHIN_S, TimeBound

#: a partition sealed further without any change only moves its reader's clock: once per this much event time is
#: enough (a part of the batch's message; with none, no message: a record on the broker each time)
CLOCK_MESSAGE_EVERY_S = 1.0


class SealedClock:
    def __init__(self, source: str, time_bound: TimeBound) -> None:
        self.source = source  # the sources' name: "<source>/<partition>"
        self.time_bound = time_bound
        self.newest: dict[int, float] = {}  # partition -> newest event time seen
        self.newest_at: dict[int, float] = {}  # partition -> when (monotonic) its newest event time last moved
        self.clock_floor: dict[int, float] = {}  # partition -> how far its live data is known (follow_clock)
        self.told_empty: set[int] = set()  # partitions announced without data (empty_partitions)
        self.published: dict[int, float] = {}  # partition -> the ``until`` of its last part
        self.told_behind: set[int] = set()  # partitions whose last part said they have records to read

    def saw(self, partition: int, t: float, arrived: float) -> None:
        """An event of ``partition`` at ``t`` came at ``arrived`` (monotonic)."""
        if t > self.newest.get(partition, 0.0):
            self.newest[partition] = t
            self.newest_at[partition] = arrived

    def known(self, partition: int) -> float | None:
        """How far the partition's data goes: its newest event, or further live (:meth:`follow_clock`)."""
        newest = self.newest.get(partition)
        clock = self.clock_floor.get(partition)
        if clock is not None and newest is not None and clock > newest:
            return clock
        return newest

    def follow_clock(self, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]) -> None:
        """Live, a partition whose data is live (its newest event within ``LIVE_DATA_WITHIN_S`` of the worker's
        clock) and that no input holds back is known beyond its newest event by the time since that event came
        (on the worker's clock, sped up or not): nothing came meanwhile. Counted from the arrival of the newest
        event, not from the wall clock, so a feed that always arrives some seconds late stays on time. Not for
        history nor a replay of the past: their clock is their events'."""
        tb = self.time_bound
        if tb.skew_s is None:
            return
        now, wall = tb.now(), time.monotonic()
        held = {p for _, p in behind or ()}
        for p in assigned:
            newest, at = self.newest.get(p), self.newest_at.get(p)
            if newest is not None and at is not None and p not in held and now - LIVE_DATA_WITHIN_S < newest:
                self.clock_floor[p] = newest + (wall - at) * tb.speed

    def empty_partitions(self, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]) -> list[int]:
        """Live, the assigned partitions without any data, read to their end (no input holds them), not announced
        yet: their readers are told once (a part without ``until``), so that they do not wait for them."""
        if self.time_bound.skew_s is None:
            return []
        held = {p for _, p in behind or ()}
        empty = sorted(p for p in assigned if p not in self.newest and p not in held and p not in self.told_empty)
        self.told_empty.update(empty)
        return empty

    def caught_up(self, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]) -> set[int]:
        """Partitions whose last part said they were behind and that are no more: to be said."""
        held = {p for _, p in behind or ()}
        return {p for p in self.told_behind if p in assigned and p not in held}

    def worth_a_part(self, partition: int, until: float, changes: bool, held: Collection[int]) -> bool:
        return (changes or until >= self.published.get(partition, float("-inf")) + CLOCK_MESSAGE_EVERY_S
                or (partition in held) != (partition in self.told_behind))

    def part(self, partition: int, until: float | None, held: Collection[int]) -> dict[str, Any]:
        """A part's head (its steps are added by the caller), remembered as told."""
        if until is not None:
            self.published[partition] = until
        part: dict[str, Any] = {"source": f"{self.source}/{partition}", "until": until}
        if partition in held:
            part["behind"] = True
            self.told_behind.add(partition)
        else:
            self.told_behind.discard(partition)
        return part
