"""The watermark hold across a processor's input topics (``Processor.hold_watermark``).

Records of one partition number come from several topics read side by side (vehicles and crews of a
station), one possibly ahead of the other. A (topic, partition) is *behind* — it may still bring records
older than what was applied — while the broker's high watermark (from the last fetch) is past the next
offset to apply (unknown: nothing fetched yet), or for ``idle_s`` after it was read to its end: records
produced at the same moment on the other topic may still be on their way (a full-speed replay sends hours
of event time in a second). Traffic coming back to a partition quiet for longer than that re-arms the
wait. After it an input is idle and holds nothing back; a partition that never gave a record holds
nothing either. The engine's watermark is the oldest newest time among the inputs behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol


class ConsumerView(Protocol):
    """What the hold reads of the consumer (the live runtime adapts Faust's; tests give a plain object)."""

    def assignment(self) -> Iterable[tuple[str, int]]: ...
    def highwater(self, topic: str, partition: int) -> int | None: ...
    def committed(self, topic: str, partition: int) -> int | None: ...


class WatermarkHold:
    def __init__(self, topics: Collection[str], idle_s: float, next_offsets: dict[tuple[str, int], int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``next_offsets``: the next offset to apply per (topic, partition), kept by the offset guard."""
        self.topics = frozenset(topics)
        self.idle_s = idle_s
        self.next_offsets = next_offsets
        self.clock = clock
        self.caught_up_since: dict[tuple[str, int], float] = {}
        self.records_at: dict[int, float] = {}  # partition -> when a batch last brought records for it
        self.seen: set[tuple[str, int]] = set()  # inputs that gave a record

    def saw(self, records: Iterable[tuple[str, int]]) -> None:
        """A batch brought records of these (topic, partition) pairs."""
        now = self.clock()
        for topic, p in records:
            self.seen.add((topic, p))
            if now - self.records_at.get(p, float("-inf")) > self.idle_s:
                for t in self.topics:
                    if (t, p) in self.caught_up_since:
                        self.caught_up_since[(t, p)] = now  # traffic is back: wait again once caught up
            self.records_at[p] = now

    def behind(self, consumer: ConsumerView) -> set[tuple[str, int]]:
        now = self.clock()
        out = set()
        for key in consumer.assignment():
            if key[0] not in self.topics:
                continue
            hw = consumer.highwater(*key)
            nxt = self.next_offsets.get(key)
            if nxt is None:
                nxt = consumer.committed(*key) or 0  # Kafka semantics: the next offset to read
            if hw is None or nxt < hw:
                out.add(key)
                self.caught_up_since.pop(key, None)
            elif key in self.seen and now - self.caught_up_since.setdefault(key, now) < self.idle_s:
                out.add(key)
        return out
