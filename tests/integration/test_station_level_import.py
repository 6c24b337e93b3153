"""A station-level export — one row per call, a date column and time-of-day columns crossing midnight and both
clock changes, no appliance id, type or location, Latin-1 with semicolons — imported with a mapping file alone
(deploy/cad-mappings/station-level.example.toml) and replayed (the batch path) into ClickHouse; every
call's response times compared with a computation made here from the CSV (plain Python, not the importer)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clickhouse_driver import Client

from core.settings import PROJECT_ROOT, run_settings
from tests.integration.conftest import Stack, new_settings

pytestmark = pytest.mark.integration
MAPPING = PROJECT_ROOT / "deploy" / "cad-mappings" / "station-level.example.toml"
PARIS = ZoneInfo("Europe/Paris")
HEADER = "Date;Numéro;Centre;Nature;Appel;Mobilisé;Parti;Sur place;Disponible"
ROWS = [
    "14/03/2026;1001;Saint-Denis;SAP;10:00;10:02;10:04;10:15;11:00",
    "14/03/2026;1002;Aubervilliers;INC;23:50;23:52;23:55;00:07;00:50",  # on scene after midnight
    "14/03/2026;1003;Saint-Ouen-l'Aumône;AVP;23:58;00:01;00:03;00:20;01:10",  # dispatched after midnight
    "14/03/2026;1006;Saint-Denis;EXERCICE;11:00;11:01;11:02;11:10;11:30",  # filtered out
    "14/03/2026;1007;Saint-Denis;SAP;12:00;12:01;;12:20;13:00",  # no departure time
    "14/03/2026;1008;Aubervilliers;sap ;15:00;15:03;15:05;;15:30",  # cancelled before arriving
    "29/03/2026;1004;Saint-Denis;SAP;01:50;01:52;01:55;03:05;04:00",  # clocks forward at 02:00
    "25/10/2026;1005;Aubervilliers;SAP;01:55;02:05;02:20;02:10;03:30",  # clocks back at 03:00: 02:10 is the 2nd
]
STATIONS = ("station_id,name,area,lat,lon\nsaint-denis,Saint-Denis,nord,48.936,2.357\n"
            "aubervilliers,Aubervilliers,nord,48.914,2.382\nsaint-ouen-l-aumone,Saint-Ouen,ouest,49.044,2.112\n")


def instants(row: str) -> tuple[str, float, list[float | None]]:
    """(call, call time, [dispatched, en route, on scene, available]) in UTC epoch seconds: each time of day on the
    row's date, or on the next day when earlier than the time before it; a repeated hour (clocks going back) read
    as the occurrence that keeps the row in order."""
    date, call, _, _, *times = row.split(";")
    day = datetime.strptime(date, "%d/%m/%Y")
    out: list[float | None] = []
    previous: float | None = None
    for text in times:
        if not text:
            out.append(None)
            continue
        naive = datetime.combine(day, datetime.strptime(text, "%H:%M").time())
        for shift in (0, 1):  # today, else tomorrow
            candidates = sorted({(naive + timedelta(days=shift)).replace(tzinfo=PARIS, fold=f).timestamp()
                                 for f in (0, 1)})
            fits = [c for c in candidates if previous is None or c >= previous]
            if fits:
                out.append(fits[0])
                previous = fits[0]
                break
    return call, out[0], out[1:]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def replayed(stack: Stack, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = new_settings(stack)
    work = tmp_path_factory.mktemp("station-level")
    source = work / "interventions.csv"
    source.write_bytes(("\n".join([HEADER, *ROWS]) + "\n").encode("latin-1"))
    (work / "stations.csv").write_text(STATIONS)
    env = {**os.environ, **base.to_env(), "VIGIE_RUN_DIR": str(work / "run")}
    vigie = [sys.executable, "-m", "vigie.cli"]
    imported = subprocess.run([*vigie, "import", "--mapping", str(MAPPING), "--input", str(source), "--out",
                               str(work / "out"), "--stations", str(work / "stations.csv")], env=env,
                              capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    replay = subprocess.run([*vigie, "replay", "start", "--run", "stationlevel", "--events",
                             str(work / "out" / "events.jsonl"), "--speed", "0"], env=env, capture_output=True,
                            text=True, timeout=600, cwd=PROJECT_ROOT)
    assert replay.returncode == 0, replay.stderr[-3000:]
    return run_settings(base, "stationlevel", work / "out" / "reference"), imported.stdout


def test_every_call_is_imported_from_the_mapping_alone(replayed) -> None:  # type: ignore[no-untyped-def]
    _, shown = replayed
    assert "rows read 8, imported 7, rejected 0" in shown
    assert "filtered        1  filter[0] on Nature" in shown
    assert "availability NOT tracked" in shown


def test_response_times_equal_the_csv(replayed) -> None:  # type: ignore[no-untyped-def]
    s, _ = replayed
    ch = Client("127.0.0.1", port=s.clickhouse_port, database=s.clickhouse_database)
    want_arrival, want_turnout, want_travel = {}, {}, {}
    for row in ROWS:
        if ";EXERCICE;" in row:
            continue
        call, opened, (dispatched, en_route, on_scene, _) = instants(row)
        want_arrival[call] = int(on_scene - opened) if on_scene is not None else -1
        want_turnout[call] = en_route - dispatched if en_route is not None else -1
        want_travel[call] = on_scene - en_route if en_route is not None and on_scene is not None else -1
    got = {c: (a, t, v) for c, a, t, v in ch.execute(
        "SELECT intervention_id, call_to_first_arrival_s, first_unit_turnout_s, first_unit_travel_s "
        "FROM intervention_response_times")}
    assert {c: a for c, (a, _, _) in got.items()} == want_arrival
    engaged = {c: (t, v) for c, t, v in ch.execute(
        "SELECT intervention_id, turnout_s, travel_s FROM engagements FINAL")}
    assert {c: t for c, (t, _) in engaged.items()} == pytest.approx(want_turnout)
    assert {c: v for c, (_, v) in engaged.items()} == pytest.approx(want_travel)
    # the hand-checked ones: across midnight 12 min of travel; clocks forward 01:55 -> 03:05 is 10 min; clocks back
    # 02:20 (first) -> 02:10 (second) is 50 min
    assert want_travel["1002"] == 720 and want_travel["1004"] == 600 and want_travel["1005"] == 3000
    quality = dict(ch.execute("SELECT detail, rows FROM data_quality FINAL WHERE kind = 'summary'"))
    assert "availability not tracked" in quality


def test_the_board_says_availability_is_not_tracked(replayed) -> None:  # type: ignore[no-untyped-def]
    from vigie.board import UNTRACKED

    s, _ = replayed
    shown = subprocess.run([sys.executable, "-m", "vigie.cli", "board", "--once"],  # s: the run's database
                           env={**os.environ, **s.to_env()}, capture_output=True, text=True, timeout=60,
                           cwd=PROJECT_ROOT)
    assert shown.returncode == 0 and UNTRACKED in shown.stdout, shown.stdout + shown.stderr


def test_the_dashboards_show_no_availability_figure_and_say_why(replayed) -> None:  # type: ignore[no-untyped-def]
    from grafana import generate, situation, station_detail
    from grafana.common import AVAILABILITY_NOTE, AVAILABILITY_TRACKED
    from grafana.macros import ALL, TimeRange, Variable, expand

    s, _ = replayed
    ch = Client("127.0.0.1", port=s.clickhouse_port)
    tr = TimeRange(datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 11, 1, tzinfo=PARIS))
    state = {"run": Variable("run", s.clickhouse_database), "availability": Variable("availability", ""),
             **{n: Variable(n, [ALL]) for n in ("area", "station", "vehicle_type")},
             **{n: Variable(n, "600") for n in ("turnout_target_s", "travel_target_s", "arrival_target_s")}}
    gated = shown_without_the_gate = 0
    for uid in (situation.UID, station_detail.UID):
        dash = generate.load(uid)
        assert ch.execute(expand(generate.variable_queries(dash)["availability"], state, tr)) == [(AVAILABILITY_NOTE,)]
        for q in generate.panel_queries(dash):
            if "${availability}" not in q.panel:
                continue
            got = ch.execute(expand(q.text, state, tr), with_column_types=True)
            rows, columns = got[0], [c for c, _ in got[1]]
            if q.panel.startswith("Capacité actuelle"):  # per station now: engaged stays, available is empty
                assert rows and all(r[columns.index("available")] is None for r in rows), q.panel
            else:
                assert rows == [], q.panel
            gated += 1
            shown_without_the_gate += bool(ch.execute(expand(q.text.replace(AVAILABILITY_TRACKED, "1"), state, tr)))
    assert gated == 10
    assert shown_without_the_gate >= 6  # pseudo-units "available" after their call: what the gate keeps off
    engaged = next(q.text for q in generate.panel_queries(generate.load(situation.UID))
                   if q.panel == "Engagés par type")
    assert ch.execute(expand(engaged, state, tr))  # engaged counts are valid without appliances
