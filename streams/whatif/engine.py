"""The what-if engine: the history's calls re-run on a fleet changed by a scenario, in event time.

Each call asks for the units it received in reality: as many, of the same types, each at the same delay after the
call opened. Two dispatch rules:

- ``trace``: the unit that went, at the times it went (the engine then gives the history back: its KPIs are the
  observed ones — a check of the engine and of the KPIs, not a hypothesis);
- ``closest``: the idle unit of the type with the shortest median travel from its base (ties: unit id); none idle:
  the request waits for the first unit of the type to be free (calls served in the order they asked), and the wait
  is counted.

A dispatched unit keeps the replaced response's turnout and its times from arrival to available again (on scene,
transport, hospital), so paired runs differ only by what the scenario changes; its travel is drawn from the travel
model for the distance from its base, with a random stream per (seed, call, request) — common random numbers: the
same draw in every scenario. A response that never arrived (cancelled) keeps its duration from dispatch to
available. A free unit is at its base (a unit available on the radio is taken as back at its station). A unit with
spans on duty (a pool's, which works shifts) leaves only within one; a request it cannot serve goes to another.

Requests are served in (time, call, order) order; a unit's state changes only by its own assignments, so serving
them one after the other is the event loop.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from core.geo import haversine_m, haversine_m_many
from schemas.whatif import Scenario, Surge
from streams.whatif.cards import RunCards
from streams.whatif.durations import Durations
from streams.whatif.history import Call, Response
from streams.whatif.nearest import Ranked, full_ranking, prefixes
from streams.whatif.roster import NO_STAFF, Roster
from streams.whatif.travel import TravelModel, TravelModels

Rule = Literal["trace", "closest"]
COPY_SHIFT_S = 1800.0  # a copied call (demand above 1) opens up to this long before or after its original
COPY = ".copy"  # a copied call's id: <call>.copy<k>


@dataclass(frozen=True, slots=True)
class Unit:
    unit_id: str
    vehicle_type: str
    station: str
    lat: float
    lon: float
    # the spans it was on duty, sorted and disjoint (streams/whatif/bases.py: a pool's unit works shifts); empty:
    # always on duty
    on_duty: tuple[tuple[float, float], ...] = ()


class ScenarioError(ValueError):
    pass


def fleet_for(units: Mapping[str, Unit], stations: Mapping[str, tuple[float, float]], scenario: Scenario
              ) -> dict[str, Unit]:
    """The history's units as the scenario changes them: stations added, units moved, stations closed (their units
    not moved elsewhere leave), units removed, units added (at their station's coordinates)."""
    places = dict(stations)
    for st in scenario.add_stations:
        places[st.station_id] = (st.lat, st.lon)

    def at(station: str, what: str) -> tuple[float, float]:
        if station not in places:
            raise ScenarioError(f"{what}: no station {station!r} (known: {', '.join(sorted(places)[:12])}...)")
        return places[station]

    out = dict(units)
    for m in scenario.move_units:
        if m.unit_id not in out:
            raise ScenarioError(f"move_units: no unit {m.unit_id!r} in the history")
        lat, lon = at(m.station, "move_units")
        out[m.unit_id] = replace(out[m.unit_id], station=m.station, lat=lat, lon=lon)
    moved = {m.unit_id for m in scenario.move_units}
    for sid in scenario.close_stations:
        at(sid, "close_stations")
        out = {k: u for k, u in out.items() if u.station != sid or k in moved}
    for uid in scenario.remove_units:
        if uid not in units:
            raise ScenarioError(f"remove_units: no unit {uid!r} in the history")
        out.pop(uid, None)
    for a in scenario.add_units:
        if a.unit_id in out:
            raise ScenarioError(f"add_units: unit {a.unit_id!r} exists already")
        lat, lon = at(a.station, "add_units")
        out[a.unit_id] = Unit(a.unit_id, a.vehicle_type, a.station, lat, lon)
    return out


def demand(calls: Sequence[Call], scale: float, seed: int, surges: Sequence[Surge] = ()) -> list[Call]:
    """The calls, each kept or copied so that there are ``scale`` times as many on average (a copy opens up to
    30 min before or after its original, with the same requests; ids ``<call>.copy<k>``); then each surge's extra
    calls: ``scale - 1`` times as many as its window holds on average, each a call of the window drawn again (its
    place, nature and requests) at a uniform time in the window (ids ``<call>.surge<s>.<k>``)."""
    out = list(calls)
    if scale != 1.0:
        rng = random.Random(f"demand|{seed}")
        out = []
        for c in calls:
            copies = int(scale) + (rng.random() < scale - int(scale))
            for k in range(copies):
                out.append(c if k == 0 else _moved(c, f"{c.call_id}{COPY}{k}", rng.uniform(-COPY_SHIFT_S,
                                                                                          COPY_SHIFT_S)))
    for n, surge in enumerate(surges):
        rng = random.Random(f"surge|{seed}|{n}")
        pool = [c for c in calls if surge.holds(c.opened, c.lat, c.lon)]
        extra = sum(int(surge.scale - 1) + (rng.random() < surge.scale - 1 - int(surge.scale - 1)) for _ in pool)
        start = surge.start.timestamp()
        for k in range(extra if pool else 0):
            c = pool[rng.randrange(len(pool))]
            out.append(_moved(c, f"{c.call_id}.surge{n}.{k}", start + rng.uniform(0, surge.hours * 3600) - c.opened))
    return sorted(out, key=lambda c: (c.opened, c.call_id))


def _moved(c: Call, call_id: str, shift: float) -> Call:
    """A copy of a call opening ``shift`` seconds later, its requests alike."""
    return Call(call_id, c.opened + shift, c.lat, c.lon, c.sector, c.nature, c.priority,
                [_shifted(r, shift) for r in c.responses])


def _shifted(r: Response, shift: float) -> Response:
    def s(t: float | None) -> float | None:
        return None if t is None else t + shift
    return Response(r.unit, r.vehicle_type, r.dispatched + shift, s(r.en_route), s(r.on_scene), s(r.transporting),
                    s(r.at_hospital), s(r.available))


#: (call, unit type) -> the units by median travel then id: the ranking's exact prefix, and whether it is whole
Rankings = dict[tuple[str, str], tuple[Ranked, bool]]


def run(calls: Iterable[Call], fleet: Mapping[str, Unit], models: TravelModels | None, seed: int,
        rule: Rule = "closest", rankings: Rankings | None = None, turnout_change: Mapping[str, float] | None = None,
        cards: RunCards | None = None, durations: Durations | None = None, staffing: Mapping[str, int] | None = None,
        roster: Roster | None = None) -> list[Call]:
    """The calls with the responses the rule gives (new objects; the history is not changed). ``rankings``: the
    units of each type by median travel to each call, kept between runs on the same fleet and models (the seeds of a
    comparison): a dict the caller keeps for that fleet. ``turnout_change``: seconds added to the turnouts of a unit
    type (the scenario's ``turnout_change_s``; a turnout is at least 0 s). ``cards``: run cards and areas instead of
    the closest idle unit anywhere (streams/whatif/cards.py). ``durations``: turnouts and times after arrival drawn
    from the history instead of the replaced response's own (streams/whatif/durations.py). ``staffing``: station ->
    crews on duty, at most that many of its units engaged at once (a unit free at a station whose crews are all out
    waits for one back). ``roster``: instead, the staff on duty the history's crew records give: a unit leaves when
    its station's staff then can crew it with the station's units already out (streams/whatif/roster.py)."""
    changes = turnout_change or {}
    rankings = {} if rankings is None else rankings
    out = [Call(c.call_id, c.opened, c.lat, c.lon, c.sector, c.nature, c.priority, []) for c in calls]
    requests = sorted((r.dispatched, n, i, r) for n, c in enumerate(calls) for i, r in enumerate(c.responses))
    free_at = dict.fromkeys(fleet, -math.inf)
    by_type: dict[str, list[Unit]] = {}
    for u in fleet.values():
        by_type.setdefault(u.vehicle_type, []).append(u)
    places = {vtype: ([u.unit_id for u in us], np.array([u.lat for u in us]), np.array([u.lon for u in us]))
              for vtype, us in by_type.items()}
    station_of = {u.unit_id: u.station for u in fleet.values()}
    shifts = any(u.on_duty for u in fleet.values())
    crews: _Crews | _RosterCrews | None = None
    if staffing:
        crews = _Crews(staffing, fleet, free_at)
    elif roster is not None:
        crews = _RosterCrews(roster, fleet, free_at)
    if rule == "closest" and cards is None and models is not None:
        _rank_ahead(out, requests, places, models, rankings)
    for t, n, i, seen in requests:
        call = out[n]
        if rule == "trace":
            call.responses.append(replace(seen))
            continue
        assert models is not None
        units = by_type.get(seen.vehicle_type)
        if not units:
            continue  # the scenario has no unit of the type at all: the request goes unserved
        model = models.get(seen.vehicle_type, call.priority)
        key = (call.call_id, seen.vehicle_type)
        ranked, whole = rankings.get(key) or ([], False)
        ready_at = free_at.__getitem__ if crews is None else crews.ready_at(t)
        if shifts:
            ready_at = _on_duty(ready_at, fleet, t)
        chosen = None if not ranked else _choose(ranked, fleet, ready_at, t, whole)
        if chosen is None:  # not ranked yet, or every unit of the prefix busy: the whole ranking
            ids, lats, lons = places[seen.vehicle_type]
            if cards is None:
                ranked = full_ranking(call, ids, lats, lons, model)
            else:
                medians = model.medians_s(haversine_m_many(call.lat, call.lon, lats, lons)).tolist()
                ranked = cards.ranked(call, ids, station_of, medians)
            rankings[key] = (ranked, True)
            chosen = _choose(ranked, fleet, ready_at, t, True)
        assert chosen is not None
        unit, at = chosen
        if at == math.inf:
            continue  # every unit of the type is busy to the end of the history
        rng = random.Random(f"{seed}|{call.call_id}|{i}")
        if durations is not None:
            seen = durations.redraw(seen, call.nature, random.Random(f"{seed}|{call.call_id}|{i}|durations"))
        resp = respond(unit, seen, at, model.sample_s(haversine_m(unit.lat, unit.lon, call.lat, call.lon), rng),
                       changes.get(unit.vehicle_type, 0.0))
        resp.waited_s = at - t
        free_at[unit.unit_id] = resp.available if resp.available is not None else math.inf
        call.responses.append(resp)
    return out


def _rank_ahead(calls: Sequence[Call], requests: Sequence[tuple[float, int, int, Response]],
                places: Mapping[str, tuple[list[str], np.ndarray, np.ndarray]], models: TravelModels,
                rankings: Rankings) -> None:
    """The rankings' prefixes of every (call, type) the requests ask and ``rankings`` lacks, many calls at once
    (streams/whatif/nearest.py)."""
    wanted: dict[tuple[str, int], dict[str, Call]] = {}  # (type, model) -> calls
    model_of: dict[tuple[str, int], TravelModel] = {}
    for _, n, _, seen in requests:
        call = calls[n]
        if seen.vehicle_type not in places or (call.call_id, seen.vehicle_type) in rankings:
            continue
        model = models.get(seen.vehicle_type, call.priority)
        group = (seen.vehicle_type, id(model))
        model_of[group] = model
        wanted.setdefault(group, {})[call.call_id] = call
    for group, asked in wanted.items():
        vtype = group[0]
        ids, lats, lons = places[vtype]
        for call, entry in zip(asked.values(), prefixes(list(asked.values()), ids, lats, lons, model_of[group]),
                               strict=True):
            rankings[(call.call_id, vtype)] = entry


def _by_station(fleet: Mapping[str, Unit]) -> dict[str, list[Unit]]:
    """The fleet's units per station."""
    at: dict[str, list[Unit]] = {}
    for u in fleet.values():
        at.setdefault(u.station, []).append(u)
    return at


class _Crews:
    """Stations' crews on duty: a unit leaves only while its station has fewer units out than crews."""

    def __init__(self, staffing: Mapping[str, int], fleet: Mapping[str, Unit], free_at: dict[str, float]) -> None:
        self.fleet, self.free_at, self.caps = fleet, free_at, staffing
        self.units = {station: [u.unit_id for u in units] for station, units in _by_station(fleet).items()}

    def crew_back(self, station: str, t: float) -> float:
        """When the station has a crew to send at ``t`` or later (``t`` if it has one now)."""
        cap = self.caps.get(station)
        if cap is None:
            return t
        out = sorted(f for f in (self.free_at[u] for u in self.units[station]) if f > t)
        return t if len(out) < cap else out[len(out) - cap]

    def ready_at(self, t: float) -> Callable[[str], float]:
        """When each unit can leave for a call at ``t``: free, and its station with a crew on hand."""
        return lambda uid: max(self.free_at[uid], self.crew_back(self.fleet[uid].station, t))


class _RosterCrews:
    """The history's crews: a unit leaves when its station's staff on duty can crew it together with the station's
    units out then (each holds its crew until free again)."""

    def __init__(self, roster: Roster, fleet: Mapping[str, Unit], free_at: dict[str, float]) -> None:
        self.roster, self.fleet, self.free_at = roster, fleet, free_at
        at = _by_station(fleet)
        # each unit's station mates, (id, type)
        self.mates = {u.unit_id: [(m.unit_id, m.vehicle_type) for m in at[u.station] if m is not u]
                      for u in fleet.values()}
        self.memo: dict[tuple[int, tuple[str, ...]], bool] = {}  # (staff snapshot, types out) -> crewable

    def crewed_from(self, uid: str, t: float) -> float:
        """The first instant from ``t`` on when the station of ``uid`` can crew it (inf: never again)."""
        unit = self.fleet[uid]
        staff = self.roster.staff_at(unit.station, t)
        if staff is None:
            return t  # a station the records do not know: not limited
        mates, free_at = self.mates[uid], self.free_at
        while t < math.inf:
            out = tuple(sorted([vtype for u, vtype in mates if free_at[u] > t] + [unit.vehicle_type]))
            key = (id(staff), out)  # the roster's snapshots live as long as it does
            ok = self.memo.get(key)
            if ok is None:
                ok = self.memo[key] = self.roster.crewing.crewable(Counter(out), staff)
            if ok:
                return t
            back = min((f for u, _ in mates if (f := free_at[u]) > t), default=math.inf)
            t = min(back, self.roster.next_change(unit.station, t))
            staff = self.roster.staff_at(unit.station, t) or NO_STAFF
        return t

    def ready_at(self, t: float) -> Callable[[str], float]:
        """When each unit can leave for a call at ``t``: free, and crewed by its station's staff then."""
        return lambda uid: self.crewed_from(uid, max(self.free_at[uid], t))


def on_duty_from(spans: Sequence[tuple[float, float]], t: float) -> float:
    """The first instant from ``t`` on within one of ``spans`` (a unit's ``on_duty``; empty: always): ``t`` if on
    duty then, else the next span's start (inf: none)."""
    if not spans:
        return t
    i = bisect.bisect_right(spans, t, key=lambda span: span[0]) - 1
    if i >= 0 and t < spans[i][1]:
        return t
    return spans[i + 1][0] if i + 1 < len(spans) else math.inf


def _on_duty(ready_at: Callable[[str], float], fleet: Mapping[str, Unit], t: float) -> Callable[[str], float]:
    """When each unit can leave for a call at ``t``: ``ready_at``'s instant, or ``t`` if earlier, and on duty."""
    return lambda uid: on_duty_from(fleet[uid].on_duty, max(ready_at(uid), t))


def _choose(ranked: Ranked, fleet: Mapping[str, Unit], ready_at: Callable[[str], float], t: float, whole: bool
            ) -> tuple[Unit, float] | None:
    """The ready unit nearest in median travel time (``ranked``: the type's units by it, then id; ``ready_at``: when
    a unit can leave — free, and with crews its station's crew on hand); none ready: the first ready (then the
    nearest) — or None when ``ranked`` is only the ranking's prefix (the whole one is needed)."""
    for _, uid in ranked:
        if ready_at(uid) <= t:
            return fleet[uid], t
    if not whole:
        return None
    at, _, uid = min((ready_at(uid), travel, uid) for travel, uid in ranked)
    return fleet[uid], at


def respond(unit: Unit, seen: Response, at: float, travel_s: float, turnout_change_s: float = 0.0) -> Response:
    """The response of ``unit`` dispatched at ``at`` in place of ``seen``: its turnout (changed by
    ``turnout_change_s``, at least 0 s) and its times after arrival kept, the travel drawn."""
    turnout = max(0.0, (seen.turnout_s if seen.turnout_s is not None else 0.0) + turnout_change_s)
    if seen.on_scene is None:  # never arrived: busy as long as the replaced response
        busy = None if seen.available is None else seen.available - seen.dispatched
        return Response(unit.unit_id, unit.vehicle_type, at, None if seen.en_route is None else at + turnout,
                        None, None, None, None if busy is None else at + busy)
    arrive = at + turnout + travel_s

    def after(x: float | None) -> float | None:
        return None if x is None else arrive + (x - seen.on_scene)  # type: ignore[operator]
    return Response(unit.unit_id, unit.vehicle_type, at, at + turnout, arrive, after(seen.transporting),
                    after(seen.at_hospital), after(seen.available))
