"""The alert rules evaluated over every station's sealed values: one view across partitions, in event time.

Input: the stations' messages (``streams/processors/stations.py`` ``_steps_message``): per source (a stations
partition) the steps of its stations' values up to a sealed time ``until``. A source's stations are known up
to its ``until``; all of them up to the oldest ``until`` of the sources heard from — the book's clock. Steps
wait until the clock passes them, then are applied in time order: each changes a station's value, then the
values of the scopes (area, station) it counts in, then their alerts (``streams/alerting.py``), whose deadlines
(``for``, ``keep_firing_for``) pass with the clock. So the transitions depend only on the steps' times and values,
never on how the sources' messages interleave or are cut (a property test permutes them).

A repeated message (a crash upstream before its changelog) is no change: what is older than a source's last
``until`` has been taken. A station that never reported counts in no scope (unknown is not zero); a staffed
rule counts only the stations whose crews are tracked.

A unit's time in a status (``status_minutes``) is a timer: when the unit enters the rule's status at ``t``, a
deadline waits at ``t + fire_at`` minutes; it passes with the clock (no further input needed) unless a change of
status came first, and the alert's value is then ``fire_at``; when the unit leaves the status, the value is the
time it spent there (the episode's worst), then 0 (the condition clears). A unit leaving at its deadline exactly
does not fire. An intervention waiting for a unit (``unassigned_minutes``) is the same timer, from its opening
(the interventions processor's sealed openings) to the first unit dispatched to it (a unit's change of status
naming it) or its closing; a deadline passing before any unit's status came passes quietly (a feed of calls alone
says nothing of units: a station-level CAD export, ``make run``'s weeks of past demand).

A surge (``surge``) counts the interventions opened per area (the area of the station nearest to the
intervention) and ``window``; when the clock passes a window's end, its count is scored against the same window
of the previous weeks (``streams/alerting.py`` ``SurgeBaseline``) and the score observed at that end.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from schemas.alert_rules import PRESENCE_MEASURES, Measure, Rule, Scope
from schemas.reference import Reference
from streams.alerting import WEEK_S, Alert, Change, Direction, Phase, SurgeBaseline, Threshold
from streams.windows import ENGAGED_STATUSES, STAFF_STEP, VEHICLE_STEP, Step, Watched

# among the waiting steps, beside the stations' (kinds 0 and 1): a unit's change of status (time, station,
# UNIT_STEP, vehicle, status, intervention), an intervention opened (time, area, OPENED_STEP, intervention, sector,
# nature) or closed (time, "", CLOSED_STEP, intervention, "", ""); the steps of one instant apply in kind order
UNIT_STEP, OPENED_STEP, CLOSED_STEP = 2, 3, 4
#: the measures on the stations' values (``Step``): the others are timers, counts of openings or presence
VALUE_MEASURES = frozenset({Measure.AVAILABLE, Measure.AVAILABLE_SHARE, Measure.STAFF_ON_DUTY})
UNIT_MEASURES = frozenset({Measure.STATUS_MINUTES, Measure.UNASSIGNED_MINUTES})  # the timers: they read units
CHUNK_STEPS = 4000  # waiting steps per changelog record (~200 kB)
GRID_DEG = 0.05  # the cells of area_of's station grid, in degrees (about 5 km)
#: an intervention waiting for a unit this long (no unit, never closed: a feed's gap) is forgotten, its alerts end
CALL_EXPIRY_S = 72 * 3600.0
#: how often (of the clock) the dispatches older than the expiry are forgotten: the whole dict is read each time
#: (hourly, that was a tenth of the book's work over a week)
DISPATCHED_LOOK_S = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert transition, as stored: the rule, its scope, when, to what, the value then, the message."""

    rule: Rule
    scope_key: str
    area: str
    station: str
    subject: str  # the vehicle type or the qualification
    change: Change
    message: str


#: The openings stored before a time, for a fresh book's surge baselines: ``(since, until)`` -> (opened at, lat, lon)
#: of each intervention opened in [since, until) (live: read from the deployment's ClickHouse, see
#: ``AlertBook.past``).
PastOpenings = Callable[[float, float], Sequence[tuple[float, float, float]]]


def _kind(step: tuple[object, ...]) -> object:
    return step[2]


def _value_key(rule: Rule) -> tuple[int, str]:
    """The steps a rule on the stations' values reads: their kind and subject (a vehicle type, a qualification)."""
    if rule.measure is Measure.STAFF_ON_DUTY:
        return STAFF_STEP, rule.qualification.value if rule.qualification else ""
    return VEHICLE_STEP, rule.vehicle_type or ""


