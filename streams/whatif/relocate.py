"""Move-ups in the what-if engine: the closest-unit rule with each unit's position followed in time, so that a unit
freed by a call can go back to its home station (move-ups off) or to the station that raises the expected coverage most
given the units free then (move-ups on: DMEXCLP, Jagtenberg et al. 2015 — the freed unit's base chosen by its marginal
coverage, the shortest drive among equal gains).

Events in time order: a unit's span on duty starting or ending (a pool's unit: streams/whatif/bases.py), a unit becoming
free, then requests at the same instant (a unit off duty when free rests until its next span). A request takes the idle
unit of its type with the shortest median travel from where it waits; none idle: it queues, and the next unit of the
type to be free serves it (the first queued first) from where that unit then waits. The drives back (from the call to
the station chosen) are summed in km. With move-ups off, the responses are those of ``engine.run``."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.geo import haversine_m, haversine_m_many
from streams.whatif.engine import Unit, respond
from streams.whatif.history import Call, Response
from streams.whatif.moveup import covers
from streams.whatif.travel import TravelModels

SHIFT, FREE, REQUEST = 0, 1, 2  # the kinds of event, in the order they happen at one instant


@dataclass(frozen=True)
class MoveUps:
    """What move-ups need: the demand points (lat, lon, weight), each type's busy probability, the stations and the
    coverage limit."""

    points: Sequence[tuple[float, float, float]]
    busy: Mapping[str, float]
    stations: Mapping[str, tuple[float, float]]
    limit_s: float = 480.0


@dataclass
class Relocated:
    """A run's responses and its drives back."""

    calls: list[Call]
    km_back: float = 0.0
    moved: int = 0  # drives back to another station than the unit's home
    waits_at: dict[str, str] = field(default_factory=dict)  # unit -> where it waits at the end (home:<unit>: its base)


def run_relocating(calls: Sequence[Call], fleet: Mapping[str, Unit], models: TravelModels, seed: int,
                   moveups: MoveUps | None) -> Relocated:
    out = Relocated([Call(c.call_id, c.opened, c.lat, c.lon, c.sector, c.nature, c.priority, []) for c in calls])
    # where a unit waits: a station a move-up sent it to, or its own base (a pool's units each have theirs)
    waits_at = {u.unit_id: _home(u.unit_id) for u in fleet.values()}
    places = {**(moveups.stations if moveups else {}), **{_home(u.unit_id): (u.lat, u.lon) for u in fleet.values()}}
    idle: dict[str, set[str]] = {}
    off: set[str] = set()  # off duty (streams/whatif/bases.py), free or not
    resting: set[str] = set()  # free but off duty
    events: list[tuple[float, int, int, int, str]] = [(r.dispatched, REQUEST, n, i, "")
                                                      for n, c in enumerate(calls) for i, r in enumerate(c.responses)]
    for u in fleet.values():
        idle.setdefault(u.vehicle_type, set())
        if u.on_duty:
            off.add(u.unit_id)
            resting.add(u.unit_id)
            events += [e for a, b in u.on_duty for e in ((a, SHIFT, 1, 0, u.unit_id), (b, SHIFT, 0, 0, u.unit_id))]
        else:
            idle[u.vehicle_type].add(u.unit_id)
    queued: dict[str, deque[tuple[float, int, int, Response]]] = {}
    heapq.heapify(events)
    cover = _station_cover(moveups, models, moveups.stations, places) if moveups else {}

    def ready(uid: str, t: float) -> None:
        """``uid`` free and on duty at ``t``: it serves the first request queued for its type, or waits idle."""
        waiting = queued.get(fleet[uid].vehicle_type)
        if waiting:
            asked, wn, wi, seen = waiting.popleft()
            _serve(out, calls, fleet, models, seed, places, waits_at, events, uid, wn, wi, seen, t, asked)
        else:
            idle[fleet[uid].vehicle_type].add(uid)

    while events:
        t, kind, n, i, uid = heapq.heappop(events)
        if kind == SHIFT:  # n = 1: ``uid``'s span on duty starts; 0: it ends
            if n:
                off.discard(uid)
                if uid in resting:
                    resting.discard(uid)
                    ready(uid, t)
            else:
                off.add(uid)
                if uid in idle[fleet[uid].vehicle_type]:
                    idle[fleet[uid].vehicle_type].discard(uid)
                    resting.add(uid)
            continue
        if kind == FREE:  # ``uid`` is free at ``t``, at the scene of call n
            call = out.calls[n]
            station = _where_back(uid, fleet, waits_at, idle, call, moveups, cover, places)
            out.km_back += haversine_m(call.lat, call.lon, *places[station]) / 1000.0
            out.moved += station != _home(uid)
            waits_at[uid] = station
            if uid in off:
                resting.add(uid)
            else:
                ready(uid, t)
            continue
        seen = calls[n].responses[i]
        free = idle.get(seen.vehicle_type)
        if free is None:
            continue  # no unit of the type at all: unserved
        if not free:
            queued.setdefault(seen.vehicle_type, deque()).append((t, n, i, seen))
            continue
        model = models.get(seen.vehicle_type, calls[n].priority)
        ids = sorted(free)
        lats = np.array([places[waits_at[u]][0] for u in ids])
        lons = np.array([places[waits_at[u]][1] for u in ids])
        medians = model.medians_s(haversine_m_many(calls[n].lat, calls[n].lon, lats, lons))
        _, uid = min(zip(medians.tolist(), ids, strict=True))
        free.discard(uid)
        _serve(out, calls, fleet, models, seed, places, waits_at, events, uid, n, i, seen, t, t)
    out.waits_at = waits_at
    return out


