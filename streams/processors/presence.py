"""Population present: per sector and period, the count a source delivered against the usual for that slot of the
week, and whether the sector is unusual (rules and scoring: ``streams/presence.py``). One state entry per sector
(the topic's key); a late or repeated delivery rescores what it changes, so the rows do not depend on arrival
order. Each series' periods, once sealed in time order (``streams/presence.py`` ``Series.seal``), go to the alerts
processor (topic ``presence-steps``) for the rules on presence."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from core.settings import Settings
from core.tables import DateTime, Float64, String, UInt8, UInt16, UInt64, table
from schemas.presence import PresenceEvent
from streams.presence import COUNT, SUPPRESSED, PresenceRules, PresenceSector, Score, Scorer, Series
from streams.presence import T as DELIVERED
from streams.processor import (
    BatchResult,
    EngineContext,
    Input,
    Message,
    Processor,
    Record,
    StateTable,
    Stores,
    TimeBound,
    decode_checked,
    json_state,
)

TOPIC = "population-presence"
STATES = "presence-sectors"
SEALED_TOPIC = "presence-steps"


class PresenceRow(NamedTuple):
    sector_id: String
    segment: String
    source: String
    period_start: DateTime
    period_minutes: UInt16
    present: Float64  # 0 when suppressed
    suppressed: UInt8
    usual: Float64  # median of the same slot in the weeks before (0: no past yet)
    mad: Float64
    weeks: UInt8  # past weeks that counted
    ratio: Float64  # present / usual
    z: Float64  # robust z-score
    deviating: UInt8  # 1 above, 2 below (see PresenceRules), 0 not
    unusual: UInt8  # deviating the same way two periods in a row
    lat: Float64  # the sector's centroid (reference sectors.geojson; 0 when unknown)
    lon: Float64
    residents: Float64  # the sector's resident population (reference sector_residents.csv; 0 when unknown)
    delivered_at: DateTime
    version: UInt64


class PresenceEventRow(NamedTuple):
    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    sector_id: String
    period_start: DateTime
    segment: String
    source: String
    source_partition: UInt16
    source_offset: UInt64
    payload: String


#: a sealed period as the alerts read it (schemas/signals.py PresenceStepsPart)
SealedPeriod = tuple[int, float | None, float, float, float, bool]

PERIODS_TABLE = table("presence_periods", PresenceRow)
EVENTS_TABLE = table("presence_events", PresenceEventRow)


def rules_of(settings: Settings) -> PresenceRules:
    return PresenceRules(settings.presence_weeks, settings.presence_min_weeks, settings.presence_z,
                         settings.presence_ratio_high, settings.presence_ratio_low, settings.timezone)


class PresenceEngine:
    def __init__(self, rules: PresenceRules, centroids: dict[str, tuple[float, float]] | None = None,
                 residents: dict[str, int] | None = None, time_bound: TimeBound | None = None,
                 alert_lateness_s: float = 10800.0) -> None:
        self.scorer = Scorer(rules)
        self.alert_lateness_s = alert_lateness_s
        self.centroids = centroids or {}
        self.residents = residents or {}
        self.time_bound = time_bound or TimeBound()

    def process(self, records: Sequence[Record], stores: Stores, behind: Any = None) -> BatchResult:
        store = stores[STATES]
        result = BatchResult()
        raw: list[PresenceEventRow] = []
        scores: dict[tuple[str, str], dict[int, Score]] = {}  # (sector, series key) -> periods scored anew
        sealed: dict[tuple[str, str], list[SealedPeriod]] = {}  # and the periods it sealed
        latest = self.time_bound.latest()
        for rec in records:
            checked = decode_checked(rec, PresenceEvent, "sector_id", self.time_bound, latest, result)
            if checked is None:
                continue
            ev, t = checked
            sector = store.get(ev.sector_id) or PresenceSector(ev.sector_id)
            series = sector.series_of(ev.source, ev.segment.value, ev.period_minutes)
            p = int(ev.period_start.timestamp())
            sealed_before = p < series.sealed_to
            outcome = self.scorer.apply(series, p, ev.count, ev.suppressed, t, ev.event_id)
            result.outcomes[outcome] += 1
            if outcome == "applied":
                store[ev.sector_id] = sector
                result.mark(STATES, ev.sector_id, rec.partition)
                key = (ev.sector_id, series.key)
                # scored and sealed record by record: what the alerts take does not depend on how batches are cut
                scored = scores.setdefault(key, {})
                scored.update(self.scorer.rescore(series, {p}))
                sealed.setdefault(key, []).extend(self._seal(series, scored))
                if sealed_before:  # its rows change, the alerts already took the period
                    result.outcomes["after_seal"] += 1
            raw.append(PresenceEventRow(ev.event_id, t, round(t * 1000), ev.sector_id, p, ev.segment.value,
                                        ev.source, rec.partition, rec.offset, rec.value.decode()))
            result.saw(rec.topic, t)
        rows = [row for (sid, key), scored in scores.items() for row in self._rows(store[sid], key, scored)]
        result.rows = {EVENTS_TABLE: raw, PERIODS_TABLE: rows}
        parts = [{"sector_id": sid, "source": store[sid].series[key].source, "segment": store[sid].series[key].segment,
                  "minutes": store[sid].series[key].minutes, "periods": periods}
                 for (sid, key), periods in sealed.items() if periods]
        if parts:  # schemas/signals.py PresenceSteps (its reader checks it)
            result.messages.append(Message(SEALED_TOPIC, b"all", json.dumps({"parts": parts}).encode()))
        return result

    def _seal(self, series: Series, scored: dict[int, Score]) -> list[SealedPeriod]:
        """The series' periods sealed now, with their scores as the series stands (every earlier period in: those
        ``scored`` in this batch are current, a change since would have scored them again)."""
        out = []
        for p in series.seal(self.alert_lateness_s):
            sc = scored.get(p) or self.scorer.score(series, p)
            count = series.periods[p][COUNT]
            present = None if series.periods[p][SUPPRESSED] or count is None else float(count)
            out.append((p, present, sc.usual, sc.ratio, sc.z, self.scorer.significant(series, p, sc)))
        return out

    def _rows(self, sector: PresenceSector, key: str, scored: dict[int, Score]) -> list[PresenceRow]:
        series = sector.series[key]
        lat, lon = self.centroids.get(sector.sector_id, (0.0, 0.0))
        residents = float(self.residents.get(sector.sector_id, 0))
        out = []
        for p, sc in sorted(scored.items()):
            e = series.periods.get(p)
            if e is None:  # evicted since it was scored (its row stays as written)
                continue
            # later than any row written before, across crashes too (a replay from the changelog may rescore a period
            # fewer times than the run it repeats): microseconds of the wall clock, never below the last one used
            sector.version = max(sector.version + 1, time.time_ns() // 1000)
            out.append(PresenceRow(
                sector.sector_id, series.segment, series.source, float(p), series.minutes,
                0.0 if e[COUNT] is None else float(e[COUNT]), int(e[SUPPRESSED]), sc.usual, sc.mad, sc.weeks,
                sc.ratio, sc.z, {1: 1, -1: 2}.get(sc.deviation, 0), sc.unusual, lat, lon, residents,
                float(e[DELIVERED]), sector.version))
        return out

    def tick(self, stores: Stores, behind: Any, assigned: Collection[int]) -> BatchResult | None:
        return None


def _engine(ctx: EngineContext) -> PresenceEngine:
    ref = ctx.reference
    return PresenceEngine(rules_of(ctx.settings), ref.sectors.centroids(), ref.residents, ctx.time_bound,
                          ctx.settings.presence_alert_lateness_s)


PROCESSOR = Processor(
    name="presence",
    inputs=(Input(TOPIC, PresenceEvent, "sector id", EVENTS_TABLE.name, "sector_id"),),
    states=(StateTable(STATES, *json_state(PresenceSector)),),
    tables=(PERIODS_TABLE, EVENTS_TABLE),
    outputs=(SEALED_TOPIC,),
    engine=_engine,
    simulator="devtools.presence_simulator:events",
)
