"""What `vigie whatif` does: re-run an imported history (``vigie import``'s folder) under a scenario, against the same
history unchanged, over paired seeds; print the figures side by side with each difference's 95 % interval; write
the scenario's run as Vigie events for ``vigie replay start`` (its own run: every table, panel and the board)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from scipy.stats import t as student

from core.geo import haversine_m
from schemas.codec import event_line
from schemas.events import (
    InterventionEvent,
    InterventionNature,
    Lifecycle,
    Location,
    Position,
    VehicleStatus,
    VehicleStatusEvent,
)
from schemas.reference import FleetVehicle, Reference, Station
from schemas.whatif import Scenario
from streams.crewing import Crewing
from streams.rows import WhatifFigureRow
from streams.whatif.bases import POOL_PREFIX, units_from
from streams.whatif.cards import RunCards
from streams.whatif.coverage import coverage, demand_points
from streams.whatif.durations import Durations
from streams.whatif.engine import Rankings, ScenarioError, Unit, demand, fleet_for, on_duty_from, run
from streams.whatif.history import Call, calls_from_events, read_events
from streams.whatif.kpi import ALL, RunKpis, kpis
from streams.whatif.moveup import MoveUp, recommend
from streams.whatif.relocate import MoveUps, late_share, run_relocating
from streams.whatif.roster import CrewRecord, Roster, record_of
from streams.whatif.travel import TravelModel, TravelModels

COVERAGE_TYPES = ("FPT", "VSAV")  # the engines and the ambulances


@dataclass(frozen=True)
class History:
    calls: list[Call]
    units: dict[str, Unit]
    stations: dict[str, tuple[float, float]]
    reference: Reference
    start: float
    end: float
    roster: Roster | None = None  # the staff on duty, when the history has crew records

    @classmethod
    def load(cls, folder: Path) -> History:
        """An import's folder: ``events.jsonl`` and ``reference/``."""
        if not (folder / "events.jsonl").exists():
            raise ValueError(f"{folder}: no events.jsonl (the folder `vigie import --out` writes)")
        return cls.from_files(folder / "events.jsonl", folder / "reference")

    @classmethod
    def from_files(cls, events: Path, reference_dir: Path) -> History:
        """An event file (``vigie simulate --output``'s, an import's) and the reference of its brigade."""
        return cls.from_events(read_events(events), Reference.load(reference_dir), str(events))

    @classmethod
    def from_events(cls, events: Iterable[tuple[str, dict[str, Any]]], reference: Reference, source: str
                    ) -> History:
        """``(topic, event)`` pairs in any order (a file, or the raw history a database keeps) and the reference of
        the brigade; ``source`` names them in errors."""
        crew_records: list[CrewRecord] = []

        def others() -> Iterator[tuple[str, dict[str, Any]]]:
            for topic, ev in events:
                if topic == "crew-status":
                    crew_records.append(record_of(ev))
                else:
                    yield topic, ev
        calls = calls_from_events(others())
        if not calls:
            raise ValueError(f"{source}: no call")
        units, stations = units_from(reference, calls)
        end = max((t for c in calls for r in c.responses for t in (r.dispatched, r.available) if t is not None),
                  default=calls[-1].opened)
        roster = Roster.from_records(crew_records, Crewing(reference.crew_rules))
        return cls(calls, units, stations, reference, calls[0].opened, end, roster)

    @cached_property
    def utilisation(self) -> dict[str, float]:
        """Each unit's share of the history engaged."""
        return dict(kpis(self.calls, {}, self.start, self.end).utilisation)

    def busy_share(self, vehicle_type: str) -> float:
        """The share of its units' time on duty that the type spent engaged (move-ups' busy probability): a pool's
        unit counts its spans on duty only — SF's medics, 26 of 75 on duty on average, were engaged 64 % of it, 22 %
        of the whole week."""
        units = [u for u in self.units.values() if u.vehicle_type == vehicle_type]
        span = self.end - self.start
        busy = sum(self.utilisation.get(u.unit_id, 0.0) * span for u in units)
        duty = sum(sum(max(0.0, min(b, self.end) - max(a, self.start)) for a, b in u.on_duty) if u.on_duty else span
                   for u in units)
        return min(busy / duty, 1.0) if duty > 0 else 0.0

    @cached_property
    def demand(self) -> list[tuple[float, float, float]]:
        """The demand points of coverage (streams/whatif/coverage.py)."""
        return demand_points(self.calls)

    def trips(self) -> list[tuple[str, int, float, float]]:
        """(unit type, priority, distance from the unit's base, travel s) of every response with a travel time."""
        units = self.units
        return [(r.vehicle_type, c.priority, haversine_m(units[r.unit].lat, units[r.unit].lon, c.lat, c.lon),
                 r.travel_s) for c in self.calls for r in c.responses if r.travel_s is not None and r.unit in units]


