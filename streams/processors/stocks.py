"""Stocks: what each site holds of each item, the newest snapshot per (site, item) winning.

A ``stock-levels`` record is an absolute snapshot, never a movement, so the newest one in (event time, event id)
order is the truth whatever order they arrive in (``streams/ordering.py`` ``admit``: older ones and repeats change
nothing). One state entry per site (the topic's key), its items inside. The sector is the event's, else the one
whose polygon holds the site (reference ``sectors.geojson``), else "". Queries near a place: ``sinks/near.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from core.geo import Sectors
from core.tables import DateTime, Float64, String, UInt8, UInt16, UInt64, table
from schemas.stocks import StockLevelEvent
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

TOPIC = "stock-levels"
STATES = "stock-sites"


class StockLevelRow(NamedTuple):
    site_id: String
    item_id: String
    site_type: String
    item_category: String
    unit: String
    qty_on_hand: Float64
    qty_reserved: Float64
    qty_available: Float64  # on hand, less reserved
    qty_min: Float64
    below_min: UInt8  # 1 when the quantity available is under the site's minimum
    lat: Float64
    lon: Float64
    sector_id: String
    event_time: DateTime
    event_id: String
    version: UInt64  # the snapshot's time in ms: the newest row of a (site, item) wins in ClickHouse too


class StockEventRow(NamedTuple):
    event_id: String
    event_time: DateTime
    event_ts_ms: UInt64
    site_id: String
    item_id: String
    source_partition: UInt16
    source_offset: UInt64
    payload: String


LEVELS_TABLE = table("stock_levels", StockLevelRow)
EVENTS_TABLE = table("stock_events", StockEventRow)


@dataclass(slots=True)
class Item:
    """One item of a site: its newest snapshot (``row``) and what the ordering rule remembers."""

    event_time: float = 0.0
    ids_at_time: list[str] = field(default_factory=list)
    row: list[Any] = field(default_factory=list)  # a StockLevelRow's values


@dataclass(slots=True)
class Site:
    site_id: str
    items: dict[str, Item] = field(default_factory=dict)

    def apply(self, ev: StockLevelEvent, t: float, locate: Callable[[float, float], str]) -> str:
        """``applied``, ``duplicate`` or ``stale``. ``locate``: the sector of a point, asked only for a snapshot
        applied that names none."""
        item = self.items.get(ev.item_id)
        if item is None:
            item = self.items[ev.item_id] = Item()
        rejected = admit(item, ev.event_id, t)
        if rejected is not None:
            return rejected.value
        available = ev.qty_on_hand - ev.qty_reserved
        sector = ev.sector_id or locate(ev.lat, ev.lon)
        item.row = list(StockLevelRow(
            ev.site_id, ev.item_id, ev.site_type, ev.item_category, ev.unit, ev.qty_on_hand, ev.qty_reserved,
            available, ev.qty_min, int(available < ev.qty_min), ev.lat, ev.lon, sector, t, ev.event_id,
            round(t * 1000)))
        return "applied"

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.site_id, "i": {k: [v.event_time, v.ids_at_time, v.row] for k, v in self.items.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Site:
        return cls(d["s"], {k: Item(float(t), list(ids), list(row)) for k, (t, ids, row) in d["i"].items()})


class StockEngine:
    def __init__(self, sectors: Sectors, time_bound: TimeBound | None = None) -> None:
        self.sectors = sectors
        self.time_bound = time_bound or TimeBound()  # live: no event far ahead of the worker's clock

    def process(self, records: Sequence[Record], stores: Stores, behind: Any = None) -> BatchResult:
        store = stores[STATES]
        result = BatchResult()
        changed: dict[tuple[str, str], list[Any]] = {}
        raw: list[StockEventRow] = []
        latest = self.time_bound.latest()
        for rec in records:
            checked = decode_checked(rec, StockLevelEvent, "site_id", self.time_bound, latest, result)
            if checked is None:
                continue
            ev, t = checked
            site = store.get(ev.site_id) or Site(ev.site_id)
            outcome = site.apply(ev, t, self.sectors.locate)
            result.outcomes[outcome] += 1
            if outcome == "applied":
                store[ev.site_id] = site
                result.mark(STATES, ev.site_id, rec.partition)
                changed[ev.site_id, ev.item_id] = site.items[ev.item_id].row
            elif outcome == "stale" and t == site.items[ev.item_id].event_time:
                store[ev.site_id] = site  # a lower id at the item's instant: the ids remembered there grew
                result.mark(STATES, ev.site_id, rec.partition)
            raw.append(StockEventRow(ev.event_id, t, round(t * 1000), ev.site_id, ev.item_id, rec.partition,
                                     rec.offset, rec.value.decode()))
            result.saw(rec.topic, t)
        result.rows = {EVENTS_TABLE: raw, LEVELS_TABLE: [StockLevelRow(*r) for r in changed.values()]}
        return result

    def tick(self, stores: Stores, behind: Any, assigned: Collection[int]) -> BatchResult | None:
        return None


def _engine(ctx: EngineContext) -> StockEngine:
    return StockEngine(ctx.reference.sectors, ctx.time_bound)


PROCESSOR = Processor(
    name="stocks",
    inputs=(Input(TOPIC, StockLevelEvent, "site id", EVENTS_TABLE.name, "site_id"),),
    states=(StateTable(STATES, *json_state(Site)),),
    tables=(LEVELS_TABLE, EVENTS_TABLE),
    engine=_engine,
    simulator="devtools.stock_simulator:events",
)
