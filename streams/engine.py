"""Batch engines: raw Kafka records in, state changes, ClickHouse rows and dead letters out.

No Kafka, no Faust: the agents hand a batch of records and the state store (a mapping) to an
engine, then write what it returns. The same engines can run over an event file.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import InvalidEvent, decode_crew_status, decode_intervention, decode_vehicle_status
from schemas.reference import Reference, UnknownReference
from sinks.tables import (
    CREW_EVENTS,
    ENGAGEMENTS,
    INTERVENTION_EVENTS,
    INTERVENTIONS,
    SECTOR_WINDOWS,
    STAFF_STATE,
    STAFF_WINDOWS,
    STATION_CAPACITY,
    STATION_STAFF,
    STATION_WINDOWS,
    VEHICLE_EVENTS,
    VEHICLE_STATE,
    TableSpec,
)
from streams.crewing import Crewing
from streams.interventions import InterventionOutput, InterventionState, SectorWindows
from streams.state import StationOutput, StationState
from streams.windows import StationWindows


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str

    def to_json(self) -> bytes:
        raw = self.record.value
        doc: dict[str, Any] = {
            "reason": self.reason,
            "source_topic": self.record.topic,
            "source_partition": self.record.partition,
            "source_offset": self.record.offset,
            "key_b64": base64.b64encode(self.record.key).decode() if self.record.key is not None else None,
            "value_b64": base64.b64encode(raw).decode() if raw is not None else None,
            "rejected_at": time.time(),
        }
        return json.dumps(doc).encode()


@dataclass(slots=True)
class BatchResult:
    rows: dict[TableSpec, list[tuple[Any, ...]]]
    dead_letters: list[DeadLetter] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)  # state key -> partition
    outcomes: Counter[str] = field(default_factory=Counter)
    late: int = 0
    newest_event_time: float = 0.0
    newest_by_topic: dict[str, float] = field(default_factory=dict)  # freshness per input topic


class StationEngine:
    """Vehicle-status and crew-status batches (both keyed by station) -> per-station state; vehicle,
    engagement, staff, current-capacity and window rows."""

    def __init__(self, reference: Reference, window_seconds: int, allowed_lateness: float,
                 max_fill_windows: int = 1440, crew_topic: str = "crew-status") -> None:
        self.reference = reference
        self.crewing = Crewing(reference.crew_rules)
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        self.max_fill_windows = max_fill_windows
        self.crew_topic = crew_topic
        self.newest: dict[int, float] = {}  # partition -> newest event time seen
        self.newest_tp: dict[tuple[str, int], float] = {}  # (topic, partition) -> newest event time seen
        self.last_mark: dict[int, float] = {}  # partition -> watermark of its last seal

    def watermark(self, partition: int, behind: Collection[tuple[str, int]] | None) -> float | None:
        """Event time up to which a partition's stations may close windows (before the lateness).

        Vehicles and crews of a partition come from two topics read side by side, one possibly ahead of
        the other. ``behind``: the (topic, partition) pairs that may still bring older records (the worker
        knows from the broker, and waits a little after an input is read to its end: see ``inputs_behind``
        in app.py). While any input of the partition is behind, the watermark is the oldest newest time
        among those (a topic behind that has given nothing yet holds it entirely: None); other inputs hold
        nothing back (a topic with no traffic never stalls the windows). Without
        ``behind`` (the history path, one time-ordered stream), it is the newest time of the partition."""
        if behind:
            held = []
            for (topic, p) in behind:
                if p == partition:
                    t = self.newest_tp.get((topic, p))
                    if t is None:
                        return None
                    held.append(t)
            if held:
                return min(held)
        return self.newest.get(partition)

    def _state(self, station_id: str, store: MutableMapping[str, StationState]) -> StationState:
        state = store.get(station_id)
        if state is None:
            state = StationState.new(station_id, self.reference, self.window_seconds)
        return state

    def partitions_to_reseal(self, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
                             ) -> set[int]:
        """Assigned partitions whose watermark moved since their last seal (a hold was released)."""
        due = set()
        for p, last in self.last_mark.items():
            mark = self.watermark(p, behind)
            if p in assigned and mark is not None and mark > last:
                due.add(p)
        return due

    def process(self, records: Iterable[Record], store: MutableMapping[str, StationState],
                behind: Collection[tuple[str, int]] | None = None, seal_partitions: Iterable[int] = ()
                ) -> BatchResult:
        """Apply a batch, then seal the windows of its partitions (and of ``seal_partitions``: the live worker
        re-seals when a hold on the watermark is released without new records). ``behind``: see
        :meth:`watermark` (the live worker passes it)."""
        out = StationOutput()
        raw_rows: list[tuple[Any, ...]] = []
        crew_rows: list[tuple[Any, ...]] = []
        result = BatchResult({})
        partitions: set[int] = set()
        newest_by_topic: dict[str, float] = {}
        crew_topic = self.crew_topic
        for rec in records:
            partitions.add(rec.partition)
            crew = rec.topic == crew_topic
            try:
                if crew:
                    cev = decode_crew_status(rec.value)
                    self.reference.check_crew_event(cev)
                    station_id = cev.station_id
                else:
                    ev = decode_vehicle_status(rec.value)
                    self.reference.check_vehicle_event(ev)
                    station_id = ev.home_station
                if rec.key is not None and rec.key.decode("utf-8", "replace") != station_id:
                    field_name = "station_id" if crew else "home station"
                    raise InvalidEvent(
                        f"key: message key {rec.key.decode('utf-8', 'replace')!r} must be the {field_name} "
                        f"{station_id!r} (a station's vehicles and crews share a partition)"
                    )
            except (InvalidEvent, UnknownReference) as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            event_time = (cev if crew else ev).event_time
            t = event_time.timestamp()
            if t > self.newest.get(rec.partition, 0.0):
                self.newest[rec.partition] = t
            if t > self.newest_tp.get((rec.topic, rec.partition), 0.0):
                self.newest_tp[(rec.topic, rec.partition)] = t
            if t > newest_by_topic.get(rec.topic, 0.0):
                newest_by_topic[rec.topic] = t
            state = self._state(station_id, store)
            state.partition = rec.partition
            store[station_id] = state
            result.touched[station_id] = rec.partition
            payload = rec.value.decode() if rec.value else ""
            if crew:
                state.apply_crew(cev, t, out)
                crew_rows.append((
                    cev.event_id, t, int(t * 1000), cev.person_id, cev.station_id, cev.status.value,
                    [q.value for q in cev.qualifications], cev.vehicle_id or "", cev.intervention_id or "",
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
        for station_id in sorted(result.touched):  # so far: the stations records were applied to
            store[station_id].current_capacity(self.crewing, out)
        # Seal every station of the partitions seen, so idle stations' windows close too.
        partitions.update(seal_partitions)
        marks = {p: self.watermark(p, behind) for p in partitions}
        for p, mark in marks.items():
            if mark is not None:
                self.last_mark[p] = mark


        def windows_now(w: StationWindows) -> tuple[object, ...]:
            return (out.window_rows.entries, out.staff_window_rows.entries, w.sealed_time, len(w.pending),
                    len(w.staff_pending))

        for key, state in list(store.items()):
            mark = marks.get(state.partition)
            if mark is not None:
                before = windows_now(state.windows)
                state.seal(mark - self.allowed_lateness, out, self.crewing, self.max_fill_windows)
                if windows_now(state.windows) != before:
                    result.touched[key] = state.partition  # its windows changed: a changelog record
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
        result.outcomes = out.outcomes
        result.late = out.late_changes
        result.newest_event_time = max((self.newest[p] for p in partitions if p in self.newest), default=0.0)
        result.newest_by_topic = newest_by_topic
        return result


SECTORS_KEY = "sectors:{partition}"


class InterventionEngine:
    """Intervention batches -> per-intervention state, intervention rows and sector windows."""

    def __init__(self, window_seconds: int, allowed_lateness: float, retention_s: float = 86400.0,
                 skip_applied_offsets: bool = False) -> None:
        """``skip_applied_offsets`` (the live path): each partition's sector entry records the last input
        offset applied, and a record at or below it is a replay after a crash and is skipped. Without it an
        intervention evicted after closing would be started afresh by the replay of its own ``closed``
        event, and its stored row replaced by one without its opening. The history path, one pass over
        records whose offsets need not grow per partition, leaves it off."""
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        self.retention_s = retention_s
        self.skip_applied_offsets = skip_applied_offsets
        self.newest: dict[int, float] = {}

    def evict_closed(self, store: MutableMapping[str, InterventionState]) -> dict[str, int]:
        """Drop interventions closed more than the retention (event time) before their partition's newest
        event, so the table does not grow for ever. Returns the evicted keys and their partitions (for the
        changelog tombstones). An event for an evicted intervention would start it afresh: keep the
        retention well beyond the latest a CAD system sends updates after closing."""
        evicted = {}
        for key, state in list(store.items()):
            newest = self.newest.get(state.partition)
            if newest is not None and state.status == "closed" and state.closed_at < newest - self.retention_s:
                evicted[key] = state.partition
                del store[key]
        return evicted

    def process(
        self,
        records: Iterable[Record],
        store: MutableMapping[str, InterventionState],
        sector_store: MutableMapping[str, SectorWindows],
    ) -> tuple[BatchResult, dict[str, int]]:
        """Returns the batch result (``touched``: intervention keys) and the touched sector keys."""
        out = InterventionOutput()
        raw_rows: list[tuple[Any, ...]] = []
        result = BatchResult({})
        sectors_touched: dict[str, int] = {}
        changed: dict[str, InterventionState] = {}
        records_topic = ""
        for rec in records:
            records_topic = rec.topic
            p = rec.partition
            skey = SECTORS_KEY.format(partition=p)
            sectors = sector_store.get(skey) or SectorWindows(self.window_seconds, p)
            if self.skip_applied_offsets:
                if rec.offset <= sectors.applied_offset:
                    out.outcomes["duplicate"] += 1  # replayed after a crash: applied and stored already
                    continue
                sectors.applied_offset = rec.offset
                sector_store[skey] = sectors
                sectors_touched[skey] = p
            try:
                ev = decode_intervention(rec.value)
            except InvalidEvent as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            t = ev.event_time.timestamp()
            if t > self.newest.get(p, 0.0):
                self.newest[p] = t
            key = ev.intervention_id
            state = store.get(key) or InterventionState(key)
            state.partition = p
            opened_before = state.opened_at
            outcome = state.apply(ev, t)
            out.outcomes[outcome] += 1
            store[key] = state
            result.touched[key] = p
            changed[key] = state
            # Count when the opened time is set or moves. A re-delivery of the event that set it (after a
            # crash that stored the intervention entry but maybe not the sector entry) is placed again only
            # while its window is still open here (set semantics); an emitted window already counted it.
            redelivered = state.opened_at == opened_before and t == state.opened_at
            if state.opened_at and (state.opened_at != opened_before or redelivered):
                already_emitted = redelivered and sectors.sealed_time is not None and t < sectors.sealed_time
                if not already_emitted and sectors.place(key, state.sector, state.opened_at):
                    out.late_opened += 1
            sector_store[skey] = sectors
            sectors_touched[skey] = p
            pos = ev.location
            raw_rows.append((
                ev.event_id, t, int(t * 1000), key, ev.nature._value_, ev.lifecycle._value_, pos.sector,
                pos.lat, pos.lon, ev.priority, p, rec.offset, rec.value.decode() if rec.value else "",
            ))
        for p in {p for p in result.touched.values()} | {r.record.partition for r in result.dead_letters}:
            if p not in self.newest:
                continue
            skey = SECTORS_KEY.format(partition=p)
            sectors = sector_store.get(skey)
            if sectors is not None:
                rows = sectors.seal(self.newest[p] - self.allowed_lateness)
                if rows:
                    out.sector_rows += rows
                    sectors_touched[skey] = p
        out.intervention_rows = [s.row() for s in changed.values()]
        result.rows = {
            INTERVENTION_EVENTS: raw_rows,
            INTERVENTIONS: out.intervention_rows,
            SECTOR_WINDOWS: out.sector_rows,
        }
        result.outcomes = out.outcomes
        result.late = out.late_opened
        result.newest_event_time = max(self.newest.values(), default=0.0)
        if raw_rows:
            result.newest_by_topic = {records_topic: max(r[1] for r in raw_rows)}
        return result, sectors_touched
