"""Tumbling event-time windows of resource counts for one station, per vehicle type, and of its staff
per qualification once the station reports crews.

Category changes (vehicles, and staff by qualification profile) are buffered as ``pending`` until the
watermark passes them, then folded in time order. Per window and type the row holds the counts at
the window end, the minimum available count held during the window, the engaged vehicle-minutes
(integral of the engaged count), and the staffed capacity (crewing rule, ``streams/crewing.py``) at
the end and its minimum. Per window and qualification: staff by status at the end and the minimum
available. A change older than the sealed time is late: it is applied at the sealed time instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.crewing import QUAL_BIT, QUAL_VALUES, QUALIFICATIONS, Crewing
from streams.rows import StaffWindowRow, StationWindowRow
from streams.windowing import clamp_late, window_of

#: Order of the counters in ``TypeCounts.counts``.
CATEGORIES = ("available", "engaged", "out_of_service", "unknown")
CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
AVAILABLE, ENGAGED = 0, 1
#: Order of the counters of a staff profile (``StationWindows.staff``); -1: not counted before.
STAFF_CATEGORIES = ("available", "assigned", "unavailable", "off_duty")
STAFF_INDEX = {c: i for i, c in enumerate(STAFF_CATEGORIES)}
S_AVAILABLE, S_ASSIGNED, S_UNAVAILABLE = 0, 1, 2


#: One step of a station's values, as sealed: (time, station, kind, what, count, second count). VEHICLE_STEP:
#: a vehicle type, vehicles available, and how many of them can be crewed (-1: crews not tracked);
#: STAFF_STEP: a qualification, people on duty holding it, and how many of them are available.
Step = tuple[float, str, int, str, int, int]
VEHICLE_STEP, STAFF_STEP = 0, 1
#: One unit's change of status, as sealed: (time, station, vehicle, status, intervention or "") — the input of
#: the alerts on how long a unit stays in a status (``streams/state.py`` ``StationState.unit_steps``).
UnitStep = tuple[float, str, str, str, str]


#: The statuses of a unit engaged on an intervention: the first of them for one is its dispatch.
ENGAGED_STATUSES = frozenset({"dispatched", "en_route", "on_scene", "transporting", "at_hospital"})


@dataclass(frozen=True, slots=True)
class Watched:
    """What the alert rules read of the stations (``streams/alert_book.py`` ``watched_values``): the steps of
    these vehicle types and qualifications, and the units' changes of status when ``units``. The others are not
    published (most of them: the shipped rules read two types and one qualification of a dozen). A step is given
    when a value read changes: a type's available count (and its staffed count, of the types in ``staffed``), a
    qualification's people on duty (not how many of them are available: over a week of the shipped rules, 1,049
    changes of the crew leaders on duty in 23,038 of either).

    Of the units' changes, only those a timer reads (:meth:`reads_unit`): into or out of a status in
    ``statuses``, and when ``dispatches``, a unit's first engaged status for an intervention. The others (a third
    of them with the shipped rules: ``en_route`` after ``dispatched``, ``returning`` to ``available``) change no
    timer and are not published."""

    types: frozenset[str] = frozenset()
    qualifications: frozenset[str] = frozenset()
    staffed: frozenset[str] = frozenset()  # the types whose staffed count a rule reads (else their available only)
    statuses: frozenset[str] = frozenset()  # the statuses some unit's timer reads
    dispatches: bool = False  # whether a timer reads the units' dispatches (an intervention waiting for one)

    @property
    def units(self) -> bool:
        """Whether a timer reads the units' changes at all."""
        return bool(self.statuses) or self.dispatches

    def reads_unit(self, before: str | None, before_for: str, status: str, serves: str) -> bool:
        """Whether a unit's change from ``before`` (serving ``before_for``) to ``status`` (serving ``serves``,
        "" none) is read: it starts or stops a status timer, or it is the unit's dispatch to ``serves``."""
        statuses = self.statuses
        return status in statuses or before in statuses or (
            self.dispatches and serves != "" and status in ENGAGED_STATUSES
            and (before not in ENGAGED_STATUSES or before_for != serves))


