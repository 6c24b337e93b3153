"""The CAD importer on hand-made rows: every quirk repaired or rejected as documented, and counted."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.settings import PROJECT_ROOT
from schemas.reference import Reference
from vigie.cad.importer import Importer
from vigie.cad.mapping import Mapping

MAPPING = Mapping.load(PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml")
LA = ZoneInfo("America/Los_Angeles")
COLUMNS = ["Call Number", "Unit ID", "Call Type", "Received DtTm", "Dispatch DtTm", "Response DtTm", "On Scene DtTm",
           "Transport DtTm", "Hospital DtTm", "Available DtTm", "Battalion", "Station Area", "Final Priority",
           "Unit Type", "Location", "RowID"]


def row(call: str, unit: str, utype: str = "ENGINE", received: str = "", dispatch: str = "", response: str = "",
        on_scene: str = "", transport: str = "", hospital: str = "", available: str = "",
        location: str = "(37.78, -122.41)", call_type: str = "Medical Incident") -> dict[str, str]:
    return {"Call Number": call, "Unit ID": unit, "Call Type": call_type, "Received DtTm": received,
            "Dispatch DtTm": dispatch, "Response DtTm": response, "On Scene DtTm": on_scene,
            "Transport DtTm": transport, "Hospital DtTm": hospital, "Available DtTm": available, "Battalion": "B02",
            "Station Area": "28", "Final Priority": "3", "Unit Type": utype, "Location": location,
            "RowID": f"{call}-{unit}"}


def run(tmp_path: Path, rows: list[dict[str, str]]) -> tuple[dict, list[dict], Reference]:
    src = tmp_path / "export.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    Importer(MAPPING).run(src, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").open()]
    return report, events, Reference.load(tmp_path / "out" / "reference")


def local(text: str, fold: int = 0) -> str:
    naive = datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")
    return naive.replace(tzinfo=LA, fold=fold).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def statuses_of(events: list[dict], unit: str) -> list[tuple[str, str, str | None]]:
    return [(e["event"]["event_time"], e["event"]["status"], e["event"].get("intervention_id"))
            for e in events if e["topic"] == "vehicle-status" and e["event"]["vehicle_id"] == unit]


def test_a_normal_response_becomes_its_statuses_and_the_call(tmp_path: Path) -> None:
    report, events, ref = run(tmp_path, [row(
        "100", "E28", received="01/02/2017 10:00:00 AM", dispatch="01/02/2017 10:01:00 AM",
        response="01/02/2017 10:02:00 AM", on_scene="01/02/2017 10:06:30 AM", available="01/02/2017 10:40:00 AM")])
    assert report["imported"] == 1 and report["rejected"] == {} and report["repairs"] == {}
    assert statuses_of(events, "E28") == [
        (local("01/02/2017 10:01:00 AM"), "dispatched", "100"), (local("01/02/2017 10:02:00 AM"), "en_route", "100"),
        (local("01/02/2017 10:06:30 AM"), "on_scene", "100"),
        (local("01/02/2017 10:40:00 AM"), "available_on_radio", None)]
    calls = [(e["event"]["lifecycle"], e["event"]["event_time"]) for e in events if e["topic"] == "interventions"]
    assert calls == [("opened", local("01/02/2017 10:00:00 AM")), ("closed", local("01/02/2017 10:40:00 AM"))]
    assert ref.fleet["E28"].vehicle_type == "FPT" and ref.fleet["E28"].home_station == "SF28"
    assert ref.stations["SF28"].area == "B02"
    assert report["missing"] == {"Hospital DtTm": 1, "Transport DtTm": 1}
    assert report["share_rows_with_missing_timestamps"] == 0  # transport/hospital are optional


def test_quirks_are_repaired_rejected_and_counted(tmp_path: Path) -> None:
    rows = [
        # on scene before en route: clamped, order kept
        row("1", "E1", received="01/02/2017 10:00:00 AM", dispatch="01/02/2017 10:01:00 AM",
            response="01/02/2017 10:05:00 AM", on_scene="01/02/2017 10:04:00 AM", available="01/02/2017 11:00:00 AM"),
        # cancelled before arriving: no on-scene time
        row("2", "E2", received="01/02/2017 10:00:00 AM", dispatch="01/02/2017 10:01:00 AM",
            response="01/02/2017 10:02:00 AM", available="01/02/2017 10:03:00 AM"),
        # the same medic sent to call 4 before available from call 3
        row("3", "55", utype="MEDIC", received="01/02/2017 09:00:00 AM", dispatch="01/02/2017 09:01:00 AM",
            on_scene="01/02/2017 09:10:00 AM", available="01/02/2017 10:30:00 AM"),
        row("4", "55", utype="MEDIC", received="01/02/2017 10:00:00 AM", dispatch="01/02/2017 10:05:00 AM",
            on_scene="01/02/2017 10:15:00 AM", available="01/02/2017 10:45:00 AM"),
        row("5", "X9", utype="HOVERCRAFT", dispatch="01/02/2017 10:05:00 AM"),
        row("6", "E6", received="01/02/2017 10:00:00 AM"),
        row("7", "E7", dispatch="yesterday-ish"),
        row("8", "E8", dispatch="01/02/2017 10:05:00 AM", location=""),
    ]
    report, events, ref = run(tmp_path, rows)
    assert report["rows"] == 8 and report["imported"] == 4
    timestamp = "timestamp matching none of ['%m/%d/%Y %I:%M:%S %p', '%m/%d/%y %H:%M']"
    assert report["rejected"] == {  # grouped by reason, each with its samples (row number and value)
        "unit type (Unit Type) not in the mapping's unit_types": 1, "no dispatch time (Dispatch DtTm)": 1,
        "no readable location (Location)": 1, timestamp: 1}
    assert report["samples"]["unit type (Unit Type) not in the mapping's unit_types"] == ["row 5: 'HOVERCRAFT'"]
    assert report["samples"][timestamp] == ["row 7: 'yesterday-ish'"]
    assert report["repairs"] == {
        "On Scene DtTm before the previous status: clamped to it": 1,
        "unit sent to another call before available: earlier response ended there": 1}
    e1 = statuses_of(events, "E1")
    assert [s for _, s, _ in e1] == ["dispatched", "en_route", "on_scene", "available_on_radio"]
    assert e1[1][0] == e1[2][0]  # clamped: same time, lifecycle order kept
    medic = statuses_of(events, "55")
    assert [(s, i) for _, s, i in medic] == [("dispatched", "3"), ("on_scene", "3"), ("dispatched", "4"),
                                             ("on_scene", "4"), ("available_on_radio", None)]
    assert ref.fleet["55"].home_station == "SF-POOL-VSAV" and ref.stations["SF-POOL-VSAV"].area == "CITY"
    assert report["missing"]["On Scene DtTm"] == 1
    assert report["share_rows_with_missing_timestamps"] == pytest.approx(3 / 4)  # E2 on scene; medic en route x2
    assert report["share_rows_with_inconsistent_timestamps"] == pytest.approx(2 / 4)


def test_daylight_saving_changes(tmp_path: Path) -> None:
    # 2018-11-04: 01:00-02:00 happens twice in San Francisco; 2018-03-11: 02:00-03:00 does not exist
    rows = [
        row("1", "E1", received="11/04/2018 01:50:00 AM", dispatch="11/04/2018 01:55:00 AM",
            response="11/04/2018 01:10:00 AM", available="11/04/2018 01:40:00 AM"),
        row("2", "E2", received="03/11/2018 01:58:00 AM", dispatch="03/11/2018 02:10:00 AM",
            available="03/11/2018 03:30:00 AM"),
    ]
    report, events, _ = run(tmp_path, rows)
    e1 = statuses_of(events, "E1")
    # dispatched in the first 01:55, en route at the second 01:10 (after the clocks went back): in order
    assert e1[0][0] == local("11/04/2018 01:55:00 AM", fold=0)
    assert e1[1][0] == local("11/04/2018 01:10:00 AM", fold=1) > e1[0][0]
    assert report["repairs"]["ambiguous local time (clocks going back): the in-order occurrence taken"] == 3
    e2 = statuses_of(events, "E2")
    assert e2[0][0] == "2018-03-11T10:10:00Z"  # 02:10 does not exist: read as 03:10 PDT
    assert report["repairs"]["non-existent local time (clocks going forward): moved one hour later"] == 1
    assert report["rejected"] == {}


def test_minute_truncated_export_keeps_lifecycle_order(tmp_path: Path) -> None:
    """The 2018 file went through Excel: M/D/YY H:MM, several statuses in the same minute."""
    r = row("9", "E3", received="1/1/18 23:50", dispatch="1/1/18 23:54", response="1/1/18 23:54",
            on_scene="1/1/18 23:54", available="1/2/18 0:08")
    _, events, _ = run(tmp_path, [r])
    e3 = statuses_of(events, "E3")
    assert [s for _, s, _ in e3] == ["dispatched", "en_route", "on_scene", "available_on_radio"]
    assert e3[0][0] == e3[1][0] == e3[2][0] == "2018-01-02T07:54:00Z"  # PST = UTC-8


def test_the_brigades_own_stations_and_fleet_override_the_derived_ones(tmp_path: Path) -> None:
    (tmp_path / "stations.csv").write_text("station_id,name,area,lat,lon\nHQ,Headquarters,NORTH,37.8,-122.4\n")
    (tmp_path / "fleet.csv").write_text("vehicle_id,vehicle_type,home_station\nE28,FPT,HQ\n")
    src = tmp_path / "export.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerow(row("1", "E28", received="01/02/2017 10:00:00 AM", dispatch="01/02/2017 10:01:00 AM",
                       available="01/02/2017 10:30:00 AM"))
    Importer(MAPPING).run(src, tmp_path / "out", tmp_path / "stations.csv", tmp_path / "fleet.csv")
    ref = Reference.load(tmp_path / "out" / "reference")
    assert set(ref.stations) == {"HQ"} and ref.fleet["E28"].home_station == "HQ"
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").open()]
    assert {e["key"] for e in events if e["topic"] == "vehicle-status"} == {"HQ"}


def test_a_mapping_extends_another_and_names_sectors_apart_from_station_areas(tmp_path: Path) -> None:
    variant = tmp_path / "variant.toml"
    variant.write_text(f'extends = "{PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"}"\n'
                       'name = "variant"\n[columns]\nsector = "Neighbourhood"\nstation_area = "Station Area"\n')
    m = Mapping.load(variant)
    assert m.name == "variant" and m.columns.sector == "Neighbourhood" and m.columns.station_area == "Station Area"
    assert m.columns.unit_id == MAPPING.columns.unit_id and m.unit_types == MAPPING.unit_types  # the rest inherited
    src = tmp_path / "export.csv"
    rows = [row("1", "E28", received="01/05/2017 10:00:00 AM", dispatch="01/05/2017 10:01:00 AM",
                available="01/05/2017 10:30:00 AM")]
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, [*COLUMNS, "Neighbourhood"])
        w.writeheader()
        w.writerows([{**r, "Neighbourhood": "  Nob Hill / Lower  "} for r in rows])
    Importer(m).run(src, tmp_path / "out")
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").open()]
    sectors = {e["event"]["location"]["sector"] for e in events if e["topic"] == "interventions"}
    assert sectors == {"Nob-Hill-Lower"}  # made an identifier: runs of other characters -> one "-"
    ref = Reference.load(tmp_path / "out" / "reference")
    assert ref.stations["SF28"].area == "B02"  # the station still comes from the station area
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    with pytest.raises(ValueError, match="extends itself"):
        Mapping.load(loop)


def test_types_beyond_the_catalogue_are_declared_kept_apart_and_written_with_the_reference(tmp_path: Path) -> None:
    """SF's support units and chiefs (one catalogue type, VL, before): a support unit is a VTU in its events and its
    reference, which lists the mapping's extra types in vehicle_types.csv and loads them back; a mapping naming a
    type it does not declare is refused, naming it."""
    report, events, ref = run(tmp_path, [
        row("1", "FB3", utype="SUPPORT", received="01/05/2017 10:00:00 AM", dispatch="01/05/2017 10:01:00 AM",
            available="01/05/2017 10:30:00 AM"),
        row("2", "B02", utype="CHIEF", received="01/05/2017 11:00:00 AM", dispatch="01/05/2017 11:01:00 AM",
            available="01/05/2017 11:30:00 AM")])
    assert report["rejected"] == {}
    types = {e["event"]["vehicle_id"]: e["event"]["vehicle_type"] for e in events if e["topic"] == "vehicle-status"}
    assert types == {"FB3": "VTU", "B02": "VL"}
    assert ref.fleet["FB3"].vehicle_type == "VTU" and ref.vehicle_types["VTU"] == MAPPING.vehicle_types["VTU"]
    with (tmp_path / "out" / "reference" / "vehicle_types.csv").open() as f:
        assert {r["code"] for r in csv.DictReader(f)} == {"VLSSSM", "VTU", "VLRCCI"}
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "{PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"}"\n'
                   '[unit_types]\nSUPPORT = "VTUX"\n')
    with pytest.raises(ValueError, match="unit_types names VTUX: neither in Vigie's catalogue"):
        Mapping.load(bad)
