"""Interventions: the ``interventions`` topic (key: intervention id) -> per-intervention state and, per
partition, the interventions opened per sector and 1-minute window. Pure rules in ``streams/interventions.py``."""

from __future__ import annotations

import json
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
    Processor,
    Record,
    StateTable,
    Stores,
    TimeBound,
    json_state,
)
from streams.rows import InterventionEventRow, InterventionRow, SectorWindowRow

INTERVENTION_EVENTS = table("intervention_events", InterventionEventRow)
INTERVENTIONS = table("interventions", InterventionRow)
SECTOR_WINDOWS = table("sector_windows", SectorWindowRow)
INTERVENTION_STATES = "interventions"  # intervention id -> InterventionState
SECTOR_STATES = "sector-windows"  # "sectors:<partition>" -> SectorWindows of that partition


SECTORS_KEY = "sectors:{partition}"


class InterventionEngine:
    """Intervention batches -> per-intervention state, intervention rows and sector windows."""

    def __init__(self, window_seconds: int, allowed_lateness: float, retention_s: float = 86400.0,
                 skip_applied_offsets: bool = False, time_bound: TimeBound | None = None,
                 idle_s: float = 72 * 3600.0) -> None:
        """``skip_applied_offsets`` (the live path): each partition's sector entry records the last input
        offset applied, and a record at or below it is a replay after a crash and is skipped. Without it an
        intervention evicted after closing would be started afresh by the replay of its own ``closed``
        event, and its stored row replaced by one without its opening. The history path, one pass over
        records whose offsets need not grow per partition, leaves it off."""
        self.window_seconds = window_seconds
        self.allowed_lateness = allowed_lateness
        self.retention_s = retention_s
        self.idle_s = idle_s  # never closed, no event for this long: evicted too
        self.skip_applied_offsets = skip_applied_offsets
        self.time_bound = time_bound or TimeBound()  # the latest plausible event time (live: the worker's clock)
        self.newest: dict[int, float] = {}

    def tick(self, stores: Stores, behind: Collection[tuple[str, int]] | None, assigned: Collection[int]
             ) -> BatchResult | None:
        """Evict closed interventions; their keys go to the changelog as tombstones."""
        evicted = self.evict_closed(stores[INTERVENTION_STATES])
        return BatchResult(changed={INTERVENTION_STATES: evicted}) if evicted else None

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
            if t > self.newest.get(p, 0.0):
                self.newest[p] = t
            key = ev.intervention_id
            state = store.get(key) or InterventionState(key)
            state.partition = p
            opened_before = (state.opened_at, state.opened_sector)
            outcome = state.apply(ev, t)
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


class _InterventionCodec:
    """Intervention state as ``[intervention_id, ...fields]`` (compact: one per open intervention)."""

    @staticmethod
    def dumps(obj: InterventionState) -> bytes:
        return json.dumps([obj.intervention_id, *obj.to_list()], separators=(",", ":")).encode()

    @staticmethod
    def loads(raw: bytes) -> InterventionState:
        data = json.loads(raw)
        return InterventionState.from_list(data[0], data[1:])


def _engine(ctx: EngineContext) -> InterventionEngine:
    s = ctx.settings
    return InterventionEngine(s.window_seconds, s.allowed_lateness_seconds, s.intervention_retention_hours * 3600,
                              skip_applied_offsets=ctx.live, time_bound=ctx.time_bound,
                              idle_s=s.intervention_idle_hours * 3600)


def _evict_every(settings: Settings) -> float:
    return settings.intervention_eviction_interval_s


PROCESSOR = Processor(
    name="interventions",
    inputs=(Input("interventions", InterventionEvent, "intervention id", INTERVENTION_EVENTS.name,
                  "intervention_id"),),
    states=(StateTable(INTERVENTION_STATES, _InterventionCodec.dumps, _InterventionCodec.loads),
            StateTable(SECTOR_STATES, *json_state(SectorWindows))),
    tables=(INTERVENTION_EVENTS, INTERVENTIONS, SECTOR_WINDOWS),
    engine=_engine,
    tick_seconds=_evict_every,
)
