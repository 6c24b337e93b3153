"""The example processor end to end, registered by one setting naming its module (as an installed package
registers through its entry point): broker -> worker -> ClickHouse -> its panel queries, and the batch path
over the stored history. Expected values are computed here from the produced events."""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, Producer
from vigie_water_points import dashboard
from vigie_water_points.events import WaterPointEvent
from vigie_water_points.simulator import events as simulate

from core.settings import Settings
from devtools.produce import make_producer
from schemas.reference import Reference
from sinks.clickhouse import run_migrations
from sinks.history import HistorySource, run_history
from streams import registry
from streams.topics import ensure_topics
from tests.integration.conftest import ch_client, new_settings, stack, start_worker, stop_worker, wait_until

__all__ = ["stack"]  # the session's broker and ClickHouse (fixture)
pytestmark = pytest.mark.integration
MODULE = "vigie_water_points.processor"
START = datetime(2026, 2, 1, tzinfo=UTC)


def expected_per_area(evs: list[WaterPointEvent]) -> dict[str, tuple[int, int, float]]:
    newest: dict[str, WaterPointEvent] = {}
    for e in evs:
        if e.water_point_id not in newest or e.event_time > newest[e.water_point_id].event_time:
            newest[e.water_point_id] = e
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for e in newest.values():
        acc = out[e.area]
        acc[0] += e.status.value == "out_of_service"
        acc[1] += 1
        acc[2] += e.flow_m3h if e.status.value == "in_service" else 0.0
    return {a: (int(x[0]), int(x[1]), x[2]) for a, x in out.items()}


def dead_letters(s: Settings, n: int) -> list[dict[str, object]]:
    consumer = Consumer({**s.confluent_config(), "group.id": f"{s.app_id}-check", "auto.offset.reset": "earliest"})
    consumer.subscribe([s.dead_letter_topic])
    letters: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while len(letters) < n and time.monotonic() < deadline:
        m = consumer.poll(1.0)
        if m is not None and not m.error():
            letters.append(json.loads(m.value()))
    consumer.close()
    return letters


def expected_newest_status(evs: list[WaterPointEvent]) -> dict[str, str]:
    """Per point, the status of its newest event (computed from the events)."""
    newest: dict[str, WaterPointEvent] = {}
    for e in evs:
        if e.water_point_id not in newest or e.event_time > newest[e.water_point_id].event_time:
            newest[e.water_point_id] = e
    return {wp: e.status.value for wp, e in newest.items()}


def test_the_newest_status_wins_whatever_the_arrival_order() -> None:
    """Shuffled in full (beyond any lateness), with repeats: the status kept per point is its newest event's.
    (``status_since`` is not checked here: it follows arrival order, see the README's note on the example.)"""
    from vigie_water_points.processor import STATE_TABLE, STATES, WaterPointEngine

    from streams.processor import Record

    ref = Reference.load(Settings().reference_dir)
    produced = list(simulate(ref, START, 3 * 86400, seed=5))
    want = expected_newest_status([e for _, _, e in produced])  # type: ignore[misc]
    for seed in range(5):
        order = list(produced) + produced[::7]  # with repeats
        random.Random(seed).shuffle(order)
        stores: dict[str, dict[str, object]] = {STATES: {}}
        engine = WaterPointEngine()
        rows = []
        for i in range(0, len(order), 50):  # batches of 50
            batch = [Record("water-points", 0, i + j, k.encode(), e.model_dump_json().encode())
                     for j, (_, k, e) in enumerate(order[i:i + 50])]
            result = engine.process(batch, stores)
            assert result.outcomes["applied"] + result.outcomes["stale"] + result.outcomes["duplicate"] == len(batch)
            rows += result.rows[STATE_TABLE]
        newest = {}
        for r in rows:  # what ClickHouse keeps: the highest version per point
            if r.water_point_id not in newest or r.version >= newest[r.water_point_id].version:
                newest[r.water_point_id] = r
        assert {wp: r.status for wp, r in newest.items()} == want


