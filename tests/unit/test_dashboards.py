"""Dashboards as code: the checked-in JSON is what the code generates, the layout fits the wall screen,
every panel honours its variables, and every panel query expands and runs on the current ClickHouse
engine (chdb). The same queries run on ClickHouse 18.16 with data in tests/integration/test_dashboards.py."""

import re
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from grafana import generate, pipeline_health, situation, station_detail
from grafana.datasources import CLICKHOUSE_PLUGIN
from grafana.macros import ALL, TimeRange, Variable, expand
from sinks.migrate import bootstrap_statements, load_migrations
from streams.runtime import metrics

DASHBOARDS = {uid: generate.load(uid) for uid in generate.uids()}
RAW_HISTORY = ("vehicle_status_events", "intervention_events")
DB = "vigie_dash"
TR = TimeRange(datetime(2026, 1, 9, 6, tzinfo=UTC), datetime(2026, 1, 9, 12, tzinfo=UTC), 60)


def variable_states(dash: dict) -> list[dict[str, Variable]]:
    """All selected; one value; two values — for every multi variable at once; text boxes at default."""
    names = [v["name"] for v in dash["templating"]["list"] if v["type"] == "query" and v.get("multi")]
    texts = {v["name"]: v["current"]["value"] for v in dash["templating"]["list"] if v["type"] == "textbox"}
    states = []
    for pick in ([ALL], ["X1"], ["X1", "X'2"]):
        state = {n: Variable(n, pick, options=("X1", "X'2")) for n in names}
        state.update({n: Variable(n, v) for n, v in texts.items()})
        state["run"] = Variable("run", DB)
        states.append(state)
    return states


def test_checked_in_json_is_what_the_code_generates() -> None:
    assert generate.stale() == [], "run `make dashboards` and commit grafana/dashboards/"


def test_every_panel_has_a_query_and_fits_the_grid() -> None:
    for dash in DASHBOARDS.values():
        seen: set[tuple[int, int]] = set()
        for p in dash["panels"]:
            assert p.get("targets"), p["title"]
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & seen, f"{p['title']} overlaps another panel"
            seen |= cells


def test_wall_screen_fits_1080p_refreshes_every_5s_and_is_dark_ready() -> None:
    d = DASHBOARDS[situation.UID]
    assert d["refresh"] == "5s"
    assert max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in d["panels"]) <= 30  # 1080 px in kiosk mode
    stats = [p for p in d["panels"] if p["type"] == "stat" and "type" in p["title"]]
    assert all(p["options"]["text"]["valueSize"] >= 56 for p in stats)  # readable from 5 m
    available = next(p for p in d["panels"] if p["title"] == "Disponibles par type")
    steps = available["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0] == {"color": "red", "value": None} and steps[1]["value"] == 1  # red at 0 left
    kinds = {p["type"] for p in d["panels"]}
    assert {"stat", "bargauge", "table", "timeseries", "geomap"} <= kinds


def test_station_detail_panels_honour_area_station_and_type() -> None:
    d = DASHBOARDS[station_detail.UID]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert set(variables) == {"run", "area", "station", "vehicle_type"}
    for name in ("area", "station", "vehicle_type"):
        assert variables[name]["multi"] and variables[name]["includeAll"], name
    descriptions = {p["title"]: p.get("description", "") for p in d["panels"]}
    for q in generate.panel_queries(d):
        # staff have no vehicle type: those panels say the filter does not apply
        staff_only = "station_staff" in q.text and "vehicle_type" not in q.text
        for var in ("$area", "$station") + (() if staff_only else ("$vehicle_type",)):
            assert var in q.text, f"{q.panel} ignores {var}"
        if staff_only:
            assert "vehicle type filter does not apply" in descriptions[q.panel]
        if "window_start" in q.text or "dispatched_at" in q.text:
            assert "$__timeFilter(" in q.text, f"{q.panel} ignores the time range"


def test_no_panel_scans_raw_event_history() -> None:
    for dash in DASHBOARDS.values():
        for q in generate.panel_queries(dash):
            if q.datasource == CLICKHOUSE_PLUGIN:
                assert not any(t in q.text for t in RAW_HISTORY), q.panel


def test_health_panels_use_metrics_the_worker_exports() -> None:
    names_ = {m.name for m in REGISTRY.collect() if m.name.startswith("vigie_")}
    assert metrics.EVENTS_CONSUMED  # the worker's metrics are registered by importing streams.metrics
    exported = {f"{n}{suffix}" for n in names_ for suffix in ("", "_total", "_bucket")} | {"up"}
    for q in generate.panel_queries(DASHBOARDS[pipeline_health.UID]):
        names = set(re.findall(r"\b(vigie_\w+|up)\b(?=[{\[)\s])", q.text))
        assert names and names <= exported, (q.panel, names - exported)


chdb_session = pytest.importorskip("chdb.session")


@pytest.fixture(scope="module")
def chdb():  # type: ignore[no-untyped-def]
    s = chdb_session.Session()
    db = DB
    for stmt in bootstrap_statements(db):
        s.query(stmt)
    for mig in load_migrations(db):
        for stmt in mig.statements:
            s.query(stmt)
    s.query(f"USE {db}")
    yield s
    s.close()


@pytest.mark.parametrize("uid", [situation.UID, station_detail.UID])
def test_every_panel_and_variable_query_runs_on_current_clickhouse(chdb, uid: str) -> None:  # type: ignore[no-untyped-def]
    dash = DASHBOARDS[uid]
    for state in variable_states(dash):
        for q in generate.panel_queries(dash):
            chdb.query(expand(q.text, state, TR))  # raises on SQL the current engine refuses
        for sql in generate.variable_queries(dash).values():
            chdb.query(expand(sql, state, TR))


@pytest.mark.parametrize("uid", [situation.UID, station_detail.UID])
def test_every_panel_reads_the_selected_run(uid: str) -> None:
    """Live or a replay: every ClickHouse table a panel or variable reads is qualified by ${run}."""
    dash = DASHBOARDS[uid]
    texts = [q.text for q in generate.panel_queries(dash)] + [
        sql for name, sql in generate.variable_queries(dash).items() if name != "run"]
    for text in texts:
        for table in re.findall(r"(?:FROM|JOIN)\s+([\w${}.]+)", text):
            if table != "(":
                assert table.startswith("${run}."), (table, text[:80])