@dataclass(frozen=True)
class Figure:
    name: str
    baseline: float
    scenario: float
    diff: float
    half_width: float  # of the difference's 95 % interval (paired seeds); NaN with one seed


def figures_of(k: RunKpis) -> dict[str, float]:
    out: dict[str, float] = {}
    for a in k.arrivals:
        if a.priority in (None, 1):
            tag = f"{'all types' if a.vehicle_type == ALL else a.vehicle_type}, " \
                  f"{'all priorities' if a.priority is None else 'priority 1'}"
            out[f"call -> first arrival p50 (s), {tag}"] = a.p50_s
            out[f"call -> first arrival p90 (s), {tag}"] = a.p90_s
            out[f"within target (%), {tag}"] = a.within_pct
    out["calls that waited for a unit"] = float(k.calls_waited)
    out["their total wait (min)"] = k.total_wait_s / 60.0
    out["mean utilisation of the units (%)"] = 100.0 * mean(k.utilisation.values()) if k.utilisation else 0.0
    return out


def coverage_figures(run_calls: Sequence[Call], fleet: dict[str, Unit], models: TravelModels,
                     points: Sequence[tuple[float, float, float]], start: float, end: float) -> dict[str, float]:
    """Coverage ≥ 1 and ≥ 2 within 8 min for the engines and the ambulances (streams/whatif/coverage.py)."""
    out = {}
    for vtype in COVERAGE_TYPES:
        one, two = coverage(run_calls, fleet, models, points, vtype, start, end)
        out[f"coverage >= 1 {vtype} within 8 min (% of demand)"] = one
        out[f"coverage >= 2 {vtype} within 8 min (% of demand)"] = two
    return out


def cards_for(history: History, scenario: Scenario, fleet: dict[str, Unit]) -> RunCards | None:
    """The scenario's run cards and areas (streams/whatif/cards.py), None for the closest idle unit anywhere. An
    added station is in the area of the history's station nearest to it; a card's closed station is skipped."""
    if scenario.dispatch == "closest" and scenario.crossing_areas:
        return None
    known = history.reference.stations
    places = {**history.stations, **{a.station_id: (a.lat, a.lon) for a in scenario.add_stations}}
    stations = {sid: places[sid] for sid in sorted({u.station for u in fleet.values()})}
    areas = {sid: known[sid].area if sid in known else known[min(
        known, key=lambda k: (haversine_m(*at, known[k].lat, known[k].lon), k))].area for sid, at in stations.items()}
    pools = {sid for sid in stations if sid in known and known[sid].name.startswith(POOL_PREFIX)}
    unknown = sorted({s for card in scenario.run_cards.values() for s in card if s not in places})
    if unknown:
        raise ScenarioError(f"run_cards: no station {', '.join(map(repr, unknown))} (known: "
                            f"{', '.join(sorted(places)[:12])}...)")
    explicit = {sector: [s for s in card if s in stations] for sector, card in scenario.run_cards.items()}
    return RunCards.derive(history.calls, stations, areas, explicit, scenario.crossing_areas, pools,
                           ordered=scenario.dispatch == "run_cards")


