"""Simulator -> real broker -> real `vigie worker` -> real ClickHouse, compared exactly with an
independent computation from the produced events; then with a SIGKILLed worker and a ClickHouse
restart mid-stream; then bad input."""

from __future__ import annotations

import json
import os
import signal
import time
import tomllib
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from core.settings import Settings
from devtools.produce import publish
from devtools.simulator import SimEvent, Simulator
from grafana import generate, pipeline_health
from schemas.reference import Reference
from sinks.clickhouse import run_migrations
from sinks.history import HistorySource, run_history
from streams import registry
from streams.runtime.memory import GC_THRESHOLDS
from tests.integration import expected
from tests.integration.conftest import (
    Stack,
    ch_client,
    dump_workers,
    new_settings,
    read_topic,
    start_prometheus,
    start_worker,
    stop_worker,
    wait_until,
)
from tests.integration.expected import alert_transitions
from vigie.allocator import find_jemalloc

pytestmark = pytest.mark.integration
START = datetime(2026, 1, 9, 6, 0, tzinfo=UTC)
# Events go out paced at 600x real time while workers read them: a replay's pace. Unpaced, the two station
# topics of a partition can reach the broker hours of event time apart within a second, beyond what the
# watermark's wait for a caught-up input (VIGIE_INPUT_IDLE_S) covers (see README, "Two topics, one watermark").
PACE = 600.0


def simulate(s: Settings, hours: float, seed: int, majors: float = 0.0) -> tuple[Reference, list[SimEvent]]:
    """``majors``: major incidents per day (an area's VSAV run low: the area alerts fire)."""
    ref = Reference.load(s.reference_dir)
    return ref, list(Simulator(ref, seed=seed, start=START, major_incidents_per_day=majors).events(hours * 3600))


def alert_rows(s: Settings) -> list[tuple[str, str, float, str, float]]:
    rows = ch_client(s).execute("SELECT rule, scope_key, toUInt32(at), transition, value FROM alerts FINAL")
    return sorted((r, k, float(at), tr, v) for r, k, at, tr, v in rows)


def assert_alerts_exact(s: Settings, ref: Reference, events: list[SimEvent], timeout: float = 60.0) -> None:
    """The alerts table holds the transitions computed from the events (tests/integration/expected.py), once the
    stations' last messages are in (a silent partition stops holding the clock after VIGIE_ALERT_SOURCE_IDLE_S)."""
    want = alert_transitions(ref, events, [dict(r) for r in tomllib.loads(s.alert_rules.read_text())["rule"]],
                             s.allowed_lateness_seconds, s.topic_partitions)
    try:
        wait_until(lambda: alert_rows(s) == want, timeout, f"{len(want)} alert transitions")
    except AssertionError:
        got = alert_rows(s)
        missing, extra = [w for w in want if w not in got], [g for g in got if g not in want]
        raise AssertionError(f"alerts: {len(got)} stored, {len(want)} expected; missing {missing[:5]}, "
                             f"extra {extra[:5]}") from None


def _ts(dt: datetime) -> float:
    return dt.replace(tzinfo=UTC).timestamp()


def wait_for_all_events(s: Settings, events: list[SimEvent], timeout: float = 120, stack: Stack | None = None) -> None:
    n_vehicle = sum(1 for e in events if e.topic == "vehicle-status")
    n_crew = sum(1 for e in events if e.topic == "crew-status")
    n_interv = len(events) - n_vehicle - n_crew
    ch = ch_client(s)
    tables = ("vehicle_status_events", "intervention_events", "crew_status_events")

    def stored() -> bool:
        got = tuple(ch.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0] for t in tables)
        return got == (n_vehicle, n_interv, n_crew)

    try:
        wait_until(stored, timeout, f"{n_vehicle} vehicle, {n_interv} intervention and {n_crew} crew events "
                   "in ClickHouse")
    except AssertionError as e:
        counts = [ch.execute(f"SELECT uniqExact(event_id) FROM {t}")[0][0] for t in tables]
        dumps = dump_workers(stack) if stack is not None else ""
        raise AssertionError(f"{e}; stored {counts}\n{dumps}") from None


