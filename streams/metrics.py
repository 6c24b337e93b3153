"""Prometheus metrics of a worker (served over HTTP by ``vigie worker`` on VIGIE_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from sinks.clickhouse import SinkMetrics
from streams.watchdog import Liveness

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
SINK_ERRORS = Counter("vigie_sink_errors_total", "Failed ClickHouse writes (each is retried)", ["table"])
FRESHNESS = Gauge("vigie_freshness_seconds", "Now minus the newest event time of the last stored batch", ["topic"])
CONSUMER_LAG = Gauge("vigie_consumer_lag_messages", "High watermark minus next offset to process",
                     ["topic", "partition"])


class PrometheusSinkMetrics(SinkMetrics):
    """Sink outcomes to Prometheus; each attempt is also a sign of life for the stall watchdog."""

    def __init__(self, liveness: Liveness | None = None) -> None:
        self.liveness = liveness

    def on_written(self, table: str, rows: int, seconds: float) -> None:
        ROWS_WRITTEN.labels(table).inc(rows)
        FLUSH_SECONDS.labels(table).observe(seconds)
        if self.liveness is not None:
            self.liveness.beat()

    def on_error(self, table: str, error: BaseException) -> None:
        SINK_ERRORS.labels(table).inc()
        if self.liveness is not None:
            self.liveness.beat()