def staffing_for(scenario: Scenario, fleet: dict[str, Unit]) -> dict[str, int]:
    """The scenario's crews per station, each a station of the scenario's fleet."""
    stations = {u.station for u in fleet.values()}
    unknown = sorted(set(scenario.staffing) - stations)
    if unknown:
        raise ScenarioError(f"staffing: no unit at {', '.join(map(repr, unknown))} in the scenario's fleet")
    return dict(scenario.staffing)


def roster_for(history: History, scenario: Scenario) -> Roster | None:
    """The history's crews when the scenario asks for them (``crews = "history"``)."""
    if scenario.crews != "history":
        return None
    if history.roster is None:
        raise ScenarioError('crews = "history": the history has no crew records (crew-status)')
    return history.roster


def compare(history: History, scenario: Scenario, seeds: int, model: TravelModels,
            progress: Callable[[int], None] | None = None) -> list[Figure]:
    """The history unchanged (its calls, its fleet) and under ``scenario`` (its demand, fleet and turnouts), each
    over ``seeds`` seeds with the same random streams (a call's draws are the same in both: an added call has its
    own)."""
    changed = fleet_for(history.units, history.stations, scenario)
    cards = cards_for(history, scenario, changed)
    staffing = staffing_for(scenario, changed)
    roster = roster_for(history, scenario)
    durations = Durations.fit(history.calls) if scenario.durations == "fitted" else None
    points = demand_points(history.calls)
    base_runs: list[dict[str, float]] = []
    scen_runs: list[dict[str, float]] = []
    rankings: tuple[Rankings, Rankings] = ({}, {})  # per fleet, kept across the seeds
    for seed in range(seeds):
        calls = demand(history.calls, scenario.demand_scale, seed, scenario.surges)
        for fleet, runs, ranked, asked, turnout, rule in (
                (history.units, base_runs, rankings[0], history.calls, None, None),
                (changed, scen_runs, rankings[1], calls, scenario.turnout_change_s, cards)):
            result = run(asked, fleet, model, seed, rankings=ranked, turnout_change=turnout, cards=rule,
                         durations=durations, staffing=staffing if fleet is changed else None, roster=roster)
            runs.append(figures_of(kpis(result, scenario.targets, history.start, history.end))
                        | coverage_figures(result, fleet, model, points, history.start, history.end))
        if progress:
            progress(seed)
    return paired(base_runs, scen_runs)


def paired(base_runs: Sequence[dict[str, float]], scen_runs: Sequence[dict[str, float]]) -> list[Figure]:
    """Each figure's means over the seeds and the 95 % t-interval of the mean paired difference."""
    out = []
    for name in base_runs[0]:
        b = [r.get(name, math.nan) for r in base_runs]
        s = [r.get(name, math.nan) for r in scen_runs]
        diffs = [y - x for x, y in zip(b, s, strict=True)]
        half = (float(student.ppf(0.975, len(diffs) - 1)) * stdev(diffs) / math.sqrt(len(diffs))
                if len(diffs) > 1 else math.nan)
        out.append(Figure(name, mean(b), mean(s), mean(diffs), half))
    return out


def evaluate_moveups(history: History, models: TravelModels, seeds: int, types: Sequence[str],
                     targets: dict[int, float], limit_s: float = 480.0) -> list[Figure]:
    """Move-ups off (a freed unit goes home) against on (for ``types``: to the station of the highest marginal
    coverage), the history unchanged, over paired seeds (streams/whatif/relocate.py): late arrivals, km driven
    back, drives to another station than home."""
    moveups = MoveUps(history.demand, {v: history.busy_share(v) for v in types}, history.stations, limit_s)
    runs: tuple[list[dict[str, float]], list[dict[str, float]]] = ([], [])
    for seed in range(seeds):
        for policy, into in ((None, runs[0]), (moveups, runs[1])):
            r = run_relocating(history.calls, history.units, models, seed, policy)
            into.append({"calls whose first arrival is late (%)": late_share(r.calls, targets),
                         "km driven back after calls": r.km_back, "drives back to another station": float(r.moved)})
    return paired(*runs)