def assert_exact(s: Settings, ref: Reference, events: list[SimEvent], long_run: bool = True) -> None:
    """``long_run``: the run is long enough for the checks to meet shortages (not only agree)."""
    ch = ch_client(s)
    last = max(e.event.event_time.timestamp() for e in events)
    # windows are emitted once their partition's newest event time minus the lateness passes them; a partition's
    # newest can trail the last event by minutes: compare what is surely emitted
    until = last - 600 - s.allowed_lateness_seconds
    until -= until % s.window_seconds
    want_windows = expected.station_windows(ref, events, s.window_seconds, until)

    def sealed() -> set[tuple[float, str, str]]:
        return {(_ts(w), st, vt) for w, st, vt in ch.execute(
            "SELECT DISTINCT window_start, station_id, vehicle_type FROM station_windows "
            "WHERE window_start < toDateTime(%(u)s)", {"u": int(until)})}

    try:
        wait_until(lambda: len(sealed()) == len(want_windows), 60, "every window sealed")
    except AssertionError as e:
        missing = sorted(set(want_windows) - sealed())
        raise AssertionError(f"{e}: {len(missing)} missing, first {missing[:5]}, last {missing[-5:]}") from None
    # 1. current state per vehicle, and capacity per station x type x category
    got_status = dict(ch.execute("SELECT vehicle_id, status FROM vehicle_state FINAL"))
    assert got_status == expected.final_vehicle_status(events)
    got_cap = {(a, b, c): n for a, b, c, n in ch.execute(
        "SELECT home_station, vehicle_type, category, count() FROM vehicle_state FINAL "
        "GROUP BY home_station, vehicle_type, category")}
    want_cap = {k: v for k, v in expected.capacity(ref, events).items() if k[2] != "unknown"}
    assert got_cap == want_cap
    # 2. every 1-minute window of every station x type
    rows = ch.execute("SELECT window_start, station_id, vehicle_type, available, engaged, out_of_service, unknown, "
                      "min_available, engaged_vehicle_minutes FROM station_windows FINAL "
                      "WHERE window_start < toDateTime(%(u)s)", {"u": int(until)})
    got_windows = {(_ts(r[0]), r[1], r[2]): tuple(r[3:]) for r in rows}
    assert len(got_windows) == len(want_windows) and got_windows == want_windows
    # 3. response times
    got_rt = {i: int(x) for i, x in ch.execute(
        "SELECT intervention_id, call_to_first_arrival_s FROM intervention_response_times "
        "WHERE call_to_first_arrival_s >= 0")}
    assert got_rt == expected.response_times(events) and len(got_rt) > 10
    got_turnout = {(i, v): t for i, v, t in ch.execute(
        "SELECT intervention_id, vehicle_id, turnout_s FROM engagements FINAL WHERE turnout_s >= 0")}
    assert got_turnout == expected.turnouts(events)
    # 4. interventions opened per sector and window (summed over source partitions)
    got_sec = {(_ts(w), sec): n for w, sec, n in ch.execute(
        "SELECT window_start, sector, sum(interventions_opened) FROM sector_windows FINAL "
        "WHERE window_start < toDateTime(%(u)s) GROUP BY window_start, sector", {"u": int(until)})}
    want_sec = {k: v for k, v in expected.sector_openings(events, s.window_seconds).items() if k[0] < until}
    assert got_sec == want_sec
    # 5. nothing counted twice in the raw history either
    (dups,), = ch.execute("SELECT count() - uniqExact(event_id) FROM vehicle_status_events FINAL")
    assert dups == 0
    assert_crews_exact(ch, ref, events, s.window_seconds, until, long_run)


