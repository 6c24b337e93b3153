"""Retention of personal data and payloads (sinks/retention.py) on the current ClickHouse engine (chdb)."""

from __future__ import annotations

import json
import time

import pytest

from sinks.migrate import bootstrap_statements, load_migrations
from sinks.retention import purges, ttl_statements
from tests.helpers import recording_server
from tests.retention_case import check_retained, run_case, seed

chdb_session = pytest.importorskip("chdb.session")


def test_nothing_is_purged_when_the_retentions_are_zero() -> None:
    assert purges(0, 0, now=1e9) == []
    assert {p.table for p in purges(30, 0, now=1e9)} == {"crew_status_events", "staff_state"}
    assert "crew_status_events" in {p.table for p in purges(0, 60, now=1e9)}  # crew payloads blanked when kept


def _migrated(s, db: str):  # type: ignore[no-untyped-def]
    for stmt in bootstrap_statements(db):
        s.query(stmt)
    for mig in load_migrations(db):
        for stmt in mig.statements:
            s.query(stmt)

    def execute(sql: str) -> list[list[object]]:
        out = s.query(sql, "JSONCompact")
        text = out.bytes() if out is not None else b""
        return json.loads(text)["data"] if text.strip() else []

    return execute


def test_purge_on_current_clickhouse() -> None:
    s = chdb_session.Session()
    try:
        run_case(_migrated(s, "vigie_retention"), "vigie_retention")
    finally:
        s.close()


def test_the_ttls_keep_what_the_purge_keeps_on_current_clickhouse() -> None:
    """The same rows (100 days and 1 day old), the TTLs for 30 / 60 days set as `vigie db migrate` does on servers
    that have TTLs, then the parts merged: the same rows left as after a purge."""
    s = chdb_session.Session()
    db = "vigie_ttl"
    try:
        execute = _migrated(s, db)
        seed(execute, db, now=int(time.time()))
        for stmt in ttl_statements(db, 30, 60):
            s.query(stmt)
        for name in ("crew_status_events", "staff_state", "vehicle_status_events", "intervention_events",
                     "interventions"):
            s.query(f"OPTIMIZE TABLE {db}.{name} FINAL")
        check_retained(execute, db)
        assert ttl_statements(db, 0, 0) == []
        assert len(ttl_statements(db, 0, 60)) == 7  # crew payloads too when crew rows are kept
    finally:
        s.close()


def test_migrate_sets_ttls_only_where_the_server_has_them() -> None:
    from sinks.retention import ensure_ttls

    sent: list[str] = []

    def server(version: str):  # type: ignore[no-untyped-def]
        return recording_server(version, sent)

    assert "kept for ever" in ensure_ttls(server("24.8.1"), "vigie", 0, 0)
    assert "vigie db purge" in ensure_ttls(server("18.16.1"), "vigie", 30, 60)
    assert [q for q in sent if q != "SELECT version()"] == []
    assert "8 TTLs set" in ensure_ttls(server("24.8.1"), "vigie", 30, 60)
    assert [q for q in sent if q != "SELECT version()"] == ttl_statements("vigie", 30, 60)
