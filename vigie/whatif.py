"""`vigie whatif`: re-run an imported history (``vigie import``'s folder) under a scenario, against the same
history unchanged, over paired seeds; print the figures side by side with each difference's 95 % interval; write
the scenario's run as Vigie events for ``vigie replay start`` (its own run: every table, panel and the board)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean, stdev

from scipy.stats import t as student

from core.geo import haversine_m
from schemas.codec import encode
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
from streams.whatif.bases import units_from
from streams.whatif.engine import Unit, demand, fleet_for, run
from streams.whatif.history import Call, calls_from_events, read_events
from streams.whatif.kpi import ALL, RunKpis, kpis
from streams.whatif.travel import TravelModel


@dataclass(frozen=True)
class History:
    calls: list[Call]
    units: dict[str, Unit]
    stations: dict[str, tuple[float, float]]
    reference: Reference
    start: float
    end: float

    @classmethod
    def load(cls, folder: Path) -> History:
        """An import's folder: ``events.jsonl`` and ``reference/``."""
        if not (folder / "events.jsonl").exists():
            raise ValueError(f"{folder}: no events.jsonl (the folder `vigie import --out` writes)")
        calls = calls_from_events(read_events(folder / "events.jsonl"))
        if not calls:
            raise ValueError(f"{folder}/events.jsonl: no call")
        reference = Reference.load(folder / "reference")
        units, stations = units_from(reference, calls)
        end = max((t for c in calls for r in c.responses for t in (r.dispatched, r.available) if t is not None),
                  default=calls[-1].opened)
        return cls(calls, units, stations, reference, calls[0].opened, end)

    def trips(self) -> list[tuple[float, float]]:
        """(distance from the unit's base, travel s) of every response with a travel time."""
        return [(haversine_m(self.units[r.unit].lat, self.units[r.unit].lon, c.lat, c.lon), r.travel_s)
                for c in self.calls for r in c.responses if r.travel_s is not None and r.unit in self.units]


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


def compare(history: History, scenario: Scenario, seeds: int, model: TravelModel,
            progress: Callable[[int], None] | None = None) -> list[Figure]:
    """The history unchanged and under ``scenario``, each over ``seeds`` seeds with the same random streams."""
    changed = fleet_for(history.units, history.stations, scenario)
    base_runs, scen_runs = [], []
    for seed in range(seeds):
        calls = demand(history.calls, scenario.demand_scale, seed)
        base_runs.append(figures_of(kpis(run(calls, history.units, model, seed), scenario.targets, history.start,
                                         history.end)))
        scen_runs.append(figures_of(kpis(run(calls, changed, model, seed), scenario.targets, history.start,
                                         history.end)))
        if progress:
            progress(seed)
    out = []
    for name in base_runs[0]:
        b = [r.get(name, math.nan) for r in base_runs]
        s = [r.get(name, math.nan) for r in scen_runs]
        diffs = [y - x for x, y in zip(b, s, strict=True)]
        half = (float(student.ppf(0.975, len(diffs) - 1)) * stdev(diffs) / math.sqrt(len(diffs))
                if len(diffs) > 1 else math.nan)
        out.append(Figure(name, mean(b), mean(s), mean(diffs), half))
    return out


def render(scenario: Scenario, figures: Sequence[Figure], seeds: int, model: TravelModel) -> str:
    lines = [f"what-if '{scenario.name}' against the history unchanged, {seeds} paired seed(s); travel model: "
             f"median {model.start_s:g} s + accel {model.accel:g} m/s² to {model.cruise:g} m/s, sigma "
             f"{model.sigma:.2f}",
             f"  {'figure':<60} {'baseline':>10} {'scenario':>10} {'difference (95 %)':>22}"]
    for f in figures:
        ci = "" if math.isnan(f.half_width) else f" ± {f.half_width:.1f}"
        lines.append(f"  {f.name:<60} {f.baseline:>10.1f} {f.scenario:>10.1f} {f.diff:>+12.1f}{ci:>10}")
    return "\n".join(lines)


def write_events(calls: Sequence[Call], fleet: dict[str, Unit], reference: Reference, out: Path) -> int:
    """The run as Vigie events (``events.jsonl``, event-time order) and its reference (stations and fleet), the
    folder ``vigie replay start --events`` takes. Returns the number of events."""
    rows: list[tuple[float, int, str, str, str]] = []  # (time, order, event id, topic+key, json)
    stations = {u.station for u in fleet.values()}
    for c in calls:
        loc = Location(lat=c.lat, lon=c.lon, sector=c.sector or "unknown")
        closed = max((t for r in c.responses for t in (r.dispatched, r.available) if t is not None), default=c.opened)
        for lifecycle, t, order in ((Lifecycle.OPENED, c.opened, 0), (Lifecycle.CLOSED, closed, 2)):
            ev = InterventionEvent(schema_version=1, event_id=f"{c.call_id}:{lifecycle.value}", event_time=_dt(t),
                                   intervention_id=c.call_id, nature=InterventionNature(c.nature),
                                   lifecycle=lifecycle, location=loc, priority=c.priority)
            rows.append((t, order, ev.event_id, json.dumps(["interventions", c.call_id]), encode(ev).decode()))
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
                rows.append((t, 1, ev.event_id, json.dumps(["vehicle-status", unit.station]), encode(ev).decode()))
    rows.sort()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for _, _, _, where, doc in rows:
            topic, key = json.loads(where)
            f.write(f'{{"topic":"{topic}","key":{json.dumps(key)},"event":{doc}}}\n')
    known = reference.stations
    st = [known[s] if s in known else Station(station_id=s, name=f"Station {s}", area="what-if",
                                              lat=fleet_station(fleet, s)[0], lon=fleet_station(fleet, s)[1])
          for s in sorted(stations)]
    Reference.build(st, [FleetVehicle(vehicle_id=u.unit_id, vehicle_type=u.vehicle_type, home_station=u.station)
                         for u in sorted(fleet.values(), key=lambda u: u.unit_id)]).write(out / "reference")
    return len(rows)


def fleet_station(fleet: dict[str, Unit], station: str) -> tuple[float, float]:
    u = next(u for u in fleet.values() if u.station == station)
    return u.lat, u.lon


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
