"""Stations: vehicle-status and crew-status (both keyed by the home station) -> one state entry per station
(its vehicles, engagements, staff and window accumulators); vehicle, engagement, staff, current-capacity
and 1-minute window rows. The pure rules live in ``streams/state.py``, ``streams/windows.py`` and
``streams/crewing.py``; this module is the engine and the processor's declaration."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.tables import NO_TIME, table
from schemas.alert_rules import RuleFileError, RuleFileWatcher
from schemas.codec import InvalidEvent, decode_crew_status, decode_vehicle_status
from schemas.events import CrewStatusEvent, VehicleStatusEvent
from schemas.reference import Reference, UnknownReference
from streams.alert_book import watched_values
from streams.crewing import Crewing
from streams.processor import (
    BatchResult,
    DeadLetter,
    EngineContext,
    Input,
    Message,
    Processor,
    Record,
    StateTable,
    Stores,
    TimeBound,
    check_key,
    compact_json,
    json_state,
)
from streams.rows import (
    CrewEventRow,
    EngagementRow,
    StaffStateRow,
    StaffWindowRow,
    StationCapacityRow,
    StationStaffRow,
    StationWindowRow,
    VehicleEventRow,
    VehicleStateRow,
)
from streams.sealing import SealedClock
from streams.state import StationOutput, StationState
from streams.windows import StationWindows, Step, UnitStep, Watched

VEHICLE_EVENTS = table("vehicle_status_events", VehicleEventRow)
CREW_EVENTS = table("crew_status_events", CrewEventRow, personal=True)
VEHICLE_STATE = table("vehicle_state", VehicleStateRow)
ENGAGEMENTS = table("engagements", EngagementRow)
STATION_WINDOWS = table("station_windows", StationWindowRow, "station_window_runs")
STAFF_STATE = table("staff_state", StaffStateRow, personal=True)
STATION_CAPACITY = table("station_capacity", StationCapacityRow)
STATION_STAFF = table("station_staff", StationStaffRow)
STAFF_WINDOWS = table("staff_windows", StaffWindowRow, "staff_window_runs")
STATIONS = "stations"  # the state table: station id -> StationState
#: what the stations publish for the alerts: per partition and seal, the sealed steps of their values
STATION_STEPS = "station-steps"
STEPS_KEY = b"all"  # one partition of readers sees every station (an area spans partitions)

log = logging.getLogger("vigie.stations")


QUIET_FILL_S = 31 * 86400.0


class StationEngine:
    """Vehicle-status and crew-status batches (both keyed by station) -> per-station state; vehicle,
    engagement, staff, current-capacity and window rows."""

    def __init__(self, reference: Reference, window_seconds: int, allowed_lateness: float,
                 max_fill_windows: int | None = None, crew_topic: str = "crew-status",
                 time_bound: TimeBound | None = None,
                 staff_retention_s: float = 86400.0, eviction_interval_s: float = 60.0,
                 hold_max_s: float = 21600.0, publish_steps: bool = False, rules_path: Path | None = None) -> None:
        """``crew_topic``: the deployment's name of the crew-status topic (records of any other topic are
        vehicle-status records); ``time_bound``: the latest plausible event time (live: the worker's clock);
        ``hold_max_s``: how far behind its newest event a topic behind may hold a partition's watermark;
        ``publish_steps``: publish the sealed steps of the stations' values (``station-steps``, see
        :meth:`_steps_message`): of those the alert rules in ``rules_path`` read (:meth:`_refresh_watched`;
        no file: every value)."""
        self.reference = reference
        self.crewing = Crewing(reference.crew_rules)
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        # quiet windows (a station with no change) go on for QUIET_FILL_S after its last change, then stop until the
        # next one: a month — every minute of a working station, no rows for months of a history's gap
        self.max_fill_windows = max_fill_windows or int(QUIET_FILL_S // window_seconds)
        self.crew_topic = crew_topic
        self.time_bound = time_bound or TimeBound()
        self.staff_retention_s = staff_retention_s
        self.eviction_interval_s = eviction_interval_s
        self.hold_max_s = hold_max_s
        self.last_eviction = time.monotonic()
        self.state_items: dict[str, int] = {}  # what the state holds, counted at each eviction (a metric)
        self.clock = SealedClock("stations", self.time_bound)  # how far each partition is known, what was told
        self.newest = self.clock.newest  # partition -> newest event time seen
        self.newest_tp: dict[tuple[str, int], float] = {}  # (topic, partition) -> newest event time seen
        self.last_mark: dict[int, float] = {}  # partition -> watermark of its last seal
        self.publish_steps = publish_steps
        self.rules_file = RuleFileWatcher(rules_path) if rules_path is not None else None
        self.watched: Watched | None = None  # what the rules read (None: every value)

    def watermark(self, partition: int, behind: Collection[tuple[str, int]] | None) -> float | None:
        """Event time up to which a partition's stations may close windows (before the lateness).

        Vehicles and crews of a partition come from two topics read side by side, one possibly ahead of
        the other. ``behind``: the (topic, partition) pairs that may still bring older records (the worker
        knows from the broker, and waits a little after an input is read to its end: see ``inputs_behind``
        in streams/runtime/hold.py). While any input of the partition is behind, the watermark is the oldest newest time
        among those (a topic behind that has given nothing yet holds it entirely: None); other inputs hold
        nothing back (a topic with no traffic never stalls the windows). A hold never goes further back than
        ``hold_max_s`` before the partition's newest event: state must not grow with a topic racing ahead.
        Without ``behind`` (the history path, one time-ordered stream), it is the newest time of the partition."""
        newest = self.clock.known(partition)  # live data, nothing new since: further (SealedClock.follow_clock)
        if behind:
            held: list[float] = []
            for (topic, p) in behind:
                if p == partition:
                    held.append(self.newest_tp.get((topic, p), -math.inf))  # nothing yet: holds all it may
            if held:
                floor = newest - self.hold_max_s if newest is not None else -math.inf
                mark = max(min(held), floor)
                return None if mark == -math.inf else mark
        return newest

    def _state(self, station_id: str, store: MutableMapping[str, StationState]) -> StationState:
        state = store.get(station_id)
        if state is None:
            state = StationState.new(station_id, self.reference, self.window_seconds)
        return state

    def recall_newest(self, store: Mapping[str, StationState], partitions: Collection[int]) -> None:
        """Partitions without a record since this engine started take their newest event time from their
        stations' recovered state: a restarted worker then closes the windows its predecessor's hold kept
        back, even when no new record comes to that partition (the end of a replay, a quiet night)."""
        missing = {p for p in partitions if p not in self.newest}
        if not missing:
            return
        for state in store.values():
            p = state.partition
            if p in missing and state.newest_event_time > self.newest.get(p, NO_TIME):
                self.newest[p] = state.newest_event_time

    def partitions_to_reseal(self, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
                             ) -> set[int]:
        """Assigned partitions whose watermark moved since their last seal (a hold was released), or that were
        never sealed by this engine (restarted on a recovered state)."""
        due = set()
        for p in assigned:
            mark = self.watermark(p, behind)
            last = self.last_mark.get(p)
            if mark is not None and (last is None or mark > last):
                due.add(p)
        return due

    def tick(self, stores: Stores, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
             ) -> BatchResult | None:
        """Windows held back by an input that has since caught up close once it is idle, without a record; and
        at most every ``eviction_interval_s``, the state is tidied (:meth:`tidy`)."""
        self.recall_newest(stores[STATIONS], assigned)
        self.clock.follow_clock(behind, assigned)
        due = self.partitions_to_reseal(behind, assigned)
        due |= self.clock.caught_up(behind, assigned)  # caught up since their last part: say so
        result = self.process([], stores, behind, seal_partitions=due) if due else None
        empty = self.clock.empty_partitions(behind, assigned) if self.publish_steps else []
        if empty:
            result = result or BatchResult()
            result.messages.append(self._steps_message([(p, None, [], []) for p in empty]))
        now = time.monotonic()
        if now - self.last_eviction >= self.eviction_interval_s:
            self.last_eviction = now
            evicted = self.tidy(stores[STATIONS])
            if evicted:
                result = result or BatchResult()
                for key, partition in evicted.items():
                    result.mark(STATIONS, key, partition)
        return result

    def tidy(self, store: MutableMapping[str, StationState]) -> dict[str, int]:
        """People off duty for longer than the retention before their partition's newest event leave their
        station's state, and timelines drop the entries no event can use any more; counts what the state holds
        (``state_items``). Returns the stations changed (key -> partition, for the changelog: trimmed timelines
        change nothing saved)."""
        changed = {}
        people = timeline = 0
        for key, state in store.items():
            newest = self.newest.get(state.partition)
            if newest is not None and state.staff and state.evict_off_duty(newest - self.staff_retention_s):
                changed[key] = state.partition
            people += len(state.staff)
            timeline += state.trim_timelines()
        self.state_items = {"people": people, "timeline_entries": timeline}
        return changed

    def process(self, records: Sequence[Record], stores: Stores,
                behind: Collection[tuple[str, int]] | None = None, seal_partitions: Iterable[int] = ()
                ) -> BatchResult:
        """Apply a batch, then seal the windows of its partitions (and of ``seal_partitions``: the live worker
        re-seals when a hold on the watermark is released without new records). ``behind``: see
        :meth:`watermark` (the live worker passes it)."""
        store: MutableMapping[str, StationState] = stores[STATIONS]
        if self.publish_steps:
            self._refresh_watched(store)
        out = StationOutput(watched=self.watched)
        result = BatchResult()
        touched: dict[str, int] = {}  # station -> partition: a changelog record each
        partitions: set[int] = set(seal_partitions)
        raw_rows, crew_rows = self._apply(records, store, out, result, touched, partitions)
        for station_id in sorted(touched):  # the stations records were applied to
            store[station_id].current_capacity(self.crewing, out)
        steps = self._seal(store, partitions, behind, out, touched)
        result.rows = {
            VEHICLE_EVENTS: raw_rows,
            CREW_EVENTS: crew_rows,
            # only the newest row per key: the tables keep the highest version of a key anyway
            VEHICLE_STATE: list({r.vehicle_id: r for r in out.vehicle_rows}.values()),
            ENGAGEMENTS: list({(r.intervention_id, r.vehicle_id): r for r in out.engagement_rows}.values()),
            STAFF_STATE: list({r.person_id: r for r in out.staff_rows}.values()),
            STATION_CAPACITY: out.capacity_rows,
            STATION_STAFF: out.staff_count_rows,
            STATION_WINDOWS: out.window_rows,
            STAFF_WINDOWS: out.staff_window_rows,
        }
        result.changed[STATIONS] = touched
        result.outcomes = out.outcomes
        result.late = out.late_changes
        result.newest_event_time = max((self.newest[p] for p in partitions if p in self.newest), default=0.0)
        held = {p for _, p in behind or ()}
        parts = [(p, until, st, units) for p, (until, st, units) in sorted(steps.items())
                 if self.clock.worth_a_part(p, until, bool(st or units), held)]
        result.messages = [self._steps_message(parts, held)] if parts else []
        return result

    def _refresh_watched(self, store: Mapping[str, StationState]) -> None:
        """The values the alert rules read, again when their file changed (live: a reload, as the alerts do). A
        value watched anew is given from each station's next change (what was given is forgotten: an unchanged
        value is given again, which the alerts take as no change); an unreadable file keeps the last set."""
        if self.rules_file is None:
            return
        try:
            rules = self.rules_file.changed()
        except RuleFileError as e:
            log.error("alert rules not read again, the stations publish what the previous ones read: %s", e)
            return
        if rules is None:
            return
        watched = watched_values(rules)
        if watched != self.watched:
            self.watched = watched
            for state in store.values():
                state.windows.given.clear()

    def _steps_message(self, parts: list[tuple[int, float | None, list[Step], list[UnitStep]]],
                       held: Collection[int] = ()) -> Message:
        """One message for the partitions sealed further (one record per batch on the broker, not one per
        partition): ``{"parts": [{"source": "stations/<partition>", "until": t, "steps": [...]}, ...]}``, each part
        every change of its partition's stations' values before ``t`` not in an earlier message
        (``streams/windows.py`` ``Step``), in time order, and ``"units"`` its units' changes of status
        (``UnitStep``). A crash can repeat a message, or cut the next one differently: what is older than a
        source's last ``until`` is what its reader has already taken.
        ``"behind": true`` (live): the partition has records not read yet (``held``), said again when it changes."""
        doc = []
        for partition, until, steps, units in parts:
            part = self.clock.part(partition, until, held)
            part["steps"] = sorted(steps)
            if units:
                part["units"] = sorted(units)
            doc.append(part)
        return Message(STATION_STEPS, STEPS_KEY, compact_json({"parts": doc}))

    def _decode(self, rec: Record, crew: bool) -> tuple[Any, str]:
        """The record's event and its station; raises ``InvalidEvent``/``UnknownReference`` with the reason."""
        if crew:
            ev: Any = decode_crew_status(rec.value)
            self.reference.check_crew_event(ev)
            station_id = ev.station_id
        else:
            ev = decode_vehicle_status(rec.value)
            self.reference.check_vehicle_event(ev)
            station_id = ev.home_station
        check_key(rec, station_id, "station_id" if crew else "home station",
                  "a station's vehicles and crews share a partition")
        return ev, station_id

    def _apply(self, records: Sequence[Record], store: MutableMapping[str, StationState], out: StationOutput,
               result: BatchResult, touched: dict[str, int], partitions: set[int]
               ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Each record to its station's state; returns the raw vehicle and crew event rows."""
        raw_rows: list[tuple[Any, ...]] = []
        crew_rows: list[tuple[Any, ...]] = []
        newest_by_topic = result.newest_by_topic
        crew_topic = self.crew_topic
        latest = self.time_bound.latest()
        arrived = time.monotonic()
        for rec in records:
            partitions.add(rec.partition)
            crew = rec.topic == crew_topic
            try:
                ev, station_id = self._decode(rec, crew)
                t = ev.event_time.timestamp()
                self.time_bound.check(t, latest)
            except (InvalidEvent, UnknownReference) as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            if rec.partition not in self.newest:
                self.recall_newest(store, (rec.partition,))
            self.clock.saw(rec.partition, t, arrived)
            if t > self.newest_tp.get((rec.topic, rec.partition), 0.0):
                self.newest_tp[(rec.topic, rec.partition)] = t
            if t > newest_by_topic.get(rec.topic, 0.0):
                newest_by_topic[rec.topic] = t
            state = self._state(station_id, store)
            state.partition = rec.partition
            store[station_id] = state
            touched[station_id] = rec.partition
            payload = rec.value.decode() if rec.value else ""
            if crew:
                state.apply_crew(ev, t, out)
                crew_rows.append((
                    ev.event_id, t, int(t * 1000), ev.person_id, ev.station_id, ev.status.value,
                    [q.value for q in ev.qualifications], ev.vehicle_id or "", ev.intervention_id or "",
                    rec.partition, rec.offset, payload,
                ))
                continue
            state.apply(ev, t, out)
            pos = ev.position
            raw_rows.append((
                ev.event_id, t, int(t * 1000), ev.vehicle_id, ev.vehicle_type, ev.home_station, ev.status._value_,
                ev.intervention_id or "", pos.lat if pos else 0.0, pos.lon if pos else 0.0,
                rec.partition, rec.offset, payload,
            ))
        return raw_rows, crew_rows

    def _seal(self, store: MutableMapping[str, StationState], partitions: set[int],
              behind: Collection[tuple[str, int]] | None, out: StationOutput, touched: dict[str, int]
              ) -> dict[int, tuple[float, list[Step], list[UnitStep]]]:
        """Seal every station of the partitions seen, so idle stations' windows close too. Returns, when the
        steps are published, the partitions sealed further than their last message: (sealed time, steps)."""
        marks = {p: self.watermark(p, behind) for p in partitions}
        for p, mark in marks.items():
            if mark is not None:
                self.last_mark[p] = mark
        steps: dict[int, tuple[float, list[Step], list[UnitStep]]] = {}
        if self.publish_steps:
            held = {p for _, p in behind or ()}
            for p, mark in marks.items():
                if mark is None:
                    continue
                last = self.clock.published.get(p, -math.inf)
                # further, or no further but behind or caught up since its last message (said again)
                told_behind = p in self.clock.told_behind
                if mark - self.allowed_lateness > last or (last > -math.inf and (p in held) != told_behind):
                    steps[p] = (max(mark - self.allowed_lateness, last), [], [])

        def windows_now(w: StationWindows) -> tuple[object, ...]:
            return (out.window_rows.entries, out.staff_window_rows.entries, w.sealed_time, len(w.pending),
                    len(w.staff_pending))

        for key, state in list(store.items()):
            mark = marks.get(state.partition)
            if mark is not None:
                before = windows_now(state.windows)
                published = steps.get(state.partition)
                out.steps = published[1] if published is not None else None
                out.unit_steps = (published[2] if published is not None and (self.watched is None or self.watched.units)
                                  else None)
                state.seal(mark - self.allowed_lateness, out, self.crewing, self.max_fill_windows)
                if windows_now(state.windows) != before:
                    touched[key] = state.partition  # its windows changed: a changelog record
        out.steps = out.unit_steps = None
        return steps


def _engine(ctx: EngineContext) -> StationEngine:
    s = ctx.settings
    return StationEngine(ctx.reference, s.window_seconds, s.allowed_lateness_seconds,
                         crew_topic=ctx.topic("crew-status"), time_bound=ctx.time_bound,
                         staff_retention_s=s.staff_off_duty_retention_hours * 3600,
                         eviction_interval_s=s.intervention_eviction_interval_s, hold_max_s=s.hold_max_s,
                         # no rules file: alerts off, nothing to publish
                         publish_steps=s.alert_rules.exists(), rules_path=s.alert_rules)


def _reseal_every(settings: Settings) -> float:
    return max(0.2, settings.input_idle_s / 2)


PROCESSOR = Processor(
    name="stations",
    inputs=(Input("vehicle-status", VehicleStatusEvent, "home station id", VEHICLE_EVENTS.name, "home_station"),
            # same key and partition count: a station's crews and vehicles meet in one state entry
            Input("crew-status", CrewStatusEvent, "station id", CREW_EVENTS.name, "station_id", personal=True)),
    states=(StateTable(STATIONS, *json_state(StationState)),),
    tables=(VEHICLE_EVENTS, CREW_EVENTS, VEHICLE_STATE, ENGAGEMENTS, STAFF_STATE, STATION_CAPACITY, STATION_STAFF,
            STATION_WINDOWS, STAFF_WINDOWS),
    engine=_engine,
    tick_seconds=_reseal_every,
    hold_watermark=True,
    outputs=(STATION_STEPS,),
)
