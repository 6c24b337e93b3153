"""Watch a consumer group's lag from outside: what it has not committed of what the broker holds, on every
partition of a set of topics (a replay's, a worker's), sampled ten times a second. Used by the paced-replay
test and `vigie bench --replay-month` to check the bound a paced replay promises, independently of it."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.settings import Settings


class LagWatch(threading.Thread):
    """The largest number of records on ``topics`` not yet committed by ``settings.app_id``'s group, each sample a
    lower bound of the lag at one instant (never above it, so a sample over a bound is the bound broken)."""

    def __init__(self, settings: Settings, topics: Iterable[str], interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.partitions = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
        self.interval_s = interval_s
        self.most = 0
        self.samples = 0
        self.error = ""
        self.done = threading.Event()

    def run(self) -> None:
        s = self.settings
        consumer: Consumer | None = None
        try:
            while not self.done.wait(self.interval_s):
                consumer = consumer or Consumer({**s.confluent_config(), "group.id": s.app_id,
                                                 "enable.auto.commit": False})  # reads commits, never joins
                try:  # the ends first, then the commits: commits only move forward, so the sample is never
                    # more than the lag at the last end read (commits first would count, as lag, events the
                    # group committed while the ends were read — 2 events over the bound, once, in CI)
                    ends = [consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in self.partitions]
                    committed = consumer.committed(self.partitions, timeout=5)
                except KafkaException as e:  # topics not created yet: fresh metadata next time
                    self.error = str(e)
                    consumer.close()
                    consumer = None
                    continue
                lag = sum(max(0, end - max(c.offset, 0)) for c, end in zip(committed, ends, strict=True))
                self.most, self.samples = max(self.most, lag), self.samples + 1
        finally:
            if consumer is not None:
                consumer.close()

    def stop(self) -> None:
        self.done.set()
        self.join()