def describe(models: TravelModels) -> list[str]:
    """The fitted travel models, a line each."""
    def one(m: TravelModel) -> str:
        return f"start {m.start_s:g} s, accel {m.accel:g} m/s², cruise {m.cruise:g} m/s, sigma {m.sigma:.2f}"
    return [f"  travel {vtype}, priority {'1' if pc == 1 else '2+'}: {one(m)}"
            for (vtype, pc), m in models.by_group.items()] + [f"  travel, any other: {one(models.overall)}"]


def advise(history: History, models: TravelModels, at: float, vehicle_type: str, limit_s: float = 480.0
           ) -> MoveUp | None:
    """The move-up advice for one unit type at ``at`` of the history: the units engaged or off duty then are not
    free, the others wait at their base; the busy probability is the type's share of its time on duty engaged."""
    busy = {r.unit for c in history.calls for r in c.responses
            if r.dispatched <= at < (r.available if r.available is not None else math.inf)}
    units = [u for u in history.units.values() if u.vehicle_type == vehicle_type]
    if not units:
        raise ValueError(f"no unit of type {vehicle_type!r} in the history")
    q = history.busy_share(vehicle_type)
    free = [(u.unit_id, u.station, u.lat, u.lon) for u in sorted(units, key=lambda u: u.unit_id)
            if u.unit_id not in busy and on_duty_from(u.on_duty, at) == at]
    return recommend(free, history.stations, history.demand, models.get(vehicle_type, 1), q, limit_s)


def figure_rows(study: str, scenario: Scenario, seeds: int, figures: Sequence[Figure], at: float
                ) -> list[WhatifFigureRow]:
    """The figures as rows of ``whatif_figures`` (« Scénarios »)."""
    return [WhatifFigureRow(study, scenario.name, seeds, f.name, f.baseline, f.scenario, f.diff, f.half_width, at)
            for f in figures]


def render(scenario: Scenario, figures: Sequence[Figure], seeds: int, models: TravelModels) -> str:
    lines = [f"what-if '{scenario.name}' against the history unchanged, {seeds} paired seed(s)", *describe(models),
             f"  {'figure':<60} {'baseline':>10} {'scenario':>10} {'difference (95 %)':>22}"]
    for f in figures:
        ci = "" if math.isnan(f.half_width) else f" ± {f.half_width:.1f}"
        lines.append(f"  {f.name:<60} {f.baseline:>10.1f} {f.scenario:>10.1f} {f.diff:>+12.1f}{ci:>10}")
    return "\n".join(lines)


