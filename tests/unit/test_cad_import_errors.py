"""`vigie import` on the mistakes a user from another brigade makes: each ends with exit status 2 and a message
saying what to change (no traceback); files in other encodings, delimiters and archives are read; rejected rows and
values the mapping does not know are grouped by reason with samples."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from tests.unit.test_cad_import import COLUMNS, row
from vigie.cli import main

SFFD = PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"
GOOD = [row("1", "E28", received="01/05/2017 10:00:00 AM", dispatch="01/05/2017 10:01:00 AM",
            available="01/05/2017 10:30:00 AM"),
        row("2", "T10", utype="TRUCK", received="01/05/2017 11:00:00 AM", dispatch="01/05/2017 11:02:00 AM",
            available="01/05/2017 11:40:00 AM", call_type="Structure Fire")]


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8",
              columns: list[str] = COLUMNS) -> Path:
    text = io.StringIO()
    w = csv.DictWriter(text, columns, delimiter=delimiter)
    w.writeheader()
    w.writerows(rows)
    path.write_bytes(text.getvalue().encode(encoding))
    return path


def vigie_import(tmp_path: Path, source: Path, *extra: str, mapping: Path = SFFD) -> int:
    return main(["import", "--mapping", str(mapping), "--input", str(source), "--out", str(tmp_path / "out"), *extra])


def test_a_mapping_with_a_field_missing_or_broken_toml_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lacking = tmp_path / "lacking.toml"
    lacking.write_text(SFFD.read_text().replace('unit_id = "Unit ID"\n', ""))
    assert vigie_import(tmp_path, write_csv(tmp_path / "a.csv", GOOD), mapping=lacking) == 2
    assert "columns.unit_id: Field required" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    assert vigie_import(tmp_path, write_csv(tmp_path / "a.csv", GOOD), mapping=broken) == 2
    assert "is not valid TOML" in capsys.readouterr().err


def test_a_column_the_file_does_not_have_is_named_with_the_closest(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'extends = "{SFFD}"\n[columns]\nunit_id = "Unit Idd"\n[nature]\ncolumn = "Cal Type"\n'
                     'default = "other"\n')
    assert vigie_import(tmp_path, write_csv(tmp_path / "a.csv", GOOD), mapping=wrong) == 2
    err = capsys.readouterr().err
    assert "columns.unit_id = 'Unit Idd' is not a column of the file (closest: 'Unit ID'" in err
    assert "nature.column = 'Cal Type' is not a column of the file (closest: 'Call Type'" in err
    assert "Traceback" not in err


def test_latin1_semicolons_and_zip_are_read(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    accented = [{**r, "Call Type": "Medical Incident", "Battalion": "Bé02"} for r in GOOD]
    latin = write_csv(tmp_path / "latin.csv", accented, delimiter=";", encoding="latin-1")
    assert vigie_import(tmp_path, latin) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8: byte 0xe9" in err and "--encoding" in err
    assert vigie_import(tmp_path, latin, "--encoding", "latin-1") == 0  # the semicolons are found by themselves
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["imported"] == 2 and not report["rejected"]
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(write_csv(tmp_path / "plain.csv", GOOD), "export/calls.csv")
    assert vigie_import(tmp_path, archive) == 0
    assert vigie_import(tmp_path, tmp_path / "nowhere.csv") == 2
    assert "No such file" in capsys.readouterr().err


def test_when_every_row_is_rejected_the_report_says_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = [row(str(i), f"E{i}", dispatch="01/05/2017 10:01:00 AM", location="somewhere") for i in range(5)]
    bad += [{**row("9", "Engine 9", dispatch="01/05/2017 10:01:00 AM"), "RowID": "9-E9"}]
    assert vigie_import(tmp_path, write_csv(tmp_path / "bad.csv", bad)) == 2
    out = capsys.readouterr()
    assert "no row of" in out.err and "reasons are in the report above" in out.err
    assert re.search(r"rejected +5  no readable location \(Location\)", out.out)
    assert "e.g. row 1: 'somewhere'" in out.out  # one line per reason, with samples (distinct values)
    assert "unit id not an identifier" in out.out and "'Engine 9'" in out.out


def test_values_the_mapping_does_not_know_are_counted_never_silent(tmp_path: Path) -> None:
    rows = [{**GOOD[0], "Call Type": "Alien Landing"}, {**GOOD[1], "Final Priority": "Z"}]
    assert vigie_import(tmp_path, write_csv(tmp_path / "a.csv", rows)) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["unmapped"] == {"nature (Call Type) not in the mapping: 'other' used": 1,
                                  "priority (Final Priority) not in the mapping: 3 used": 1}
    assert report["samples"]["nature (Call Type) not in the mapping: 'other' used"] == ["'Alien Landing'"]


def test_the_mapping_files_json_schema_is_current_and_every_shipped_mapping_loads() -> None:
    from schemas.export import json_schemas
    from vigie.cad.mapping import Mapping

    (path, text), = json_schemas([Mapping]).items()
    assert path.read_text() == text, f"{path} is stale: run `make schemas`"
    for mapping in sorted((PROJECT_ROOT / "deploy" / "cad-mappings").glob("*.toml")):
        Mapping.load(mapping)
