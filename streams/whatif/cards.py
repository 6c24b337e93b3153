"""Station run cards: the dispatch rule of a centre that sends, for each first-due area (a call's ``sector``), the
stations in a fixed order rather than the unit closest to the address.

A sector's card is its scenario's list (``[run_cards]``), then every other station by distance from the sector's
calls' median location (the derived card: the order a centre writes for the area, not for each address). A request
takes the first idle unit of its type in card order (within a station: the shortest median travel, then the id);
none idle: the first free, then the earliest in the card.

Without crossing areas, a request takes only units of the stations of its area (the reference's ``area`` of the
first station of its sector's card that is not a pool); an area with no unit of the type at all (say, ambulances
held in a city-wide pool) is served from anywhere in card order, as a centre would."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from core.geo import haversine_m
from streams.whatif.history import Call

CARD_STEP_S = 1e7  # a card position outweighs any median travel (seconds) in a unit's rank


@dataclass(frozen=True)
class RunCards:
    cards: dict[str, list[str]]  # sector -> stations in order (every station of the fleet)
    areas: dict[str, str]  # station -> its area
    crossing: bool
    sector_area: dict[str, str]  # sector -> its area (of its card's first station that is not a pool)
    ordered: bool = True  # False: the closest idle unit (the card only says the area, without crossing)

    @classmethod
    def derive(cls, calls: Sequence[Call], stations: Mapping[str, tuple[float, float]], areas: Mapping[str, str],
               explicit: Mapping[str, Sequence[str]], crossing: bool, pools: Collection[str] = (),
               ordered: bool = True) -> RunCards:
        """Each sector's card (``explicit`` first, the rest by distance from the sector's median call location).
        ``pools``: stations that stand for no area (units tied to no station)."""
        unknown = sorted({s for card in explicit.values() for s in card if s not in stations})
        if unknown:
            raise ValueError(f"run_cards: no station {', '.join(map(repr, unknown))} (known: "
                             f"{', '.join(sorted(stations)[:12])}...)")
        places: dict[str, list[tuple[float, float]]] = {}
        for c in calls:
            places.setdefault(c.sector, []).append((c.lat, c.lon))
        cards = {}
        for sector in sorted(places.keys() | explicit.keys()):
            first = list(explicit.get(sector, ()))
            pts = places.get(sector) or [stations[first[0]]]
            lat, lon = median(p[0] for p in pts), median(p[1] for p in pts)
            rest = sorted((s for s in stations if s not in first),
                          key=lambda s: (haversine_m(lat, lon, *stations[s]), s))
            cards[sector] = first + rest
        sector_area = {sector: areas[next((s for s in card if s not in pools), card[0])]
                       for sector, card in cards.items() if card}
        return cls(cards, dict(areas), crossing, sector_area, ordered)

    def ranked(self, call: Call, ids: Sequence[str], station_of: Mapping[str, str], medians: Sequence[float]
               ) -> list[tuple[float, str]]:
        """The units ``ids`` of one type (at ``station_of``, with their median travel to the call) as the engine's
        ranking: (rank key, unit id) in the order the card asks them; units the rule forbids left out."""
        card = self.cards.get(call.sector)
        if card is None:  # a sector the history never saw (a copied call keeps its sector): the closest units
            return sorted(zip(medians, ids, strict=True))
        pos = {s: i for i, s in enumerate(card)} if self.ordered else {}
        allowed = set(ids)
        if not self.crossing:
            area = self.sector_area.get(call.sector)
            own = {u for u in ids if self.areas.get(station_of[u]) == area}
            allowed = own or allowed
        return sorted((pos.get(station_of[u], 0) * CARD_STEP_S + m, u)
                      for u, m in zip(ids, medians, strict=True) if u in allowed)
