"""The pipeline's ClickHouse account on the real local server (18.16, users.xml): it reads and inserts, and every
table-changing statement is refused, even after it tries to lift the restriction. Every other integration test
runs its workers, batch path and replays as this account (conftest.new_settings), so none of them needs DDL; the
migrations run as the migrator."""

from __future__ import annotations

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from core.settings import Settings
from devtools.stack import LOCAL_WRITER
from tests.integration.conftest import Stack, ch_client

pytestmark = pytest.mark.integration


def test_the_writer_inserts_and_reads_but_changes_no_table(stack: Stack, settings: Settings) -> None:
    assert settings.clickhouse_user == LOCAL_WRITER and settings.clickhouse_migrator_user == "default"
    db = settings.clickhouse_database
    writer = Client("127.0.0.1", port=settings.clickhouse_port, user=settings.clickhouse_user,
                    password=settings.clickhouse_password.get_secret_value(), database=db)
    writer.execute("INSERT INTO data_quality (run_id, source, kind, detail, rows, share) "
                   "SELECT 'r', 's', 'summary', 'rows read', 1, 1.0")
    assert writer.execute("SELECT rows FROM data_quality WHERE run_id = 'r'") == [(1,)]
    refused = []
    try:
        writer.execute("SET allow_ddl = 1")  # a session setting cannot lift it
    except ServerException as e:
        refused.append(("SET allow_ddl = 1", str(e).splitlines()[0]))
    for ddl in (f"CREATE TABLE {db}.intruder (a UInt8) ENGINE = Memory", f"DROP TABLE {db}.data_quality",
                f"ALTER TABLE {db}.data_quality ADD COLUMN intruder UInt8", f"RENAME TABLE {db}.data_quality TO "
                f"{db}.dq", f"DROP DATABASE {db}", f"CREATE DATABASE {db}_intruder"):
        with pytest.raises(ServerException) as e:
            writer.execute(ddl)
        assert "DDL" in str(e.value) or "allow_ddl" in str(e.value), (ddl, str(e.value)[:300])
    admin = ch_client(settings)
    assert admin.execute(f"EXISTS TABLE {db}.data_quality") == [(1,)]
    assert admin.execute(f"SELECT count() FROM system.columns WHERE database = '{db}' AND name = 'intruder'") == [(0,)]
    assert admin.execute(f"SELECT count() FROM system.databases WHERE name = '{db}_intruder'") == [(0,)]