class WindowBlock:
    """Window rows as tuples (the order of the row type's fields), each with a repeat count: a run of
    identical quiet windows (most window rows over history) is one entry, ``repeat`` consecutive windows
    from its ``window_start``. The sink sends entries as they are and ClickHouse expands the runs
    (``sinks/migrations/0004_window_runs.sql``); ``rows()`` expands them in Python. Entries are kept as
    tuples and turned into columns once, when written (a transposition in C, not a Python loop per value)."""

    __slots__ = ("_entries", "repeat", "row_type")

    def __init__(self, row_type: type[NamedTuple] = StationWindowRow) -> None:
        self.row_type = row_type
        self._entries: list[tuple[Any, ...]] = []
        self.repeat: list[int] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self._entries.append(row)
        self.repeat.append(1)

    def add_run(self, count: int, row: tuple[Any, ...]) -> None:
        """``count`` windows from ``row``'s window start, every other value as in ``row``."""
        if count > 0:
            self._entries.append(row)
            self.repeat.append(count)

    def sliced(self, start: int, stop: int) -> WindowBlock:
        """Entries ``start`` to ``stop`` (runs kept whole): a part of the block to store on its own."""
        part = WindowBlock(self.row_type)
        part._entries = self._entries[start:stop]
        part.repeat = self.repeat[start:stop]
        return part

    def extend(self, other: WindowBlock) -> None:
        self._entries.extend(other._entries)
        self.repeat.extend(other.repeat)

    def columns(self) -> list[list[Any]]:
        """The entries as columns (runs not expanded); see ``repeat``."""
        if not self._entries:
            return [[] for _ in self.row_type._fields]
        return [list(c) for c in zip(*self._entries, strict=True)]

    def rows(self) -> list[Any]:
        make = self.row_type._make
        out = []
        for r, n in zip(self._entries, self.repeat, strict=True):
            if n == 1:
                out.append(make(r))
            else:
                w = r[1]  # window_seconds
                out.extend(self.row_type(r[0] + i * w, *r[1:]) for i in range(n))
        return out

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows())

    @property
    def entries(self) -> int:
        """Entries held (a run counts once): cheap, to see whether anything was added."""
        return len(self.repeat)

    def __len__(self) -> int:
        """Windows held (runs counted in full)."""
        return sum(self.repeat)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowBlock) and self.row_type is other.row_type and self.rows() == other.rows()

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class TypeCounts:
    counts: list[int]
    min_available: int
    engaged_seconds: float = 0.0
    min_staffed: int = 0

    def to_list(self) -> list[object]:
        return [self.counts, self.min_available, self.engaged_seconds, self.min_staffed]

    @classmethod
    def from_list(cls, data: list) -> TypeCounts:  # type: ignore[type-arg]
        return cls(list(data[0]), int(data[1]), float(data[2]), int(data[3]) if len(data) > 3 else 0)


