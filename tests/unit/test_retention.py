"""Retention of personal data and payloads (sinks/retention.py) on the current ClickHouse engine (chdb)."""

from __future__ import annotations

import json

import pytest

from sinks.migrate import bootstrap_statements, load_migrations
from sinks.retention import purges
from tests.retention_case import run_case

chdb_session = pytest.importorskip("chdb.session")


def test_nothing_is_purged_when_the_retentions_are_zero() -> None:
    assert purges(0, 0, now=1e9) == []
    assert {p.table for p in purges(30, 0, now=1e9)} == {"crew_status_events", "staff_state"}
    assert "crew_status_events" in {p.table for p in purges(0, 60, now=1e9)}  # crew payloads blanked when kept


def test_purge_on_current_clickhouse() -> None:
    s = chdb_session.Session()
    db = "vigie_retention"
    try:
        for stmt in bootstrap_statements(db):
            s.query(stmt)
        for mig in load_migrations(db):
            for stmt in mig.statements:
                s.query(stmt)

        def execute(sql: str) -> list[list[object]]:
            out = s.query(sql, "JSONCompact")
            text = out.bytes() if out is not None else b""
            return json.loads(text)["data"] if text.strip() else []

        run_case(execute, db)
    finally:
        s.close()