def watched_values(rules: Sequence[Rule]) -> Watched:
    """What the stations publish for these rules (the values read by some rule, the units' statuses when a timer
    reads them); a rule added later reads each station from its next change, as on a book built afresh."""
    types, qualifications, staffed = set(), set(), set()
    for rule in rules:
        if rule.measure in VALUE_MEASURES:
            kind, subject = _value_key(rule)
            (qualifications if kind == STAFF_STEP else types).add(subject)
            if rule.staffed:
                staffed.add(subject)
    statuses = frozenset(r.status.value for r in rules if r.measure is Measure.STATUS_MINUTES and r.status)
    dispatches = any(r.measure is Measure.UNASSIGNED_MINUTES for r in rules)
    return Watched(frozenset(types), frozenset(qualifications), frozenset(staffed), statuses, dispatches)


def reads_units(rules: Sequence[Rule]) -> bool:
    """Whether a rule reads the units' statuses (a timer)."""
    return any(r.measure in UNIT_MEASURES for r in rules)


def threshold_of(rule: Rule) -> Threshold:
    return Threshold(Direction.BELOW if rule.fires_below else Direction.ABOVE, rule.fire_at, rule.clear_level,
                     rule.for_s, rule.keep_firing_for_s)


@dataclass(slots=True)
class _Scope:
    """What one rule measures on one scope: the stations it sums, their current values, and the running sums
    (a step changes one station: the scope's value is updated, not summed again over an area's stations)."""

    rule: Rule
    key: str
    area: str
    station: str
    subject: str
    fleet: dict[str, int]  # station -> vehicles of the type (the share's denominator)
    values: dict[str, int] = field(default_factory=dict)  # station -> its count, once reported
    total: int = 0  # the sum of ``values``
    fleet_counted: int = 0  # the fleet of the stations in ``values``
    sector: str = ""  # an intervention's

    def set(self, station: str, n: int) -> None:
        old = self.values.get(station)
        if old is None:
            self.fleet_counted += self.fleet.get(station, 0)
            old = 0
        self.values[station] = n
        self.total += n - old

    def fields(self, intervention: str) -> dict[str, str]:
        """What the rule's message may name (``schemas/alert_rules.py`` ``PLACEHOLDERS``)."""
        rule = self.rule
        out = {"area": self.area, "station": self.station}
        if rule.measure is Measure.STAFF_ON_DUTY:
            out["qualification"] = self.subject
        elif rule.measure is Measure.STATUS_MINUTES:
            out.update(unit=self.key.split("/", 1)[1], vehicle_type=self.subject, intervention=intervention,
                       status=rule.status.value if rule.status else "")
        elif rule.measure is Measure.UNASSIGNED_MINUTES:
            return {"intervention": self.key, "sector": self.sector, "nature": self.subject}
        elif rule.measure is Measure.SURGE:
            out["vehicle_type"] = ""
        else:
            out["vehicle_type"] = self.subject
        return out

    def value(self) -> float | None:
        if not self.values:
            return None
        if self.rule.measure is not Measure.AVAILABLE_SHARE:
            return float(self.total)
        fleet = self.fleet_counted
        return round(100.0 * self.total / fleet, 1) if fleet else None


