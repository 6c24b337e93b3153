"""« Pipeline health »: for the data engineers on call, from the workers' Prometheus metrics."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import stat, timeseries

from grafana.common import GREEN, ORANGE, RED, at, legend_bottom, thresholds
from grafana.datasources import promql

UID = "vigie-pipeline-health"
JOB = "vigie-worker"  # the scrape job name in deploy/prometheus/prometheus.yml

# (title, expression, legend, unit, position, description)
PANELS: list[tuple[str, str, str, str, tuple[int, int, int, int], str]] = [
    ("Events consumed per second", "sum by (topic) (rate(vigie_events_consumed_total[1m]))",
     "{{topic}}", "ops", (0, 4, 12, 8), "Events read from each input topic, all workers."),
    ("Consumer lag", "sum by (topic) (vigie_consumer_lag_messages)", "{{topic}}", "short", (12, 4, 12, 8),
     "Messages not yet processed per topic (high watermark minus next offset), all partitions."),
    ("Freshness", "max by (topic) (vigie_freshness_seconds)", "{{topic}}", "s", (0, 12, 12, 8),
     "Now minus the newest event time of the last stored batch: how old the wall screen's picture is."),
    ("Invalid events (dead-letter)", "sum by (topic) (increase(vigie_events_invalid_total[5m]))", "{{topic}}",
     "short", (12, 12, 12, 8), "Events rejected to the dead-letter topic over the last 5 minutes."),
    ("ClickHouse write latency p95",
     "histogram_quantile(0.95, sum by (le, table) (rate(vigie_sink_flush_seconds_bucket[5m])))", "{{table}}",
     "s", (0, 20, 12, 8), "95th percentile of one batched insert, per table."),
    ("ClickHouse write errors", "sum by (table) (increase(vigie_sink_errors_total[5m]))", "{{table}}", "short",
     (12, 20, 12, 8), "Failed inserts over the last 5 minutes (each is retried; the stream holds meanwhile)."),
    ("Rows written per second", "sum by (table) (rate(vigie_rows_written_total[1m]))", "{{table}}", "ops",
     (0, 28, 12, 8), "Rows stored in ClickHouse per table."),
    ("Event outcomes", "sum by (outcome) (rate(vigie_event_outcomes_total[5m]))", "{{outcome}}", "ops",
     (12, 28, 12, 8), "Applied, duplicate (same event id) and stale (older than the state) vehicle events."),
]

WORKERS_UP = f'count(up{{job="{JOB}"}} == 1)'
TOTAL_LAG = "sum(vigie_consumer_lag_messages)"
MAX_FRESHNESS = "max(vigie_freshness_seconds)"
SINK_BLOCKED = "max(vigie_sink_blocked_seconds)"


def build() -> dash_b.Dashboard:
    d = (dash_b.Dashboard("Vigie — pipeline health").uid(UID).tags(["vigie", "ops"])
         .description("Throughput, lag, freshness, rejects and ClickHouse writes of the Vigie workers.")
         .refresh("10s").time("now-1h", "now").timezone("browser").editable())
    d = d.with_panel(stat.Panel().title("Workers up").grid_pos(at(0, 0, 6, 4))
                     .with_target(promql(WORKERS_UP, "workers"))
                     .thresholds(thresholds((None, RED), (1, GREEN))).no_value("0"))
    d = d.with_panel(stat.Panel().title("Total lag").grid_pos(at(6, 0, 6, 4))
                     .with_target(promql(TOTAL_LAG, "lag")).unit("short")
                     .thresholds(thresholds((None, GREEN), (10_000, ORANGE), (100_000, RED))))
    d = d.with_panel(stat.Panel().title("Oldest picture").grid_pos(at(12, 0, 6, 4))
                     .with_target(promql(MAX_FRESHNESS, "freshness")).unit("s")
                     .thresholds(thresholds((None, GREEN), (10, ORANGE), (60, RED))))
    d = d.with_panel(stat.Panel().title("ClickHouse writes blocked").grid_pos(at(18, 0, 6, 4))
                     .description("How long a worker's ClickHouse write has been retrying (ClickHouse down or "
                                  "refusing): the picture is frozen meanwhile. Rows refused for what they hold "
                                  "never block: they go to the dead-letter topic.")
                     .with_target(promql(SINK_BLOCKED, "blocked")).unit("s")
                     .thresholds(thresholds((None, GREEN), (5, ORANGE), (30, RED))))
    for title, expr, legend, unit, (x, y, w, h), description in PANELS:
        d = d.with_panel(timeseries.Panel().title(title).description(description).grid_pos(at(x, y, w, h))
                         .with_target(promql(expr, legend)).unit(unit).legend(legend_bottom()).line_width(2))
    return d
