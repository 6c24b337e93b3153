"""Forecasts' reads and writes: hourly intervention counts per sector from a run's ``sector_windows``, and
forecast rows into its ``forecasts`` table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from clickhouse_driver import Client

from sinks.clickhouse import to_columns
from streams.forecasting.backtest import Forecast, Series
from streams.forecasting.calendar import HOUR, HourGrid
from streams.forecasting.distribution import QUANTILES
from streams.forecasting.table import FORECASTS
from streams.rows import ForecastRow

# interventions opened per hour and sector: the windows' own counts (one row per window, sector and partition)
_HOURLY = """
SELECT toUInt32(toStartOfHour(window_start)) AS hour, sector, sum(interventions_opened) AS opened
FROM {db}.sector_windows FINAL
WHERE window_start >= toDateTime({since}) AND window_start < toDateTime({until})
GROUP BY hour, sector
ORDER BY hour, sector"""


class NoHistory(ValueError):
    """The run has no intervention counts to forecast from."""


def hourly_counts(client: Client, database: str, zone: str, holidays: str, until: int | None = None,
                  weeks: int | None = None, extra_hours: int = 0) -> Series:
    """Every sector's interventions opened per hour, from the first counted hour (or ``weeks`` before ``until``)
    to ``until`` (default: the end of the newest counted hour); the grid runs ``extra_hours`` further (the hours
    to forecast, with no counts)."""
    (first, last), = client.execute(f"SELECT toUInt32(min(window_start)), toUInt32(max(window_start)) "
                                    f"FROM {database}.sector_windows")
    if not last:
        raise NoHistory(f"{database}.sector_windows holds no intervention counts yet")
    end = until if until is not None else last - last % HOUR + HOUR
    start = first - first % HOUR
    if weeks is not None:
        start = max(start, end - weeks * 7 * 24 * HOUR)
    if end <= start:
        raise NoHistory(f"{database}: no counted hour before {end}")
    rows = client.execute(_HOURLY.format(db=database, since=start, until=end))
    names = tuple(sorted({sector for _, sector, _ in rows}))
    grid = HourGrid(start, (end - start) // HOUR + extra_hours, zone, holidays)
    counts = np.zeros((len(names), grid.hours))
    index = {name: i for i, name in enumerate(names)}
    for hour, sector, opened in rows:
        counts[index[sector], (hour - start) // HOUR] += opened
    return Series(names, grid, counts)


def forecast_rows(series: Series, fc: Forecast) -> list[ForecastRow]:
    """One row per bin and sector (and the ``*`` level), with its quantiles."""
    issued = float(series.grid.epoch(fc.origin))
    picked = [QUANTILES.index(v) for v in (0.1, 0.5, 0.8, 0.9)]  # the row's q10, q50, q80, q90
    rows = []
    for b in fc.bins:
        q = b.quantiles()[..., picked].tolist()
        starts = [float(series.grid.epoch(int(i))) for i in b.starts]
        ends = [*starts[1:], float(series.grid.epoch(fc.end))]
        for r, sector in enumerate(b.rows):  # the "all" level's one row is already named ALL_SECTORS
            for c, start in enumerate(starts):
                q10, q50, q80, q90 = q[r][c]
                rows.append(ForecastRow(start, ends[c], b.bin_hours, sector, fc.model, issued,
                                        float(b.mean[r, c]), q10, q50, q80, q90, b.alpha))
    return rows


def write_forecasts(client: Client, database: str, rows: Sequence[ForecastRow]) -> None:
    client.execute(f"INSERT INTO {database}.{FORECASTS.name} ({', '.join(FORECASTS.columns)}) VALUES",
                   to_columns(FORECASTS, rows), columnar=True)
