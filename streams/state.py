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

from collections import Counter
from dataclasses import dataclass, field

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
from streams.ordering import Outcome, admit
from streams.rows import (
    EngagementRow,
    StaffStateRow,
    StaffWindowRow,
    StationCapacityRow,
    StationStaffRow,
    VehicleStateRow,
)
from streams.windows import AVAILABLE, CAT_INDEX, STAFF_INDEX, StationWindows, WindowBlock

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


@dataclass(slots=True)
class Engagement:
    intervention_id: str
    # dispatched, en route, on scene, transport, hospital (NO_TIME when not reached)
    started_at: float
    milestones: list[float]
    released_at: float = NO_TIME

    def row(self, v: VehicleState, station_id: str, area: str, version_time: float) -> EngagementRow:
        d, e, s, tr, h = self.milestones
        return EngagementRow(
            self.intervention_id, v.vehicle_id, v.vehicle_type, station_id, area, self.started_at,
            d, e, s, tr, h, self.released_at,
            e - d if d and e else -1.0,
            s - e if e and s else -1.0,
            int(version_time * 1000),
        )


@dataclass(slots=True)
class VehicleState:
    vehicle_id: str
    vehicle_type: str
    status: VehicleStatus | None = None
    event_time: float = NO_TIME
    ids_at_time: list[str] = field(default_factory=list)
    status_since: float = NO_TIME
    lat: float = 0.0
    lon: float = 0.0
    engagement: Engagement | None = None

    def row(self, station_id: str, area: str) -> VehicleStateRow:
        # ``_value_``: the plain string, without the ``.value`` property's cost (a hot path)
        status = self.status._value_ if self.status else "unknown"
        eng = self.engagement
        return VehicleStateRow(
            self.vehicle_id, self.vehicle_type, station_id, area, status, _CATEGORY_OF_STATUS_VALUE[status],
            eng.intervention_id if eng and not eng.released_at else "",
            self.status_since, self.event_time, self.lat, self.lon, int(self.event_time * 1000),
        )

    def to_list(self) -> list[object]:
        eng = self.engagement
        return [
            self.vehicle_type, self.status.value if self.status else None, self.event_time, self.ids_at_time,
            self.status_since, self.lat, self.lon,
            [eng.intervention_id, eng.started_at, eng.milestones, eng.released_at] if eng else None,
        ]

    @classmethod
    def from_list(cls, vehicle_id: str, d: list) -> VehicleState:  # type: ignore[type-arg]
        eng = Engagement(d[7][0], float(d[7][1]), [float(x) for x in d[7][2]], float(d[7][3])) if d[7] else None
        return cls(vehicle_id, d[0], VehicleStatus(d[1]) if d[1] else None, float(d[2]), list(d[3]),
                   float(d[4]), float(d[5]), float(d[6]), eng)


@dataclass(slots=True)
class PersonState:
    """One firefighter at this station: status, qualification profile (mask), dedup bookkeeping."""

    person_id: str
    status: CrewStatus | None = None
    mask: int = 0
    event_time: float = NO_TIME
    ids_at_time: list[str] = field(default_factory=list)
    status_since: float = NO_TIME
    vehicle_id: str = ""
    intervention_id: str = ""

    def row(self, station_id: str, area: str) -> StaffStateRow:
        return StaffStateRow(
            self.person_id, station_id, area, self.status.value if self.status else "off_duty",
            profile_qualifications(self.mask), self.vehicle_id, self.intervention_id, self.status_since,
            self.event_time, int(self.event_time * 1000),
        )

    def to_list(self) -> list[object]:
        return [self.status.value if self.status else None, self.mask, self.event_time, self.ids_at_time,
                self.status_since, self.vehicle_id, self.intervention_id]

    @classmethod
    def from_list(cls, person_id: str, d: list) -> PersonState:  # type: ignore[type-arg]
        return cls(person_id, CrewStatus(d[0]) if d[0] else None, int(d[1]), float(d[2]), list(d[3]),
                   float(d[4]), str(d[5]), str(d[6]))


def _admit(entity: VehicleState | PersonState, event_id: str, t: float, out: StationOutput) -> Outcome | None:
    """The shared ordering rule (``streams/ordering.py``), counted."""
    rejected = admit(entity, event_id, t)
    if rejected is not None:
        out.outcomes[rejected.value] += 1
    return rejected


