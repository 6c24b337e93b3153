"""Per-station state: every vehicle of the station, its current engagement, the staff on duty there,
and the station's window accumulators, kept together so that one event changes exactly one table entry
(vehicles and crews of a station share a partition: both topics are keyed by the station).

Rules (pure, no Kafka):
- an event older than the vehicle's state, or an ``event_id`` already applied, changes nothing;
- an engagement (vehicle x intervention) records the first time of each milestone
  (dispatched, en route, on scene, transport, hospital) and ends when the vehicle is available
  again or out of service, or is dispatched to another intervention;
- turnout = en route - dispatched, travel = on scene - en route (per engagement);
- a crew event follows the same ordering rules per person; staffed capacity follows the crewing rule
  (``streams/crewing.py``) over the station's available vehicles and available staff.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from core.tables import NO_TIME
from schemas.events import (
    ENGAGED_STATUSES,
    CrewStatus,
    CrewStatusEvent,
    VehicleStatus,
    VehicleStatusEvent,
    category_of,
)
from schemas.reference import Reference
from streams.crewing import QUALIFICATIONS, Crewing, profile_mask, profile_qualifications
from streams.ordering import Outcome, place, trim
from streams.rows import (
    EngagementRow,
    StaffStateRow,
    StaffWindowRow,
    StationCapacityRow,
    StationStaffRow,
    VehicleStateRow,
)
from streams.windows import (
    AVAILABLE,
    CAT_INDEX,
    STAFF_INDEX,
    StationWindows,
    Step,
    UnitStep,
    Watched,
    WindowBlock,
)

_MILESTONE = {
    VehicleStatus.DISPATCHED: 0,
    VehicleStatus.EN_ROUTE: 1,
    VehicleStatus.ON_SCENE: 2,
    VehicleStatus.TRANSPORTING: 3,
    VehicleStatus.AT_HOSPITAL: 4,
}
_RELEASING = frozenset(
    {VehicleStatus.AVAILABLE_AT_STATION, VehicleStatus.AVAILABLE_ON_RADIO, VehicleStatus.OUT_OF_SERVICE}
)
_CAT_INDEX_OF_STATUS = {s: CAT_INDEX[category_of(s).value] for s in VehicleStatus}
_CATEGORY_OF_STATUS_VALUE = {s.value: category_of(s).value for s in VehicleStatus} | {"unknown": "unknown"}
UNKNOWN_INDEX = CAT_INDEX["unknown"]


#: Timeline entries kept per vehicle or person at most (besides the lateness horizon): bounded state under a
#: burst. An event older than the oldest entry kept is stale (counted), never applied out of its order.
TIMELINE_CAP = 64
_time = itemgetter(0)  # a timeline entry's time


@dataclass(slots=True)
class Engagement:
    intervention_id: str
    # dispatched, en route, on scene, transport, hospital (NO_TIME when not reached)
    started_at: float
    milestones: list[float]
    released_at: float = NO_TIME

    def row(self, v: VehicleState, station_id: str, area: str, version: int) -> EngagementRow:
        d, e, s, tr, h = self.milestones
        return EngagementRow(
            self.intervention_id, v.vehicle_id, v.vehicle_type, station_id, area, self.started_at,
            d, e, s, tr, h, self.released_at,
            e - d if d and e else -1.0,
            s - e if e and s else -1.0,
            version,
        )


# A vehicle's timeline entry, one flat tuple: (time, event id, status, intervention id, lat, lon (None: no
# position), then the state after it: status, status since, lat, lon, engagement's intervention id (None: no
# engagement), started at, 5 milestones, released at). The first entry is the state at the horizon. One tuple of
# plain values per event: nested tuples or lists per event cost a third of the stations' throughput in garbage
# collections (measured).
STATE_AT = 6  # where an entry's state after it starts
_NO_VEHICLE_STATE = (None, NO_TIME, 0.0, 0.0, None, NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME)


@dataclass(slots=True)
class VehicleState:
    vehicle_id: str
    vehicle_type: str
    status: VehicleStatus | None = None
    event_time: float = NO_TIME
    status_since: float = NO_TIME
    lat: float = 0.0
    lon: float = 0.0
    engagement: Engagement | None = None
    timeline: list[tuple[Any, ...]] = field(default_factory=lambda: [(NO_TIME, "", None, None, None, None,
                                                                       *_NO_VEHICLE_STATE)])

    def row(self, station_id: str, area: str, version: int) -> VehicleStateRow:
        # ``_value_``: the plain string, without the ``.value`` property's cost (a hot path)
        status = self.status._value_ if self.status else "unknown"
        eng = self.engagement
        return VehicleStateRow(
            self.vehicle_id, self.vehicle_type, station_id, area, status, _CATEGORY_OF_STATUS_VALUE[status],
            eng.intervention_id if eng and not eng.released_at else "",
            self.status_since, self.event_time, self.lat, self.lon, version,
        )

    def entry(self, t: float, event_id: str, status: str, iid: str | None, lat: float | None, lon: float | None
              ) -> tuple[Any, ...]:
        """The timeline entry of an event just applied: the event, then the state after it (one flat tuple)."""
        eng = self.engagement
        st = self.status._value_ if self.status else None
        if eng is None:
            return (t, event_id, status, iid, lat, lon, st, self.status_since, self.lat, self.lon, None, NO_TIME,
                    NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME, NO_TIME)
        m = eng.milestones
        return (t, event_id, status, iid, lat, lon, st, self.status_since, self.lat, self.lon, eng.intervention_id,
                eng.started_at, m[0], m[1], m[2], m[3], m[4], eng.released_at)

    def restore(self, entry: Sequence[Any]) -> None:
        """The state after a timeline entry."""
        st, since, lat, lon, iid, started, *milestones, released = entry[STATE_AT:]
        self.status = VehicleStatus(st) if st else None
        self.status_since, self.lat, self.lon = float(since), float(lat), float(lon)
        self.engagement = (Engagement(iid, float(started), [float(x) for x in milestones], float(released))
                           if iid is not None else None)

    def to_list(self, horizon: float | None = None) -> list[object]:
        return [self.vehicle_type, self.event_time, _kept(self.timeline, horizon)]

    @classmethod
    def from_list(cls, vehicle_id: str, d: list) -> VehicleState:  # type: ignore[type-arg]
        if len(d) == 8:  # saved before timelines: its state is the horizon
            ids = d[3] or [""]
            eng = d[7] or [None, NO_TIME, [NO_TIME] * 5, NO_TIME]
            d = [d[0], d[2], [[float(d[2]), max(ids), d[1], None, None, None, d[1], d[4], d[5], d[6], eng[0],
                               eng[1], *eng[2], eng[3]]]]
        v = cls(vehicle_id, d[0], event_time=float(d[1]), timeline=[tuple(e) for e in d[2]])
        v.restore(v.timeline[-1])
        return v


# A person's timeline entry: (time, event id, status, mask, vehicle id, intervention id, state after), the state
# as (status, mask, status since, vehicle id, intervention id).
_NO_PERSON_STATE = (None, 0, NO_TIME, "", "")


@dataclass(slots=True)
class PersonState:
    """One firefighter at this station: status, qualification profile (mask), timeline."""

    person_id: str
    status: CrewStatus | None = None
    mask: int = 0
    event_time: float = NO_TIME
    status_since: float = NO_TIME
    vehicle_id: str = ""
    intervention_id: str = ""
    timeline: list[tuple[Any, ...]] = field(default_factory=lambda: [(NO_TIME, "", None, 0, "", "", *_NO_PERSON_STATE)])
    # when this person's latest change enters the windows: its event time, or later when it came late and was
    # clamped to the open window; the person may leave the state only once the windows are sealed past it
    counted_at: float = NO_TIME

    def row(self, station_id: str, area: str, version: int) -> StaffStateRow:
        return StaffStateRow(
            self.person_id, station_id, area, self.status.value if self.status else "off_duty",
            profile_qualifications(self.mask), self.vehicle_id, self.intervention_id, self.status_since,
            self.event_time, version,
        )

    def entry(self, t: float, event_id: str, status: str, mask: int, vehicle_id: str, iid: str) -> tuple[Any, ...]:
        """The timeline entry of an event just applied: the event, then the state after it (one flat tuple)."""
        return (t, event_id, status, mask, vehicle_id, iid, self.status._value_ if self.status else None, self.mask,
                self.status_since, self.vehicle_id, self.intervention_id)

    def restore(self, entry: Sequence[Any]) -> None:
        """The state after a timeline entry."""
        st, mask, since, vehicle_id, iid = entry[STATE_AT:]
        self.status = CrewStatus(st) if st else None
        self.mask, self.status_since = int(mask), float(since)
        self.vehicle_id, self.intervention_id = str(vehicle_id), str(iid)

    def to_list(self, horizon: float | None = None) -> list[object]:
        return [self.event_time, _kept(self.timeline, horizon), self.counted_at]

    @classmethod
    def from_list(cls, person_id: str, d: list) -> PersonState:  # type: ignore[type-arg]
        if len(d) == 7:  # saved before timelines: its state is the horizon
            d = [d[2], [[float(d[2]), max(d[3] or [""]), d[0], d[1], d[5], d[6], d[0], d[1], d[4], d[5], d[6]]]]
        counted_at = float(d[2]) if len(d) > 2 else float(d[0])  # saved before counted_at: its event time
        p = cls(person_id, event_time=float(d[0]), timeline=[tuple(e) for e in d[1]], counted_at=counted_at)
        p.restore(p.timeline[-1])
        return p


def _kept(timeline: list[tuple[Any, ...]], horizon: float | None) -> list[tuple[Any, ...]]:
    """The entries an event can still be placed after (from the last one older than ``horizon``): what is
    saved; the rest is dropped from memory at the entity's next event, or by :meth:`StationState.trim_timelines`."""
    start = 0
    if horizon is not None:
        while start + 1 < len(timeline) and timeline[start + 1][0] < horizon:
            start += 1
    return timeline[start:] if start else timeline


