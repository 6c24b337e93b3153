"""Live move-up advice on the real parts: hand-made live tables in ClickHouse 18.16 (vehicles, interventions, 1-minute
windows, engagements), `vigie moveup` once, then the board's query and « Situation »'s panel on 18.16 and the current
engine give the move stated by hand (the map of tests/unit/test_whatif.py: two free ambulances at SA, 10 calls at
each of two places 3 km apart, q = 0.5, within 4 min)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings
from grafana import generate, situation
from grafana.macros import TimeRange, Variable, expand
from schemas.reference import FleetVehicle, Reference, Station
from sinks.clickhouse import make_client, to_columns
from sinks.queries import moveup_advice_query, trips_query
from streams import registry
from streams.rows import EngagementRow, InterventionRow, StationWindowRow, VehicleStateRow
from tests.integration.conftest import Stack, new_settings
from tests.integration.engines import Engines

pytestmark = pytest.mark.integration
A, B = (48.85, 2.30), (48.85, 2.341)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()


def insert(s: Settings, name: str, rows: list[tuple[object, ...]]) -> None:
    spec = next(t for t in registry.tables(s) if t.name == name)
    client = make_client(s, s.clickhouse_database)
    try:
        client.execute(f"INSERT INTO {name} ({', '.join(spec.columns)}) VALUES", to_columns(spec, rows),
                       columnar=True)
    finally:
        client.disconnect()


def moveup(s: Settings) -> str:
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "moveup", "--limit-min", "4"],
                          env={**os.environ, **s.to_env()}, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_advice_computed_from_the_live_tables_is_stored_and_shown(stack: Stack, tmp_path: Path) -> None:
    ref = Reference.build([Station(station_id="SA", name="A", area="G1", lat=A[0], lon=A[1]),
                           Station(station_id="SB", name="B", area="G1", lat=B[0], lon=B[1])],
                          [FleetVehicle(vehicle_id=v, vehicle_type=t, home_station=h)
                           for v, t, h in (("A1", "VSAV", "SA"), ("A2", "VSAV", "SA"), ("A3", "VSAV", "SB"),
                                           ("E1", "FPT", "SA"), ("E2", "FPT", "SB"))])
    ref.write(tmp_path / "ref")
    s = new_settings(stack).model_copy(update={"reference_dir": tmp_path / "ref"})
    state = [("A1", "VSAV", "SA", "available_at_station", "available"),
             ("A2", "VSAV", "SA", "available_on_radio", "available"),
             ("A3", "VSAV", "SB", "on_scene", "engaged"), ("E1", "FPT", "SA", "available_at_station", "available"),
             ("E2", "FPT", "SB", "on_scene", "engaged")]
    insert(s, "vehicle_state", [VehicleStateRow(v, t, h, "G1", st, cat, "", T0, T0, 0.0, 0.0, 1)
                                for v, t, h, st, cat in state])
    insert(s, "interventions", [InterventionRow(f"{z}{k}", "fire", 1, z, *place, "closed", T0 - 3600 * k, T0, 1)
                                for z, place in (("ZA", A), ("ZB", B)) for k in range(10)])
    # over the last day: per type, half the vehicles engaged (q = 0.5)
    insert(s, "station_windows", [StationWindowRow(T0 - 60 * m, 60, st, "G1", t, avail, eng, 0, 0, avail, 0.0, 0, 0, 0)
                                  for m in range(30) for st, t, avail, eng in (
                                      ("SA", "VSAV", 2, 0), ("SB", "VSAV", 0, 2), ("SA", "FPT", 1, 0),
                                      ("SB", "FPT", 0, 1))])
    # a few trips only: the default model (3 km over 4 min)
    insert(s, "engagements", [EngagementRow(f"ZA{k}", "A1", "VSAV", "SA", "G1", T0 - 3600 * k, T0 - 3600 * k,
                                            T0 - 3600 * k + 60, T0 - 3600 * k + 200, 0.0, 0.0, T0, 60.0, 140.0, 1)
                              for k in range(5)])
    out = moveup(s)
    assert "VSAV: move A1 from SA to SB" in out and "37.5 % -> 50.0 %" in out, out
    assert "FPT: no move raises the expected coverage within 4 min by 0.1 point (25.0 %, 1 free)" in out, out
    eng = Engines(stack, s)
    try:
        board = [line.split("\t") for line in eng.both(moveup_advice_query(s.clickhouse_database),
                                                       "board move-up").splitlines()]
        assert [r[:4] for r in board] == [["FPT", "", "", ""], ["VSAV", "A1", "SA", "SB"]]
        assert [float(r[5]) for r in board] == pytest.approx([0.25, 0.375])
        assert [float(r[6]) for r in board] == pytest.approx([0.25, 0.5])
        sql = next(q.text for q in generate.panel_queries(generate.load(situation.UID))
                   if q.panel.startswith("Mouvement conseillé"))
        tr = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
        panel = [line.split("\t") for line in eng.both(expand(sql, {"run": Variable("run", s.clickhouse_database)},
                                                              tr), "panel move-up").splitlines()]
        assert [r[:2] for r in panel] == [["FPT", "—"], ["VSAV", "A1 : SA → SB"]]
        assert [float(x) for x in panel[1][3:5]] == pytest.approx([37.5, 50.0])
    finally:
        eng.chdb.close()
    # 60 trips of a fast drive (3 km in about 2 min): the fitted model has every unit reach both places in time
    insert(s, "engagements", [EngagementRow(f"ZB{k % 10}", f"T{k}", "VSAV", "SA", "G1", T0 - 60 * k, T0 - 60 * k,
                                            T0 - 60 * k + 30, T0 - 60 * k + 30 + 20 + k, 0.0, 0.0, T0, 30.0,
                                            20.0 + k, 1) for k in range(60)])
    out = moveup(s)
    assert "VSAV: no move raises the expected coverage within 4 min by 0.1 point (75.0 %, 2 free)" in out, out
    eng = Engines(stack, s)
    try:
        trips = eng.both(trips_query(s.clickhouse_database, 28), "move-up trips").splitlines()
        assert len(trips) == 65 and all(t.split("\t")[4] == "SA" for t in trips)
        assert eng.both("SELECT trips FROM moveup_advice FINAL WHERE vehicle_type = 'VSAV'", "trips") == "65\n"
    finally:
        eng.chdb.close()