def write_events(calls: Sequence[Call], fleet: dict[str, Unit], reference: Reference, out: Path) -> int:
    """The run as Vigie events (``events.jsonl``, event-time order) and its reference (stations and fleet), the
    folder ``vigie replay start --events`` takes. Returns the number of events."""
    rows: list[tuple[float, int, str, str]] = []  # (time, order, event id, its line)
    stations = {u.station for u in fleet.values()}
    for c in calls:
        loc = Location(lat=c.lat, lon=c.lon, sector=c.sector or "unknown")
        closed = max((t for r in c.responses for t in (r.dispatched, r.available) if t is not None), default=c.opened)
        for lifecycle, t, order in ((Lifecycle.OPENED, c.opened, 0), (Lifecycle.CLOSED, closed, 2)):
            ev = InterventionEvent(schema_version=1, event_id=f"{c.call_id}:{lifecycle.value}", event_time=_dt(t),
                                   intervention_id=c.call_id, nature=InterventionNature(c.nature),
                                   lifecycle=lifecycle, location=loc, priority=c.priority)
            rows.append((t, order, ev.event_id, event_line("interventions", c.call_id, ev)))
        for i, r in enumerate(c.responses):
            unit = fleet[r.unit]
            steps = [(r.dispatched, VehicleStatus.DISPATCHED), (r.en_route, VehicleStatus.EN_ROUTE),
                     (r.on_scene, VehicleStatus.ON_SCENE), (r.transporting, VehicleStatus.TRANSPORTING),
                     (r.at_hospital, VehicleStatus.AT_HOSPITAL), (r.available, VehicleStatus.AVAILABLE_ON_RADIO)]
            for k, (t, status) in enumerate((t, s) for t, s in steps if t is not None):
                engaged = status is not VehicleStatus.AVAILABLE_ON_RADIO
                ev = VehicleStatusEvent(
                    schema_version=1, event_id=f"{int(r.dispatched):08x}.{c.call_id}.{i}.{k}", event_time=_dt(t),
                    vehicle_id=unit.unit_id, vehicle_type=unit.vehicle_type, home_station=unit.station,
                    status=status, intervention_id=c.call_id if engaged else None,
                    position=Position(lat=c.lat, lon=c.lon) if status is VehicleStatus.ON_SCENE else None)
                rows.append((t, 1, ev.event_id, event_line("vehicle-status", unit.station, ev)))
    rows.sort()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(line for *_, line in rows)
    known = reference.stations
    st = [known[s] if s in known else Station(station_id=s, name=f"Station {s}", area="what-if",
                                              lat=at[0], lon=at[1])
          for s in sorted(stations) for at in [fleet_station(fleet, s)]]
    Reference.build(st, [FleetVehicle(vehicle_id=u.unit_id, vehicle_type=u.vehicle_type, home_station=u.station)
                         for u in sorted(fleet.values(), key=lambda u: u.unit_id)],
                    reference.vehicle_types, reference.crew_rules).write(out / "reference")
    return len(rows)


def fleet_station(fleet: dict[str, Unit], station: str) -> tuple[float, float]:
    u = next(u for u in fleet.values() if u.station == station)
    return u.lat, u.lon


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Check:
    what: str
    observed: float
    simulated: float
    ok: bool


MIN_RESPONSES = 100  # a unit type x priority with fewer observed arrivals is not checked
BANDS_M = ((0, 1000), (1000, 2000), (2000, 4000), (4000, math.inf))
HOLDOUT_FOLDS = 10  # the travel check's cross-validation: each call's trips predicted by models fitted without it


def calibrate(history: History, seeds: int, targets: dict[int, float], fitted_durations: bool = False
              ) -> tuple[list[Check], TravelModels]:
    """The history unchanged through the closest-unit rule and the fitted models, against what was observed: per
    unit type x priority with ``MIN_RESPONSES`` arrivals, call -> first arrival median (±5 % or ±15 s), p90 (±8 %)
    and share within the target (±2 points), averaged over ``seeds``; each unit's utilisation (±10 % relative, the
    share of units within); and the travel model's P(T <= 4 min) and P(T <= 8 min) per distance band on trips
    held out from its fit, by cross-validation (±3 points). ``fitted_durations``: turnouts and times after arrival drawn
    from the history (streams/whatif/durations.py) rather than each response's own."""
    trips = history.trips()
    models = TravelModels.fit(trips)
    durations = Durations.fit(history.calls) if fitted_durations else None
    seen = kpis(history.calls, targets, history.start, history.end)
    ranked: Rankings = {}
    runs = [kpis(run(history.calls, history.units, models, seed, rankings=ranked, durations=durations), targets,
                 history.start, history.end) for seed in range(seeds)]
    checks = []
    for a in seen.arrivals:
        if a.vehicle_type == ALL or a.priority is None or a.responses < MIN_RESPONSES:
            continue
        sims = [k.arrival(a.vehicle_type, a.priority) for k in runs]
        tag = f"{a.vehicle_type} priority {a.priority} ({a.responses})"
        p50 = mean(s.p50_s for s in sims if s is not None)
        p90 = mean(s.p90_s for s in sims if s is not None)
        within = mean(s.within_pct for s in sims if s is not None)
        checks += [Check(f"{tag}: call -> first arrival p50 (s)", a.p50_s, p50,
                         abs(p50 - a.p50_s) <= max(0.05 * a.p50_s, 15.0)),
                   Check(f"{tag}: p90 (s)", a.p90_s, p90, abs(p90 - a.p90_s) <= 0.08 * a.p90_s),
                   Check(f"{tag}: within target (%)", a.within_pct, within, abs(within - a.within_pct) <= 2.0)]
    used = [u for u, x in seen.utilisation.items() if x > 0]
    close = sum(1 for u in used if abs(mean(k.utilisation.get(u, 0.0) for k in runs) / seen.utilisation[u] - 1) <= 0.1)
    checks.append(Check("units whose utilisation is within 10 % (%)", 100.0, 100.0 * close / max(len(used), 1),
                        close == len(used)))
    return checks + _travel_holdout(history, trips), models