class AlertBook:
    """Every evaluated rule on every scope it applies to, fed with station messages (:meth:`take`)."""

    def __init__(self, rules: Sequence[Rule], reference: Reference, sources: Iterable[str] = ()) -> None:
        """``sources``: the sources expected (every stations partition holding a station): one not heard from yet
        holds the clock, so a source's first message is never late for being the last to come."""
        self.rules = tuple(rules)
        self.scopes: dict[tuple[str, str], _Scope] = {}  # (rule, scope key) -> scope
        # (station, kind, subject) -> the scopes a step of it changes
        self.watchers: dict[tuple[str, int, str], list[_Scope]] = {}
        # status -> the status_minutes rules on it; vehicle -> its home station and type (the unit scopes)
        self.timed: dict[str, list[Rule]] = {}
        self.fleet = {v.vehicle_id: (v.home_station, v.vehicle_type) for v in reference.fleet.values()}
        self._build(reference)
        self.alerts: dict[tuple[str, str], Alert] = {}
        self.units: dict[str, tuple[str, float, str]] = {}  # vehicle -> (status, since, intervention)
        self.deadlines: list[tuple[float, str, str, float]] = []  # a heap: (deadline, rule, vehicle, since)
        self.served: dict[tuple[str, str], str] = {}  # (rule, unit scope key) -> the intervention of its episode
        self.by_name = {r.name: r for r in self.rules}
        self.unassigned = [r for r in self.rules if r.measure is Measure.UNASSIGNED_MINUTES]
        self.surges = [r for r in self.rules if r.measure is Measure.SURGE]
        self.wants_units = reads_units(self.rules)
        self.station_points = [(st.lat, st.lon, st.area) for _, st in sorted(reference.stations.items())]
        self.grid: dict[tuple[int, int], list[tuple[float, float, str]]] = {}  # cell -> its stations (area_of)
        self.near: dict[tuple[int, int], list[tuple[float, float, str]]] = {}  # cell -> its and its 8 neighbours'
        for point in self.station_points:
            self.grid.setdefault((int(point[0] // GRID_DEG), int(point[1] // GRID_DEG)), []).append(point)
        self.areas = sorted({st.area for st in reference.stations.values()})
        self.calls: dict[str, tuple[float, str, str, str]] = {}  # waiting for a unit: (opened, area, sector, nature)
        self.dispatched: dict[str, float] = {}  # intervention -> when a unit was first dispatched to it
        self.dispatched_pruned = -math.inf  # the clock when ``dispatched`` last forgot its old entries
        self.units_seen = False  # whether any unit's status came (see _deadline)
        self.surge_counts: dict[str, dict[tuple[str, float], int]] = {r.name: {} for r in self.surges}
        self.surge_next: dict[str, float] = {}  # rule -> the end of its next window to score
        self.baselines = {(r.name, a): SurgeBaseline(int(r.window)) for r in self.surges for a in self.areas}
        self.dirty: set[tuple[str, str]] = set()  # baselines changed since the caller stored them
        # the openings stored before the first window a surge rule watches (None: none; the batch path's history
        # is its own input): the usual counts from the first window on, not three weeks later
        self.past: PastOpenings | None = None
        self.sources: dict[str, float] = dict.fromkeys(sources, -math.inf)  # source -> its last ``until``
        self.waiting: list[Step] = []  # steps after the clock, in time order unless ``unsorted``
        self.unsorted = False
        # the steps of values no rule watches (most of them), after the clock: not applied, kept for the rules of
        # a reload (a new book takes them again, see :meth:`_wait`) and for the changelog's chunks
        self.unwatched: list[Step] = []
        self.fresh: list[Step] = []  # steps taken since the last waiting_chunks()
        self.keep_fresh = True  # False: nobody stores the waiting steps (the batch path)
        self.chunks: dict[int, float] = {}  # the waiting steps' chunks stored: number -> newest step time
        self.chunk_data: dict[int, list[list[object]]] = {}  # and what they hold
        self.next_chunk = 0
        self.lost_chunks = 0  # chunks a restored state named but did not hold
        self.clock = -math.inf
        self.late = 0  # steps older than the clock (a source heard from late): applied at the clock

    def _build(self, reference: Reference) -> None:
        fleet: dict[tuple[str, str], int] = {}
        for v in reference.fleet.values():
            fleet[(v.home_station, v.vehicle_type)] = fleet.get((v.home_station, v.vehicle_type), 0) + 1
        by_area: dict[str, list[str]] = {}
        for sid, st in sorted(reference.stations.items()):
            by_area.setdefault(st.area, []).append(sid)
        for rule in self.rules:
            if rule.measure is Measure.STATUS_MINUTES:
                self._build_units(rule, reference)
                continue
            if rule.measure is Measure.SURGE:
                for area in by_area:
                    self.scopes[(rule.name, area)] = _Scope(rule, area, area, "", "", {})
                continue
            if rule.measure is Measure.UNASSIGNED_MINUTES:
                continue  # a scope per intervention, once it waited too long (_deadline)
            if rule.measure in PRESENCE_MEASURES:
                continue  # not on the stations' clock: streams/presence_alerts.py
            kind, subject = _value_key(rule)
            groups = ([(area, "", sids) for area, sids in by_area.items()] if rule.scope is Scope.AREA else
                      [(reference.stations[sid].area, sid, [sid]) for sid in sorted(reference.stations)])
            for area, station, sids in groups:
                key = f"{station or area}/{subject}"
                scope = _Scope(rule, key, area, station, subject, {s: fleet.get((s, subject), 0) for s in sids})
                self.scopes[(rule.name, key)] = scope
                for s in sids:
                    self.watchers.setdefault((s, kind, subject), []).append(scope)

    def _build_units(self, rule: Rule, reference: Reference) -> None:
        assert rule.status is not None  # checked with the rules file
        self.timed.setdefault(rule.status.value, []).append(rule)
        for vid, (station, vtype) in sorted(self.fleet.items()):
            if rule.vehicle_type in (None, vtype) and station in reference.stations:
                key = f"{station}/{vid}"
                self.scopes[(rule.name, key)] = _Scope(rule, key, reference.stations[station].area, station, vtype, {})

    def take(self, source: str, until: float | None, steps: Iterable[Step],
             units: Iterable[tuple[float, str, str, str, str]] = (),
             opened: Iterable[tuple[float, str, str, str, float, float]] = (),
             closed: Iterable[tuple[float, str]] = ()) -> None:
        """One message of a source: its steps not taken yet wait for the clock (:meth:`settle`). ``until`` None:
        the source has no data at all (a partition read to its end, empty): it holds nothing until it has some."""
        last = self.sources.get(source, -math.inf)
        if until is None:
            if last == -math.inf:
                self.sources[source] = math.inf
            return
        if last == math.inf:
            last = -math.inf  # its first data
        new: list[Step] = [step for step in steps if step[0] >= last]
        if self.wants_units:
            new += [(t, station, UNIT_STEP, vehicle, str(status), iid)  # type: ignore[misc]
                    for t, station, vehicle, status, iid in units if t >= last]
        if self.unassigned or self.surges:
            new += [(t, self.area_of(lat, lon), OPENED_STEP, iid, sector, str(nature))  # type: ignore[misc]
                    for t, iid, sector, nature, lat, lon in opened if t >= last]
            new += [(t, "", CLOSED_STEP, iid, "", "") for t, iid in closed if t >= last]  # type: ignore[misc]
        self._wait(new)
        if self.keep_fresh:
            self.fresh += new
        self.sources[source] = max(last, until)

    def _wait(self, steps: Iterable[Step]) -> None:
        """Steps to apply once the clock passes them (sorted at the next :meth:`advance`), or aside for those of a
        value no rule watches: they change nothing, and most steps are such."""
        waiting, unwatched, watchers = self.waiting, self.unwatched, self.watchers
        for step in steps:
            kind = step[2]
            if kind <= STAFF_STEP and (step[1], kind, step[3]) not in watchers:  # type: ignore[operator]
                unwatched.append(step)
            else:
                waiting.append(step)
                self.unsorted = True

    def pending(self) -> int:
        """How many steps wait for the clock."""
        return len(self.waiting) + len(self.unwatched)

    def take_fresh(self, steps: Sequence[Step]) -> None:
        """Steps another book (of rules since replaced) took and had not stored yet."""
        self._wait(steps)
        self.fresh += steps

    def waiting_chunks(self) -> dict[int, list[list[object]] | None]:
        """What changed in the steps waiting for the clock, for a changelog: the steps taken since the last call
        (and not applied yet) as new chunks of at most ``CHUNK_STEPS``, and None for each chunk whose steps are
        all applied (a tombstone). They are kept out of :meth:`to_dict`: while a worker catches up a backlog,
        sources progress unevenly and the steps waiting can weigh megabytes — a state record is rewritten at
        every change, a chunk is written once."""
        out: dict[int, list[list[object]] | None] = {}
        fresh = [s for s in self.fresh if s[0] >= self.clock]
        self.fresh = []
        for i in range(0, len(fresh), CHUNK_STEPS):
            chunk = fresh[i:i + CHUNK_STEPS]
            out[self.next_chunk] = self.chunk_data[self.next_chunk] = chunk
            self.chunks[self.next_chunk] = max(float(s[0]) for s in chunk)  # type: ignore[arg-type]
            self.next_chunk += 1
        for seq in [seq for seq, newest in self.chunks.items() if newest < self.clock]:
            del self.chunks[seq], self.chunk_data[seq]
            out[seq] = None
        return out

    def area_of(self, lat: float, lon: float) -> str:
        """The area of the station nearest to a place (equirectangular distance: stations are near). The stations
        of the place's grid cell and the eight around it first: the nearest of them is the nearest of all when it
        is closer than one cell (any station further out is at least that far); else every station."""
        k = math.cos(math.radians(lat))
        cell = (int(lat // GRID_DEG), int(lon // GRID_DEG))
        near = self.near.get(cell)
        if near is None:
            row, col = cell
            near = self.near[cell] = [st for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                                      for st in self.grid.get((row + dr, col + dc), ())]
        if near:
            best = min(near, key=lambda st: (st[0] - lat) ** 2 + ((st[1] - lon) * k) ** 2)
            if (best[0] - lat) ** 2 + ((best[1] - lon) * k) ** 2 <= (GRID_DEG * min(k, 1.0)) ** 2:
                return best[2]
        return min(self.station_points, key=lambda st: (st[0] - lat) ** 2 + ((st[1] - lon) * k) ** 2)[2]

    def settle(self) -> None:
        """The clock to the oldest ``until`` of the sources: what every station is known up to (sources without
        data hold nothing)."""
        held = [u for u in self.sources.values() if u < math.inf]
        if held:
            self.advance(min(held))

    def finish(self) -> None:
        """The input is over (the end of a history): every source is known up to the newest ``until``."""
        heard = [u for u in self.sources.values() if -math.inf < u < math.inf]
        if heard:
            self.advance(max(heard))

    def advance(self, now: float) -> None:
        """Apply the steps older than ``now`` in time order (simultaneous ones as one; the units' deadlines after
        the steps of their instant), then pass the alerts' deadlines. Steps older than the clock (a source heard
        late) are applied at the clock, even when it does not move: none older than it is left waiting."""
        if now < self.clock:
            return
        waiting, deadlines, inf = self.waiting, self.deadlines, math.inf
        if self.unsorted:  # runs of steps in time order, one per message: sorting merges them
            waiting.sort()
            self.unsorted = False
        i, n = 0, len(waiting)
        window_end = self._window_end()
        while True:
            t = waiting[i][0] if i < n else inf
            horizon = t if t < now else now
            due = deadlines[0][0] if deadlines else inf
            if due < horizon or window_end < horizon:
                if due <= window_end:
                    self._deadline(*heapq.heappop(deadlines))
                else:
                    self._close_windows(window_end, horizon)
                    window_end = self._window_end()
                continue
            if t >= now:
                break
            j = i + 1
            while j < n and waiting[j][0] == t:
                j += 1
            if self._apply(t, waiting[i:j] if j > i + 1 else (waiting[i],)):  # type: ignore[arg-type]
                window_end = self._window_end()  # an opening may have started a surge rule's windows
            i = j
        del waiting[:i]
        self.clock = now
        if self.unwatched:
            self.unwatched = [step for step in self.unwatched if step[0] >= now]  # type: ignore[operator]
        for alert in self.alerts.values():
            alert.advance(now)

    def _window_end(self) -> float:
        """The end of the next surge window to score (inf: none)."""
        return min(self.surge_next.values()) if self.surge_next else math.inf

    def _apply(self, t: float, group: Sequence[Step]) -> bool:
        """The steps of one instant (in kind order: values, then units, openings and closings), at the clock when
        late; whether an intervention opened."""
        at = t if t > self.clock else self.clock
        if at > t:
            self.late += 1
        if len(group) > 1:
            group = sorted(group, key=_kind)
        changed: dict[int, _Scope] | None = None
        opened = False
        for _, where, kind, subject, a, b in group:
            if kind == UNIT_STEP:  # a unit (``subject``) of station ``where`` to status ``a`` for intervention ``b``
                self.units_seen = True
                if b and a in ENGAGED_STATUSES:
                    self._dispatched(at, t, b)  # type: ignore[arg-type]
                if self.timed:
                    self._unit(at, t, where, subject, a, b)  # type: ignore[arg-type]
                continue
            if kind == OPENED_STEP:  # intervention ``subject`` in area ``where``, sector ``a``, nature ``b``
                self._opened(at, t, where, subject, a, b)  # type: ignore[arg-type]
                opened = True
                continue
            if kind == CLOSED_STEP:
                self.dispatched.pop(subject, None)  # closed: no unit will come any more
                self._stop_call(at, t, subject)
                continue
            scopes = self.watchers.get((where, kind, subject))
            if not scopes:
                continue
            changed = changed if changed is not None else {}
            for scope in scopes:
                n = b if scope.rule.staffed else a
                if n < 0:  # type: ignore[operator]
                    continue  # crews not tracked at this station: a staffed rule does not count it
                scope.set(where, n)  # type: ignore[arg-type]
                changed[id(scope)] = scope
        if changed:
            for scope in changed.values():
                value = scope.value()
                if value is not None:
                    self._alert(scope).observe(at, value)
        if at > self.clock:
            self.clock = at
        return opened

    def _opened(self, at: float, t: float, area: str, iid: str, sector: str, nature: str) -> None:
        """An intervention opened: counted for the surges (late: in the window of the clock), and waiting for a
        unit unless one was dispatched to it already."""
        for rule in self.surges:
            if rule.name not in self.surge_next:
                self._watch(rule, at)
            w = at - at % rule.window
            counts = self.surge_counts[rule.name]
            counts[(area, w)] = counts.get((area, w), 0) + 1
        if not self.unassigned or iid in self.dispatched or iid in self.calls:
            return
        self.calls[iid] = (t, area, sector, nature)
        for rule in self.unassigned:
            heapq.heappush(self.deadlines, (t + rule.fire_at * 60.0, rule.name, iid, t))
        heapq.heappush(self.deadlines, (t + CALL_EXPIRY_S, "", iid, t))

    def _dispatched(self, at: float, t: float, iid: str) -> None:
        """A unit sent to ``iid``: its first ends the intervention's wait (no call waits once one came)."""
        if iid in self.dispatched:
            return
        self.dispatched[iid] = t
        # an intervention closed before its units' last statuses (an ambulance still transporting) or never
        # closed comes back or stays: forgotten after the expiry (looked at every DISPATCHED_LOOK_S)
        if at >= self.dispatched_pruned + DISPATCHED_LOOK_S:
            self.dispatched = {k: v for k, v in self.dispatched.items() if v >= at - CALL_EXPIRY_S}
            self.dispatched_pruned = at
        self._stop_call(at, t, iid)

    def _stop_call(self, at: float, t: float, iid: str) -> None:
        """The wait of an intervention ends (a unit, its closing, its expiry): its alerts' condition clears."""
        call = self.calls.pop(iid, None)
        if call is None:
            return
        for rule in self.unassigned:
            alert = self.alerts.get((rule.name, iid))
            if alert is not None and alert.on:
                alert.observe(at, round((t - call[0]) / 60.0, 1))  # how long it waited: the worst value
                alert.observe(at, 0.0)

    def _watch(self, rule: Rule, at: float) -> None:
        """A surge rule's first window: the usual counts only weeks watched from here, or from the first window of
        the openings stored before it (:meth:`_seed`)."""
        w = at - at % rule.window
        self.surge_next[rule.name] = w + rule.window
        first = min(w, self._seed(rule, w))
        for area in self.areas:
            base = self.baselines[(rule.name, area)]
            base.first_window = min(base.first_window, first)
            self.dirty.add((rule.name, area))

    def _seed(self, rule: Rule, w: float) -> float:
        """The counts per area and window of the openings stored in the weeks before ``w`` (``past``), into the
        rule's baselines; the first window they hold (inf: none). Weeks before it are not counted as quiet ones:
        a history imported from a date on starts there."""
        if self.past is None or not self.areas:
            return math.inf
        since = w - self.baselines[(rule.name, self.areas[0])].weeks * WEEK_S
        counts: dict[tuple[str, float], int] = {}
        for t, lat, lon in self.past(since, w):
            if since <= t < w:
                key = (self.area_of(lat, lon), t - t % rule.window)
                counts[key] = counts.get(key, 0) + 1
        for (area, window), n in sorted(counts.items()):
            self.baselines[(rule.name, area)].add(window, n)
        return min((window for _, window in counts), default=math.inf)

    def _close_windows(self, end: float, horizon: float) -> None:
        """Score the windows ending at ``end`` (every area with openings in it, or whose alert is on), then go to
        the next window that may matter (quiet windows with nothing on change nothing)."""
        for rule in self.surges:
            if self.surge_next.get(rule.name) != end:
                continue
            w, counts = end - rule.window, self.surge_counts[rule.name]
            at = max(end, self.clock)
            on = False
            for area in self.areas:
                n = counts.pop((area, w), 0)
                alert = self.alerts.get((rule.name, area))
                base = self.baselines[(rule.name, area)]
                if n or (alert is not None and alert.on):
                    score = base.score(w, n, rule.min_count)
                    alert = self._alert(self.scopes[(rule.name, area)])
                    alert.observe(at, round(score, 2) if score > -math.inf else 0.0)
                if n:
                    base.add(w, n)
                    self.dirty.add((rule.name, area))
                on = on or (alert is not None and alert.on)
            nxt = end + rule.window
            if not counts and not on and horizon < math.inf:
                nxt = max(nxt, horizon - horizon % rule.window + rule.window)
            self.surge_next[rule.name] = nxt

    def _unit(self, at: float, t: float, station: str, vehicle: str, status: str, intervention: str) -> None:
        """A unit's change of status at ``t`` (applied at ``at``, the clock when late): the timers of the status
        it leaves stop, those of the status it enters start."""
        old = self.units.get(vehicle)
        if old is not None and old[0] == status:
            self.units[vehicle] = (status, old[1], intervention or old[2])
            return  # the same status, maybe for another intervention: its timer goes on
        if old is not None:
            for rule in self.timed.get(old[0], ()):
                alert = self.alerts.get((rule.name, f"{station}/{vehicle}"))
                if alert is not None and alert.on:
                    alert.observe(at, round((t - old[1]) / 60.0, 1))  # the time it spent there: the worst value
                    alert.observe(at, 0.0)
        if status not in self.timed:
            self.units.pop(vehicle, None)  # only the units in a status with a timer are kept
            return
        self.units[vehicle] = (status, t, intervention)
        for rule in self.timed.get(status, ()):
            if (rule.name, f"{station}/{vehicle}") in self.scopes:
                heapq.heappush(self.deadlines, (t + rule.fire_at * 60.0, rule.name, vehicle, t))

    def _deadline(self, deadline: float, rule_name: str, vehicle: str, since: float) -> None:
        """A timer's deadline: it fires unless the timer stopped since (the unit left the status, a unit came to
        the intervention); ``rule_name`` "": an intervention's expiry."""
        rule = self.by_name.get(rule_name)
        if rule is None or rule.measure is Measure.UNASSIGNED_MINUTES:
            call = self.calls.get(vehicle)
            if call is None or call[0] != since:
                return
            if rule is None:
                self._stop_call(max(deadline, self.clock), deadline, vehicle)
                return
            if not self.units_seen:  # no unit feed at all by the deadline: no wait to speak of
                del self.calls[vehicle]
                return
            scope = self.scopes.get((rule_name, vehicle))
            if scope is None:  # the intervention's scope, from now until its alert is over
                scope = _Scope(rule, vehicle, call[1], "", call[3], {}, sector=call[2])
                self.scopes[(rule_name, vehicle)] = scope
            self._alert(scope).observe(max(deadline, self.clock), rule.fire_at)
            return
        unit = self.units.get(vehicle)
        scope = self.scopes.get((rule_name, f"{self.fleet[vehicle][0]}/{vehicle}")) if vehicle in self.fleet else None
        if unit is None or scope is None or unit[1] != since or scope.rule.status != unit[0]:
            return
        alert, key = self._alert(scope), (rule_name, scope.key)
        # the transitions so far are of the previous episode, and of the intervention it served (a batch's
        # transitions are taken after several episodes of one unit)
        alert.changes = [c if c.context is not None else replace(c, context=self.served.get(key, ""))
                         for c in alert.changes]
        self.served[key] = unit[2]
        alert.observe(max(deadline, self.clock), scope.rule.fire_at)

    def _alert(self, scope: _Scope) -> Alert:
        k = (scope.rule.name, scope.key)
        alert = self.alerts.get(k)
        if alert is None:
            alert = self.alerts[k] = Alert(threshold_of(scope.rule))
        return alert

    def transitions(self) -> list[Transition]:
        """The transitions since the last call, in (time, rule, scope) order."""
        out = []
        for (name, key), alert in self.alerts.items():
            if not alert.changes:
                continue
            scope = self.scopes[(name, key)]
            rule = scope.rule
            served = self.served.get((name, key), "")
            for change in alert.take():
                fields = scope.fields(served if change.context is None else change.context)
                out.append(Transition(rule, key, scope.area, scope.station, scope.subject, change,
                                      rule.render(change.value, **fields)))
        out.sort(key=lambda tr: (tr.change.at, tr.rule.name, tr.scope_key))
        self._forget_quiet_alerts()
        return out

    def _forget_quiet_alerts(self) -> None:
        """A unit's or an intervention's alert with nothing going on (inactive, condition off) leaves the book: it
        starts afresh if needed (an intervention's scope goes too, once it no longer waits)."""
        quiet = [k for k, a in self.alerts.items() if a.phase is Phase.INACTIVE and not a.on and not a.changes
                 and self.scopes[k].rule.scope in (Scope.UNIT, Scope.INTERVENTION)]
        for k in quiet:
            del self.alerts[k]
            self.served.pop(k, None)
            if self.scopes[k].rule.scope is Scope.INTERVENTION and k[1] not in self.calls:
                del self.scopes[k]

    def retire(self, rules: Sequence[Rule]) -> list[Transition]:
        """Before a new set of rules replaces these: the alerts of a rule removed or changed end at the clock
        (their transitions are returned) and leave the book."""
        new = {r.name: r for r in rules}
        ended = []
        for k, alert in list(self.alerts.items()):
            if new.get(k[0]) != self.scopes[k].rule:
                alert.end(max(self.clock, alert.clock))
                ended.append(k)
        out = self.transitions()
        for k in ended:
            del self.alerts[k]
        return out

    def to_dict(self) -> dict[str, object]:
        """The state for a changelog (``transitions`` are taken before: never kept)."""
        return {
            "c": self.clock if self.clock > -math.inf else None,
            "s": {k: (None if v == math.inf else v) for k, v in self.sources.items() if v > -math.inf},
            "wk": [[seq, newest] for seq, newest in self.chunks.items()],  # the waiting steps: waiting_chunks()
            "nc": self.next_chunk,
            "v": [[n, k, scope.values] for (n, k), scope in self.scopes.items() if scope.values],
            "a": [[n, k, a.to_list()] for (n, k), a in self.alerts.items()],
            "l": self.late,
            "u": {k: list(u) for k, u in self.units.items()},
            "sv": [[n, k, iid] for (n, k), iid in self.served.items()],
            "ca": {k: list(c) for k, c in self.calls.items()},
            "di": self.dispatched,
            "us": self.units_seen,
            "is": [[n, k, sc.area, sc.sector, sc.subject] for (n, k), sc in self.scopes.items()
                   if sc.rule.measure is Measure.UNASSIGNED_MINUTES],
            "sn": self.surge_next,
            "sk": [[n, area, w, c] for n, counts in self.surge_counts.items() for (area, w), c in counts.items()],
        }

    def restore(self, doc: dict[str, object], chunks: Mapping[int, list[list[object]] | None] | None = None
                ) -> None:
        """Back to a state of :meth:`to_dict` (a rule since removed or changed starts afresh)."""
        self.clock = -math.inf if doc["c"] is None else float(doc["c"])  # type: ignore[arg-type]
        for k, v in doc["s"].items():  # type: ignore[attr-defined]
            self.sources[str(k)] = math.inf if v is None else float(v)
        stored = chunks if chunks is not None else {}
        self.next_chunk = int(doc.get("nc", 0))  # type: ignore[call-overload]
        for seq, newest in doc.get("wk", []):  # type: ignore[attr-defined]
            data = stored.get(int(seq))
            if data is None:
                self.lost_chunks += 1
                continue
            self.chunks[int(seq)], self.chunk_data[int(seq)] = float(newest), data
            self._wait([tuple(s) for s in data if float(s[0]) >= self.clock])  # type: ignore[misc, arg-type]
        self._wait([tuple(s) for s in doc.get("w", [])])  # type: ignore[attr-defined, misc]  # an older state
        for name, key, values in doc["v"]:  # type: ignore[attr-defined]
            scope = self.scopes.get((name, key))
            if scope is not None:
                for station, n in values.items():
                    scope.set(str(station), int(n))
        rules = {r.name: r for r in self.rules}
        for name, key, area, sector, nature in doc.get("is", []):  # type: ignore[attr-defined]
            if name in rules and rules[name].measure is Measure.UNASSIGNED_MINUTES:
                self.scopes[(name, key)] = _Scope(rules[name], key, area, "", nature, {}, sector=sector)
        for name, key, data in doc["a"]:  # type: ignore[attr-defined]
            if (name, key) in self.scopes:
                self.alerts[(name, key)] = Alert.from_list(threshold_of(rules[name]), data)
        self.late = int(doc.get("l", 0))  # type: ignore[call-overload]
        for vehicle, (status, since, iid) in doc.get("u", {}).items():  # type: ignore[attr-defined]
            self.units[str(vehicle)] = (str(status), float(since), str(iid))
            for rule in self.timed.get(str(status), ()):  # the deadlines not passed yet
                deadline = float(since) + rule.fire_at * 60.0
                if deadline >= self.clock and vehicle in self.fleet:
                    heapq.heappush(self.deadlines, (deadline, rule.name, str(vehicle), float(since)))
        for name, key, iid in doc.get("sv", []):  # type: ignore[attr-defined]
            if (name, key) in self.scopes:
                self.served[(name, key)] = str(iid)
        self._restore_calls(doc)

    def _restore_calls(self, doc: dict[str, object]) -> None:
        self.dispatched = {str(k): float(v) for k, v in doc.get("di", {}).items()}  # type: ignore[attr-defined]
        self.units_seen = bool(doc.get("us", False))
        for iid, (t, area, sector, nature) in doc.get("ca", {}).items():  # type: ignore[attr-defined]
            if not self.unassigned:
                break
            self.calls[str(iid)] = (float(t), str(area), str(sector), str(nature))
            for rule, deadline in [(r.name, float(t) + r.fire_at * 60.0) for r in self.unassigned] + [
                    ("", float(t) + CALL_EXPIRY_S)]:
                if deadline >= self.clock:  # the deadlines not passed yet
                    heapq.heappush(self.deadlines, (deadline, rule, str(iid), float(t)))
        for name, end in doc.get("sn", {}).items():  # type: ignore[attr-defined]
            if name in self.surge_counts:
                self.surge_next[str(name)] = float(end)
        for name, area, w, c in doc.get("sk", []):  # type: ignore[attr-defined]
            if name in self.surge_counts:
                self.surge_counts[name][(str(area), float(w))] = int(c)
