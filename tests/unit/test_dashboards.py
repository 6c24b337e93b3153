"""Dashboards as code: the checked-in JSON is what the code generates, the layout fits the wall screen,
every panel honours its variables, and every panel query expands and runs on the current ClickHouse
engine (chdb). The same queries run on ClickHouse 18.16 with data in tests/integration/test_dashboards.py."""

import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from prometheus_client import REGISTRY

from grafana import forecasts, generate, pipeline_health, scenarios, situation, station_detail
from grafana.common import RUN
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
    # text boxes and one-value variables (a sector, a bin size) at their default
    texts = {v["name"]: v["current"]["value"] for v in dash["templating"]["list"]
             if v["type"] in ("textbox", "custom") or (v["type"] == "query" and not v.get("multi")
                                                      and v["name"] != "run")}
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
    available = next(p for p in d["panels"] if p["title"] == "Disponibles par type${availability}")
    steps = available["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0] == {"color": "red", "value": None} and steps[1]["value"] == 1  # red at 0 left
    kinds = {p["type"] for p in d["panels"]}
    assert {"stat", "bargauge", "table", "timeseries", "geomap"} <= kinds


def test_station_detail_panels_honour_area_station_and_type() -> None:
    d = DASHBOARDS[station_detail.UID]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert set(variables) == {"run", "availability", "area", "station", "vehicle_type"}
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


@pytest.mark.parametrize("uid", [situation.UID, station_detail.UID, forecasts.UID, scenarios.UID])
def test_every_panel_and_variable_query_runs_on_current_clickhouse(chdb, uid: str) -> None:  # type: ignore[no-untyped-def]
    dash = DASHBOARDS[uid]
    for state in variable_states(dash):
        for q in generate.panel_queries(dash):
            chdb.query(expand(q.text, state, TR))  # raises on SQL the current engine refuses
        for sql in generate.variable_queries(dash).values():
            chdb.query(expand(sql, state, TR))


@pytest.mark.parametrize("uid", [situation.UID, station_detail.UID, forecasts.UID, scenarios.UID])
def test_every_panel_reads_the_selected_run(uid: str) -> None:
    """Live or a replay: every ClickHouse table a panel or variable reads is qualified by ${run}."""
    dash = DASHBOARDS[uid]
    texts = [q.text for q in generate.panel_queries(dash)] + [
        sql for name, sql in generate.variable_queries(dash).items() if name != "run"]
    for text in texts:
        for table in re.findall(r"(?:FROM|(?<!ARRAY )JOIN)\s+([\w${}:.`]+)", text):  # ARRAY JOIN: no table
            if table != "(":
                assert table.startswith(RUN + "."), (table, text[:80])


HOSTILE = ["x'", "x\\", "x\\',1) OR 1=1 --", "x'); DROP TABLE vehicle_state; --", "x' UNION ALL SELECT name FROM "
           "system.users --", "x' SETTINGS max_execution_time=0 --", "x/*", "x`", "x\"", "${run}", "{a,b}", "é ü"]


@pytest.mark.parametrize("uid", [situation.UID, station_detail.UID, forecasts.UID, scenarios.UID])
def test_no_variable_value_can_rewrite_a_query(chdb, uid: str) -> None:  # type: ignore[no-untyped-def]
    """Any variable can be set from the URL. With hostile values in every variable at once (quotes, backslashes,
    statement separators, comments, UNION, SETTINGS), every panel and variable query still runs as the one
    statement it was: the same columns as with ordinary values, and no rows (nothing matches such a value); a
    hostile run is only ever an unknown database whose name is the percent-encoded value."""
    dash = DASHBOARDS[uid]
    names = [v["name"] for v in dash["templating"]["list"] if v["name"] != "run"]
    queries = [q.text for q in generate.panel_queries(dash)] + [
        sql for name, sql in generate.variable_queries(dash).items() if name != "run"]
    for text in queries:
        ordinary = chdb.query(expand(text, variable_states(dash)[1], TR), "JSONCompact")
        columns = [c["name"] for c in json.loads(ordinary.bytes())["meta"]]
        for value in HOSTILE:
            state = {n: Variable(n, [value, "X1"] if n in {"area", "station", "vehicle_type"} else value)
                     for n in names}
            state["run"] = Variable("run", DB)
            got = json.loads(chdb.query(expand(text, state, TR), "JSONCompact").bytes())
            assert [c["name"] for c in got["meta"]] == columns, (value, text[:80])
            state["run"] = Variable("run", value)
            with pytest.raises(Exception, match=r"UNKNOWN_DATABASE|Database .* does(n't| not) exist") as e:
                chdb.query(expand(text, state, TR))
            assert quote(value, safe="") in str(e.value)  # the value, percent-encoded, named as a database


def test_a_selected_value_reaches_the_query_exactly(chdb) -> None:  # type: ignore[no-untyped-def]
    """The percent-encoded form is decoded back to the very value, whatever it holds: a station whose area is
    named with quotes, backslashes or accents is found by selecting that area, and only it."""
    names = [v for v in HOSTILE if "," not in v]  # several values travel as {a,b}: a comma cannot be told apart
    chdb.query("INSERT INTO vehicle_state (vehicle_id, vehicle_type, home_station, area, version) VALUES " + ", ".join(
        f"('V{i}', 'VSAV', 'H{i}', '{v.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}', 1)"
        for i, v in enumerate(names)))
    try:
        for i, v in enumerate(names):
            for selected in ([v], [v, "X1"]):
                state = {"run": Variable("run", DB), "area": Variable("area", selected)}
                got = chdb.query(expand(station_detail.STATION_VARIABLE_SQL, state, TR), "JSONCompact")
                assert json.loads(got.bytes())["data"] == [[f"H{i}"]], (v, selected)
    finally:
        chdb.query("TRUNCATE TABLE vehicle_state")