@dataclass(slots=True)
class StationWindows:
    """Window accumulators of one station. ``pending`` holds (time, type, from_cat, to_cat) of vehicles;
    ``staff`` the people per qualification profile (mask) and status, ``staff_pending`` their changes
    (time, mask, from_cat, to_cat; -1: not counted on that side)."""

    window_seconds: int
    types: dict[str, TypeCounts]
    window_start: float | None = None
    sealed_time: float | None = None
    pending: list[tuple[float, str, int, int]] = field(default_factory=list)
    staff: dict[int, list[int]] = field(default_factory=dict)
    staff_pending: list[tuple[float, int, int, int]] = field(default_factory=list)
    min_staff_available: list[int] = field(default_factory=lambda: [0] * len(QUALIFICATIONS))
    # the time of the last change folded: quiet windows are emitted up to max_fill_windows from its window, and
    # none after (until the next change) — in event time, so the rows never depend on how often seal() runs
    last_change: float | None = None
    # what ``_steps`` last gave per (kind, subject): an unchanged value is not given again (not persisted: after a
    # restart every value is given once more, which its reader takes as no change)
    given: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_fleet(cls, window_seconds: int, unknown_per_type: dict[str, int]) -> StationWindows:
        types = {t: TypeCounts([0, 0, 0, n], 0) for t, n in sorted(unknown_per_type.items())}
        return cls(window_seconds, types)

    def add_type(self, vehicle_type: str) -> None:
        """``types`` stays in type order: the order of the window rows."""
        if vehicle_type not in self.types:
            self.types[vehicle_type] = TypeCounts([0, 0, 0, 0], 0)
            self.types = dict(sorted(self.types.items()))

    def record(self, t: float, vehicle_type: str, from_cat: int, to_cat: int) -> bool:
        """Buffer one category change. Returns True when it was late (clamped to the sealed time)."""
        t, late = clamp_late(t, self.sealed_time)
        self.add_type(vehicle_type)
        self.pending.append((t, vehicle_type, from_cat, to_cat))
        return late

    def record_staff(self, t: float, from_mask: int, from_cat: int, to_mask: int, to_cat: int) -> bool:
        """Buffer one person's change of profile and/or status (-1: not counted). True when late."""
        t, late = clamp_late(t, self.sealed_time)
        if from_mask == to_mask:
            self.staff_pending.append((t, to_mask, from_cat, to_cat))
        else:
            if from_cat >= 0:
                self.staff_pending.append((t, from_mask, from_cat, -1))
            self.staff_pending.append((t, to_mask, -1, to_cat))
        return late

    def retract(self, t: float, vehicle_type: str, from_cat: int, to_cat: int) -> None:
        """Withdraw a change recorded (not yet folded: younger than the sealed time) to re-derive it."""
        self.pending.remove((t, vehicle_type, from_cat, to_cat))

    def retract_staff(self, t: float, from_mask: int, from_cat: int, to_mask: int, to_cat: int) -> None:
        """Withdraw a person's change recorded by :meth:`record_staff` (not yet folded)."""
        if from_mask == to_mask:
            self.staff_pending.remove((t, to_mask, from_cat, to_cat))
        else:
            if from_cat >= 0:
                self.staff_pending.remove((t, from_mask, from_cat, -1))
            self.staff_pending.remove((t, to_mask, -1, to_cat))

    def available_by_type(self) -> dict[str, int]:
        return {t: tc.counts[AVAILABLE] for t, tc in self.types.items()}

    def staff_available(self) -> dict[int, int]:
        return {mask: c[S_AVAILABLE] for mask, c in self.staff.items()}

    def staff_by_qualification(self) -> list[list[int]]:
        """Per qualification (``QUALIFICATIONS`` order): [available, assigned, unavailable]."""
        out = []
        for q in QUALIFICATIONS:
            bit = QUAL_BIT[q]
            tot = [0, 0, 0]
            for mask, c in self.staff.items():
                if mask & bit:
                    tot[0] += c[S_AVAILABLE]
                    tot[1] += c[S_ASSIGNED]
                    tot[2] += c[S_UNAVAILABLE]
            out.append(tot)
        return out

    def staffed(self, crewing: Crewing) -> dict[str, int]:
        if not self.staff:
            return {}
        return crewing.staffed(self.available_by_type(), self.staff_available())

    def seal(self, until: float, station_id: str, area: str, max_fill_windows: int, out: WindowBlock,
             crewing: Crewing, staff_out: WindowBlock | None = None, steps: list[Step] | None = None,
             watched: Watched | None = None) -> None:
        """Fold the changes older than ``until`` and emit every window that ends at or before it. ``steps``:
        where the values each folded change leads to go, in time order (see ``Step``; the alerts' input), those
        ``watched`` only (None: every value)."""
        if self.sealed_time is not None and until <= self.sealed_time:
            return
        ready = sorted(c for c in self.pending if c[0] < until)
        staff_ready = sorted(c for c in self.staff_pending if c[0] < until)
        if self.window_start is None:
            if not ready and not staff_ready:
                return  # nothing ever happened here: no window to start from
            first = min(c[0] for c in (ready[:1] + staff_ready[:1]))  # type: ignore[operator]
            self.window_start = window_of(first, self.window_seconds)
            self.sealed_time = self.window_start
            self._open_minimums(crewing)
        if ready:
            self.pending = [c for c in self.pending if c[0] >= until]
        if staff_ready:
            self.staff_pending = [c for c in self.staff_pending if c[0] >= until]
        staff_out = staff_out if staff_out is not None else WindowBlock(StaffWindowRow)
        # vehicle changes (kind 0) and staff changes (kind 1) in time order
        changes = list(heapq.merge(((c[0], 0, c) for c in ready), ((c[0], 1, c) for c in staff_ready),
                                   key=lambda x: (x[0], x[1])))
        i = 0
        while i < len(changes):
            t = changes[i][0]
            self._close_windows_before(t, station_id, area, max_fill_windows, out, crewing, staff_out)
            self._integrate(t)
            touched = set()
            staff_changed = False
            while i < len(changes) and changes[i][0] == t:  # simultaneous changes count as one step
                _, kind, c = changes[i]
                if kind == 0:
                    _, vtype, frm, to = c
                    counts = self.types[vtype].counts
                    counts[frm] -= 1
                    counts[to] += 1
                    touched.add(vtype)
                else:
                    _, mask, frm, to = c
                    scounts = self.staff.setdefault(mask, [0, 0, 0, 0])
                    if frm >= 0:
                        scounts[frm] -= 1
                    if to >= 0:
                        scounts[to] += 1
                    staff_changed = True
                i += 1
            self.last_change = t
            opening = t <= self.window_start
            for vtype in touched:
                tc = self.types[vtype]
                # a value replaced at the very instant the window opens was never held in it
                held = tc.counts[AVAILABLE] if opening else tc.min_available
                tc.min_available = min(held, tc.counts[AVAILABLE])
            staffed = self.staffed(crewing) if self.staff and (touched or staff_changed) else None
            by_qual = self.staff_by_qualification() if staffed is not None else None
            if staffed is not None:
                self._update_crew_minimums(staffed, by_qual, opening)  # type: ignore[arg-type]
            if steps is not None:
                self._steps(t, station_id, touched, staffed, by_qual if staff_changed else None, steps, watched)
        self._close_windows_before(until, station_id, area, max_fill_windows, out, crewing, staff_out)
        self._integrate(until)

    def _steps(self, t: float, station_id: str, touched: set[str], staffed: dict[str, int] | None,
               by_qual: list[list[int]] | None, steps: list[Step], watched: Watched | None) -> None:
        """The values after one step: the types it touched, or every type where crews are tracked (a vehicle
        or a person freed or taken changes what any type can crew), and the people on duty per qualification —
        of those ``watched`` (None: all)."""
        if watched is not None and staffed is None and by_qual is None and watched.types.isdisjoint(touched):
            return  # nothing read changed (the common case: a type no rule reads, at a station without crews)
        given = self.given
        pool = self.types if staffed is not None else touched
        # the few types read, of those in the pool (not the pool's dozen, filtered)
        types = pool if watched is None else [vtype for vtype in watched.types if vtype in pool]
        for vtype in sorted(types):
            values = (self.types[vtype].counts[AVAILABLE], -1 if staffed is None else staffed.get(vtype, 0))
            read = values if watched is None or vtype in watched.staffed else (values[0], 0)
            if given.get((VEHICLE_STEP, vtype)) != read:
                given[(VEHICLE_STEP, vtype)] = read
                steps.append((t, station_id, VEHICLE_STEP, vtype, *values))
        if by_qual is not None and (watched is None or watched.qualifications):  # people changed
            for q, (avail, assigned, unavail) in zip(QUAL_VALUES, by_qual, strict=True):
                if watched is not None and q not in watched.qualifications:
                    continue
                values = (avail + assigned + unavail, avail)
                read = values if watched is None else (values[0], 0)
                if given.get((STAFF_STEP, q)) != read:
                    given[(STAFF_STEP, q)] = read
                    steps.append((t, station_id, STAFF_STEP, q, *values))

    def _open_minimums(self, crewing: Crewing) -> None:
        """At a window's opening the minimums start from the values held then."""
        staffed = self.staffed(crewing)
        for vtype, tc in self.types.items():
            tc.min_available = tc.counts[AVAILABLE]
            tc.min_staffed = staffed.get(vtype, 0)
        self.min_staff_available = [q[0] for q in self.staff_by_qualification()]

    def _update_crew_minimums(self, staffed: dict[str, int], by_qual: list[list[int]], opening: bool) -> None:
        for vtype, tc in self.types.items():
            n = staffed.get(vtype, 0)
            tc.min_staffed = n if opening else min(tc.min_staffed, n)
        for qi, q in enumerate(by_qual):
            self.min_staff_available[qi] = q[0] if opening else min(self.min_staff_available[qi], q[0])

    def _integrate(self, t: float) -> None:
        assert self.sealed_time is not None
        span = t - self.sealed_time
        if span > 0:
            for tc in self.types.values():
                tc.engaged_seconds += tc.counts[ENGAGED] * span
            self.sealed_time = t

    def _close_windows_before(
        self, t: float, station_id: str, area: str, max_fill_windows: int, out: WindowBlock, crewing: Crewing,
        staff_out: WindowBlock,
    ) -> None:
        """Emit every window that ends at or before ``t``. Only the first can hold changes (they are folded
        in time order): the ones after it are quiet copies of its end state, emitted as runs."""
        assert self.window_start is not None
        w = self.window_seconds
        if self.window_start + w > t:
            return
        # the fill cap, in event time: max_fill_windows windows from the last change's (from the first window
        # when no change was folded since this state was restored from an older version)
        since = window_of(self.last_change, w) if self.last_change is not None else self.window_start
        horizon = since + max_fill_windows * w
        if self.window_start >= horizon:
            self._skip_silence_to(t, crewing)  # a long silence: no row until the next change
            return
        end = self.window_start + w
        self._integrate(end)
        tracked = int(bool(self.staff))
        staffed = self.staffed(crewing) if tracked else {}
        start = self.window_start
        add = out.add
        # plain tuples in StationWindowRow / StaffWindowRow field order (the hot loop of the history path)
        for vtype, tc in self.types.items():  # kept in type order
            c = tc.counts
            n = staffed.get(vtype, 0)  # {} when crews are not tracked
            add((start, w, station_id, area, vtype, c[0], c[1], c[2], c[3], tc.min_available,
                 round(tc.engaged_seconds / 60.0, 6), n, tc.min_staffed if tracked else 0, tracked))
            tc.min_available, tc.engaged_seconds, tc.min_staffed = c[AVAILABLE], 0.0, n
        by_qual = self.staff_by_qualification() if tracked else []
        for qi, (q, (avail, assigned, unavail)) in enumerate(zip(QUAL_VALUES, by_qual, strict=False)):
            staff_out.add((start, w, station_id, area, q, avail + assigned + unavail, assigned, avail,
                           unavail, self.min_staff_available[qi]))
            self.min_staff_available[qi] = avail
        self.window_start = end
        quiet = int((t - end) // w)
        if quiet <= 0:
            return
        emitted = min(quiet, max(0, int((horizon - end) // w)))
        add_run = out.add_run
        for vtype, tc in self.types.items():
            c = tc.counts
            n = staffed.get(vtype, 0)  # {} when crews are not tracked
            add_run(emitted, (end, w, station_id, area, vtype, c[0], c[1], c[2], c[3], c[AVAILABLE],
                              round(c[ENGAGED] * w / 60.0, 6), n, n, tracked))
        for q, (avail, assigned, unavail) in zip(QUAL_VALUES, by_qual, strict=False):
            staff_out.add_run(emitted, (end, w, station_id, area, q, avail + assigned + unavail, assigned,
                                        avail, unavail, avail))
        if emitted < quiet:
            self._skip_silence_to(t, crewing)  # a long silence (idle station, replay gap): no row for it
        else:
            self.window_start = end + quiet * w
            self.sealed_time = self.window_start

    def _skip_silence_to(self, t: float, crewing: Crewing) -> None:
        """Start again at the window holding ``t``, without rows for the silence before it."""
        start = t - t % self.window_seconds
        if start <= self.window_start:
            return
        self.window_start = self.sealed_time = start
        for tc in self.types.values():
            tc.engaged_seconds = 0.0
        self._open_minimums(crewing)

    def to_dict(self) -> dict[str, object]:
        return {
            "w": self.window_seconds,
            "t": {k: v.to_list() for k, v in self.types.items()},
            "ws": self.window_start,
            "st": self.sealed_time,
            "p": [list(c) for c in self.pending],
            "s": [[m, c] for m, c in self.staff.items()],
            "sp": [list(c) for c in self.staff_pending],
            "ms": self.min_staff_available,
            "lc": self.last_change,
        }

    @classmethod
    def from_dict(cls, d: dict) -> StationWindows:  # type: ignore[type-arg]
        return cls(
            int(d["w"]),
            {k: TypeCounts.from_list(v) for k, v in sorted(d["t"].items())},
            d["ws"],
            d["st"],
            [(float(a), str(b), int(c), int(e)) for a, b, c, e in d["p"]],
            {int(m): list(c) for m, c in d.get("s", [])},
            [(float(a), int(b), int(c), int(e)) for a, b, c, e in d.get("sp", [])],
            list(d.get("ms", [0] * len(QUALIFICATIONS))),
            d.get("lc"),
        )
