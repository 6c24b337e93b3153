"""Simulated stocks for ``make run`` and the tests: every station keeps a few items (medical kits, oxygen, foam,
absorbent), a dozen depots keep heavy kit (sandbags, generators, pumps, tarpaulins, water); items are used now and
then, reserved for an operation and released, and restocked to capacity some hours after falling below the
site's minimum. Each change is a snapshot (``stock-levels``). Stations name their sector; depots do not (Vigie
finds it from the sectors' polygons)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel

from schemas.reference import Reference
from schemas.stocks import StockLevelEvent

TOPIC = "stock-levels"

# item id: (category, unit, capacity, minimum, mean hours between uses, mean share of capacity a use takes)
STATION_ITEMS = {
    "kit-secours": ("medical_kit", "u", 12, 4, 6.0, 0.15),
    "oxygene-5l": ("oxygen", "u", 10, 3, 8.0, 0.12),
    "emulseur": ("foam", "L", 400, 100, 30.0, 0.2),
    "absorbant": ("absorbent", "kg", 200, 50, 20.0, 0.15),
}
DEPOT_ITEMS = {
    "sacs-sable": ("sandbags", "u", 4000, 1000, 24.0, 0.15),
    "groupe-electrogene": ("generator", "u", 8, 2, 48.0, 0.25),
    "motopompe": ("pump", "u", 10, 3, 36.0, 0.2),
    "bache": ("tarpaulin", "u", 300, 80, 30.0, 0.1),
    "eau-potable": ("drinking_water", "L", 20000, 5000, 30.0, 0.1),
    "lits-picots": ("cots", "u", 200, 50, 72.0, 0.2),
}
N_DEPOTS = 12


class _Stock:
    def __init__(self, site_id: str, site_type: str, item_id: str, spec: tuple, lat: float, lon: float,  # type: ignore[type-arg]
                 sector: str | None) -> None:
        self.site_id, self.site_type, self.item_id, self.sector = site_id, site_type, item_id, sector
        self.category, self.unit, self.capacity, self.minimum, self.hours, self.share = spec
        self.lat, self.lon = lat, lon
        self.on_hand, self.reserved, self.restock_due = float(self.capacity), 0.0, 0.0


def _sites(reference: Reference, rng: random.Random) -> list[_Stock]:
    stocks = []
    for st in sorted(reference.stations.values(), key=lambda s: s.station_id):
        sector = f"Z{st.station_id[1:]}"
        for item, spec in STATION_ITEMS.items():
            stocks.append(_Stock(f"SITE-{st.station_id}", "station", item, spec, st.lat, st.lon, sector))
    lats = [s.lat for s in reference.stations.values()]
    lons = [s.lon for s in reference.stations.values()]
    for d in range(N_DEPOTS):
        lat = round(rng.uniform(min(lats), max(lats)), 5)
        lon = round(rng.uniform(min(lons), max(lons)), 5)
        for item, spec in DEPOT_ITEMS.items():
            stocks.append(_Stock(f"DEPOT-{d + 1:02d}", "depot", item, spec, lat, lon, None))
    for stock in stocks:  # the levels at the start: anywhere from a little under the minimum to full
        stock.on_hand = float(round(rng.uniform(0.7 * stock.minimum, stock.capacity)))
        if stock.on_hand < stock.minimum:
            stock.restock_due = rng.uniform(1, 12) * 3600  # from the start, set below
    return stocks


def _use(stock: _Stock, t: float, rng: random.Random) -> float | None:
    """Apply one use (or a reservation, or its release, or a restock); the next instant something happens."""
    if stock.restock_due and t >= stock.restock_due:
        stock.on_hand, stock.restock_due = float(stock.capacity), 0.0
    elif stock.reserved and rng.random() < 0.5:
        stock.reserved = 0.0  # the operation gave it back
    else:
        take = max(1.0, round(stock.capacity * stock.share * rng.uniform(0.3, 1.7)))
        available = stock.on_hand - stock.reserved
        take = min(take, available)
        if rng.random() < 0.25:
            stock.reserved += take
        else:
            stock.on_hand -= take
    if stock.on_hand - stock.reserved < stock.minimum and not stock.restock_due:
        stock.restock_due = t + rng.uniform(2, 12) * 3600
    nxt = t + rng.expovariate(1 / (stock.hours * 3600))
    return min(nxt, stock.restock_due) if stock.restock_due else nxt


def events(reference: Reference, start: datetime, seconds: float, seed: int
           ) -> Iterator[tuple[str, str, BaseModel]]:
    """``(logical topic, key, event)`` in event-time order: every stock at ``start``, then each change."""
    rng = random.Random(f"stocks-{seed}")
    t0, end = start.timestamp(), start.timestamp() + seconds
    stocks = _sites(reference, rng)
    queue: list[tuple[float, int]] = []
    for i, stock in enumerate(stocks):
        if stock.restock_due:
            stock.restock_due += t0
        yield _snapshot(stock, t0, f"stk-{seed}-{i}-0")
        first = t0 + rng.expovariate(1 / (stock.hours * 3600))
        heapq.heappush(queue, (min(first, stock.restock_due) if stock.restock_due else first, i))
    n = 0
    while queue:
        t, i = heapq.heappop(queue)
        if t >= end:
            break
        n += 1
        nxt = _use(stocks[i], t, rng)
        yield _snapshot(stocks[i], t, f"stk-{seed}-{i}-{n}")
        if nxt is not None:
            heapq.heappush(queue, (nxt, i))


def _snapshot(s: _Stock, t: float, event_id: str) -> tuple[str, str, BaseModel]:
    return TOPIC, s.site_id, StockLevelEvent(
        schema_version=1, event_id=event_id, event_time=datetime.fromtimestamp(int(t), UTC), site_id=s.site_id,
        site_type=s.site_type, item_id=s.item_id, item_category=s.category, unit=s.unit, qty_on_hand=s.on_hand,
        qty_reserved=s.reserved, qty_min=float(s.minimum), lat=s.lat, lon=s.lon, sector_id=s.sector)
