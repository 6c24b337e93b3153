"""Plausible traffic of a Paris-scale brigade, as Vigie events in event-time order.

Intervention arrivals follow a non-homogeneous Poisson process (~500,000 a year) shaped by hour of
day and weekday in local time (``zone``, Paris by default: clocks change in March and October); each nature
engages a set of vehicle types, taken from the nearest stations that have one available; every vehicle then
goes dispatched -> en route -> on scene -> (transporting -> at hospital) -> returning -> available at station,
with plausible durations. Vehicles also go out of service now and then.

Crews (``crews=True``): each station has three watches that take 24-hour turns at ``shift_hour``
(UTC); a watch's strength is ``staffing_ratio`` times the seats of the station's whole fleet, so a
station cannot crew every vehicle at once. A person is absent for a whole watch with probability
``absence_rate`` (not on duty), and becomes unavailable for 1 to 3 hours now and then. A vehicle is
dispatched only with a crew formed from its station's available staff (seats by scarcity, each to
the qualified person with the fewest other qualifications); the crew is assigned with the dispatch
and released when the vehicle is back (off duty then if its watch ended meanwhile).

Major incidents (``major_incidents_per_day``, none by default; ``make run`` has some): a call in one area
needing ``MAJOR_NEEDS`` (thirty VSAV and four FPT, as for many casualties), served by the nearest available
units like any call — its area runs out of VSAV for a while, which is what the capacity alerts are for. They
are drawn from a random stream of their own.

Delays (``delays=True``, the default), drawn from a random stream of their own: a few non-urgent calls wait for
their unit (``DEFERRED_SHARE`` of priority-3 calls are dispatched 6 to 15 minutes late: a deferred dispatch), and a
few ambulances wait at a saturated emergency department (``HOSPITAL_DELAY_SHARE`` of hospital stays last 50 to 90
minutes) — what the alerts on interventions waiting for a unit and on units stuck in a status are for.

The same seed and start time give the same events, ids included.
"""

from __future__ import annotations

import heapq
import importlib
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel

from core.settings import Settings
from schemas.events import (
    CrewStatus,
    CrewStatusEvent,
    InterventionEvent,
    InterventionNature,
    Lifecycle,
    Location,
    Position,
    Qualification,
    VehicleStatus,
    VehicleStatusEvent,
)
from schemas.reference import Reference, Station
from streams import registry

ANNUAL_INTERVENTIONS = 500_000
# relative activity by hour of day (mean 1.0) and by weekday (Monday = 0)
HOURLY = [0.62, 0.52, 0.45, 0.40, 0.38, 0.42, 0.58, 0.85, 1.05, 1.15, 1.20, 1.25,
          1.28, 1.25, 1.22, 1.22, 1.25, 1.30, 1.35, 1.32, 1.22, 1.10, 0.95, 0.79]
WEEKDAY = [0.97, 0.96, 0.97, 0.98, 1.02, 1.06, 1.04]
NATURES: list[tuple[InterventionNature, float, tuple[str, ...]]] = [
    (InterventionNature.RESCUE_TO_PERSON, 0.76, ("VSAV",)),
    (InterventionNature.ROAD_ACCIDENT, 0.08, ("VSAV", "VSR")),
    (InterventionNature.FIRE, 0.06, ("FPT", "EPA", "VSAV")),
    (InterventionNature.HAZMAT, 0.01, ("FPT", "VL")),
    (InterventionNature.OTHER, 0.09, ("PSE",)),
]
MAJOR_NEEDS = ("VSAV",) * 30 + ("FPT",) * 4
FALLBACK = {"VSR": "FPT", "PSE": "FPT", "EPA": "FPT", "CCF": "FPT"}
ON_SCENE_MIN = {InterventionNature.RESCUE_TO_PERSON: (20, 45), InterventionNature.ROAD_ACCIDENT: (25, 60),
                InterventionNature.FIRE: (40, 150), InterventionNature.HAZMAT: (60, 180),
                InterventionNature.OTHER: (15, 40)}
HOSPITALS = [(48.8375, 2.3650), (48.8895, 2.3436), (48.8504, 2.2900), (48.8710, 2.4000), (48.8210, 2.3480)]
DEFERRED_SHARE = 0.04  # of priority-3 calls: dispatched 6 to 15 minutes late
HOSPITAL_DELAY_SHARE = 0.04  # of hospital stays: 50 to 90 minutes (a saturated emergency department)


