"""A paced replay through Kafka keeps its workers' lag bounded: one month of the SF 2018 year (33,309 events)
published faster than the run's worker can follow, so the publisher must wait for it. The lag is watched
here independently (the run's consumer group commits against the partitions' high watermarks, ten times a
second), and the month's rows through broker and worker equal the batch path's rows for the same month."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, run_settings
from devtools.lag import LagWatch
from streams.registry import history_topics
from tests.integration.conftest import Stack, ch_client, new_settings, table_figures

pytestmark = pytest.mark.integration
MAX_LAG = 1000
MONTH = ("--from", "2018-01-01", "--until", "2018-02-01")


def replay(env: dict[str, str], run: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "replay", "start", "--run", run, *args], env=env,
                          cwd=PROJECT_ROOT, text=True, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_a_month_paced_through_kafka_keeps_the_lag_bounded_and_gives_the_batch_paths_rows(
        stack: Stack, sf2018_import: Path, tmp_path: Path) -> None:
    base = new_settings(stack)
    env = {**os.environ, **base.to_env(), "VIGIE_RUN_DIR": str(tmp_path)}
    events = str(sf2018_import / "events.jsonl")
    run = run_settings(base, "jan_paced")
    watch = LagWatch(run, history_topics(run).values())
    watch.start()
    try:  # the month's 31 days in 9 s of event time: faster than one worker on the local broker
        shown = replay(env, "jan_paced", "--events", events, *MONTH, "--speed", "300000", "--max-lag", str(MAX_LAG))
    finally:
        watch.stop()
    summary = re.search(r"([\d,]+) events published, processed; workers at most ([\d,]+) events behind "
                        r"\(bound ([\d,]+); waited for them (\d+) times", shown)
    assert summary, shown[-2000:]
    published, most, bound, waits = (int(g.replace(",", "")) for g in summary.groups())
    assert published == 33_309 and bound == MAX_LAG
    assert waits > 0  # the bound was reached: the publisher waited for the worker
    assert watch.samples > 20, watch.error
    # seen from outside near the bound (the workers really were behind), never over it
    assert MAX_LAG // 2 < watch.most <= MAX_LAG and most <= MAX_LAG, (watch.most, most)

    batch = replay(env, "jan_batch", "--events", events, *MONTH, "--speed", "0")
    assert "33,309 events processed by the batch path" in batch
    client = ch_client(base)
    # all but when a row was written, and where its record was read: the Kafka offset through the broker, the
    # record's position in the file on the batch path
    ignore = ("written_at", "ingested_at", "source_offset")
    paced, batch = (table_figures(client, base, f"{base.clickhouse_database}_replay_{run}", ignore)
                    for run in ("jan_paced", "jan_batch"))
    if paced != batch:  # say which rows differ, by table (and for the alerts, by rule and transition)
        both = [set(client.execute(
            f"SELECT rule, scope_key, area, station_id, subject, toUInt32(at), transition, value, message "
            f"FROM {base.clickhouse_database}_replay_{run}.alerts FINAL")) for run in ("jan_paced", "jan_batch")]
        raise AssertionError(f"{ {k: (paced[k], batch[k]) for k in paced if paced[k] != batch.get(k)} }; alerts "
                             f"paced only {sorted(both[0] - both[1])[:6]}, batch only {sorted(both[1] - both[0])[:6]}")
    assert sum(n > 0 for n, _ in paced.values()) >= 6
    assert paced["alerts"][0] > 100  # the replay's alerts (tests/integration/alert_rules.toml), as the batch path's
