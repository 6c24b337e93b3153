"""State, engine and declaration of the water-points processor.

Rules: the newest event per water point wins (Vigie's ordering rule, ``streams/ordering.py``: an older one
changes nothing, an ``event_id`` already applied at that time is a duplicate), so the arrival order does not
matter; ``status_since`` is when the current
status began."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from core.tables import DateTime, Float64, String, UInt16, UInt64, table
from streams.ordering import admit
from streams.processor import (
    BatchResult,
    EngineContext,
    Input,
    Processor,
    Record,
    StateTable,
    Stores,
    TimeBound,
    decode_checked,
    json_state,
)
from vigie_water_points.events import WaterPointEvent

HERE = Path(__file__).resolve().parent
TOPIC = "water-points"
STATES = "water-points"


class WaterPointRow(NamedTuple):
    water_point_id: String
    area: String
    kind: String
    status: String
    flow_m3h: Float64
    status_since: DateTime
    event_time: DateTime
    version: UInt64


class WaterPointEventRow(NamedTuple):
    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    water_point_id: String
    status: String
    source_partition: UInt16
    source_offset: UInt64
    payload: String


STATE_TABLE = table("water_point_state", WaterPointRow)
EVENTS_TABLE = table("water_point_events", WaterPointEventRow)


@dataclass(slots=True)
class WaterPoint:
    water_point_id: str
    area: str = ""
    kind: str = ""
    status: str = ""
    flow_m3h: float = 0.0
    status_since: float = 0.0
    event_time: float = 0.0
    ids_at_time: list[str] = field(default_factory=list)

    def apply(self, ev: WaterPointEvent, t: float) -> str:
        """``applied``, ``duplicate`` or ``stale`` (Vigie's shared ordering rule)."""
        rejected = admit(self, ev.event_id, t)
        if rejected is not None:
            return rejected.value
        if ev.status.value != self.status:
            self.status_since = t
        self.area, self.kind, self.status, self.flow_m3h = ev.area, ev.kind.value, ev.status.value, ev.flow_m3h
        return "applied"

    def row(self) -> WaterPointRow:
        return WaterPointRow(self.water_point_id, self.area, self.kind, self.status, self.flow_m3h,
                             self.status_since, self.event_time, int(self.event_time * 1000))

    def to_dict(self) -> dict[str, Any]:
        return {"i": self.water_point_id, "a": self.area, "k": self.kind, "s": self.status, "f": self.flow_m3h,
                "ss": self.status_since, "t": self.event_time, "ids": self.ids_at_time}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaterPoint:
        return cls(d["i"], d["a"], d["k"], d["s"], float(d["f"]), float(d["ss"]), float(d["t"]), list(d["ids"]))


class WaterPointEngine:
    def __init__(self, time_bound: TimeBound | None = None) -> None:
        self.time_bound = time_bound or TimeBound()  # live: no event far ahead of the worker's clock

    def process(self, records: Sequence[Record], stores: Stores, behind: Any = None) -> BatchResult:
        store = stores[STATES]
        result = BatchResult()
        changed: dict[str, WaterPoint] = {}
        raw: list[WaterPointEventRow] = []
        latest = self.time_bound.latest()
        for rec in records:
            checked = decode_checked(rec, WaterPointEvent, "water_point_id", self.time_bound, latest, result)
            if checked is None:
                continue
            ev, t = checked
            point = store.get(ev.water_point_id) or WaterPoint(ev.water_point_id)
            outcome = point.apply(ev, t)
            result.outcomes[outcome] += 1
            store[ev.water_point_id] = point
            result.mark(STATES, ev.water_point_id, rec.partition)
            if outcome == "applied":
                changed[ev.water_point_id] = point
            raw.append(WaterPointEventRow(ev.event_id, t, int(t * 1000), ev.water_point_id, ev.status.value,
                                          rec.partition, rec.offset, rec.value.decode()))
            result.saw(rec.topic, t)
        result.rows = {EVENTS_TABLE: raw, STATE_TABLE: [p.row() for p in changed.values()]}
        return result

    def tick(self, stores: Stores, behind: Any, assigned: Collection[int]) -> BatchResult | None:
        return None


def _engine(ctx: EngineContext) -> WaterPointEngine:
    return WaterPointEngine(ctx.time_bound)


PROCESSOR = Processor(
    name="water_points",
    inputs=(Input(TOPIC, WaterPointEvent, "water point id", EVENTS_TABLE.name, "water_point_id"),),
    states=(StateTable(STATES, *json_state(WaterPoint)),),
    tables=(STATE_TABLE, EVENTS_TABLE),
    engine=_engine,
    migrations=HERE / "migrations",
    dashboards=("vigie_water_points.dashboard",),
    simulator="vigie_water_points.simulator:events",
)