def assert_crews_exact(ch, ref: Reference, events: list[SimEvent], window: int, until: float,  # type: ignore[no-untyped-def]
                       long_run: bool) -> None:
    """Staff and staffed capacity, now and per window, against the independent replay of the events."""
    crew_events = [e for e in events if e.topic == "crew-status"]
    assert crew_events, "the simulated run must carry crews"
    last: dict[str, str] = {}
    for e in crew_events:
        last[e.event.person_id] = e.event.status.value
    assert dict(ch.execute("SELECT person_id, status FROM staff_state FINAL")) == last
    got_cap = {(r[0], r[1]): tuple(r[2:]) for r in ch.execute(
        "SELECT station_id, vehicle_type, vehicles, available, staffed, uncrewed, crew_tracked "
        "FROM station_capacity FINAL")}
    want_cap = expected.capacity_now(ref, events)
    assert got_cap == want_cap
    assert not long_run or sum(v[3] for v in want_cap.values()) > 0, "some vehicles cannot be crewed at the end"
    got_staff = {(r[0], r[1]): tuple(r[2:]) for r in ch.execute(
        "SELECT station_id, qualification, on_duty, assigned, available, unavailable FROM station_staff FINAL")}
    assert got_staff == expected.staff_now(ref, events)
    want_cap_w, want_staff_w = expected.crew_windows(ref, events, window, until)
    got_cap_w = {(_ts(r[0]), r[1], r[2]): tuple(r[3:]) for r in ch.execute(
        "SELECT window_start, station_id, vehicle_type, staffed, min_staffed, crew_tracked FROM station_windows FINAL "
        "WHERE window_start < toDateTime(%(u)s)", {"u": int(until)})}
    assert got_cap_w == want_cap_w
    assert not long_run or any(v[1] < v[0] for v in want_cap_w.values()), "staffed capacity dipped in a window"
    got_staff_w = {(_ts(r[0]), r[1], r[2]): tuple(r[3:]) for r in ch.execute(
        "SELECT window_start, station_id, qualification, on_duty, assigned, available, unavailable, min_available "
        "FROM staff_windows FINAL WHERE window_start < toDateTime(%(u)s)", {"u": int(until)})}
    assert got_staff_w == want_staff_w


@dataclass
class LiveRun:
    settings: Settings
    ref: Reference
    events: list[SimEvent]
    events_file: Path
    stop_seconds: float
    metrics: dict[str, float]
    health: dict[str, tuple[dict[str, float], dict[str, float]]]  # panel -> (settled, while busy)
    mapped: str  # the libraries the running worker had mapped (/proc/<pid>/maps)