def _counted(rejected: Outcome, out: StationOutput) -> Outcome:
    out.outcomes[rejected.value] += 1
    return rejected


def _staff_index(status: CrewStatus | None) -> int:
    return -1 if status is None else STAFF_INDEX[status.value]


def _staff_index_of_value(status: str | None) -> int:
    return -1 if status is None else STAFF_INDEX[status]


def _cat_of_value(status: str | None) -> int:
    return UNKNOWN_INDEX if status is None else CAT_INDEX[_CATEGORY_OF_STATUS_VALUE[status]]


@dataclass(slots=True)
class StationOutput:
    vehicle_rows: list[VehicleStateRow] = field(default_factory=list)
    engagement_rows: list[EngagementRow] = field(default_factory=list)
    window_rows: WindowBlock = field(default_factory=WindowBlock)
    staff_rows: list[StaffStateRow] = field(default_factory=list)
    staff_window_rows: WindowBlock = field(default_factory=lambda: WindowBlock(StaffWindowRow))
    capacity_rows: list[StationCapacityRow] = field(default_factory=list)
    staff_count_rows: list[StationStaffRow] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    late_changes: int = 0
    steps: list[Step] | None = None  # the sealed steps of the stations' values, when someone reads them
    unit_steps: list[UnitStep] | None = None  # and of their units' statuses
    watched: Watched | None = None  # the values whose steps are given (None: all)


