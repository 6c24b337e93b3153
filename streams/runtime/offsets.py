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

The consumer must not commit past a gap on its own (Faust does: see ``install_verified_gaps`` in
streams/faust_compat.py): the guard tells it which ranges it checked to be empty.

The first batch of a partition after an assignment is judged against where the group resumes (its committed
offset, or the partition's start when it has none). The check fails closed: when the broker cannot say
whether records lie in a gap (timeout, error), the worker restarts rather than apply a batch that may follow
a hole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

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


class OffsetCheckFailed(RuntimeError):
    """The broker could not tell whether records lie in a gap."""


class OffsetGuard:
    """Judges each batch before it is applied (see the module doc). ``count_between(topic, partition, start,
    end)`` asks the broker how many records lie in [start, end) (raises ``OffsetCheckFailed`` when it cannot
    tell); ``resume_at(topic, partition)`` where the group resumes a partition just assigned; ``restart()``
    re-executes the worker; ``on_jump`` counts each jump (metric); ``empty(topic, partition, start, end)`` is told
    of each range checked to hold no record (the consumer may then commit past it, and only then)."""

    def __init__(self, count_between: Callable[[str, int, int, int], Awaitable[int]],
                 restart: Callable[[], None], on_jump: Callable[[Jump], None] = lambda j: None,
                 resume_at: Callable[[str, int], Awaitable[int]] | None = None,
                 empty: Callable[[str, int, int, int], Awaitable[None]] | None = None) -> None:
        self.tracker = OffsetTracker()
        self.count_between = count_between
        self.restart = restart
        self.on_jump = on_jump
        self.resume_at = resume_at
        self.empty = empty

    async def check(self, records: Iterable[tuple[str, int, int]]) -> bool:
        """True: apply the batch; False: the worker is restarting (``restart`` was called)."""
        records = list(records)
        try:
            await self._expect_resume_points(records)
            for j in self.tracker.check(records):
                self.on_jump(j)
                if not j.forward:
                    log.warning("%s[%d] re-read from offset %d (expected %d): applied records are deduplicated",
                                j.topic, j.partition, j.got, j.expected)
                    continue
                skipped = await self.count_between(j.topic, j.partition, j.expected, j.got)
                if skipped:
                    log.error("%d records skipped on %s[%d] (offsets %d to %d): restarting the worker before "
                              "applying anything; it re-reads from the committed offsets", skipped, j.topic,
                              j.partition, j.expected, j.got - 1)
                    self.restart()
                    return False
                log.info("%s[%d]: offsets %d to %d hold no record (transaction markers or compaction)",
                         j.topic, j.partition, j.expected, j.got - 1)
                if self.empty is not None:
                    await self.empty(j.topic, j.partition, j.expected, j.got)
        except Exception as e:  # fail closed: an unverified gap may be a hole
            log.error("offset check failed (%s): restarting the worker before applying anything", e)
            self.restart()
            return False
        return True

    async def _expect_resume_points(self, records: list[tuple[str, int, int]]) -> None:
        """A partition seen for the first time since its assignment: its records must start where the group
        resumes it (the tracker then judges the first batch like any other)."""
        if self.resume_at is None:
            return
        for topic, partition, _ in records:
            tp = (topic, partition)
            if tp not in self.tracker.next:
                self.tracker.next[tp] = await self.resume_at(topic, partition)


def records_between(settings: Settings, topic: str, partition: int, start: int, end: int,
                    timeout: float = 10.0) -> int:
    """How many records the broker holds at offsets ``start`` <= offset < ``end`` on the partition; raises
    ``OffsetCheckFailed`` when it cannot tell (no answer in ``timeout``, an error other than the end)."""
    consumer = Consumer({**settings.confluent_config(), "group.id": f"{settings.app_id}-offset-check",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        found = 0
        while True:
            msg = consumer.poll(timeout)
            if msg is None:
                raise OffsetCheckFailed(f"no answer from the broker in {timeout:g}s for {topic}[{partition}]")
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return found  # the partition ends before ``end``: nothing more to count
                raise OffsetCheckFailed(f"{topic}[{partition}]: {error}")
            if msg.offset() >= end:
                return found
            found += 1
    finally:
        consumer.close()


def resume_offset(settings: Settings, topic: str, partition: int, timeout: float = 10.0) -> int:
    """Where the worker's group resumes a partition: its committed offset, else the partition's first offset
    (the group reads from the earliest). Raises ``OffsetCheckFailed`` when the broker does not answer."""
    consumer = Consumer({**settings.confluent_config(), "group.id": settings.app_id, "enable.auto.commit": False})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=timeout)
        if tp.error is not None:
            raise OffsetCheckFailed(f"{topic}[{partition}]: {tp.error}")
        if tp.offset >= 0:
            return int(tp.offset)
        low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        return int(low)
    except KafkaException as e:
        raise OffsetCheckFailed(f"{topic}[{partition}]: {e}") from e
    finally:
        consumer.close()
