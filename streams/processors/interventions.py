"""Interventions: the ``interventions`` topic (key: intervention id) -> per-intervention state and, per
partition, the interventions opened per sector and 1-minute window. Pure rules in ``streams/interventions.py``."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, MutableMapping, Sequence
from typing import Any

from core.settings import Settings
from core.tables import table
from schemas.codec import InvalidEvent, decode_intervention
from schemas.events import InterventionEvent, Lifecycle
from streams.interventions import InterventionOutput, InterventionState, SectorWindows
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
    compact_json,
    json_state,
    state_from_json,
)
from streams.rows import InterventionEventRow, InterventionRow, SectorWindowRow
from streams.sealing import SealedClock

INTERVENTION_EVENTS = table("intervention_events", InterventionEventRow)
INTERVENTIONS = table("interventions", InterventionRow)
SECTOR_WINDOWS = table("sector_windows", SectorWindowRow)
INTERVENTION_STATES = "interventions"  # intervention id -> InterventionState
SECTOR_STATES = "sector-windows"  # "sectors:<partition>" -> SectorWindows of that partition


SECTORS_KEY = "sectors:{partition}"
#: what the interventions publish for the alerts: per partition and seal, the interventions opened and closed
INTERVENTION_STEPS = "intervention-steps"
STEPS_KEY = b"all"  # one partition of readers sees every intervention


class InterventionEngine:
    """Intervention batches -> per-intervention state, intervention rows and sector windows."""

    def __init__(self, window_seconds: int, allowed_lateness: float, retention_s: float = 86400.0,
                 skip_applied_offsets: bool = False, time_bound: TimeBound | None = None,
                 idle_s: float = 72 * 3600.0, publish_steps: bool = False, eviction_interval_s: float = 0.0) -> None:
        """``skip_applied_offsets`` (the live path): each partition's sector entry records the last input
        offset applied, and a record at or below it is a replay after a crash and is skipped. Without it an
        intervention evicted after closing would be started afresh by the replay of its own ``closed``
        event, and its stored row replaced by one without its opening. The history path, one pass over
        records whose offsets need not grow per partition, leaves it off. ``publish_steps``: publish the
        interventions opened and closed, sealed (``intervention-steps``, see :meth:`_steps_part`);
        ``eviction_interval_s``: live, evict at most this often (the tick runs more often when publishing)."""
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        self.retention_s = retention_s
        self.idle_s = idle_s  # never closed, no event for this long: evicted too
        self.skip_applied_offsets = skip_applied_offsets
        self.time_bound = time_bound or TimeBound()  # the latest plausible event time (live: the worker's clock)
        self.clock = SealedClock("interventions", self.time_bound)  # how far each partition is known, what was told
        self.newest = self.clock.newest  # partition -> newest event time seen
        self.publish_steps = publish_steps
        self.eviction_interval_s = eviction_interval_s
        self.last_eviction = time.monotonic()

    def tick(self, stores: Stores, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
             ) -> BatchResult | None:
        """Evict closed interventions (their keys go to the changelog as tombstones), at most every
        ``eviction_interval_s``; publishing, tell the readers how far the partitions are known without a record
        (live data: the worker's clock), which have no data, which caught up."""
        result = BatchResult()
        now = time.monotonic()
        if now - self.last_eviction >= self.eviction_interval_s:
            self.last_eviction = now
            result.changed[INTERVENTION_STATES] = self.evict_closed(stores[INTERVENTION_STATES])
        if self.publish_steps:
            self._tell_readers(stores, behind, assigned, result)
        return result if result.messages or any(result.changed.values()) else None

    def _tell_readers(self, stores: Stores, behind: Collection[tuple[str, int]] | None, assigned: Collection[int],
                      result: BatchResult) -> None:
        sector_store: MutableMapping[str, SectorWindows] = stores[SECTOR_STATES]
        for p in assigned:  # a restarted worker: each partition's newest event from its state
            sectors = sector_store.get(SECTORS_KEY.format(partition=p))
            if p not in self.newest and sectors is not None and sectors.newest:
                self.newest[p] = sectors.newest
        self.clock.follow_clock(behind, assigned)
        held = {p for _, p in behind or ()}
        parts = []
        touched = result.changed.setdefault(SECTOR_STATES, {})
        for p in sorted(assigned):
            skey = SECTORS_KEY.format(partition=p)
            sectors = sector_store.get(skey)
            if sectors is not None:
                part = self._steps_part(p, sectors, stores[INTERVENTION_STATES], held)
                if part is not None:
                    parts.append(part)
                    sector_store[skey] = sectors
                    touched[skey] = p
        parts += [self.clock.part(p, None, held) for p in self.clock.empty_partitions(behind, assigned)]
        if parts:
            result.messages.append(_steps_message(parts))

    def _steps_part(self, p: int, sectors: SectorWindows, store: MutableMapping[str, InterventionState],
                    held: Collection[int]) -> dict[str, Any] | None:
        """The part of partition ``p`` sealed further: the interventions opened and the closing events from its last
        part's ``until`` to the new one (its newest event less the allowed lateness: an older event may still come
        before). Openings are read from their states, so a repeat or a moved opening is said once, at its final
        time; every closing event is said (a reader takes the first one that follows the opening)."""
        known = self.clock.known(p)
        if known is None:
            return None
        last = sectors.steps_until if sectors.steps_until is not None else -math.inf
        until = max(known - self.allowed_lateness, last)
        opened = []
        for iid, t in list(sectors.changed.items()):
            if t >= until:
                continue
            del sectors.changed[iid]
            state = store.get(iid)
            if state is not None and state.opened_at and last <= state.opened_at < until:
                opened.append([state.opened_at, iid, state.opened_sector, state.opened_nature, state.opened_lat,
                               state.opened_lon])
        closed = sorted({c for c in sectors.closings if last <= c[0] < until})
        sectors.closings = [c for c in sectors.closings if c[0] >= until]
        if not self.clock.worth_a_part(p, until, bool(opened or closed), held):
            return None
        sectors.steps_until = until
        part = self.clock.part(p, until, held)
        part["opened"], part["closed"] = sorted(opened), [list(c) for c in closed]
        return part

    def evict_closed(self, store: MutableMapping[str, InterventionState]) -> dict[str, int]:
        """Drop interventions closed more than the retention (event time) before their partition's newest
        event, and those never closed without any event for ``idle_s``, so the table does not grow for ever.
        Returns the evicted keys and their partitions (for the changelog tombstones). An event for an evicted
        intervention would start it afresh: keep the retention well beyond the latest a CAD system sends
        updates after closing."""
        evicted = {}
        for key, state in list(store.items()):
            newest = self.newest.get(state.partition)
            if newest is None:
                continue
            closed = state.status == "closed" and state.closed_at < newest - self.retention_s
            if closed or state.event_time < newest - self.idle_s:
                evicted[key] = state.partition
                del store[key]
        return evicted

    def process(self, records: Sequence[Record], stores: Stores,
                behind: Collection[tuple[str, int]] | None = None) -> BatchResult:
        store: MutableMapping[str, InterventionState] = stores[INTERVENTION_STATES]
        sector_store: MutableMapping[str, SectorWindows] = stores[SECTOR_STATES]
        out = InterventionOutput()
        raw_rows: list[tuple[Any, ...]] = []
        result = BatchResult()
        touched: dict[str, int] = {}
        sectors_touched: dict[str, int] = {}
        changed: dict[str, InterventionState] = {}
        records_topic = ""
        latest = self.time_bound.latest()
        arrived = time.monotonic()
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
                t = ev.event_time.timestamp()
                self.time_bound.check(t, latest)
            except InvalidEvent as e:
                result.dead_letters.append(DeadLetter(rec, str(e)))
                continue
            self.clock.saw(p, t, arrived)
            sectors.newest = max(sectors.newest, t)
            key = ev.intervention_id
            state = store.get(key) or InterventionState(key)
            state.partition = p
            opened_before = (state.opened_at, state.opened_sector)
            outcome = state.apply(ev, t)
            if self.publish_steps:  # to publish once sealed (see _steps_part): an opening moved, a closing
                if state.opened_at != opened_before[0]:
                    sectors.changed[key] = state.opened_at
                if ev.lifecycle is Lifecycle.CLOSED and outcome != "duplicate":
                    sectors.closings.append((t, key))
            out.outcomes[outcome] += 1
            store[key] = state
            touched[key] = p
            changed[key] = state
            # Count when the opening (time, sector) is set or moves. A re-delivery of the opening event (after a
            # crash that stored the intervention entry but maybe not the sector entry) is placed again only
            # while its window is still open here (set semantics); an emitted window already counted it.
            moved = (state.opened_at, state.opened_sector) != opened_before
            redelivered = not moved and ev.event_id == state.opened_by and ev.lifecycle is Lifecycle.OPENED
            if state.opened_at and (moved or redelivered):
                already_emitted = redelivered and sectors.sealed_time is not None and t < sectors.sealed_time
                if not already_emitted and sectors.place(key, state.opened_sector, state.opened_at):
                    out.late_opened += 1
            sector_store[skey] = sectors
            sectors_touched[skey] = p
            pos = ev.location
            raw_rows.append((
                ev.event_id, t, int(t * 1000), key, ev.nature._value_, ev.lifecycle._value_, pos.sector,
                pos.lat, pos.lon, ev.priority, p, rec.offset, rec.value.decode() if rec.value else "",
            ))
        for p in set(touched.values()) | {r.record.partition for r in result.dead_letters}:
            if p not in self.newest:
                continue
            skey = SECTORS_KEY.format(partition=p)
            sectors = sector_store.get(skey)
            if sectors is not None:
                rows = sectors.seal(self.newest[p] - self.allowed_lateness)
                if rows:
                    out.sector_rows += rows
                    sectors_touched[skey] = p
        if self.publish_steps:
            held = {p for _, p in behind or ()}
            parts = []
            for p in sorted(set(touched.values())):
                skey = SECTORS_KEY.format(partition=p)
                part = self._steps_part(p, sector_store[skey], store, held)
                if part is not None:
                    parts.append(part)
                    sectors_touched[skey] = p
            if parts:
                result.messages.append(_steps_message(parts))
        out.intervention_rows = [s.row() for s in changed.values()]
        result.rows = {
            INTERVENTION_EVENTS: raw_rows,
            INTERVENTIONS: out.intervention_rows,
            SECTOR_WINDOWS: out.sector_rows,
        }
        result.changed = {INTERVENTION_STATES: touched, SECTOR_STATES: sectors_touched}
        result.outcomes = out.outcomes
        result.late = out.late_opened
        result.newest_event_time = max(self.newest.values(), default=0.0)
        if raw_rows:
            result.newest_by_topic = {records_topic: max(r[1] for r in raw_rows)}
        return result


def _steps_message(parts: list[dict[str, Any]]) -> Message:
    """One message for the partitions sealed further (``schemas/signals.py`` ``InterventionSteps``)."""
    return Message(INTERVENTION_STEPS, STEPS_KEY, compact_json({"parts": parts}))


class _InterventionCodec:
    """Intervention state as ``[intervention_id, ...fields]`` (compact: one per open intervention)."""

    @staticmethod
    def dumps(obj: InterventionState) -> bytes:
        return compact_json([obj.intervention_id, *obj.to_list()])

    @staticmethod
    def loads(raw: bytes) -> InterventionState:
        data = state_from_json(raw)
        return InterventionState.from_list(data[0], data[1:])


def _engine(ctx: EngineContext) -> InterventionEngine:
    s = ctx.settings
    return InterventionEngine(s.window_seconds, s.allowed_lateness_seconds, s.intervention_retention_hours * 3600,
                              skip_applied_offsets=ctx.live, time_bound=ctx.time_bound,
                              idle_s=s.intervention_idle_hours * 3600,
                              publish_steps=s.alert_rules.exists(),  # no rules file: alerts off, nothing to publish
                              # the batch path evicts at every tick (each chunk), as it always did
                              eviction_interval_s=s.intervention_eviction_interval_s if ctx.live else 0.0)


def _tick_every(settings: Settings) -> float:
    """Evictions need a tick a minute; the alerts' clock (live data without new records) one a second or so."""
    evict = settings.intervention_eviction_interval_s
    return min(evict, max(0.2, settings.input_idle_s / 2)) if settings.alert_rules.exists() else evict


PROCESSOR = Processor(
    name="interventions",
    inputs=(Input("interventions", InterventionEvent, "intervention id", INTERVENTION_EVENTS.name,
                  "intervention_id"),),
    states=(StateTable(INTERVENTION_STATES, _InterventionCodec.dumps, _InterventionCodec.loads),
            StateTable(SECTOR_STATES, *json_state(SectorWindows))),
    tables=(INTERVENTION_EVENTS, INTERVENTIONS, SECTOR_WINDOWS),
    engine=_engine,
    tick_seconds=_tick_every,
    outputs=(INTERVENTION_STEPS,),
)
