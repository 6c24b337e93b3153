"""Every DDL statement and every query must also run on the current ClickHouse engine (chdb).
The same statements run on the local 18.16 server in the integration tests."""

import pytest

chdb_session = pytest.importorskip("chdb.session")

from sinks.migrate import bootstrap_statements, load_migrations  # noqa: E402
from sinks.queries import all_queries  # noqa: E402
from sinks.tables import ALL_TABLES  # noqa: E402


@pytest.fixture(scope="module")
def chdb():  # type: ignore[no-untyped-def]
    s = chdb_session.Session()
    yield s
    s.close()


def test_migrations_and_queries_run_on_current_clickhouse(chdb) -> None:  # type: ignore[no-untyped-def]
    db = "vigie_portability"
    for stmt in bootstrap_statements(db):
        chdb.query(stmt)
    for mig in load_migrations(db):
        for stmt in mig.statements:
            chdb.query(stmt)  # raises on any statement the current engine refuses
    for spec in ALL_TABLES:
        cols = chdb.query(f"SELECT name FROM system.columns WHERE database = '{db}' AND table = '{spec.name}'",
                          "CSV").data().split()
        assert [c.strip('"') for c in cols][: len(spec.columns)] == list(spec.columns)
    chdb.query(f"INSERT INTO {db}.interventions (intervention_id, status, opened_at, version) "
               "VALUES ('I1', 'open', 1000, 1), ('I1', 'open', 1000, 2)")
    chdb.query(f"INSERT INTO {db}.engagements (intervention_id, vehicle_id, started_at, dispatched_at, on_scene_at, "
               "turnout_s, travel_s, version) VALUES ('I1', 'V1', 1000, 1010, 1300, 60, 230, 1)")
    for sql in all_queries(db).values():
        chdb.query(sql)
    out = chdb.query(f"SELECT units, call_to_first_arrival_s FROM {db}.intervention_response_times", "CSV").data()
    assert out.strip() == "1,300"
