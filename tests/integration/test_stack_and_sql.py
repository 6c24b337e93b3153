"""`vigie sql` on a real ClickHouse: read-only by default (as the dashboards' user, or readonly=1), a statement's
rows tab-separated under a header, piped statements one after the other, a refused write said in one line. And
`vigie stack`: the broker, ClickHouse, migrations and topics alone, reachable from another command, stopped by
Ctrl-C with nothing left running."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from pydantic import SecretStr

from core.settings import LOCAL_STACK_ENV, PROJECT_ROOT
from devtools.stack import free_port
from tests.integration.conftest import Stack, ch_client, new_settings
from vigie.sql import run_sql

pytestmark = pytest.mark.integration


def test_sql_reads_and_refuses_to_write(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    s = new_settings(stack)
    db = s.clickhouse_database
    ch_client(s).execute(f"INSERT INTO {db}.sector_windows (window_start, window_seconds, sector, source_partition, "
                         "interventions_opened) SELECT toDateTime('2026-01-01 10:00:00'), 60, 'Z1', 0, 3")
    as_reader = s.model_copy(update={"clickhouse_reader_password": SecretStr(stack.clickhouse.reader_password)})
    for settings in (as_reader, s):  # the dashboards' user; the writer with readonly=1
        assert run_sql(settings, db, "SELECT sector, interventions_opened AS n FROM sector_windows") == 0
        assert capsys.readouterr().out == "sector\tn\nZ1\t3\n"
        assert run_sql(settings, db, "DROP TABLE sector_windows") == 1
        err = capsys.readouterr().err
        assert err.startswith("error: Code: ") and "readonly" in err and "Stack trace" not in err
        assert err.count("\n") == 1
    piped = io.StringIO("SELECT 1 AS a;\nSELECT\n  2 AS b;\nSELECT nope;\nSELECT 3 AS c")
    assert run_sql(as_reader, db, None, stdin=piped) == 1  # one statement failed, the others ran
    out = capsys.readouterr()
    assert out.out == "a\n1\nb\n2\nc\n3\n" and out.err.count("error:") == 1
    assert int(ch_client(s).execute(f"SELECT count() FROM {db}.sector_windows")[0][0]) == 1


@pytest.mark.skipif(LOCAL_STACK_ENV.exists(), reason="a local stack of this checkout is running (its env file)")
def test_vigie_stack_starts_the_stack_alone_and_stops_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ports = {"VIGIE_LOCAL_KAFKA_PORT": str(free_port()), "VIGIE_LOCAL_CLICKHOUSE_TCP_PORT": str(free_port()),
             "VIGIE_LOCAL_CLICKHOUSE_HTTP_PORT": str(free_port()), "VIGIE_RUN_DIR": str(tmp_path)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")} | ports
    log = (tmp_path / "stack.out").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "stack"], env=env, cwd=PROJECT_ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "stack up" not in (tmp_path / "stack.out").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stack.out").read_text()
            time.sleep(0.5)
        assert LOCAL_STACK_ENV.stat().st_mode & 0o077 == 0  # it holds the local reader's password
        done = subprocess.run([sys.executable, "-m", "vigie.cli", "sql", "-q",
                               "SELECT count() AS tables FROM system.tables WHERE database = 'vigie' "
                               "AND name = 'forecasts'"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stdout == "tables\n1\n", done.stderr  # migrated, read as the reader
        topics = subprocess.run([sys.executable, "-m", "vigie.cli", "topics"], env=env, cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert topics.returncode == 0 and "vehicle-status" in topics.stdout
        logs = {p.name for p in (tmp_path / "logs").iterdir()}
        assert not {"worker-0.log", "simulator.log", "forecasts.log"} & logs, logs  # the stack alone
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:  # leave nothing running (its local-stack.env would mislead later runs)
            os.killpg(proc.pid, signal.SIGKILL)
            LOCAL_STACK_ENV.unlink(missing_ok=True)
            raise
    assert "stopped." in (tmp_path / "stack.out").read_text()
    assert not LOCAL_STACK_ENV.exists()
    for pattern in (str(tmp_path), f"127.0.0.1:{ports['VIGIE_LOCAL_KAFKA_PORT']}"):
        leftover = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        assert leftover == [], (pattern, leftover)
