"""`vigie whatif run | trace | calibrate | moveup` (README "What-if"): each subcommand reads a history (an import's
folder, or the raw history a ClickHouse database keeps), computes with ``streams/whatif/`` and prints; ``run
--store`` writes the figures to ClickHouse."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.settings import Settings, run_settings
from schemas.reference import Reference
from schemas.whatif import Scenario
from sinks.clickhouse import make_client
from sinks.history import records_from_clickhouse
from sinks.whatif import write_figures
from streams.registry import logical_topics
from streams.rows import WhatifFigureRow
from streams.whatif.durations import Durations
from streams.whatif.engine import demand, fleet_for
from streams.whatif.engine import run as rerun
from streams.whatif.kpi import kpis
from streams.whatif.study import (
    History,
    advise,
    cards_for,
    compare,
    evaluate_moveups,
    figure_rows,
    figures_of,
    render,
    render_checks,
    roster_for,
    staffing_for,
    write_events,
)
from streams.whatif.study import (
    calibrate as calibration,
)
from streams.whatif.travel import TravelModels
from vigie.when import instant


def run(s: Settings, a: argparse.Namespace) -> int:
    """The history unchanged and under the scenario, side by side; ``--store``, ``--out``."""
    history = load_history(s, a)
    scenario = Scenario.load(Path(a.scenario)) if a.scenario else Scenario()
    models = TravelModels.fit(history.trips())
    figures = compare(history, scenario, a.seeds, models)
    print(render(scenario, figures, a.seeds, models))
    if a.store:
        _store(s, a, figure_rows(a.store, scenario, a.seeds, figures, time.time()))
    if a.out:
        fleet = fleet_for(history.units, history.stations, scenario)
        calls = rerun(demand(history.calls, scenario.demand_scale, 0, scenario.surges), fleet, models, 0,
                      turnout_change=scenario.turnout_change_s, cards=cards_for(history, scenario, fleet),
                      staffing=staffing_for(scenario, fleet), roster=roster_for(history, scenario),
                      durations=Durations.fit(history.calls) if scenario.durations == "fitted" else None)
        n = write_events(calls, fleet, history.reference, Path(a.out))
        print(f"seed 0 of the scenario: {n} events in {a.out}/events.jsonl (vigie replay start --run NAME "
              f"--events {a.out}/events.jsonl --reference {a.out}/reference --speed 0)")
    return 0


def trace(s: Settings, a: argparse.Namespace) -> int:
    """The observed dispatches forced: exit 1 unless the figures are the observed ones."""
    history = load_history(s, a)
    targets = Scenario().targets
    seen = figures_of(kpis(history.calls, targets, history.start, history.end))
    traced = figures_of(kpis(rerun(history.calls, history.units, None, 0, "trace"), targets, history.start,
                             history.end))
    for name, value in seen.items():
        print(f"  {name:<60} {value:>10.1f} {traced[name]:>10.1f}")
    same = seen.keys() == traced.keys() and all(
        traced[k] == v or (v != v and traced[k] != traced[k]) for k, v in seen.items())
    verdict = "exactly" if same else "NOT exactly"
    print(f"{len(history.calls)} calls: the trace run gives the observed figures {verdict}")
    return 0 if same else 1


def calibrate(s: Settings, a: argparse.Namespace) -> int:
    history = load_history(s, a)
    checks, models = calibration(history, a.seeds, dict(Scenario().targets), a.fitted_durations)
    print(render_checks(checks, a.seeds, models))
    return 0


def moveup(s: Settings, a: argparse.Namespace) -> int:
    """Advice at a moment (``--at``), or move-ups on vs off over the history (``--evaluate``)."""
    if not a.at and not a.evaluate:
        print("vigie whatif moveup: --at (advice at a moment) or --evaluate (on vs off over the history)",
              file=sys.stderr)
        return 2
    history = load_history(s, a)
    models = TravelModels.fit(history.trips())
    if a.evaluate:
        types = a.type or ["VSAV"]
        figures = evaluate_moveups(history, models, a.seeds, types, dict(Scenario().targets), a.limit_min * 60)
        print(render(Scenario(name=f"move-ups of {', '.join(types)}"), figures, a.seeds, models)
              .replace("against the history unchanged", "against units going home"))
        return 0
    at = instant(a.at)
    for vtype in a.type or sorted({u.vehicle_type for u in history.units.values()}):
        advice = advise(history, models, at, vtype, a.limit_min * 60)
        print(f"{vtype}: " + ("no move raises the expected coverage by 0.1 point" if advice is None else
              f"move {advice.unit_id} from {advice.from_station} to {advice.to_station} "
              f"({advice.drive_s / 60:.1f} min drive): expected coverage within {a.limit_min:g} min "
              f"{100 * advice.coverage_before:.1f} % -> {100 * (advice.coverage_before + advice.gain):.1f} %"))
    return 0


def load_history(s: Settings, a: argparse.Namespace) -> History:
    """``--history FOLDER`` (an import's), or ``--history-db DB``: the raw history a database keeps (the live one,
    a replay's, a `vigie history` run's), with the reference of ``--reference`` (default: the deployment's)."""
    if a.history_db:
        names = {v: k for k, v in logical_topics(s).items()}
        events = ((names[r.topic], json.loads(r.value)) for r in records_from_clickhouse(s, a.history_db))
        reference = Reference.load(Path(a.reference) if a.reference else s.reference_dir)
        return History.from_events(events, reference, f"database {a.history_db}")
    if a.reference:
        return History.from_files(Path(a.history) / "events.jsonl", Path(a.reference))
    return History.load(Path(a.history))


def _store(s: Settings, a: argparse.Namespace, rows: list[WhatifFigureRow]) -> None:
    """The figures into the run's ``whatif_figures`` (the « Scénarios » dashboard)."""
    if a.run:
        s = run_settings(s, a.run)
    client = make_client(s)
    try:
        write_figures(client, s.clickhouse_database, rows)
    finally:
        client.disconnect()
    print(f"{len(rows)} figures stored in {s.clickhouse_database}.whatif_figures, study {a.store!r} "
          f"(dashboard « Scénarios »)")