def _serve(out: Relocated, calls: Sequence[Call], fleet: Mapping[str, Unit], models: TravelModels, seed: int,
           places: Mapping[str, tuple[float, float]], waits_at: Mapping[str, str],
           events: list[tuple[float, int, int, int, str]], uid: str, n: int, i: int, seen: Response, at: float,
           asked: float) -> None:
    call = out.calls[n]
    lat, lon = places[waits_at[uid]]
    rng = random.Random(f"{seed}|{call.call_id}|{i}")
    travel = models.get(seen.vehicle_type, call.priority).sample_s(haversine_m(lat, lon, call.lat, call.lon), rng)
    resp = respond(fleet[uid], seen, at, travel)
    resp.waited_s = at - asked
    call.responses.append(resp)
    if resp.available is not None:
        heapq.heappush(events, (resp.available, FREE, n, i, uid))


def _home(unit_id: str) -> str:
    return f"home:{unit_id}"


def _station_cover(moveups: MoveUps, models: TravelModels, stations: Mapping[str, tuple[float, float]],
                   places: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, np.ndarray]]:
    """type -> place -> the points a unit of the type waiting there reaches in time (every station and base)."""
    names = sorted(places)
    lats, lons = np.array([places[s][0] for s in names]), np.array([places[s][1] for s in names])
    out = {}
    for vtype in moveups.busy:
        c = covers(lats, lons, moveups.points, models.get(vtype, 1), moveups.limit_s)
        out[vtype] = {s: c[k] for k, s in enumerate(names)}
    return out


def _where_back(uid: str, fleet: Mapping[str, Unit], waits_at: Mapping[str, str], idle: Mapping[str, set[str]],
                call: Call, moveups: MoveUps | None, cover: Mapping[str, Mapping[str, np.ndarray]],
                places: Mapping[str, tuple[float, float]]) -> str:
    """Home (move-ups off), else the station of the highest marginal coverage given the units idle now."""
    vtype = fleet[uid].vehicle_type
    if moveups is None or vtype not in cover:
        return _home(uid)
    q = moveups.busy[vtype]
    weights = np.array([w for *_, w in moveups.points], dtype=float)
    counts = sum((cover[vtype][waits_at[u]] for u in idle.get(vtype, ())), np.zeros(len(weights), dtype=np.int32))
    best: tuple[float, float, str] | None = None
    for station in moveups.stations:
        reach = cover[vtype][station]
        gain = float((weights * (q ** counts) * (1 - q) * reach).sum())  # coverage added by one more unit there
        key = (-round(gain, 9), haversine_m(call.lat, call.lon, *places[station]), station)
        if best is None or key < best:
            best = key
    return best[2] if best is not None and best[0] < 0 else _home(uid)


def late_share(calls: Sequence[Call], targets: Mapping[int, float]) -> float:
    """% of calls with an arrival whose first arrival came after the priority's target."""
    default = max(targets.values()) if targets else math.inf
    firsts = [(min(r.on_scene for r in c.responses if r.on_scene is not None) - c.opened, c.priority)
              for c in calls if any(r.on_scene is not None for r in c.responses)]
    return 100.0 * sum(s > targets.get(p, default) for s, p in firsts) / max(len(firsts), 1)