@pytest.fixture(scope="module")
def live_run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """One live run: simulator -> broker -> `vigie worker` -> ClickHouse, events also kept in a file."""
    settings = new_settings(stack)
    ref, events = simulate(settings, hours=3, seed=11, majors=24)
    events_file = tmp_path_factory.mktemp("events") / "events.jsonl"
    prometheus, prom_port = start_prometheus(stack, settings.metrics_port, "prometheus-e2e")
    worker = start_worker(stack, settings, "e2e-worker")
    try:
        with events_file.open("w") as copy:  # in four parts a few scrapes apart, so rates see the traffic
            for i in range(4):
                publish(settings, events[i * len(events) // 4:(i + 1) * len(events) // 4], copy_to=copy,
                        speed=PACE)
                time.sleep(2.5)
        wait_for_all_events(settings, events)
        mapped = Path(f"/proc/{worker.pid}/maps").read_text()
        busy_until = time.time()
        assert_exact(settings, ref, events)  # also waits for every window to be sealed
        assert_alerts_exact(settings, ref, events)
        metrics = scrape(settings.metrics_port)
        time.sleep(3)  # a few more scrapes of the settled worker
        health = {q.panel: (prom_query(prom_port, q.text, time.time()), prom_query(prom_port, q.text, busy_until))
                  for q in generate.panel_queries(generate.load(pipeline_health.UID))}
    finally:
        prometheus.stop()
    return LiveRun(settings, ref, events, events_file, stop_worker(worker), metrics, health, mapped)


def prom_query(port: int, expr: str, at: float) -> dict[str, float]:
    """An instant query on the real Prometheus: {label values joined: value}."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "success", body
    return {",".join(f"{k}={v}" for k, v in sorted(r["metric"].items()) if k not in ("instance", "job")):
            float(r["value"][1]) for r in body["data"]["result"]}


def test_end_to_end_matches_independent_computation(live_run: LiveRun) -> None:
    settings, events, metrics = live_run.settings, live_run.events, live_run.metrics
    n_vehicle = sum(1 for e in events if e.topic == "vehicle-status")
    n_crew = sum(1 for e in events if e.topic == "crew-status")
    assert metrics[f'vigie_events_consumed_total{{topic="{settings.topic("vehicle-status")}"}}'] == n_vehicle
    assert metrics[f'vigie_events_consumed_total{{topic="{settings.topic("crew-status")}"}}'] == n_crew
    assert metrics[f'vigie_events_consumed_total{{topic="{settings.topic("interventions")}"}}'] == \
        len(events) - n_vehicle - n_crew
    assert metrics['vigie_rows_written_total{table="vehicle_status_events"}'] == n_vehicle
    assert metrics['vigie_rows_written_total{table="crew_status_events"}'] == n_crew
    # the station agent counts the outcomes of vehicle and crew events together
    assert metrics['vigie_event_outcomes_total{outcome="applied",topic="' + settings.topic("vehicle-status") + '"}'] \
        == n_vehicle + n_crew
    assert any(k.startswith("vigie_consumer_lag_messages") for k in metrics)
    assert any(k.startswith("vigie_freshness_seconds") for k in metrics)
    assert live_run.stop_seconds < 10.0  # SIGTERM: bounded, graceful stop


def test_the_worker_runs_on_jemalloc(live_run: LiveRun) -> None:
    """`make install` installs libjemalloc2, and the worker re-executes itself on it (vigie/allocator.py): the
    running process has it mapped, and its metrics say so."""
    library = find_jemalloc()
    assert library is not None, "libjemalloc.so.2 is not installed: run `make install`"
    assert os.path.realpath(library) in {line.split()[-1] for line in live_run.mapped.splitlines()
                                         if len(line.split()) == 6}
    gc_thresholds = ",".join(map(str, GC_THRESHOLDS))  # the engines' collector pace (streams/runtime/memory.py)
    assert live_run.metrics[f'vigie_worker_info{{allocator="jemalloc",gc_thresholds="{gc_thresholds}"}}'] == 1.0


def test_pipeline_health_panels_on_a_real_prometheus(live_run: LiveRun) -> None:
    """Every health panel's PromQL, evaluated by Prometheus scraping the live worker, shows the run."""
    s, h = live_run.settings, live_run.health
    # the topics this run fed (the simulator's, and what their processors publish for the alerts); the others (the
    # operators' alert actions, the processors with simulators of their own) had no traffic
    topics = {f"topic={t}" for t in registry.logical_topics(s).values()}
    sent = {e.topic for e in live_run.events}
    published = {o for p in registry.processors(s) if any(i.topic in sent for i in p.inputs) for o in p.outputs}
    fed = {f"topic={s.topic(t)}" for t in sent | published}
    assert f"topic={s.topic('station-steps')}" in fed and fed < topics
    settled = {panel: now for panel, (now, _) in h.items()}
    busy = {panel: then for panel, (_, then) in h.items()}
    assert settled["Workers up"] == {"": 1.0}
    assert settled["Total lag"] == {"": 0.0}
    assert settled["Oldest picture"][""] > 0  # event times are in the past (simulated January)
    assert settled["ClickHouse writes blocked"] == {"": 0.0}
    assert set(busy["Events consumed per second"]) == fed
    assert all(v > 0 for v in busy["Events consumed per second"].values())
    assert set(settled["Consumer lag"]) == fed and set(settled["Consumer lag"].values()) == {0.0}
    assert set(settled["Freshness"]) == fed
    assert settled["Invalid events (dead-letter)"] == dict.fromkeys(topics, 0.0)
    tables = {f"table={t.name}" for t in registry.tables(s)}
    assert set(settled["ClickHouse write errors"]) == tables and set(settled["ClickHouse write errors"].values()) == {0}
    latency = busy["ClickHouse write latency p95"]
    assert {"table=vehicle_status_events", "table=station_windows"} <= set(latency)
    assert all(0 < v < 10 for v in latency.values() if v == v)  # NaN where a table had no write in 5 min
    assert busy["Rows written per second"]["table=vehicle_status_events"] > 0
    assert busy["Event outcomes"]["outcome=applied"] > 0


COMPARED_COLUMNS = {
    # raw history: offsets are line numbers when read from a file, so they are left out
    "vehicle_status_events": "event_id, event_time, event_ts_ms, vehicle_id, vehicle_type, home_station, status, "
                             "intervention_id, lat, lon, source_partition, payload",
    "intervention_events": "event_id, event_time, event_ts_ms, intervention_id, nature, lifecycle, sector, lat, lon, "
                           "priority, source_partition, payload",
    "crew_status_events": "event_id, event_time, event_ts_ms, person_id, station_id, status, qualifications, "
                          "vehicle_id, intervention_id, source_partition, payload",
}


def table_contents(s: Settings, table: str) -> list[tuple]:  # type: ignore[type-arg]
    ch = ch_client(s)
    if table in COMPARED_COLUMNS:
        cols = COMPARED_COLUMNS[table]
    else:
        names = [r[0] for r in ch.execute(
            f"SELECT name FROM system.columns WHERE database = '{s.clickhouse_database}' AND table = '{table}'")]
        # version: orders the rows of one key within a run; it counts the records a station consumed, so it
        # depends on how its two topics interleave (live) or merge (batch), the rows kept do not
        cols = ", ".join(n for n in names if n not in ("written_at", "version"))
    return sorted(ch.execute(f"SELECT {cols} FROM {table} FINAL"))


@pytest.mark.parametrize(("source", "processes"), [("file", 1), ("file", 2), ("clickhouse", 2)])
def test_history_path_gives_the_live_rows(stack: Stack, live_run: LiveRun, source: str, processes: int) -> None:
    """The batch path, in one process or with the partitions shared out between two, writes the live rows."""
    live = live_run.settings
    batch = live.model_copy(update={"clickhouse_database": f"{live.clickhouse_database}_{source}_{processes}"})
    run_migrations(batch)
    where = (HistorySource(file=live_run.events_file) if source == "file"
             else HistorySource(clickhouse_database=live.clickhouse_database))
    stats = run_history(batch, where, processes=processes, chunk_events=777)
    assert stats.events == len(live_run.events) and stats.invalid == 0
    for spec in registry.tables(batch):
        got, want = table_contents(batch, spec.name), table_contents(live, spec.name)
        assert len(got) == len(want) and got == want, spec.name


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_worker_killed_and_clickhouse_restarted_mid_stream(stack: Stack, settings: Settings) -> None:
    ref, events = simulate(settings, hours=4, seed=12)
    cut1, cut2 = len(events) // 3, 2 * len(events) // 3
    worker = start_worker(stack, settings, "crash-worker-1")
    publish(settings, events[:cut1], speed=PACE)
    ch = ch_client(settings)
    wait_until(lambda: ch.execute("SELECT count() FROM vehicle_status_events")[0][0] > 0, 60, "first rows")
    stop_worker(worker, signal.SIGKILL)  # mid-stream: uncommitted batches, changelog partly written
    publish(settings, events[cut1:cut2])  # the worker is down: a backlog, read later
    worker = start_worker(stack, settings, "crash-worker-2")
    time.sleep(6)
    stack.clickhouse.stop()  # ClickHouse goes away while the worker is busy
    publish(settings, events[cut2:], speed=PACE)
    # the outage hit a write: the worker says it is blocked on ClickHouse (and holds, retrying)
    wait_until(lambda: scrape(settings.metrics_port).get("vigie_sink_blocked_seconds", 0) > 0, 60,
               "a write blocked by the outage")
    assert worker.poll() is None, "the worker must hold and retry, not die"
    stack.restart_clickhouse_later()
    wait_for_all_events(settings, events, timeout=180, stack=stack)
    assert_exact(settings, ref, events)
    stop_worker(worker)


def test_bad_input_goes_to_dead_letter_and_nothing_else_is_lost(stack: Stack, settings: Settings) -> None:
    """Bad records on all three inputs, times ClickHouse cannot store or far ahead of the worker's clock, an
    oversized record: each is a dead letter with its reason, and the rows of everything else are exact (a
    future time moving the watermark would have clamped later changes: the windows would differ)."""
    ref, events = simulate(settings, hours=0.5, seed=14)  # a seed with traffic on every partition
    worker = start_worker(stack, settings, "dlq-worker")
    last_vehicle = next(e for e in reversed(events) if e.topic == "vehicle-status")
    last_crew = next(e for e in reversed(events) if e.topic == "crew-status")
    last_call = next(e for e in reversed(events) if e.topic == "interventions")
    good = json.loads(last_vehicle.event.model_dump_json())
    vehicle, crew, call = (settings.topic(t) for t in ("vehicle-status", "crew-status", "interventions"))
    a_year_ahead = datetime.fromtimestamp(time.time() + 366 * 86400, UTC).isoformat()
    bad = [  # (topic, key, value, what the reason says)
        (vehicle, last_vehicle.key, b"\xff\xfe garbage", "not valid JSON"),
        (vehicle, last_vehicle.key, json.dumps({**good, "vehicle_type": 12}).encode(),
         "vehicle_type: Input should be a valid string"),
        (vehicle, last_vehicle.key, json.dumps({**good, "status": "teleporting"}).encode(), "status: Input should be"),
        (vehicle, last_vehicle.key, json.dumps({**good, "event_time": "2026-01-09T07:00:00"}).encode(), "timezone"),
        (vehicle, last_vehicle.key, json.dumps({**good, "vehicle_id": "GHOST-1"}).encode(),
         "unknown vehicle 'GHOST-1'"),
        (vehicle, last_vehicle.key, json.dumps({**good, "event_time": "1900-01-01T00:00:00+00:00"}).encode(),
         "greater than or equal to 1970-01-01T00:00:01"),
        (vehicle, last_vehicle.key, json.dumps({**good, "event_time": "2200-01-01T00:00:00+00:00"}).encode(),
         "less than or equal to 2106-02-07T06:28:15"),
        (vehicle, last_vehicle.key, json.dumps({**good, "event_time": a_year_ahead}).encode(),
         "ahead of the worker's clock"),
        (vehicle, last_vehicle.key, json.dumps({**good, "padding": "x" * 900_000}).encode(),
         "padding: Extra inputs are not permitted"),
        (crew, last_crew.key, json.dumps({**json.loads(last_crew.event.model_dump_json()),
                                          "full_name": "Jeanne Dupont"}).encode(),
         "full_name: Extra inputs are not permitted"),
        (call, last_call.key, json.dumps({**json.loads(last_call.event.model_dump_json()),
                                          "lifecycle": "exploded"}).encode(), "lifecycle: Input should be"),
    ]
    producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random"})
    half = len(events) // 2
    publish(settings, events[:half], speed=PACE)
    for topic, key, value, _ in bad:
        producer.produce(topic, key=key.encode(), value=value)
    producer.flush(10)
    publish(settings, events[half:], speed=PACE)
    wait_for_all_events(settings, events)
    letters = read_topic(settings, settings.dead_letter_topic, lambda got: len(got) >= len(bad))
    assert len(letters) == len(bad)
    import base64
    import hashlib

    by_digest = {(topic, hashlib.sha256(value).hexdigest()): reason for topic, _, value, reason in bad}
    for letter in letters:
        kept = base64.b64decode(letter["value_b64"]) if letter["value_b64"] else b""
        digest = letter.get("value_sha256") or hashlib.sha256(kept).hexdigest()
        assert by_digest.pop((letter["source_topic"], digest)) in letter["reason"]
        assert letter["source_offset"] >= 0 and len(kept) <= 256 * 1024
        if letter.get("value_truncated"):
            assert letter["value_size"] > 900_000 and len(kept) == 256 * 1024
        if letter["source_topic"] == crew:  # about a person: nothing outside the schema is kept
            assert letter["value_redacted"] and b"Jeanne" not in kept and "Jeanne" not in letter["reason"]
    assert by_digest == {}
    assert_exact(settings, ref, events, long_run=False)
    stop_worker(worker)
