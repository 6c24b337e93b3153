"""Retention of personal data and payloads (sinks/retention.py, `vigie db purge`) on ClickHouse 18.16."""

from __future__ import annotations

import time

import pytest

from core.settings import Settings
from tests.integration.conftest import Stack, ch_client
from tests.retention_case import run_case

pytestmark = pytest.mark.integration


def test_purge_on_clickhouse_18(stack: Stack, settings: Settings) -> None:
    ch = ch_client(settings)
    run_case(ch.execute, settings.clickhouse_database)


def test_vigie_db_purge_dry_run_counts_without_changing(stack: Stack, settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.retention_case import seed
    from vigie.cli import _cmd_purge, build_parser

    seed(ch_client(settings).execute, settings.clickhouse_database, now=int(time.time()))
    s = settings.model_copy(update={"retention_personal_days": 30.0, "retention_payload_days": 60.0})
    assert _cmd_purge(s, build_parser().parse_args(["db", "purge", "--dry-run"])) == 0
    out = capsys.readouterr().out
    assert f"{s.clickhouse_database}.crew_status_events: would purge 1 rows (crew status events)" in out
    (n,), = ch_client(settings).execute(f"SELECT count() FROM {s.clickhouse_database}.crew_status_events")
    assert n == 2
