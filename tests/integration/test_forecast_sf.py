"""Forecasts on real history, with the commands a user runs: the SF 2018 six-neighbourhood file imported with
`vigie import` (sectors = neighbourhoods), stored by `vigie history` (the batch path), backtested by
`vigie forecast backtest` against the baselines (the issue's bar: `--check`), and published by
`vigie forecast predict`. The hourly counts the forecasts read are first compared with a count made here from the
CSV (plain Python, not the importer)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.settings import PROJECT_ROOT, Settings
from sinks.forecasts import hourly_counts
from tests.integration import sffd
from tests.integration.conftest import SF_2018, Stack, ch_client, new_settings, table_figures

pytestmark = pytest.mark.integration
LA = ZoneInfo("America/Los_Angeles")


def calls_per_hour() -> Counter[tuple[str, int]]:
    """(neighbourhood as an identifier, UTC hour) -> calls received, from the CSV: a call counts once, at its
    earliest received time, in the neighbourhood of that row."""
    first: dict[str, tuple[float, str]] = {}
    with gzip.open(SF_2018, "rt", newline="") as f:
        for row in csv.DictReader(f):
            t = datetime.strptime(row["Received DtTm"], "%m/%d/%y %H:%M").replace(tzinfo=LA).timestamp()
            where = re.sub(r"[^A-Za-z0-9_.:\-]+", "-", row["Neighborhooods - Analysis Boundaries"].strip())
            call = row["Call Number"]
            if call not in first or t < first[call][0]:
                first[call] = (t, where)
    return Counter((where, int(t) // 3600 * 3600) for t, where in first.values())


def vigie(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "vigie.cli", *args], env=env, cwd=PROJECT_ROOT, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, f"vigie {' '.join(args)}: rc {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def sf2018(stack: Stack, sf2018_import: Path) -> tuple[Settings, dict[str, str], Path]:
    """The year imported (sectors = neighbourhoods) and stored by the batch path (`vigie history`)."""
    s = new_settings(stack).model_copy(update={"timezone": "America/Los_Angeles", "holidays": "US-CA"})
    out = sf2018_import
    env = {**os.environ, **s.to_env(), "VIGIE_REFERENCE_DIR": str(out / "reference"),
           "VIGIE_RUN_DIR": str(out / "run-forecast")}
    vigie(env, "history", "--from-file", str(out / "events.jsonl"))
    return s, env, out


def test_a_full_speed_replay_of_the_year_gives_the_batch_paths_rows(sf2018) -> None:  # type: ignore[no-untyped-def]
    """`vigie replay start --speed 0` goes through the batch path into the run's own database: every registered
    table holds the same rows as `vigie history`'s (the time each row was written aside)."""
    s, env, out = sf2018
    shown = vigie(env, "replay", "start", "--run", "sf2018", "--events", str(out / "events.jsonl"), "--speed", "0")
    assert "396,855 events processed by the batch path" in shown.stderr
    client = ch_client(s)
    replayed = f"{s.clickhouse_database}_replay_sf2018"
    history = table_figures(client, s, s.clickhouse_database)
    assert table_figures(client, s, replayed) == history
    assert sum(n > 0 for n, _ in history.values()) >= 6
    quality = dict(client.execute(f"SELECT detail, rows FROM {replayed}.data_quality WHERE kind = 'summary'"))
    assert quality["rows read"] == 74_489


def test_every_response_of_the_year_equals_the_csv(sf2018) -> None:  # type: ignore[no-untyped-def]
    """Turnout and travel of every unit response of the year (minute resolution, Excel-style dates, both clock
    changes), stored by the batch path, against the CSV read here."""
    s, _, _ = sf2018
    _, timelines = sffd.timelines(SF_2018, sffd.MINUTES)
    want_turnout, want_travel = sffd.response_segments(timelines)
    rows = ch_client(s).execute("SELECT intervention_id, vehicle_id, turnout_s, travel_s FROM engagements FINAL")
    got_turnout = {(c, v): t for c, v, t, _ in rows if t >= 0}
    got_travel = {(c, v): t for c, v, _, t in rows if t >= 0}
    assert len(got_turnout) > 60_000 and len(got_travel) > 50_000
    assert got_turnout == pytest.approx(want_turnout)
    assert got_travel == pytest.approx(want_travel)


def test_forecasts_of_the_sf_year_beat_the_baselines_and_are_published(sf2018, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s, env, _ = sf2018
    client = ch_client(s)
    series = hourly_counts(client, s.clickhouse_database, s.timezone, s.holidays)
    stored = Counter({(name, series.grid.epoch(h)): int(series.counts[i, h]) for i, name in enumerate(series.names)
                      for h in range(series.grid.hours) if series.counts[i, h]})
    assert stored == calls_per_hour()
    assert sum(stored.values()) == 35_894

    report_file = tmp_path / "backtest.json"
    shown = vigie(env, "forecast", "backtest", "--check", "--out", str(report_file)).stdout
    report = json.loads(report_file.read_text())
    assert report["weeks"] == 8 and len(report["criteria"]) >= 11
    assert all(c["ok"] for c in report["criteria"]), shown
    assert "FAIL" not in shown and "PASS  day x sector: mae <= 0.80 x B1" in shown
    # the last origin: Christmas 2018, local midnight
    assert datetime.fromtimestamp(report["origins"][-1], UTC) == datetime(2018, 12, 25, tzinfo=LA)

    vigie(env, "forecast", "predict", "--at", "2018-12-10T00:00-08:00", "--days", "7")
    rows = client.execute(f"SELECT bin_hours, sector, toUInt32(bin_start), toUInt32(issued_at), mean, q10, q50, q80, "
                          f"q90 FROM {s.clickhouse_database}.forecasts FINAL")
    issued = int(datetime(2018, 12, 10, tzinfo=LA).timestamp())
    per_size = Counter(r[0] for r in rows)
    assert per_size == {1: 7 * 168, 3: 7 * 56, 24: 7 * 7}  # 6 neighbourhoods and all of them, 7 local days
    assert {r[3] for r in rows} == {issued} and min(r[2] for r in rows) == issued
    for size in (1, 3, 24):
        by_bin: dict[int, float] = Counter()
        for b, sector, start, _, mean, *q in rows:
            assert q == sorted(q) and q[0] >= 0
            if b == size and sector != "*":
                by_bin[start] += mean
        total = {start: mean for b, sector, start, _, mean, *_ in rows if b == size and sector == "*"}
        assert total.keys() == by_bin.keys()
        for start, mean in total.items():
            assert mean == pytest.approx(by_bin[start])
    # the 7 days add up to the weekly volume the history implies (its last 8 weeks: within 15 %)
    week = sum(r[4] for r in rows if r[0] == 24 and r[1] == "*")
    recent = sum(n for (_, t), n in calls_per_hour().items() if issued - 8 * 7 * 86400 <= t < issued) / 8
    assert abs(week - recent) / recent < 0.15