def _travel_holdout(history: History, trips: Sequence[tuple[str, int, float, float]]) -> list[Check]:
    """Cross-validated over ``HOLDOUT_FOLDS`` folds of calls: each trip's P(T <= 4 / 8 min) from the models fitted
    on the other folds' calls, pooled per distance band. A single split into halves compares two halves' sampling
    noise as much as the model: at 350-730 trips per band and half the halves differ by 3-4 points (SF week, the
    fit and held-out halves swapped: 1-2 km P(T <= 8 min) -3.6 then +2.3 points)."""
    units = history.units
    calls = [c.call_id for c in history.calls for r in c.responses if r.travel_s is not None and r.unit in units]
    folds = [_fold(cid) for cid in calls]
    predicted: list[tuple[TravelModels, tuple[str, int, float, float]]] = []
    for k in range(HOLDOUT_FOLDS):
        models = TravelModels.fit([t for t, f in zip(trips, folds, strict=True) if f != k])
        predicted += [(models, t) for t, f in zip(trips, folds, strict=True) if f == k]
    out = []
    for lo, hi in BANDS_M:
        band = [(m, t) for m, t in predicted if lo <= t[2] < hi]
        if len(band) < MIN_RESPONSES:
            continue
        for limit in (240.0, 480.0):
            seen = 100.0 * sum(t[3] <= limit for _, t in band) / len(band)
            model = 100.0 * mean(m.get(t[0], t[1]).prob_within(t[2], limit) for m, t in band)
            label = f"{lo / 1000:g}-{hi / 1000:g} km" if hi < math.inf else f"over {lo / 1000:g} km"
            out.append(Check(f"held-out travel {label} ({len(band)}): P(T <= {limit / 60:g} min) (%)", seen, model,
                             abs(model - seen) <= 3.0))
    return out


def _fold(call_id: str) -> int:
    """A call's fold for the hold-out: stable across runs and machines (not Python's salted hash)."""
    return int(hashlib.sha256(call_id.encode()).hexdigest(), 16) % HOLDOUT_FOLDS


def render_checks(checks: Sequence[Check], seeds: int, models: TravelModels) -> str:
    passed = sum(c.ok for c in checks)
    lines = [f"calibration: the history unchanged, closest idle unit, fitted models, {seeds} seed(s): "
             f"{passed} of {len(checks)} checks within tolerance", *describe(models),
             f"  {'check':<66} {'observed':>9} {'simulated':>9}"]
    lines += [f"  {c.what:<66} {c.observed:>9.1f} {c.simulated:>9.1f}  {'ok' if c.ok else 'OUT'}" for c in checks]
    return "\n".join(lines)
