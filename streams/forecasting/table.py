"""The ClickHouse table forecasts go to (``sinks/migrations/0005_forecasts.sql``)."""

from core.tables import table
from streams.rows import ForecastRow

FORECASTS = table("forecasts", ForecastRow)
