"""Records must reach the engines in offset order, without holes.

Faust can deliver records from before its seek to the committed offsets (its fetcher starts while the
worker recovers) and then jump forward over records it never delivered: seen in the worker-kill test,
where partition 0 went from offset 333 to 481 and the skipped records were committed past. The engines
would apply later events first and the skipped ones never (or too late for their windows).

:class:`OffsetTracker` watches each batch before it is applied. A step back is a re-read (harmless: the
state deduplicates); a step forward is checked at the broker: if records exist in between, they were
skipped, and the worker restarts before applying anything (it re-reads from the committed offsets, which
cannot be past the hole since the batch after it was never acknowledged). Offsets with no record in
between (transaction markers, compaction) are not a loss.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings

log = logging.getLogger("vigie.worker")


@dataclass(frozen=True)
class Jump:
    topic: str
    partition: int
    expected: int
    got: int

    @property
    def forward(self) -> bool:
        return self.got > self.expected


class OffsetTracker:
    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}

    def check(self, records: Iterable[tuple[str, int, int]]) -> list[Jump]:
        """(topic, partition, offset) of a batch, in delivery order -> the jumps in it (and remembers)."""
        jumps = []
        for topic, partition, offset in records:
            expected = self.next.get((topic, partition))
            if expected is not None and offset != expected:
                jumps.append(Jump(topic, partition, expected, offset))
            self.next[(topic, partition)] = offset + 1
        return jumps

    def forget(self, tps: Iterable[tuple[str, int]]) -> None:
        """Partitions assigned or revoked: their next delivery starts wherever the group says."""
        for tp in tps:
            self.next.pop(tp, None)


class OffsetGuard:
    """Judges each batch before it is applied (see the module doc). ``count_between(topic, partition, start,
    end)`` asks the broker how many records lie in [start, end); ``restart()`` re-executes the worker; ``on_jump``
    counts each jump (metric)."""

    def __init__(self, count_between: Callable[[str, int, int, int], Awaitable[int]],
                 restart: Callable[[], None], on_jump: Callable[[Jump], None] = lambda j: None) -> None:
        self.tracker = OffsetTracker()
        self.count_between = count_between
        self.restart = restart
        self.on_jump = on_jump

    async def check(self, records: Iterable[tuple[str, int, int]]) -> None:
        for j in self.tracker.check(records):
            self.on_jump(j)
            if not j.forward:
                log.warning("%s[%d] re-read from offset %d (expected %d): applied records are deduplicated",
                            j.topic, j.partition, j.got, j.expected)
                continue
            skipped = await self.count_between(j.topic, j.partition, j.expected, j.got)
            if skipped:
                log.error("%d records skipped on %s[%d] (offsets %d to %d): restarting the worker before applying "
                          "anything; it re-reads from the committed offsets", skipped, j.topic, j.partition,
                          j.expected, j.got - 1)
                self.restart()
                return
            log.info("%s[%d]: offsets %d to %d hold no record (transaction markers or compaction)",
                     j.topic, j.partition, j.expected, j.got - 1)


def records_between(settings: Settings, topic: str, partition: int, start: int, end: int,
                    timeout: float = 10.0) -> int:
    """How many records the broker holds at offsets ``start`` <= offset < ``end`` on the partition."""
    consumer = Consumer({**settings.confluent_config(), "group.id": f"{settings.app_id}-offset-check",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        found = 0
        while True:
            msg = consumer.poll(timeout)
            if msg is None:
                return found
            if msg.error():
                return found  # end of partition (or an error: nothing more to count)
            if msg.offset() >= end:
                return found
            found += 1
    finally:
        consumer.close()
