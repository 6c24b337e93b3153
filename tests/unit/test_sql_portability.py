"""Every DDL statement and every query must also run on the current ClickHouse engine (chdb); the same
statements run on the local 18.16 server in the integration tests. Every registered table's row class must
match its migrated DDL: column names, order and types (and the Null runs table of a window table)."""

import pytest

chdb_session = pytest.importorskip("chdb.session")

from core.settings import Settings  # noqa: E402
from core.tables import TableSpec, table  # noqa: E402
from sinks.clickhouse import plugin_migrations  # noqa: E402
from sinks.migrate import bootstrap_statements, load_migrations  # noqa: E402
from sinks.queries import all_queries  # noqa: E402
from streams import registry  # noqa: E402
from streams.rows import SectorWindowRow  # noqa: E402
from streams.whatif.table import WHATIF_TABLES  # noqa: E402

DB = "vigie_portability"


@pytest.fixture(scope="module")
def chdb():  # type: ignore[no-untyped-def]
    s = chdb_session.Session()
    for stmt in bootstrap_statements(DB):
        s.query(stmt)
    for mig in load_migrations(DB):
        for stmt in mig.statements:
            s.query(stmt)  # raises on any statement the current engine refuses
    for _, directory in plugin_migrations(Settings()):
        for mig in load_migrations(DB, directory):
            for stmt in mig.statements:
                s.query(stmt)
    yield s
    s.close()


def _ddl(chdb, name: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    out = chdb.query(f"SELECT name, type, default_kind FROM system.columns WHERE database = '{DB}' "
                     f"AND table = '{name}' ORDER BY position", "TSV").data()
    return [tuple(line.split("\t")) for line in out.splitlines()]  # type: ignore[misc]


def mismatches(chdb, spec: TableSpec) -> list[str]:  # type: ignore[no-untyped-def]
    """How the table's DDL differs from its row class: names, order, types; extra columns must have a
    default (``written_at``, ``ingested_at``)."""
    problems = []
    targets = [(spec.name, spec.types)] + ([(spec.runs_table, spec.runs_types)] if spec.runs_table else [])
    for name, want in targets:
        got = _ddl(chdb, name)
        if [(n, t) for n, t, _ in got[: len(want)]] != list(want):
            problems.append(f"{name}: DDL {[(n, t) for n, t, _ in got]} != row class {list(want)}")
        extra = [n for n, _, kind in got[len(want):] if not kind]
        if extra:
            problems.append(f"{name}: columns without a default that no row fills: {extra}")
    return problems


def test_every_registered_table_matches_its_row_class(chdb) -> None:  # type: ignore[no-untyped-def]
    specs = registry.tables(Settings())
    assert {"station_windows", "engagements", "vehicle_status_events", "sector_windows"} <= {s.name for s in specs}
    for spec in (*specs, *WHATIF_TABLES):  # and the what-if figures and move-up advice (not a processor's)
        assert mismatches(chdb, spec) == []


def test_the_check_catches_a_wrong_type_and_a_wrong_order(chdb) -> None:  # type: ignore[no-untyped-def]
    from typing import NamedTuple

    from core.tables import DateTime, String, UInt16, UInt32

    class WrongType(NamedTuple):  # interventions_opened is UInt32 in the DDL
        window_start: DateTime
        window_seconds: UInt32
        sector: String
        source_partition: UInt16
        interventions_opened: UInt16

    class WrongOrder(NamedTuple):
        window_seconds: UInt32
        window_start: DateTime
        sector: String
        source_partition: UInt16
        interventions_opened: UInt32

    assert mismatches(chdb, table("sector_windows", SectorWindowRow)) == []
    assert mismatches(chdb, table("sector_windows", WrongType))
    assert mismatches(chdb, table("sector_windows", WrongOrder))


def test_queries_run_on_current_clickhouse(chdb) -> None:  # type: ignore[no-untyped-def]
    chdb.query(f"INSERT INTO {DB}.interventions (intervention_id, status, opened_at, version) "
               "VALUES ('I1', 'open', 1000, 1), ('I1', 'open', 1000, 2)")
    chdb.query(f"INSERT INTO {DB}.engagements (intervention_id, vehicle_id, started_at, dispatched_at, on_scene_at, "
               "turnout_s, travel_s, version) VALUES ('I1', 'V1', 1000, 1010, 1300, 60, 230, 1)")
    for sql in all_queries(DB).values():
        chdb.query(sql)
    out = chdb.query(f"SELECT units, call_to_first_arrival_s FROM {DB}.intervention_response_times", "CSV").data()
    assert out.strip() == "1,300"
    # no unit on scene (one dispatched, one intervention without any): -1, never 0, for every duration
    chdb.query(f"INSERT INTO {DB}.interventions (intervention_id, status, opened_at, version) "
               "VALUES ('I2', 'open', 2000, 1), ('I3', 'open', 3000, 1)")
    chdb.query(f"INSERT INTO {DB}.engagements (intervention_id, vehicle_id, started_at, dispatched_at, turnout_s, "
               "travel_s, version) VALUES ('I2', 'V2', 2000, 2010, 45, -1, 1)")
    out = chdb.query(f"SELECT intervention_id, units, call_to_first_arrival_s, first_unit_turnout_s, "
                     f"first_unit_travel_s FROM {DB}.intervention_response_times ORDER BY intervention_id", "CSV")
    assert out.data().split() == ['"I1",1,300,60,230', '"I2",1,-1,-1,-1', '"I3",0,-1,-1,-1']
