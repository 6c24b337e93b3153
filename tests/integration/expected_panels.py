"""Independent computation of what each dashboard panel must show, from the produced events and the
reference data only (plain loops; no code shared with streams/, sinks/ or grafana/)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from devtools.simulator import SimEvent
from schemas.reference import Reference
from tests.integration.expected import category


@dataclass
class Vehicle:
    vehicle_type: str
    station: str
    area: str
    status: str = ""
    intervention: str = ""
    lat: float = 0.0
    lon: float = 0.0
    time: float = -1.0

    @property
    def category(self) -> str:
        return category(self.status)


@dataclass
class Engagement:
    intervention: str
    vehicle: str
    vehicle_type: str
    station: str
    area: str
    dispatched: float | None = None
    en_route: float | None = None
    on_scene: float | None = None
    released: bool = False

    def turnout(self) -> float | None:
        return self.en_route - self.dispatched if self.en_route is not None and self.dispatched is not None else None

    def travel(self) -> float | None:
        return self.on_scene - self.en_route if self.on_scene is not None and self.en_route is not None else None


@dataclass
class Picture:
    vehicles: dict[str, Vehicle] = field(default_factory=dict)  # seen vehicles only
    engagements: dict[tuple[str, str], Engagement] = field(default_factory=dict)
    interventions: dict[str, dict] = field(default_factory=dict)
    clock: float = 0.0


def picture(ref: Reference, events: list[SimEvent]) -> Picture:
    p = Picture()
    for e in sorted(events, key=lambda e: e.event.event_time):
        ev = e.event
        t = ev.event_time.timestamp()
        if e.topic == "interventions":
            i = p.interventions.setdefault(ev.intervention_id, {"opened": None, "closed": None})
            if ev.lifecycle.value == "opened":
                i["opened"] = t if i["opened"] is None else min(t, i["opened"])
                i.update(nature=ev.nature.value, priority=ev.priority, sector=ev.location.sector)
            elif ev.lifecycle.value == "closed":
                i["closed"] = t
            continue
        if e.topic == "crew-status":
            continue
        fleet = ref.fleet[ev.vehicle_id]
        area = ref.stations[fleet.home_station].area
        v = p.vehicles.setdefault(ev.vehicle_id, Vehicle(fleet.vehicle_type, fleet.home_station, area))
        if t >= v.time:
            v.status, v.intervention, v.time = ev.status.value, ev.intervention_id or "", t
            if ev.position is not None:
                v.lat, v.lon = ev.position.lat, ev.position.lon
        p.clock = max(p.clock, t)
        if ev.intervention_id:
            k = (ev.intervention_id, ev.vehicle_id)
            g = p.engagements.setdefault(k, Engagement(ev.intervention_id, ev.vehicle_id, fleet.vehicle_type,
                                                       fleet.home_station, area))
            s = ev.status.value
            if s == "dispatched" and g.dispatched is None:
                g.dispatched = t
            elif s == "en_route" and g.en_route is None and g.dispatched is not None:
                g.en_route = t
            elif s == "on_scene" and g.on_scene is None:
                g.on_scene = t
    return p


def quantile_exact(values: list[float], level: float) -> float:
    """ClickHouse's quantileExact: the element at index floor(level * n) of the sorted values."""
    xs = sorted(values)
    return xs[min(int(level * len(xs)), len(xs) - 1)]


def counts_by(vehicles: list[Vehicle], key, cat: str) -> dict:  # type: ignore[no-untyped-def]
    out: dict = defaultdict(int)
    for v in vehicles:
        out[key(v)] += v.category == cat
    return dict(out)
