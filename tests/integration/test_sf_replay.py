"""Real data: the SF Fire week (second resolution) imported with `vigie import`, replayed as fast as possible
with `vigie replay start` through the broker, a real worker and ClickHouse, then compared — for every
minute and unit type, engaged and available; per unit response, turnout and travel — with a computation
made here directly from the CSV (plain Python; the importer's code is not used)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings, run_settings
from streams.batch import partition_for  # Kafka's default partitioner
from tests.integration import sffd
from tests.integration.conftest import Stack, new_settings

pytestmark = pytest.mark.integration
SF_WEEK = PROJECT_ROOT.parent / "shared" / "data" / "sffd-calls" / "sffd_units_2016-12-31_to_2017-01-07.csv.gz"
MAPPING = PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"


def from_csv() -> tuple[dict[str, str], dict[str, list[tuple[float, str, str]]]]:
    return sffd.timelines(SF_WEEK, sffd.SECONDS)
@pytest.fixture(scope="module")
def replayed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    if not SF_WEEK.exists():
        pytest.fail(f"the SF week file is missing: {SF_WEEK}")
    base = new_settings(stack)
    out = tmp_path_factory.mktemp("sf")
    env = {**os.environ, **base.to_env(), "VIGIE_RUN_DIR": str(out / "run")}
    vigie = [sys.executable, "-m", "vigie.cli"]
    imported = subprocess.run([*vigie, "import", "--mapping", str(MAPPING), "--input", str(SF_WEEK), "--out",
                               str(out)], env=env, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert imported.returncode == 0, imported.stderr
    assert "rows read 7704, imported 7704" in imported.stdout
    replay = subprocess.run([*vigie, "replay", "start", "--run", "sfweek", "--events", str(out / "events.jsonl"),
                             "--speed", "1000000"], env=env, capture_output=True, text=True, timeout=900,
                            cwd=PROJECT_ROOT)  # through the broker and a worker (--speed 0: the batch path)
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert "events published, processed" in replay.stderr
    return run_settings(base, "sfweek", out / "reference"), out


def test_every_minute_and_unit_type_and_every_response_segment_match_the_csv(replayed) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_driver import Client

    s, _ = replayed
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=s.clickhouse_database)
    types, timelines = from_csv()
    # 1. engaged / available at the end of every minute, per unit type (summed over stations)
    events = sorted((t, i, unit, status) for unit, tl in timelines.items() for i, (t, status, _) in enumerate(tl))
    first = events[0][0]
    start = first - first % 60 + 60
    # windows are sealed per partition by its own newest event time: compare up to the slowest partition's
    newest: dict[int, float] = {}
    for t, _, unit, _ in events:
        p = partition_for(sffd.home_station(unit, types[unit]).encode(), s.topic_partitions)
        newest[p] = max(t, newest.get(p, t))
    until = min(newest.values()) - s.allowed_lateness_seconds
    until -= until % 60
    got = {(w.replace(tzinfo=UTC).timestamp(), vt): (a, e) for w, vt, a, e in ch.execute(
        "SELECT window_start, vehicle_type, sum(available), sum(engaged) FROM station_windows FINAL "
        "WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s) "
        "GROUP BY window_start, vehicle_type", {"a": int(start), "b": int(until)})}
    status: dict[str, str] = {}
    want: dict[tuple[float, str], tuple[int, int]] = {}
    i = 0
    for w in range(int(start), int(until), 60):
        while i < len(events) and events[i][0] < w + 60:  # the state at the end of the minute
            status[events[i][2]] = events[i][3]
            i += 1
        counts: dict[str, list[int]] = {vt: [0, 0] for vt in set(types.values())}
        for unit, st in status.items():
            counts[types[unit]][0 if st == "available" else 1] += 1
        for vt, (a, e) in counts.items():
            want[(float(w), vt)] = (a, e)
    assert len(want) > 10_000
    diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k, (0, 0)) != v}
    assert not diff, f"{len(diff)} minute x type differ, e.g. {sorted(diff.items())[:5]}"
    # 2. turnout (dispatched -> en route) and travel (en route -> on scene) of every response
    want_turnout, want_travel = sffd.response_segments(timelines)
    rows = ch.execute("SELECT intervention_id, vehicle_id, turnout_s, travel_s FROM engagements FINAL")
    got_turnout = {(c, v): t for c, v, t, _ in rows if t >= 0}
    got_travel = {(c, v): t for c, v, _, t in rows if t >= 0}
    assert got_turnout == pytest.approx(want_turnout) and len(got_turnout) > 7000
    assert got_travel == pytest.approx(want_travel) and len(got_travel) > 5000


def test_data_quality_is_recorded_with_the_run(replayed) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_driver import Client

    s, out = replayed
    rows = list(csv.DictReader(gzip.open(SF_WEEK, "rt", encoding="utf-8")))
    missing = sum(1 for r in rows if not all(r[c].strip() for c in ("Response DtTm", "On Scene DtTm",
                                                                       "Available DtTm")))
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=s.clickhouse_database)
    got = {(k, d): (n, share) for k, d, n, share in ch.execute(
        "SELECT kind, detail, rows, share FROM data_quality FINAL WHERE run_id = 'sfweek'")}
    assert got[("summary", "rows read")][0] == len(rows) == 7704
    assert got[("summary", "rows missing a status time")] == (missing, pytest.approx(missing / len(rows), abs=1e-4))
    report = json.loads((out / "report.json").read_text())
    assert got[("missing", "On Scene DtTm")][0] == sum(1 for r in rows if not r["On Scene DtTm"].strip())
    assert report["rejected"] == {}


def test_the_replay_is_selectable_on_the_wall_screen_and_the_board(replayed) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_driver import Client

    from grafana import generate, situation
    from grafana.macros import ALL, TimeRange, Variable, expand

    s, _ = replayed
    dash = generate.load(situation.UID)
    sql = next(q.text for q in generate.panel_queries(dash) if q.panel == "Engagés par type")
    tr = TimeRange(datetime(2016, 12, 31, tzinfo=UTC), datetime(2017, 1, 9, tzinfo=UTC))
    run = {"run": Variable("run", s.clickhouse_database), "area": Variable("area", [ALL])}
    ch = Client("127.0.0.1", port=s.clickhouse_port)
    got = dict(ch.execute(expand(sql, run, tr)))
    assert set(got) == {"CCF", "EPA", "FPT", "VL", "VLRCCI", "VLSSSM", "VSAV", "VSR", "VTU"}
    runs = [r for (r,) in ch.execute(expand(generate.variable_queries(dash)["run"], run, tr))]
    assert s.clickhouse_database in runs
    board = subprocess.run([sys.executable, "-m", "vigie.cli", "board", "--once", "--run", "sfweek"],
                           env={**os.environ, **s.model_copy(update={
                               "clickhouse_database": s.clickhouse_database.rsplit("_replay_", 1)[0]}).to_env()},
                           capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert board.returncode == 0, board.stderr
    assert "VSAV" in board.stdout and "2017-01-08" in board.stdout


def test_replay_from_the_clickhouse_history_gives_the_same_picture(replayed) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_driver import Client

    s, out = replayed
    base_db = s.clickhouse_database.rsplit("_replay_", 1)[0]
    base = s.model_copy(update={"clickhouse_database": base_db, "topic_suffix": s.topic_suffix.rsplit("-replay-", 1)[0],
                                "app_id": s.app_id.rsplit("-replay-", 1)[0]})
    env = {**os.environ, **base.to_env(), "VIGIE_RUN_DIR": str(out / "run")}
    again = subprocess.run([sys.executable, "-m", "vigie.cli", "replay", "start", "--run", "sfweek_again",
                            "--from-clickhouse", s.clickhouse_database, "--reference", str(out / "reference")],
                           env=env, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    ch = Client("127.0.0.1", port=s.clickhouse_port)
    query = ("SELECT intervention_id, vehicle_id, dispatched_at, en_route_at, on_scene_at, released_at "
             "FROM {db}.engagements FINAL ORDER BY intervention_id, vehicle_id")
    first = ch.execute(query.format(db=s.clickhouse_database))
    second = ch.execute(query.format(db=f"{base_db}_replay_sfweek_again"))
    assert len(first) > 7000 and second == first
