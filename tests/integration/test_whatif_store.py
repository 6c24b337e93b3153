"""What-if figures on the real parts: `vigie whatif run --store` (two scenarios of one study, on the SF week) writes
``whatif_figures`` in ClickHouse 18.16; every panel and the variable of « Scénarios » give the same on 18.16 and the
current engine, and the figures the comparison computes here in-process (same history, seeds and models)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from grafana import generate, scenarios
from grafana.macros import TimeRange, Variable, expand
from schemas.whatif import Scenario
from streams.whatif.study import History, compare
from streams.whatif.travel import TravelModels
from tests.integration.conftest import Stack, new_settings
from tests.integration.engines import Engines
from vigie.cad.importer import Importer
from vigie.cad.mapping import Mapping

pytestmark = pytest.mark.integration
SF_WEEK = PROJECT_ROOT.parent / "shared" / "data" / "sffd-calls" / "sffd_units_2016-12-31_to_2017-01-07.csv.gz"
MAPPING = PROJECT_ROOT / "deploy" / "cad-mappings" / "sffd.toml"
DASH = generate.load(scenarios.UID)
SCENARIOS = {"SF03 closed": 'name = "SF03 closed"\nclose_stations = ["SF03"]\n',
             "one engine more": 'name = "one engine more"\n[[add_units]]\nunit_id = "E99"\nvehicle_type = "FPT"\n'
                                'station = "SF44"\n'}


def query_of(title_start: str) -> str:
    return next(q.text for q in generate.panel_queries(DASH) if q.panel.startswith(title_start))


def test_stored_figures_on_the_scenarios_dashboard(stack: Stack, tmp_path: Path) -> None:
    s = new_settings(stack)
    Importer(Mapping.load(MAPPING)).run(SF_WEEK, tmp_path / "sf")
    env = {**os.environ, **s.to_env()}
    for name, text in SCENARIOS.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        done = subprocess.run([sys.executable, "-m", "vigie.cli", "whatif", "run", "--history", str(tmp_path / "sf"),
                               "--scenario", str(path), "--seeds", "2", "--store", "sf-week"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "figures stored in" in done.stdout
    history = History.load(tmp_path / "sf")
    models = TravelModels.fit(history.trips())
    want = {(f.name, name): f for name, text in SCENARIOS.items()
            for f in compare(history, Scenario.model_validate(_toml(text)), 2, models)}
    eng = Engines(stack, s)
    try:
        tr = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))
        v = {"run": Variable("run", s.clickhouse_database), "study": Variable("study", "sf-week")}
        assert eng.both(expand(scenarios.STUDY_VARIABLE_SQL, v, tr), "study variable").splitlines() == ["sf-week"]
        rows = [line.split("\t") for line in eng.both(expand(query_of("Indicateurs"), v, tr), "side by side")
                .splitlines()]
        assert len(rows) == len(want) and [(r[0], r[1]) for r in rows] == sorted(want)
        for r in rows:
            f = want[(r[0], r[1])]
            for got, expected in zip(r[2:6], (f.baseline, f.scenario, f.diff, f.half_width), strict=True):
                assert (math.isnan(expected) and got == "nan") or float(got) == pytest.approx(expected, abs=1e-9)
            assert r[6] == "2"
        change = [line.split("\t") for line in eng.both(expand(query_of("Arrivée du premier engin"), v, tr),
                                                         "first arrival change").splitlines()]
        first = {name: want[(scenarios.FIRST_ARRIVAL, name)] for name in SCENARIOS}
        assert [r[0] for r in change] == sorted(SCENARIOS)
        for r in change:
            f = first[r[0]]
            assert float(r[1]) == pytest.approx(f.diff, abs=1e-9)
            assert float(r[2]) == pytest.approx(f.diff - f.half_width, abs=1e-9)
        assert first["SF03 closed"].diff > 0  # a station fewer: later, on average
    finally:
        eng.chdb.close()


def _toml(text: str) -> dict:  # type: ignore[type-arg]
    import tomllib

    return tomllib.loads(text)


def test_the_history_read_from_a_databases_raw_history_is_the_imported_one(stack: Stack, tmp_path: Path) -> None:
    """The SF week stored by the batch path (`vigie history`), then read back by `vigie whatif --history-db`: the
    same calls and responses as from the import's folder, and the trace run gives the observed figures exactly."""
    import argparse

    from vigie.whatif import load_history

    Importer(Mapping.load(MAPPING)).run(SF_WEEK, tmp_path / "sf")
    s = new_settings(stack).model_copy(update={"reference_dir": tmp_path / "sf" / "reference"})
    env = {**os.environ, **s.to_env()}
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "history", "--from-file",
                           str(tmp_path / "sf" / "events.jsonl"), "--processes", "1"], env=env, capture_output=True,
                          text=True, timeout=600, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    stored = load_history(s, argparse.Namespace(history=None, history_db=s.clickhouse_database, reference=None))
    imported = History.load(tmp_path / "sf")
    assert len(stored.calls) == len(imported.calls) == 3560
    assert stored.calls == imported.calls and stored.units == imported.units
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "whatif", "trace", "--history-db", s.clickhouse_database,
                           "--reference", str(tmp_path / "sf" / "reference")], env=env, capture_output=True,
                          text=True, timeout=300, cwd=PROJECT_ROOT)
    assert done.returncode == 0 and "3560 calls: the trace run gives the observed figures exactly" in done.stdout, (
        done.stdout[-2000:], done.stderr[-2000:])


def test_crews_read_from_a_databases_raw_history_are_the_files_and_a_scenario_runs_on_them(
        stack: Stack, tmp_path: Path) -> None:
    """Six simulated hours with crews, stored by the batch path, then read back by `vigie whatif --history-db`: the
    same staff on duty as from the event file; `vigie whatif run --scenario` with `crews = "history"` runs on it."""
    import argparse
    import json

    from devtools.simulator import Simulator
    from schemas.reference import Reference
    from vigie.whatif import load_history

    s = new_settings(stack)
    ref = Reference.load(s.reference_dir)
    events = tmp_path / "events.jsonl"
    with events.open("w") as f:
        for e in Simulator(ref, seed=4, start=datetime(2026, 1, 9, 6, tzinfo=UTC), staffing_ratio=0.5).events(6 * 3600):
            f.write(json.dumps({"topic": e.topic, "key": e.key, "event": e.event.model_dump(mode="json")}) + "\n")
    env = {**os.environ, **s.to_env()}
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "history", "--from-file", str(events), "--processes",
                           "1"], env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    stored = load_history(s, argparse.Namespace(history=None, history_db=s.clickhouse_database, reference=None))
    from_file = History.from_files(events, s.reference_dir)
    assert stored.roster is not None and from_file.roster is not None
    assert stored.roster.times == from_file.roster.times and stored.roster.staff == from_file.roster.staff
    assert sum(len(t) for t in stored.roster.times.values()) > len(stored.roster.times)  # staff changed in the day
    scenario = tmp_path / "crews.toml"
    scenario.write_text('name = "crews on duty"\ncrews = "history"\nremove_units = ["VSAV-S01-1"]\n')
    done = subprocess.run([sys.executable, "-m", "vigie.cli", "whatif", "run", "--history-db", s.clickhouse_database,
                           "--scenario", str(scenario), "--seeds", "2"], env=env, capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT)
    assert done.returncode == 0 and "what-if 'crews on duty'" in done.stdout, (done.stdout[-2000:],
                                                                             done.stderr[-2000:])
