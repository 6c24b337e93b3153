"""The read-only user's SQL is valid on the current engine and never carries the password in clear."""

import hashlib

import pytest

from sinks.access import ensure_reader, reader_statements

chdb_session = pytest.importorskip("chdb.session")


def test_reader_statements_parse_on_current_clickhouse() -> None:
    s = chdb_session.Session()
    try:
        for stmt in reader_statements("vigie", "vigie_reader", "s3cret'pw"):
            assert "s3cret" not in stmt
            s.query(f"EXPLAIN AST {stmt}")  # parsed by the current engine (creating users needs a server)
    finally:
        s.close()
    assert hashlib.sha256(b"s3cret'pw").hexdigest() in reader_statements("vigie", "r", "s3cret'pw")[0]
    with pytest.raises(ValueError):
        reader_statements("vigie", "bad name; DROP", "x")


def test_ensure_reader_by_server_version() -> None:
    sent: list[str] = []

    def server(version: str):  # type: ignore[no-untyped-def]
        def execute(sql: str):  # type: ignore[no-untyped-def]
            sent.append(sql)
            return [(version,)] if sql == "SELECT version()" else []
        return execute

    assert "skipped" in ensure_reader(server("24.8.1.1"), "vigie", "vigie_reader", "")
    assert "users.xml" in ensure_reader(server("18.16.1"), "vigie", "vigie_reader", "pw")
    assert "users.xml" in ensure_reader(server("18.16.1"), "vigie", "vigie_reader", "")
    assert [s for s in sent if s != "SELECT version()"] == []
    assert "SELECT on vigie.*" in ensure_reader(server("24.8.14.39"), "vigie", "vigie_reader", "pw")
    assert sent[-1] == "GRANT SELECT ON vigie.* TO vigie_reader"
