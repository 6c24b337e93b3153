"""Batch engines: raw Kafka records in, state changes, ClickHouse rows and dead letters out.

No Kafka, no Faust: the agents hand a batch of records and the state store (a mapping) to an
engine, then write what it returns. The same engines can run over an event file.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from schemas.codec import InvalidEvent, decode_intervention, decode_vehicle_status
from schemas.reference import Reference, UnknownReference
from sinks.tables import (
    ENGAGEMENTS,
    INTERVENTION_EVENTS,
    INTERVENTIONS,
    SECTOR_WINDOWS,
    STATION_WINDOWS,
    VEHICLE_EVENTS,
    VEHICLE_STATE,
    TableSpec,
)
from streams.interventions import InterventionOutput, InterventionState, SectorWindows
from streams.state import StationOutput, StationState


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


class VehicleEngine:
    """Vehicle-status batches -> per-station state, vehicle/engagement/window rows."""

    def __init__(self, reference: Reference, window_seconds: int, allowed_lateness: float,
                 max_fill_windows: int = 1440) -> None:
        self.reference = reference
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        self.max_fill_windows = max_fill_windows
        self.newest: dict[int, float] = {}  # partition -> newest event time seen

    def process(self, records: Iterable[Record], store: MutableMapping[str, StationState]) -> BatchResult:
        out = StationOutput()
        raw_rows: list[tuple[Any, ...]] = []
        result = BatchResult({})
        partitions: set[int] = set()
        for rec in records:
            partitions.add(rec.partition)
            try:
                ev = decode_vehicle_status(rec.value)
                self.reference.check_vehicle_event(ev)
                if rec.key is not None and rec.key.decode("utf-8", "replace") != ev.home_station:
                    raise InvalidEvent(
                        f"key: message key {rec.key.decode('utf-8', 'replace')!r} must be the home station "
                        f"{ev.home_station!r} (all vehicles of a station share a partition)"
                    )
            except (InvalidEvent, UnknownReference) as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            t = ev.event_time.timestamp()
            if t > self.newest.get(rec.partition, 0.0):
                self.newest[rec.partition] = t
            state = store.get(ev.home_station)
            if state is None:
                state = StationState.new(ev.home_station, self.reference, self.window_seconds)
            state.partition = rec.partition
            state.apply(ev, t, out)
            store[ev.home_station] = state
            result.touched[ev.home_station] = rec.partition
            pos = ev.position
            raw_rows.append((
                ev.event_id, t, int(t * 1000), ev.vehicle_id, ev.vehicle_type, ev.home_station, ev.status.value,
                ev.intervention_id or "", pos.lat if pos else 0.0, pos.lon if pos else 0.0,
                rec.partition, rec.offset, rec.value.decode() if rec.value else "",
            ))
        # Seal every station of the partitions seen, so idle stations' windows close too.
        for key, state in list(store.items()):
            if state.partition in partitions and state.partition in self.newest:
                before = len(out.window_rows)
                state.seal(self.newest[state.partition] - self.allowed_lateness, out, self.max_fill_windows)
                if len(out.window_rows) != before or state.windows.pending:
                    result.touched[key] = state.partition
        result.rows = {
            VEHICLE_EVENTS: raw_rows,
            # only the newest row per key: the tables keep the highest version of a key anyway
            VEHICLE_STATE: list({r.vehicle_id: r for r in out.vehicle_rows}.values()),
            ENGAGEMENTS: list({(r.intervention_id, r.vehicle_id): r for r in out.engagement_rows}.values()),
            STATION_WINDOWS: out.window_rows,
        }
        result.outcomes = out.outcomes
        result.late = out.late_changes
        result.newest_event_time = max((self.newest[p] for p in partitions if p in self.newest), default=0.0)
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
        for rec in records:
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
                ev.event_id, t, int(t * 1000), key, ev.nature.value, ev.lifecycle.value, pos.sector,
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
        return result, sectors_touched
