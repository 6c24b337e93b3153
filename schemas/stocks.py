"""The event model of the ``stock-levels`` topic (key: the site id): what a site holds of one item."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import EventTime, Identifier

Quantity = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


class StockLevelEvent(BaseModel):
    """An absolute snapshot of one item at one site (not a movement): the newest per (site, item) in
    (event time, event id) order wins, whatever order they arrive in. ``sector_id`` absent: Vigie assigns the
    sector whose polygon holds the site (reference ``sectors.geojson``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    event_time: EventTime
    site_id: Identifier
    site_type: Identifier = Field(description="depot, station, hospital, water_tank, partner...")
    item_id: Identifier
    item_category: Identifier = Field(description="what a search asks for: sandbags, generator, medical_kit...")
    unit: Annotated[str, Field(min_length=1, max_length=16)] = Field(description="unit of the quantities: u, kg, L")
    qty_on_hand: Quantity
    qty_reserved: Quantity = Field(description="held for an operation already: not available")
    qty_min: Quantity = Field(description="the site's minimum stock of the item (0: none)")
    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    sector_id: Identifier | None = None

    @model_validator(mode="after")
    def _reserved_within_stock(self) -> StockLevelEvent:
        if self.qty_reserved > self.qty_on_hand:
            raise ValueError(f"qty_reserved {self.qty_reserved:g} exceeds qty_on_hand {self.qty_on_hand:g}")
        return self