@dataclass(order=True)
class _Action:
    time: float
    seq: int
    kind: str = field(compare=False)
    data: dict = field(compare=False, default_factory=dict)  # type: ignore[type-arg]


@dataclass
class SimEvent:
    topic: str  # a processor input's logical name ("vehicle-status", "interventions", "crew-status", ...)
    key: str
    event: BaseModel


Q = Qualification
# seats filled scarcest first
SEAT_ORDER = (Q.CREW_LEADER, Q.DRIVER, Q.TEAM_LEADER, Q.TEAM_MEMBER)


@dataclass
class _Person:
    person_id: str
    station_id: str
    watch: int
    qualifications: tuple[Qualification, ...]
    status: CrewStatus = CrewStatus.OFF_DUTY
    leaving: bool = False  # its watch ended while it was out on a vehicle


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * 111.0
    dlon = (a[1] - b[1]) * 111.0 * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


class Simulator:
    def __init__(self, reference: Reference, seed: int = 1, start: datetime | None = None,
                 annual_interventions: int = ANNUAL_INTERVENTIONS, out_of_service_per_day: float = 0.08,
                 crews: bool = True, shift_hour: int = 7, staffing_ratio: float = 0.75, absence_rate: float = 0.06,
                 unavailable_per_person_day: float = 0.15, zone: str = "Europe/Paris",
                 major_incidents_per_day: float = 0.0, delays: bool = True) -> None:
        self.ref = reference
        self.zone = ZoneInfo(zone)
        self.rng = random.Random(seed)
        self.start = (start or datetime.now(UTC)).replace(microsecond=0).timestamp()
        self.rate_per_s = annual_interventions / (365.0 * 86400.0)
        self.oos_per_s = out_of_service_per_day / 86400.0
        self.major_per_s = major_incidents_per_day / 86400.0
        self.major_rng = random.Random(f"major-{seed}")  # its own stream: without majors, the same events
        self.delay_rng = random.Random(f"delays-{seed}") if delays else None  # its own stream too
        self.stations = list(reference.stations.values())
        self.available: dict[str, set[str]] = {}  # "station|type" -> available vehicle ids
        self.vehicle_pos: dict[str, tuple[float, float]] = {}
        self._queue: list[_Action] = []
        self._seq = 0
        self._n_interventions = 0
        self.shortfalls = 0
        self.crews = crews
        self.shift_hour = shift_hour
        self.staffing_ratio = staffing_ratio
        self.absence_rate = absence_rate
        self.unavailable_per_person_day = unavailable_per_person_day
        self.people: dict[str, _Person] = {}
        self.free_staff: dict[str, set[str]] = {}  # station -> ids of available people
        self.crew_of: dict[str, list[str]] = {}  # vehicle -> its crew while out
        self.uncrewed = 0  # vehicles passed over because their station could not crew them
        self._station_coords: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _push(self, t: float, kind: str, **data: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Action(t, self._seq, kind, data))

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _dt(self, t: float) -> datetime:
        return datetime.fromtimestamp(round(t), UTC)

    def _vehicle_event(self, t: float, vid: str, status: VehicleStatus, iid: str | None,
                       pos: tuple[float, float] | None) -> SimEvent:
        v = self.ref.fleet[vid]
        if pos is not None:
            self.vehicle_pos[vid] = pos
        p = self.vehicle_pos[vid]
        ev = VehicleStatusEvent(
            schema_version=1, event_id=self._id(), event_time=self._dt(t), vehicle_id=vid,
            vehicle_type=v.vehicle_type, home_station=v.home_station, status=status, intervention_id=iid,
            position=Position(lat=round(p[0], 5), lon=round(p[1], 5)),
        )
        return SimEvent("vehicle-status", v.home_station, ev)

    def _crew_event(self, t: float, person: _Person, status: CrewStatus, vehicle_id: str | None = None,
                    iid: str | None = None) -> SimEvent:
        person.status = status
        free = self.free_staff[person.station_id]
        if status is CrewStatus.AVAILABLE:
            free.add(person.person_id)
        else:
            free.discard(person.person_id)
        ev = CrewStatusEvent(
            schema_version=1, event_id=self._id(), event_time=self._dt(t), person_id=person.person_id,
            station_id=person.station_id, status=status, qualifications=person.qualifications,
            vehicle_id=vehicle_id, intervention_id=iid if vehicle_id else None,
        )
        return SimEvent("crew-status", person.station_id, ev)

    def _build_rosters(self) -> None:
        rules = self.ref.crew_rules
        for s in self.stations:
            self.free_staff[s.station_id] = set()
            seats = sum(rules.crew_size(v.vehicle_type) for v in self.ref.fleet_by_station[s.station_id])
            strength = max(3, round(seats * self.staffing_ratio))
            for watch in range(3):
                n_leaders = max(1, round(strength * 0.2))
                n_drivers = max(1, round(strength * 0.25))
                n_team_leaders = max(1, round(strength * 0.2))
                for i in range(strength):
                    if i < n_leaders:
                        quals = [Q.CREW_LEADER, Q.TEAM_LEADER, Q.TEAM_MEMBER]
                        if self.rng.random() < 0.3:
                            quals.append(Q.DRIVER)
                    elif i < n_leaders + n_drivers:
                        quals = [Q.DRIVER, Q.TEAM_MEMBER]
                        if self.rng.random() < 0.2:
                            quals.append(Q.TEAM_LEADER)
                    elif i < n_leaders + n_drivers + n_team_leaders:
                        quals = [Q.TEAM_LEADER, Q.TEAM_MEMBER]
                    else:
                        quals = [Q.TEAM_MEMBER]
                    pid = f"FF{self.rng.getrandbits(40):010x}"  # pseudonymous: no name, no rank
                    self.people[pid] = _Person(pid, s.station_id, watch, tuple(quals))

    def _watch_on(self, t: float) -> int:
        """The watch on duty at ``t``: watches turn every day at ``shift_hour``."""
        day = int((t - self.shift_hour * 3600) // 86400)
        return day % 3

    def _next_shift(self, t: float) -> float:
        base = t - (t - self.shift_hour * 3600) % 86400
        return base + 86400

    def _shift_change(self, t: float, first: bool) -> Iterator[SimEvent]:
        on = self._watch_on(t)
        for p in self.people.values():
            if p.watch == on:
                p.leaving = False
                if p.status is CrewStatus.OFF_DUTY and self.rng.random() >= self.absence_rate:
                    yield self._crew_event(t, p, CrewStatus.AVAILABLE)
                    if self.unavailable_per_person_day > 0 and self.rng.random() < self.unavailable_per_person_day:
                        self._push(t + self.rng.uniform(1, 20) * 3600, "unavailable", pid=p.person_id)
            elif not first and p.status is not CrewStatus.OFF_DUTY:
                reserved = p.status is CrewStatus.AVAILABLE and p.person_id not in self.free_staff[p.station_id]
                if p.status is CrewStatus.ASSIGNED or reserved:
                    p.leaving = True  # off duty when its vehicle is back
                else:
                    yield self._crew_event(t, p, CrewStatus.OFF_DUTY)
        self._push(self._next_shift(t), "shift")

    def _form_crew(self, station_id: str, vehicle_type: str) -> list[str] | None:
        """People for every seat of the vehicle's crew, or None when the station cannot crew it."""
        seats = self.ref.crew_rules.requirements.get(vehicle_type)
        if seats is None:
            return None
        free = sorted(self.free_staff[station_id])
        taken: list[str] = []
        for q in SEAT_ORDER:
            for _ in range(seats.get(q, 0)):
                fit = [pid for pid in free if q in self.people[pid].qualifications and pid not in taken]
                if not fit:
                    return None
                taken.append(min(fit, key=lambda pid: (len(self.people[pid].qualifications), pid)))
        return taken

    def _rate(self, t: float) -> float:
        d = datetime.fromtimestamp(t, self.zone)  # people call by their local clock: demand follows it
        return self.rate_per_s * HOURLY[d.hour] * WEEKDAY[d.weekday()]

    def events(self, duration_s: float) -> Iterator[SimEvent]:
        """Every event of ``duration_s`` seconds of operations, in event-time order."""
        t0 = self.start
        end = t0 + duration_s
        for s in self.stations:
            for v in self.ref.fleet_by_station[s.station_id]:
                self.vehicle_pos[v.vehicle_id] = (s.lat, s.lon)
                self.available.setdefault(f"{s.station_id}|{v.vehicle_type}", set()).add(v.vehicle_id)
                yield self._vehicle_event(t0, v.vehicle_id, VehicleStatus.AVAILABLE_AT_STATION, None, None)
        if self.crews:
            self._build_rosters()
            yield from self._shift_change(t0, first=True)
        max_rate = self.rate_per_s * max(HOURLY) * max(WEEKDAY)
        self._push(t0 + self.rng.expovariate(max_rate), "arrival")
        n_vehicles = len(self.ref.fleet)
        if self.oos_per_s > 0:
            self._push(t0 + self.rng.expovariate(self.oos_per_s * n_vehicles), "breakdown")
        if self.major_per_s > 0:
            self._push(t0 + self.major_rng.expovariate(self.major_per_s), "major")
        while self._queue:
            a = heapq.heappop(self._queue)
            if a.time >= end:
                break
            if a.kind == "arrival":
                self._push(a.time + self.rng.expovariate(max_rate), "arrival")
                if self.rng.random() * max_rate <= self._rate(a.time):  # thinning
                    yield from self._open_intervention(a.time)
            elif a.kind == "shift":
                yield from self._shift_change(a.time, first=False)
            elif a.kind in ("unavailable", "unavailable_end"):
                yield from self._unavailability(a)
            elif a.kind == "major":
                self._push(a.time + self.major_rng.expovariate(self.major_per_s), "major")
                yield from self._open_intervention(a.time, self._major_call(a.time))
            elif a.kind == "breakdown":
                self._push(a.time + self.rng.expovariate(self.oos_per_s * n_vehicles), "breakdown")
                yield from self._breakdown(a.time)
            elif a.kind == "close":  # an intervention no vehicle could be sent to
                yield from self._close(a.time, a.data["info"])
            else:
                yield from self._vehicle_step(a)

    def _draw_call(self, t: float) -> tuple[dict, InterventionEvent, tuple[str, ...]]:  # type: ignore[type-arg]
        """A new call at ``t``: its nature, place (sector: the nearest station's) and priority; its ``opened``
        event, and the vehicle types it needs."""
        r = self.rng.random()
        acc = 0.0
        nature, needs = NATURES[-1][0], NATURES[-1][2]
        for nat, p, types in NATURES:
            acc += p
            if r < acc:
                nature, needs = nat, types
                break
        base = self.rng.choice(self.stations)
        loc = (base.lat + self.rng.gauss(0, 0.008), base.lon + self.rng.gauss(0, 0.011))
        priority = 1 if nature in (InterventionNature.FIRE, InterventionNature.HAZMAT) else self.rng.choice((2, 2, 3))
        return self._call(t, nature, loc, priority, needs)

    def _nearest_station(self, loc: tuple[float, float]) -> Station:
        """The station nearest ``loc`` (``_km``, vectorised: the first of equals, as ``min`` would take)."""
        if self._station_coords is None:
            lat = np.array([s.lat for s in self.stations])
            lon = np.array([s.lon for s in self.stations])
            self._station_coords = (lat, lon, np.cos(np.radians(lat)))
        lat, lon, cos_lat = self._station_coords
        return self.stations[int(np.argmin(np.hypot((lat - loc[0]) * 111.0, (lon - loc[1]) * 111.0 * cos_lat)))]

    def demand(self, duration_s: float) -> Iterator[SimEvent]:
        """Calls only, opened and closed (after the nature's time on scene and 10 to 30 minutes more), in
        event-time order, over ``duration_s`` seconds: weeks of past demand in seconds, for the forecasts (``make
        run`` gives its live database such a past). No vehicles, no crews; a call still open at the end closes
        there."""
        end = self.start + duration_s
        max_rate = self.rate_per_s * max(HOURLY) * max(WEEKDAY)
        closes: list[tuple[float, int, dict]] = []  # type: ignore[type-arg]
        t = self.start
        while True:
            t += self.rng.expovariate(max_rate)
            while closes and closes[0][0] <= min(t, end):
                when, _, info = heapq.heappop(closes)
                yield from self._close(when, info)
            if t >= end:
                break
            if self.rng.random() * max_rate <= self._rate(t):  # thinning, as in events()
                info, opened, _ = self._draw_call(t)
                yield SimEvent("interventions", info["iid"], opened)
                low, high = ON_SCENE_MIN[info["nature"]]
                self._seq += 1
                heapq.heappush(closes, (min(end - 1, t + 60 * (self.rng.uniform(low, high) + self.rng.uniform(10, 30))),
                                        self._seq, info))
        while closes:
            when, _, info = heapq.heappop(closes)
            yield from self._close(when, info)

    def _major_call(self, t: float) -> tuple[dict, InterventionEvent, tuple[str, ...]]:  # type: ignore[type-arg]
        """A major incident at ``t``, at a station of an area drawn at random."""
        base = self.major_rng.choice(self.stations)
        loc = (base.lat + self.major_rng.gauss(0, 0.003), base.lon + self.major_rng.gauss(0, 0.004))
        return self._call(t, InterventionNature.RESCUE_TO_PERSON, loc, 1, MAJOR_NEEDS)

    def _call(self, t: float, nature: InterventionNature, loc: tuple[float, float], priority: int,
              needs: tuple[str, ...]) -> tuple[dict, InterventionEvent, tuple[str, ...]]:  # type: ignore[type-arg]
        first_due = self._nearest_station(loc)
        self._n_interventions += 1
        iid = f"I{int(self.start)}-{self._n_interventions:07d}"
        location = Location(lat=round(loc[0], 5), lon=round(loc[1], 5), sector=f"Z{first_due.station_id[1:]}")
        opened = InterventionEvent(
            schema_version=1, event_id=self._id(), event_time=self._dt(t), intervention_id=iid, nature=nature,
            lifecycle=Lifecycle.OPENED, location=location, priority=priority)
        info = {"iid": iid, "nature": nature, "loc": loc, "location": location, "priority": priority}
        return info, opened, needs

    def _open_intervention(self, t: float, call: tuple[dict, InterventionEvent, tuple[str, ...]] | None = None  # type: ignore[type-arg]
                           ) -> Iterator[SimEvent]:
        info, opened, needs = call or self._draw_call(t)
        loc = info["loc"]
        yield SimEvent("interventions", info["iid"], opened)
        units = []
        for vtype in needs:
            vid = self._nearest_available(vtype, loc) or (
                self._nearest_available(FALLBACK[vtype], loc) if vtype in FALLBACK else None)
            if vid is None:
                self.shortfalls += 1
                continue
            units.append(vid)
        dispatch_t = t + self.rng.uniform(30, 90)
        if self.delay_rng is not None and info["priority"] == 3 and self.delay_rng.random() < DEFERRED_SHARE:
            dispatch_t += self.delay_rng.uniform(6, 15) * 60  # a deferred dispatch: no unit for a while
        info["remaining"] = len(units)
        if not units:
            self._push(dispatch_t + 600, "close", info=info)
        for vid in units:
            self._push(dispatch_t, "dispatched", vid=vid, info=info)

    def _nearest_available(self, vtype: str, loc: tuple[float, float]) -> str | None:
        """The nearest available vehicle of the type whose station can crew it; its crew is taken."""
        best = None
        for s in sorted(self.stations, key=lambda s: _km((s.lat, s.lon), loc)):
            pool = self.available.get(f"{s.station_id}|{vtype}")
            if not pool:
                continue
            if self.crews:
                crew = self._form_crew(s.station_id, vtype)
                if crew is None:
                    self.uncrewed += 1
                    continue
                best = min(pool)
                self.crew_of[best] = crew
                for pid in crew:  # reserved now, assigned with the dispatch event
                    self.free_staff[s.station_id].discard(pid)
            else:
                best = min(pool)
            pool.discard(best)
            break
        return best

    def _unavailability(self, a: _Action) -> Iterator[SimEvent]:
        p = self.people[a.data["pid"]]
        if a.kind == "unavailable":
            if p.status is CrewStatus.AVAILABLE and p.person_id in self.free_staff[p.station_id]:
                yield self._crew_event(a.time, p, CrewStatus.UNAVAILABLE)
                self._push(a.time + self.rng.uniform(1, 3) * 3600, "unavailable_end", pid=p.person_id)
        elif p.status is CrewStatus.UNAVAILABLE:
            on_duty = p.watch == self._watch_on(a.time)
            yield self._crew_event(a.time, p, CrewStatus.AVAILABLE if on_duty else CrewStatus.OFF_DUTY)

    def _breakdown(self, t: float) -> Iterator[SimEvent]:
        pools = [p for p in self.available.values() if p]
        if not pools:
            return
        pool = self.rng.choice(pools)
        vid = min(pool)
        pool.discard(vid)
        yield self._vehicle_event(t, vid, VehicleStatus.OUT_OF_SERVICE, None, None)
        self._push(t + self.rng.uniform(2, 8) * 3600, "repaired", vid=vid)

    def _vehicle_step(self, a: _Action) -> Iterator[SimEvent]:
        t, d, rng = a.time, a.data, self.rng
        vid = d["vid"]
        v = self.ref.fleet[vid]
        home: Station = self.ref.stations[v.home_station]
        info = d.get("info")
        iid = info["iid"] if info else None
        if a.kind == "dispatched":
            yield self._vehicle_event(t, vid, VehicleStatus.DISPATCHED, iid, None)
            for pid in self.crew_of.get(vid, ()):
                yield self._crew_event(t, self.people[pid], CrewStatus.ASSIGNED, vid, iid)
            self._push(t + rng.uniform(45, 180), "en_route", vid=vid, info=info)
        elif a.kind == "en_route":
            yield self._vehicle_event(t, vid, VehicleStatus.EN_ROUTE, iid, None)
            km = _km((home.lat, home.lon), info["loc"])
            self._push(t + max(120.0, km / 28.0 * 3600 * rng.uniform(0.8, 1.3)), "on_scene", vid=vid, info=info)
        elif a.kind == "on_scene":
            yield self._vehicle_event(t, vid, VehicleStatus.ON_SCENE, iid, info["loc"])
            lo, hi = ON_SCENE_MIN[info["nature"]]
            leave = t + rng.uniform(lo, hi) * 60
            if v.vehicle_type == "VSAV" and rng.random() < 0.6:
                self._push(leave, "transporting", vid=vid, info=info)
            else:
                self._push(leave, "returning", vid=vid, info=info)
        elif a.kind == "transporting":
            yield self._vehicle_event(t, vid, VehicleStatus.TRANSPORTING, iid, None)
            yield from self._maybe_close(t, info)
            hospital = min(HOSPITALS, key=lambda h: _km(h, info["loc"]))
            self._push(t + rng.uniform(8, 20) * 60, "at_hospital", vid=vid, info=info, hospital=hospital)
        elif a.kind == "at_hospital":
            yield self._vehicle_event(t, vid, VehicleStatus.AT_HOSPITAL, iid, d["hospital"])
            stay = rng.uniform(15, 35) * 60
            if self.delay_rng is not None and self.delay_rng.random() < HOSPITAL_DELAY_SHARE:
                stay = self.delay_rng.uniform(50, 90) * 60  # waiting to hand the patient over
            self._push(t + stay, "returning", vid=vid, info=None, after_hospital=True)
        elif a.kind == "returning":
            yield self._vehicle_event(t, vid, VehicleStatus.RETURNING, iid, None)
            if info is not None:
                yield from self._maybe_close(t, info)
            self._push(t + rng.uniform(8, 20) * 60, "back", vid=vid)
        elif a.kind == "back":
            yield self._vehicle_event(t, vid, VehicleStatus.AVAILABLE_AT_STATION, None, (home.lat, home.lon))
            self.available[f"{v.home_station}|{v.vehicle_type}"].add(vid)
            for pid in self.crew_of.pop(vid, ()):
                p = self.people[pid]
                yield self._crew_event(t, p, CrewStatus.OFF_DUTY if p.leaving else CrewStatus.AVAILABLE)
        elif a.kind == "repaired":
            yield self._vehicle_event(t, vid, VehicleStatus.AVAILABLE_AT_STATION, None, (home.lat, home.lon))
            self.available[f"{v.home_station}|{v.vehicle_type}"].add(vid)
        elif a.kind == "close":
            yield from self._close(t, info)

    def _maybe_close(self, t: float, info: dict) -> Iterator[SimEvent]:  # type: ignore[type-arg]
        info["remaining"] -= 1
        if info["remaining"] == 0:
            yield from self._close(t, info)

    def _close(self, t: float, info: dict) -> Iterator[SimEvent]:  # type: ignore[type-arg]
        yield SimEvent("interventions", info["iid"], InterventionEvent(
            schema_version=1, event_id=self._id(), event_time=self._dt(t), intervention_id=info["iid"],
            nature=info["nature"], lifecycle=Lifecycle.CLOSED, location=info["location"],
            priority=info["priority"]))


def with_processors(sim: Simulator, duration_s: float, settings: Settings, seed: int) -> Iterator[SimEvent]:
    """The simulator's events merged, in event-time order, with those of every registered processor that
    declares a simulator (``Processor.simulator``: ``"module:function"``)."""
    start = datetime.fromtimestamp(sim.start, UTC)
    extra = []
    for proc in registry.processors(settings):
        if proc.simulator:
            module, _, name = proc.simulator.partition(":")
            produce = getattr(importlib.import_module(module), name)
            extra.append(SimEvent(topic, key, ev) for topic, key, ev in produce(sim.ref, start, duration_s, seed))
    if not extra:
        return sim.events(duration_s)
    return heapq.merge(sim.events(duration_s), *extra, key=lambda e: e.event.event_time)  # type: ignore[union-attr]