def test_the_plugin_is_found_by_the_setting_only() -> None:
    assert "water_points" not in {p.name for p in registry.processors(Settings())}
    with_plugin = Settings(processor_modules=MODULE)
    assert "water_points" in {p.name for p in registry.processors(with_plugin)}
    assert "water-points" in registry.logical_topics(with_plugin)


def test_end_to_end_and_batch_path(stack) -> None:  # type: ignore[no-untyped-def]
    s = new_settings(stack).model_copy(update={"processor_modules": MODULE})
    run_migrations(s)
    ensure_topics(s)
    ref = Reference.load(s.reference_dir)
    produced = list(simulate(ref, START, 2 * 86400, seed=3))
    late = produced[len(produced) // 2]  # re-sent later: a duplicate
    producer: Producer = make_producer(s)
    topic = s.topic("water-points")
    for _, key, ev in [*produced, ("water-points", late[1], late[2])]:
        producer.produce(topic, key=key.encode(), value=ev.model_dump_json().encode())
    bad = b'{"schema_version": 1, "event_id": "bad"}'
    producer.produce(topic, key=b"WP-X", value=bad)  # a dead letter
    assert producer.flush(30) == 0
    worker = start_worker(stack, s, "water-points-worker")
    ch = ch_client(s)
    n = len(produced)
    wait_until(lambda: ch.execute("SELECT uniqExact(event_id) FROM water_point_events")[0][0] == n, 120,
               f"{n} water point events stored")
    evs = [e for _, _, e in produced]
    want = expected_per_area(evs)  # type: ignore[arg-type]
    assert sum(w[0] for w in want.values()) > 0  # the run meets points out of service
    db = s.clickhouse_database

    def panel() -> dict[str, tuple[int, int, float]]:
        rows = ch.execute(dashboard.PER_AREA.replace("${run:percentencode}", db))
        return {a: (int(o), int(t), float(f)) for a, o, t, f in rows}

    wait_until(lambda: panel() == want, 30, "the panel's figures")
    letters = dead_letters(s, 1)
    assert [base64.b64decode(x["value_b64"]) for x in letters] == [bad]
    assert "water_point_id: Field required" in letters[0]["reason"] and letters[0]["source_topic"] == topic
    out_now = ch.execute(dashboard.OUT_NOW.replace("${run:percentencode}", db))
    assert Counter(r[1] for r in out_now) == Counter({a: w[0] for a, w in want.items() if w[0]})
    stop_worker(worker)

    batch = s.model_copy(update={"clickhouse_database": db + "_batch"})
    run_migrations(batch)
    stats = run_history(batch, HistorySource(clickhouse_database=db), processes=1)
    assert stats.events == n and not stats.unrouted
    got = ch.execute(f"SELECT water_point_id, status, status_since FROM {batch.clickhouse_database}."
                     "water_point_state FINAL ORDER BY water_point_id")
    assert got == ch.execute("SELECT water_point_id, status, status_since FROM water_point_state FINAL "
                             "ORDER BY water_point_id")


def test_its_dashboard_and_json_schema_are_generated_in_its_folder() -> None:
    from grafana import generate
    from schemas.export import json_schemas

    with_plugin = Settings(processor_modules=MODULE)
    assert "vigie-water-points" in generate.uids(with_plugin)
    assert generate.stale(with_plugin) == []
    (path, text), = json_schemas([WaterPointEvent]).items()
    assert path.parent.parent.name == "vigie_water_points" and path.read_text() == text


def test_its_row_classes_match_its_migrated_ddl() -> None:
    chdb_session = pytest.importorskip("chdb.session")
    from sinks.clickhouse import plugin_migrations
    from sinks.migrate import load_migrations
    from tests.unit.test_sql_portability import DB, mismatches

    with_plugin = Settings(processor_modules=MODULE)
    session = chdb_session.Session()
    try:
        session.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        (proc,) = registry.find(with_plugin, ["water_points"])
        ((_, folder),) = [m for m in plugin_migrations(with_plugin) if m[0] == "water_points"]
        for mig in load_migrations(DB, folder):
            for stmt in mig.statements:
                session.query(stmt)
        for spec in proc.tables:
            assert mismatches(session, spec) == []
    finally:
        session.close()
