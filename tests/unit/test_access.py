"""The read-only user's SQL is valid on the current engine and never carries the password in clear."""

import hashlib

import pytest

from sinks.access import ensure_reader, ensure_writer, identified_by, reader_statements, writer_statements
from tests.helpers import recording_server

TABLES = ["station_windows", "vehicle_state"]

chdb_session = pytest.importorskip("chdb.session")


def test_reader_statements_parse_on_current_clickhouse() -> None:
    s = chdb_session.Session()
    try:
        for stmt in reader_statements("vigie", "vigie_reader", "s3cret'pw", ["station_windows"]):
            assert "s3cret" not in stmt
            s.query(f"EXPLAIN AST {stmt}")  # parsed by the current engine (creating users needs a server)
    finally:
        s.close()
    assert hashlib.sha256(b"s3cret'pw").hexdigest() in reader_statements("vigie", "r", "s3cret'pw", [])[1]
    for bad in (("bad name; DROP", []), ("r", ["t; DROP TABLE x"])):
        with pytest.raises(ValueError):
            reader_statements("vigie", bad[0], "x", bad[1])


def test_writer_statements_parse_on_current_clickhouse_and_refuse_ddl() -> None:
    s = chdb_session.Session()
    try:
        for salted in (False, True):
            statements = writer_statements("vigie", "vigie_writer", "s3cret'pw", salted=salted)
            for stmt in statements:
                assert "s3cret" not in stmt
                s.query(f"EXPLAIN AST {stmt}")
    finally:
        s.close()
    assert "allow_ddl = 0 READONLY" in statements[0]  # a constraint: the writer cannot set it back
    assert statements[-1] == "GRANT SELECT, INSERT ON vigie.* TO vigie_writer"
    with pytest.raises(ValueError):
        writer_statements("vigie", "w; DROP", "x")


def test_salted_hashes_are_sha256_of_password_and_salt_and_differ_each_time() -> None:
    import re

    first, second = identified_by("pw", salted=True), identified_by("pw", salted=True)
    assert first != second  # the same password gives another hash with another salt
    for text in (first, second):
        digest, salt = re.fullmatch(r"IDENTIFIED WITH sha256_hash BY '([0-9a-f]{64})' SALT '([0-9a-f]{32})'",
                                    text).groups()  # type: ignore[union-attr]
        assert digest == hashlib.sha256(("pw" + salt).encode()).hexdigest()
    assert identified_by("pw", salted=False) == f"IDENTIFIED WITH sha256_hash BY '{hashlib.sha256(b'pw').hexdigest()}'"


def test_ensure_writer_by_server_version_and_account() -> None:
    sent: list[str] = []

    def server(version: str):  # type: ignore[no-untyped-def]
        return recording_server(version, sent)

    assert "as the migrator" in ensure_writer(server("24.8.1.1"), "vigie", "vigie", "pw", "vigie")
    assert "users.xml" in ensure_writer(server("18.16.1"), "vigie", "vigie_writer", "pw", "default")
    assert "skipped" in ensure_writer(server("24.8.1.1"), "vigie", "vigie_writer", "", "default")
    assert [s for s in sent if s != "SELECT version()"] == []
    assert "DDL refused" in ensure_writer(server("22.5.1.1"), "vigie", "vigie_writer", "pw", "default")
    assert " SALT " not in sent[-3]  # 22.5: no salts yet
    assert "DDL refused" in ensure_writer(server("24.8.1.1"), "vigie", "vigie_writer", "pw", "default")
    assert " SALT " in sent[-3] and sent[-1] == "GRANT SELECT, INSERT ON vigie.* TO vigie_writer"


def test_ensure_reader_by_server_version() -> None:
    sent: list[str] = []

    def server(version: str):  # type: ignore[no-untyped-def]
        return recording_server(version, sent)

    assert "skipped" in ensure_reader(server("24.8.1.1"), "vigie", "vigie_reader", "", TABLES)
    assert "users.xml" in ensure_reader(server("18.16.1"), "vigie", "vigie_reader", "pw", TABLES)
    assert "users.xml" in ensure_reader(server("18.16.1"), "vigie", "vigie_reader", "", TABLES)
    assert [s for s in sent if s != "SELECT version()"] == []
    assert "SELECT on 2 tables of vigie" in ensure_reader(server("24.8.14.39"), "vigie", "vigie_reader", "pw", TABLES)
    assert sent[-3:] == ["REVOKE ALL ON vigie.* FROM vigie_reader", "GRANT SELECT ON vigie.station_windows TO "
                         "vigie_reader", "GRANT SELECT ON vigie.vehicle_state TO vigie_reader"]
    assert any(s.startswith("CREATE SETTINGS PROFILE") and "max_execution_time = 60 MAX 60" in s for s in sent)
    assert any(s.startswith("CREATE QUOTA") and "TO vigie_reader" in s for s in sent)


def test_the_reader_gets_what_the_dashboards_read_and_no_payload_or_person() -> None:
    """Computed apart: the tables every dashboard query names (grafana/), against the grants."""
    import re

    from core.settings import Settings
    from grafana import generate
    from streams import registry

    readable = set(registry.readable_tables(Settings()))
    read = set()
    for uid in generate.uids():
        dash = generate.load(uid)
        for text in [q.text for q in generate.panel_queries(dash)] + list(generate.variable_queries(dash).values()):
            read |= set(re.findall(r"`\$\{run:percentencode\}`\.(\w+)", text))
    assert read and read <= readable
    assert not readable & {"vehicle_status_events", "intervention_events", "crew_status_events", "staff_state"}
