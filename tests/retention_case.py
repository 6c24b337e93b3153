"""One purge case, run on each engine (chdb in tests/unit, ClickHouse 18.16 in tests/integration): rows older and
newer than the retentions in every table concerned; after ``vigie db purge``'s logic, exactly the old personal rows
are gone and the old payloads and positions blank, everything else as it was."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sinks.retention import DAY_S, purge

NOW = 1_780_000_000  # 2026-05-28
OLD, RECENT = NOW - 100 * DAY_S, NOW - 1 * DAY_S  # personal retention 30 days, payloads 60 days


def _ts(t: int) -> str:
    return f"toDateTime({t})"


def _as_select(sql: str) -> str:
    """``INSERT ... VALUES (...)`` as ``INSERT ... SELECT ...``: the native client sends VALUES data apart."""
    assert sql.endswith(")")
    return sql.replace(" VALUES (", " SELECT ", 1)[:-1]


def seed(run: Callable[[str], Any], db: str, now: int = NOW) -> None:
    def execute(sql: str) -> None:
        run(_as_select(sql))

    rows = {"old": now - (NOW - OLD), "new": now - (NOW - RECENT)}
    for tag, t in rows.items():
        execute(f"INSERT INTO {db}.crew_status_events (event_id, event_time, event_ts_ms, person_id, station_id, "
                f"status, qualifications, vehicle_id, intervention_id, source_partition, source_offset, payload) "
                f"VALUES ('c-{tag}', {_ts(t)}, {t * 1000}, 'P-{tag}', 'S1', 'available', ['driver'], '', '', 0, 0, "
                f"'{{\"person\": \"P-{tag}\"}}')")
        execute(f"INSERT INTO {db}.staff_state (person_id, station_id, area, status, qualifications, vehicle_id, "
                f"intervention_id, status_since, event_time, version) VALUES ('P-{tag}', 'S1', 'A', 'available', "
                f"['driver'], '', '', {_ts(t)}, {_ts(t)}, 1)")
        execute(f"INSERT INTO {db}.vehicle_status_events (event_id, event_time, event_ts_ms, vehicle_id, vehicle_type, "
                f"home_station, status, intervention_id, lat, lon, source_partition, source_offset, payload) VALUES "
                f"('v-{tag}', {_ts(t)}, {t * 1000}, 'V1', 'VSAV', 'S1', 'on_scene', 'I-{tag}', 48.85, 2.35, 0, 0, "
                f"'{{\"vehicle\": \"{tag}\"}}')")
        execute(f"INSERT INTO {db}.intervention_events (event_id, event_time, event_ts_ms, intervention_id, nature, "
                f"lifecycle, sector, lat, lon, priority, source_partition, source_offset, payload) VALUES "
                f"('i-{tag}', {_ts(t)}, {t * 1000}, 'I-{tag}', 'fire', 'opened', 'SEC1', 48.86, 2.36, 1, 0, 0, "
                f"'{{\"at\": \"12 rue X\"}}')")
        execute(f"INSERT INTO {db}.interventions (intervention_id, nature, priority, sector, lat, lon, status, "
                f"opened_at, closed_at, version) VALUES ('I-{tag}', 'fire', 1, 'SEC1', 48.86, 2.36, 'closed', "
                f"{_ts(t)}, {_ts(t + 3600)}, 1)")


def table(execute: Callable[[str], Any], db: str, name: str, columns: str, key: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in execute(f"SELECT {key}, {columns} FROM {db}.{name} ORDER BY {key}"))


def run_case(execute: Callable[[str], Any], db: str) -> None:
    seed(execute, db)
    counted = purge(execute, db, 30, 60, dry_run=True, now=NOW)
    assert {(p.table, p.action.split()[0]): n for p, n in counted} == {
        ("crew_status_events", "DELETE"): 1, ("staff_state", "DELETE"): 1, ("vehicle_status_events", "UPDATE"): 1,
        ("intervention_events", "UPDATE"): 1, ("interventions", "UPDATE"): 1}
    assert table(execute, db, "crew_status_events", "person_id", "event_id") == [("c-new", "P-new"),
                                                                                 ("c-old", "P-old")]  # dry run
    purge(execute, db, 30, 60, now=NOW)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # mutations apply in the background
        if all(n == 0 for _, n in purge(execute, db, 30, 60, dry_run=True, now=NOW)):
            break
        time.sleep(0.2)
    check_retained(execute, db)


def check_retained(execute: Callable[[str], Any], db: str) -> None:
    """Exactly the old personal rows gone, the old payloads and positions blank, the rest as it was."""
    assert table(execute, db, "crew_status_events", "person_id, payload", "event_id") == [
        ("c-new", "P-new", '{"person": "P-new"}')]
    assert table(execute, db, "staff_state", "status", "person_id") == [("P-new", "available")]
    assert table(execute, db, "vehicle_status_events", "payload, lat", "event_id") == [
        ("v-new", '{"vehicle": "new"}', 48.85), ("v-old", "", 48.85)]  # a vehicle's position is no personal data
    assert table(execute, db, "intervention_events", "payload, lat, lon, sector", "event_id") == [
        ("i-new", '{"at": "12 rue X"}', 48.86, 2.36, "SEC1"), ("i-old", "", 0.0, 0.0, "SEC1")]
    assert table(execute, db, "interventions", "lat, lon, nature, sector", "intervention_id") == [
        ("I-new", 48.86, 2.36, "fire", "SEC1"), ("I-old", 0.0, 0.0, "fire", "SEC1")]