def _staff_index(status: CrewStatus | None) -> int:
    return -1 if status is None else STAFF_INDEX[status.value]


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

    @classmethod
    def new(cls, station_id: str, reference: Reference, window_seconds: int) -> StationState:
        fleet = reference.fleet_by_station.get(station_id, ())
        vehicles = {v.vehicle_id: VehicleState(v.vehicle_id, v.vehicle_type) for v in fleet}
        unknown = Counter(v.vehicle_type for v in fleet)
        area = reference.stations[station_id].area if station_id in reference.stations else ""
        return cls(station_id, area, vehicles, StationWindows.for_fleet(window_seconds, dict(unknown)))

    def apply(self, event: VehicleStatusEvent, t: float, out: StationOutput) -> Outcome:
        """Apply one vehicle event (``t`` = its event time in epoch seconds)."""
        self.records += 1
        if t > self.newest_event_time:
            self.newest_event_time = t
        v = self.vehicles.get(event.vehicle_id)
        if v is None:  # in the fleet (checked upstream) but added after this state was created
            v = self.vehicles[event.vehicle_id] = VehicleState(event.vehicle_id, event.vehicle_type)
            self.windows.add_type(event.vehicle_type)
            self.windows.types[event.vehicle_type].counts[UNKNOWN_INDEX] += 1
        rejected = _admit(v, event.event_id, t, out)
        if rejected is not None:
            return rejected

        status = event.status
        old_cat = UNKNOWN_INDEX if v.status is None else _CAT_INDEX_OF_STATUS[v.status]
        new_cat = _CAT_INDEX_OF_STATUS[status]
        if status is not v.status:
            v.status_since = t
        v.status = status
        if event.position is not None:
            v.lat, v.lon = event.position.lat, event.position.lon
        self._track_engagement(v, event, t, out)
        if old_cat != new_cat and self.windows.record(t, v.vehicle_type, old_cat, new_cat):
            out.late_changes += 1
        out.vehicle_rows.append(v.row(self.station_id, self.area))
        out.outcomes["applied"] += 1
        return Outcome.APPLIED

    def apply_crew(self, event: CrewStatusEvent, t: float, out: StationOutput) -> Outcome:
        """Apply one crew event: the newest event per person wins; duplicates change nothing."""
        self.records += 1
        if t > self.newest_event_time:
            self.newest_event_time = t
        p = self.staff.get(event.person_id)
        if p is None:
            p = self.staff[event.person_id] = PersonState(event.person_id)
        rejected = _admit(p, event.event_id, t, out)
        if rejected is not None:
            return rejected
        old_mask, old_cat = p.mask, _staff_index(p.status)
        new_mask, new_cat = profile_mask(event.qualifications), _staff_index(event.status)
        if event.status is not p.status:
            p.status_since = t
        p.status, p.mask = event.status, new_mask
        p.vehicle_id = event.vehicle_id or ""
        p.intervention_id = event.intervention_id or ""
        if (old_mask, old_cat) != (new_mask, new_cat) and self.windows.record_staff(
                t, old_mask, old_cat, new_mask, new_cat):
            out.late_changes += 1
        out.staff_rows.append(p.row(self.station_id, self.area))
        out.outcomes["applied"] += 1
        return Outcome.APPLIED

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
        tracked = bool(self.staff)
        staffed = crewing.staffed(available, staff_available) if tracked else {}
        # newest event time first: it survives a lost state (a fresh worker on an old database); then the
        # records consumed, which order the rows of one instant and only grow across a crash's replay
        version = int(self.newest_event_time * 1000) * 1_000_000 + self.records % 1_000_000
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

    def _track_engagement(self, v: VehicleState, event: VehicleStatusEvent, t: float, out: StationOutput) -> None:
        eng = v.engagement
        status = event.status
        if eng is not None and eng.released_at:
            eng = v.engagement = None
        iid = event.intervention_id
        if status in ENGAGED_STATUSES or (status is VehicleStatus.RETURNING and iid):
            assert iid is not None
            if eng is not None and eng.intervention_id != iid:
                eng.released_at = t  # redeployed to another intervention
                out.engagement_rows.append(eng.row(v, self.station_id, self.area, t))
                eng = None
            if eng is None:
                eng = v.engagement = Engagement(iid, t, [NO_TIME] * 5)
            idx = _MILESTONE.get(status)
            if idx is not None and not eng.milestones[idx]:
                eng.milestones[idx] = t
            out.engagement_rows.append(eng.row(v, self.station_id, self.area, t))
        elif status in _RELEASING and eng is not None:
            eng.released_at = t
            out.engagement_rows.append(eng.row(v, self.station_id, self.area, t))

    def seal(self, watermark: float, out: StationOutput, crewing: Crewing, max_fill_windows: int = 1440) -> None:
        self.windows.seal(watermark, self.station_id, self.area, max_fill_windows, out.window_rows, crewing,
                          out.staff_window_rows)

    def to_dict(self) -> dict[str, object]:
        return {
            "s": self.station_id,
            "a": self.area,
            "v": {k: v.to_list() for k, v in self.vehicles.items()},
            "w": self.windows.to_dict(),
            "p": self.partition,
            "st": {k: p.to_list() for k, p in self.staff.items()},
            "r": self.records,
            "n": self.newest_event_time,
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
        )
