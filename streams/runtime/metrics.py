"""Prometheus metrics of a worker (served over HTTP by ``vigie worker`` on VIGIE_METRICS_PORT)."""

from __future__ import annotations

from collections import Counter as CounterOf
from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from streams.processor import BatchResult

EVENTS_CONSUMED = Counter("vigie_events_consumed_total", "Events consumed", ["topic"])
EVENTS_INVALID = Counter("vigie_events_invalid_total", "Events sent to the dead-letter topic", ["topic"])
EVENT_OUTCOMES = Counter(
    "vigie_event_outcomes_total", "Valid events by effect on state (applied/duplicate/stale)", ["topic", "outcome"]
)
LATE_CHANGES = Counter("vigie_late_changes_total", "Changes older than their already-emitted window", ["topic"])
ROWS_WRITTEN = Counter("vigie_rows_written_total", "Rows written to ClickHouse", ["table"])
BATCH_SIZE = Histogram(
    "vigie_batch_size_events", "Events per processed batch", ["topic"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
FLUSH_SECONDS = Histogram(
    "vigie_sink_flush_seconds", "Time to store one table's rows of a batch", ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OFFSET_JUMPS = Counter(
    "vigie_offset_jumps_total",
    "Records delivered out of offset order (re-reads, or skipped records: the worker then restarts)", ["topic"])
SINK_BLOCKED = Gauge("vigie_sink_blocked_seconds",
                     "How long this worker's ClickHouse write has been retrying (0: not blocked)")
SINK_ERRORS = Counter("vigie_sink_errors_total", "Failed ClickHouse writes (each is retried)", ["table"])
FRESHNESS = Gauge("vigie_freshness_seconds", "Now minus the newest event time of the last stored batch", ["topic"])
CONSUMER_LAG = Gauge("vigie_consumer_lag_messages", "High watermark minus next offset to process",
                     ["topic", "partition"])
STATE_ENTRIES = Gauge("vigie_state_entries", "Entries held in a state table by this worker", ["table"])
STATE_ITEMS = Gauge("vigie_state_items", "What a processor's state holds inside its entries (people, timeline "
                    "entries, ...), counted at each eviction", ["processor", "kind"])


def observe_batch(main_topic: str, records: Sequence[tuple[str, int, int]], result: BatchResult,
                  highwater: Callable[[str, int], int | None], now: float) -> None:
    """A stored batch's metrics. ``records``: (topic, partition, offset) in delivery order. Outcomes and late
    changes are the processor's (labelled with its first topic); consumption, freshness and lag per topic."""
    last: dict[tuple[str, int], int] = {}
    per_topic: CounterOf[str] = CounterOf()
    for topic, p, offset in records:
        last[(topic, p)] = offset
        per_topic[topic] += 1
    for topic, n in per_topic.items():
        EVENTS_CONSUMED.labels(topic).inc(n)
        BATCH_SIZE.labels(topic).observe(n)
    for topic, n in CounterOf(dl.record.topic for dl in result.dead_letters).items():
        EVENTS_INVALID.labels(topic).inc(n)
    for outcome, n in result.outcomes.items():
        EVENT_OUTCOMES.labels(main_topic, outcome).inc(n)
    if result.late:
        LATE_CHANGES.labels(main_topic).inc(result.late)
    for topic, newest in result.newest_by_topic.items():
        FRESHNESS.labels(topic).set(now - newest)
    for (topic, p), off in last.items():
        hw = highwater(topic, p)
        if hw is not None:
            CONSUMER_LAG.labels(topic, str(p)).set(max(0, hw - off - 1))