@dataclass(slots=True)
class StationState:
    station_id: str
    area: str
    vehicles: dict[str, VehicleState]
    windows: StationWindows
    partition: int = -1
    staff: dict[str, PersonState] = field(default_factory=dict)
    # records of this station consumed so far (applied, duplicate or stale): with the newest event time,
    # the version of its current-capacity rows. Both only grow with the input read, also across a replay.
    records: int = 0
    newest_event_time: float = NO_TIME
    # the newest event time of the people evicted off duty: an older event for someone unknown is stale
    # (it could be one of theirs, beyond the lateness), never a new person
    evicted_until: float = NO_TIME
    # units' changes of status not sealed yet whose timeline entries the cap dropped (a vehicle's burst between
    # two seals: on the batch path, a chunk's worth): final already (nothing can be placed before them)
    unit_backlog: list[UnitStep] = field(default_factory=list)
    # whether a change of its units' status was given yet: the first is given whether a timer reads it or not (the
    # alerts tell a feed with units from one of calls alone by any unit's status)
    units_told: bool = False

    @classmethod
    def new(cls, station_id: str, reference: Reference, window_seconds: int) -> StationState:
        fleet = reference.fleet_by_station.get(station_id, ())
        vehicles = {v.vehicle_id: VehicleState(v.vehicle_id, v.vehicle_type) for v in fleet}
        unknown = Counter(v.vehicle_type for v in fleet)
        area = reference.stations[station_id].area if station_id in reference.stations else ""
        return cls(station_id, area, vehicles, StationWindows.for_fleet(window_seconds, dict(unknown)))

    def version(self) -> int:
        """Version of the rows this station emits now: the newest event time first (it survives a lost state:
        a fresh worker on an old database), then the records consumed, which order the rows of one instant and
        only grow, also across a crash's replay. A row re-derived by a late record is newer than the one it
        replaces."""
        return int(self.newest_event_time * 1000) * 1_000_000 + self.records % 1_000_000

    def apply(self, event: VehicleStatusEvent, t: float, out: StationOutput) -> Outcome:
        """Apply one vehicle event (``t`` = its event time in epoch seconds) at its place in the vehicle's
        timeline: an older one (within the lateness) is inserted and what follows re-derived."""
        self.records += 1
        if t > self.newest_event_time:
            self.newest_event_time = t
        v = self.vehicles.get(event.vehicle_id)
        if v is None:  # in the fleet (checked upstream) but added after this state was created
            v = self.vehicles[event.vehicle_id] = VehicleState(event.vehicle_id, event.vehicle_type)
            self.windows.add_type(event.vehicle_type)
            self.windows.types[event.vehicle_type].counts[UNKNOWN_INDEX] += 1
        timeline = v.timeline
        last = timeline[-1]
        eid = event.event_id
        newest = t > last[0] or (t == last[0] and eid > last[1])  # the common case, without ``place``
        at = len(timeline) if newest else place(timeline, t, eid)
        if isinstance(at, Outcome):
            return _counted(at, out)
        pos = event.position
        lat, lon = (pos.lat, pos.lon) if pos else (None, None)
        iid = event.intervention_id
        version = int(self.newest_event_time * 1000) * 1_000_000 + self.records % 1_000_000  # self.version()
        sealed = self.windows.sealed_time
        if newest:
            self._step(v, t, event.status, iid, lat, lon, out, version)
            timeline.append(v.entry(t, eid, event.status._value_, iid, lat, lon))
            v.event_time = t
        elif sealed is not None and t < sealed:
            return _counted(Outcome.STALE, out)  # its window is emitted: beyond the lateness
        else:
            self._rederive(v, at, (t, eid, event.status._value_, iid, lat, lon), out, version)
        if len(timeline) > 2:
            if len(timeline) > TIMELINE_CAP:
                self._keep_changes_dropped(v, sealed, out.watched)
            trim(timeline, sealed, TIMELINE_CAP)
        out.vehicle_rows.append(v.row(self.station_id, self.area, version))
        out.outcomes["applied"] += 1
        return Outcome.APPLIED

    def _step(self, v: VehicleState, t: float, status: VehicleStatus, iid: str | None, lat: float | None,
              lon: float | None, out: StationOutput, version: int) -> None:
        """One event on the vehicle's state: status, position, engagement, category change for the windows."""
        old_cat = UNKNOWN_INDEX if v.status is None else _CAT_INDEX_OF_STATUS[v.status]
        new_cat = _CAT_INDEX_OF_STATUS[status]
        if status is not v.status:
            v.status_since = t
        v.status = status
        if lat is not None:
            v.lat, v.lon = lat, lon
        self._track_engagement(v, status, iid, t, out, version)
        if old_cat != new_cat and self.windows.record(t, v.vehicle_type, old_cat, new_cat):
            out.late_changes += 1

    def _rederive(self, v: VehicleState, at: int, event: tuple[Any, ...], out: StationOutput, version: int) -> None:
        """Insert an older event at ``at`` and re-derive what follows it: its category changes (still pending:
        they are younger than the sealed time), its engagements and the vehicle's state."""
        timeline = v.timeline
        prev = _cat_of_value(timeline[at - 1][STATE_AT])
        for e in timeline[at:]:
            cat = _cat_of_value(e[2])
            if cat != prev:
                self.windows.retract(e[0], v.vehicle_type, prev, cat)
            prev = cat
        timeline.insert(at, event)  # its state after is derived below
        v.restore(timeline[at - 1])
        for i in range(at, len(timeline)):
            t, eid, status, iid, lat, lon = timeline[i][:STATE_AT]
            self._step(v, t, VehicleStatus(status), iid, lat, lon, out, version)
            timeline[i] = v.entry(t, eid, status, iid, lat, lon)

    def apply_crew(self, event: CrewStatusEvent, t: float, out: StationOutput) -> Outcome:
        """Apply one crew event at its place in the person's timeline (as :meth:`apply`)."""
        self.records += 1
        if t > self.newest_event_time:
            self.newest_event_time = t
        p = self.staff.get(event.person_id)
        if p is None:
            if t <= self.evicted_until:
                return _counted(Outcome.STALE, out)
            p = self.staff[event.person_id] = PersonState(event.person_id)
        timeline = p.timeline
        last = timeline[-1]
        eid = event.event_id
        newest = t > last[0] or (t == last[0] and eid > last[1])  # the common case, without ``place``
        at = len(timeline) if newest else place(timeline, t, eid)
        if isinstance(at, Outcome):
            return _counted(at, out)
        mask, vid, iid = profile_mask(event.qualifications), event.vehicle_id or "", event.intervention_id or ""
        sealed = self.windows.sealed_time
        if newest:
            self._step_crew(p, t, event.status, mask, vid, iid, out)
            timeline.append(p.entry(t, eid, event.status._value_, mask, vid, iid))
            p.event_time = t
        elif sealed is not None and t < sealed:
            return _counted(Outcome.STALE, out)
        else:
            prev = (timeline[at - 1][STATE_AT + 1], _staff_index_of_value(timeline[at - 1][STATE_AT]))
            for e in timeline[at:]:
                now = (e[3], _staff_index_of_value(e[2]))
                if now != prev:
                    self.windows.retract_staff(e[0], prev[0], prev[1], now[0], now[1])
                prev = now
            timeline.insert(at, (t, eid, event.status._value_, mask, vid, iid))  # state after: derived below
            p.restore(timeline[at - 1])
            for i in range(at, len(timeline)):
                t_i, eid_i, status, mask_i, vid_i, iid_i = timeline[i][:STATE_AT]
                self._step_crew(p, t_i, CrewStatus(status), mask_i, vid_i, iid_i, out)
                timeline[i] = p.entry(t_i, eid_i, status, mask_i, vid_i, iid_i)
        if len(timeline) > 2:
            trim(timeline, sealed, TIMELINE_CAP)
        version = int(self.newest_event_time * 1000) * 1_000_000 + self.records % 1_000_000  # self.version()
        out.staff_rows.append(p.row(self.station_id, self.area, version))
        out.outcomes["applied"] += 1
        return Outcome.APPLIED

    def _step_crew(self, p: PersonState, t: float, status: CrewStatus, new_mask: int, vehicle_id: str, iid: str,
                   out: StationOutput) -> None:
        old_mask, old_cat = p.mask, _staff_index(p.status)
        new_cat = _staff_index(status)
        if status is not p.status:
            p.status_since = t
        p.status, p.mask = status, new_mask
        p.vehicle_id, p.intervention_id = vehicle_id, iid
        if (old_mask, old_cat) != (new_mask, new_cat):
            late = self.windows.record_staff(t, old_mask, old_cat, new_mask, new_cat)
            if late:
                out.late_changes += 1
            counted = self.windows.sealed_time if late and self.windows.sealed_time is not None else t
            p.counted_at = max(p.counted_at, counted)

    def current_capacity(self, crewing: Crewing, out: StationOutput) -> None:
        """The station's current capacity (per type: vehicles, available, staffed) and staff (per
        qualification), from its vehicles and people now (not the windows, which lag by the lateness)."""
        vehicles: Counter[str] = Counter()
        available: Counter[str] = Counter()
        for v in self.vehicles.values():
            vehicles[v.vehicle_type] += 1
            if v.status is not None and _CAT_INDEX_OF_STATUS[v.status] == AVAILABLE:
                available[v.vehicle_type] += 1
        staff_available: Counter[int] = Counter()
        on_duty = [[0, 0, 0] for _ in QUALIFICATIONS]  # per qualification: available, assigned, unavailable
        for p in self.staff.values():
            cat = _staff_index(p.status)
            if cat < 0 or cat > 2:
                continue
            if cat == 0:
                staff_available[p.mask] += 1
            for qi in range(len(QUALIFICATIONS)):
                if p.mask >> qi & 1:
                    on_duty[qi][cat] += 1
        tracked = bool(self.staff) or bool(self.evicted_until)  # crews reported here, even if all left
        staffed = crewing.staffed(available, staff_available) if tracked else {}
        version = self.version()
        for vtype in sorted(vehicles):
            n, s = available[vtype], staffed.get(vtype, 0)
            out.capacity_rows.append(StationCapacityRow(
                self.station_id, self.area, vtype, vehicles[vtype], n, s, n - s if tracked else 0, int(tracked),
                self.newest_event_time, version))
        if tracked:
            for q, (avail, assigned, unavail) in zip(QUALIFICATIONS, on_duty, strict=True):
                out.staff_count_rows.append(StationStaffRow(
                    self.station_id, self.area, q.value, avail + assigned + unavail, assigned, avail, unavail,
                    self.newest_event_time, version))

    def _track_engagement(self, v: VehicleState, status: VehicleStatus, iid: str | None, t: float,
                          out: StationOutput, version: int) -> None:
        eng = v.engagement
        if eng is not None and eng.released_at:
            eng = v.engagement = None
        if status in ENGAGED_STATUSES or (status is VehicleStatus.RETURNING and iid):
            assert iid is not None
            if eng is not None and eng.intervention_id != iid:
                eng.released_at = t  # redeployed to another intervention
                out.engagement_rows.append(eng.row(v, self.station_id, self.area, version))
                eng = None
            if eng is None:
                eng = v.engagement = Engagement(iid, t, [NO_TIME] * 5)
            idx = _MILESTONE.get(status)
            if idx is not None and not eng.milestones[idx]:
                eng.milestones[idx] = t
            out.engagement_rows.append(eng.row(v, self.station_id, self.area, version))
        elif status in _RELEASING and eng is not None:
            eng.released_at = t
            out.engagement_rows.append(eng.row(v, self.station_id, self.area, version))

    def evict_off_duty(self, before: float) -> int:
        """Drop the people off duty (or without status) whose last event is older than ``before`` and whose
        changes are all folded into emitted windows (a late one counts from where it was clamped); returns how
        many. Their off-duty count leaves the windows' staff counters (it is in no row: rows count people on
        duty)."""
        sealed = self.windows.sealed_time
        if sealed is None:
            return 0
        horizon = min(before, sealed)
        gone = [p for p in self.staff.values()
                if p.event_time < horizon and p.counted_at < horizon
                and (p.status is None or p.status is CrewStatus.OFF_DUTY)]
        for p in gone:
            del self.staff[p.person_id]
            if p.status is not None:
                # the profile's counters stay (zero): the windows still say crews are tracked here
                self.windows.staff[p.mask][STAFF_INDEX[CrewStatus.OFF_DUTY.value]] -= 1
            self.evicted_until = max(self.evicted_until, p.event_time)
        return len(gone)

    def trim_timelines(self) -> int:
        """Drop from memory the timeline entries older than the sealed time that no event can use any more (what
        the saved state leaves out already): an entity trims its own at its next event, this catches the quiet
        ones, which would otherwise keep a burst of events for days. Changes no row. Returns the entries kept."""
        sealed = self.windows.sealed_time
        kept = 0
        for entity in (*self.vehicles.values(), *self.staff.values()):
            timeline = entity.timeline
            if sealed is not None and len(timeline) > 1 and timeline[1][0] < sealed:
                trim(timeline, sealed, TIMELINE_CAP)
            kept += len(timeline)
        return kept

    def seal(self, watermark: float, out: StationOutput, crewing: Crewing, max_fill_windows: int = 44_640) -> None:
        if out.unit_steps is not None:
            self.unit_steps(watermark, out.unit_steps, out.watched)
        elif self.unit_backlog:  # nobody reads them
            self.unit_backlog = [u for u in self.unit_backlog if u[0] >= watermark]
        self.windows.seal(watermark, self.station_id, self.area, max_fill_windows, out.window_rows, crewing,
                          out.staff_window_rows, out.steps, out.watched)

    def _keep_changes_dropped(self, v: VehicleState, sealed: float | None, watched: Watched | None) -> None:
        """Before the cap trims a timeline: the changes of status it drops, or makes its first entry (which
        :meth:`unit_steps` takes as the state at the horizon), that are not sealed yet, kept for the next seal
        (those ``watched`` reads; None: all)."""
        timeline = v.timeline
        lo = NO_TIME if sealed is None else sealed
        for i in range(1, len(timeline) - TIMELINE_CAP + 1):
            e = timeline[i]
            if e[0] >= lo and (serves := self._unit_change(e, timeline[i - 1], watched)) is not None:
                self.unit_backlog.append((e[0], self.station_id, v.vehicle_id, e[STATE_AT], serves))

    def _unit_change(self, e: tuple[Any, ...], before: tuple[Any, ...], watched: Watched | None) -> str | None:
        """The intervention a unit serves after timeline entry ``e`` ("" none) when ``e`` is a change to give: of
        its status (the state after it is in that status since then) or of the intervention it serves (a unit sent
        from one to another), one ``watched`` reads (None: all; before the station's first, all); else None."""
        if e[STATE_AT] is None or (e[STATE_AT + 1] != e[0] and e[STATE_AT + 4] == before[STATE_AT + 4]):
            return None
        serves: str = e[STATE_AT + 4] or e[3] or ""
        if watched is None or not self.units_told or watched.reads_unit(
                before[STATE_AT], before[STATE_AT + 4] or before[3] or "", e[STATE_AT], serves):
            return serves
        return None

    def unit_steps(self, until: float, steps: list[UnitStep], watched: Watched | None = None) -> None:
        """The units' changes of status that sealing up to ``until`` makes final (from the windows' sealed time:
        an older event is stale from then on), each with the intervention it serves, those ``watched`` reads
        (None: all; before the station's first, all of the seal's). Read from the timelines, re-derived in event
        time, so they do not depend on the order the records came in."""
        sealed = self.windows.sealed_time
        lo = NO_TIME if sealed is None else sealed
        if until <= lo:
            return
        given = len(steps)
        if self.unit_backlog:
            steps += [u for u in self.unit_backlog if u[0] < until]
            self.unit_backlog = [u for u in self.unit_backlog if u[0] >= until]
        for v in self.vehicles.values():
            timeline = v.timeline
            if timeline[-1][0] < lo:
                continue  # nothing new: the common case
            # from the first entry not older than ``lo`` (never the first: the state at the horizon)
            for i in range(max(1, bisect_left(timeline, lo, key=_time)), len(timeline)):
                e = timeline[i]
                t = e[0]
                if t >= until:
                    break
                if (serves := self._unit_change(e, timeline[i - 1], watched)) is not None:
                    steps.append((t, self.station_id, v.vehicle_id, e[STATE_AT], serves))
        self.units_told = self.units_told or len(steps) > given

    def to_dict(self) -> dict[str, object]:
        return {
            "s": self.station_id,
            "a": self.area,
            "v": {k: v.to_list(self.windows.sealed_time) for k, v in self.vehicles.items()},
            "w": self.windows.to_dict(),
            "p": self.partition,
            "st": {k: p.to_list(self.windows.sealed_time) for k, p in self.staff.items()},
            "r": self.records,
            "n": self.newest_event_time,
            "ev": self.evicted_until,
            **({"ub": [list(u) for u in self.unit_backlog]} if self.unit_backlog else {}),
            **({"ut": 1} if self.units_told else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> StationState:  # type: ignore[type-arg]
        return cls(
            d["s"], d["a"],
            {k: VehicleState.from_list(k, v) for k, v in d["v"].items()},
            StationWindows.from_dict(d["w"]),
            int(d["p"]),
            {k: PersonState.from_list(k, v) for k, v in d.get("st", {}).items()},
            int(d.get("r", 0)),
            float(d.get("n", NO_TIME)),
            float(d.get("ev", NO_TIME)),
            [(float(t), str(s), str(v), str(st), str(i)) for t, s, v, st, i in d.get("ub", [])],
            bool(d.get("ut", 0)),
        )
