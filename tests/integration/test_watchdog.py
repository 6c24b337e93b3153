"""The stall watchdog, on the real broker: it fires when messages wait on the worker's partitions and
nothing progresses, and never when the partitions are caught up or the worker shows progress."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from core.settings import Settings
from streams.runtime.watchdog import Liveness, StallWatchdog, waiting_messages

pytestmark = pytest.mark.integration


def _produce(s: Settings, n: int) -> None:
    p = Producer(s.confluent_config())
    for i in range(n):
        p.produce(s.topic("vehicle-status"), key=b"S01", value=b"{}", partition=i % 3)
    assert p.flush(10) == 0


def _commit_all(s: Settings) -> None:
    c = Consumer({**s.confluent_config(), "group.id": s.app_id, "enable.auto.commit": False})
    offsets = []
    for p in range(3):
        _, high = c.get_watermark_offsets(TopicPartition(s.topic("vehicle-status"), p), timeout=10)
        offsets.append(TopicPartition(s.topic("vehicle-status"), p, high))
    c.commit(offsets=offsets, asynchronous=False)
    c.close()


def _watch(s: Settings, liveness: Liveness, seconds: float, beside: Liveness | None = None) -> bool:
    """``beside``: another agent of the same worker, on the same partitions."""
    fired = threading.Event()
    tps = [(s.topic("vehicle-status"), p) for p in range(3)]
    dog = StallWatchdog(s, lambda: [(liveness, tps)] + ([(beside, tps)] if beside else []), lambda: None,
                        on_stall=fired.set)
    dog.start()
    fired.wait(seconds)
    dog.stopped.set()
    dog.join(15)
    return fired.is_set()


def test_watchdog_fires_only_on_a_real_stall(settings: Settings) -> None:
    s = settings.model_copy(update={"worker_stall_timeout_s": 3.0})
    c = Consumer({**s.confluent_config(), "group.id": s.app_id})
    assert waiting_messages(c, [(s.topic("vehicle-status"), p) for p in range(3)]) == 0
    _produce(s, 30)
    assert waiting_messages(c, [(s.topic("vehicle-status"), p) for p in range(3)]) > 0
    c.close()
    # messages waiting, no progress: fires
    assert _watch(s, Liveness(), 20)
    # messages waiting but the worker shows progress (batches stored): does not fire
    alive = Liveness()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.5):
            alive.beat()

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    assert not _watch(s, alive, 10)
    # one agent stuck while another goes on: fires (agents are watched apart)
    assert _watch(s, Liveness(), 20, beside=alive)
    stop.set()
    # no progress but its ClickHouse write retrying: blocked, not stalled (a restart would not help)
    blocked = Liveness()
    blocked.sink_blocked_since = time.monotonic()
    assert not _watch(s, blocked, 10)
    # idle but caught up (a quiet night): does not fire
    _commit_all(s)
    idle = Liveness()
    idle.last = time.monotonic() - 3600
    assert not _watch(s, idle, 10)
    # work that has just come to an agent idle for long (a worker's first records, an agent fed by another): not
    # a stall until it has waited the whole timeout (3 s; the watchdog's monotonic clock cannot count it sooner)
    _produce(s, 3)
    started = time.monotonic()
    fired = _watch(s, idle, 2)
    assert not fired and time.monotonic() - started >= 2
    assert _watch(s, idle, 20)


def test_records_between_counts_what_the_broker_holds(settings: Settings) -> None:
    from streams.runtime.offsets import records_between

    p = Producer(settings.confluent_config())
    for _ in range(10):
        p.produce(settings.topic("interventions"), key=b"k", value=b"{}", partition=1)
    assert p.flush(10) == 0
    t = settings.topic("interventions")
    assert records_between(settings, t, 1, 2, 7) == 5
    assert records_between(settings, t, 1, 8, 20) == 2  # up to the end of the partition
    assert records_between(settings, t, 1, 10, 20) == 0


def test_resume_points_and_a_broker_that_cannot_answer(settings: Settings) -> None:
    """Where the group resumes (committed offset, else the start), and the check failing closed."""
    from confluent_kafka import Consumer, TopicPartition

    from streams.runtime.offsets import OffsetCheckFailed, records_between, resume_offset

    t = settings.topic("interventions")
    p = Producer(settings.confluent_config())
    for _ in range(4):
        p.produce(t, key=b"k", value=b"{}", partition=2)
    assert p.flush(10) == 0
    assert resume_offset(settings, t, 2) == 0  # nothing committed: the group starts at the beginning
    group = Consumer({**settings.confluent_config(), "group.id": settings.app_id, "enable.auto.commit": False})
    group.commit(offsets=[TopicPartition(t, 2, 3)], asynchronous=False)
    group.close()
    assert resume_offset(settings, t, 2) == 3
    gone = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})  # nothing listens there
    with pytest.raises(OffsetCheckFailed):
        records_between(gone, t, 2, 0, 4, timeout=2.0)
