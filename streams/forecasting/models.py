"""Expected interventions per hour and series, from the counts before an origin.

Every model learns, from the hourly counts of each series before an origin, a ``WeeklyTable``: the expected count
of each hour of the week. A forecast reads it for every hour after the origin; bins of 3 hours, days and sums over
series are sums of these (a forecast is coherent across bins and levels). The baselines are the bar the model must
clear (README, "Forecasts"):

- ``B1`` seasonal naive: the count of the same hour of the week, the latest one before the origin;
- ``B2`` the mean count of the same hour of the week over the last 8 weeks before the origin.

``WeeklyProfile`` (the forecast Vigie publishes): each series' recent level (mean count per hour over the last
``level_weeks``) spread over the week by its hour-of-week profile over the last ``profile_weeks``; a series'
profile is shrunk toward the profile of all series together (``prior_counts`` pseudo-counts per hour of the
week), so a quiet sector borrows its shape from the others instead of from its noise; a public holiday is read
as a Sunday. Chosen by the backtest (README): it beats both baselines at every bin and level on the SF history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from streams.forecasting.calendar import WEEK_HOURS, HourGrid

Counts = npt.NDArray[np.float64]  # series x hours


@dataclass(frozen=True)
class WeeklyTable:
    """What a model learned: the expected count of each series in each hour of the week (``expected``: series x
    168); with ``holidays_as_sunday``, a public holiday's hours take Sunday's."""

    model: str
    expected: Counts
    holidays_as_sunday: bool

    def predict(self, grid: HourGrid, origin: int, end: int) -> Counts:
        how = grid.demand_hour_of_week if self.holidays_as_sunday else grid.hour_of_week
        return self.expected[:, how[origin:end]]


class Model(Protocol):
    name: str
    uses_covariates: bool  # whether its forecasts take the covariates' effects (streams/forecasting/covariates.py)

    def fit(self, counts: Counts, grid: HourGrid, origin: int) -> WeeklyTable:
        """Learn from the counts of hours [0, origin) of ``grid`` (``counts`` may run further: it is not read)."""
        ...


def _latest_per_hour_of_week(grid: HourGrid, origin: int, weeks: int) -> list[npt.NDArray[np.int64]]:
    """For each hour of the week, the indexes of its last ``weeks`` occurrences before ``origin`` (newest last)."""
    first = max(0, origin - (weeks + 1) * WEEK_HOURS)
    idx = np.arange(first, origin)
    how = grid.hour_of_week[first:origin]
    order = np.lexsort((idx, how))
    groups = np.split(idx[order], np.flatnonzero(np.diff(how[order])) + 1) if len(idx) else []
    out: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)] * WEEK_HOURS
    for g in groups:
        out[int(grid.hour_of_week[g[0]])] = g[-weeks:]
    return out


@dataclass(frozen=True)
class SeasonalMean:
    """Mean of the last ``weeks`` counts of the same hour of the week (``weeks`` = 1: seasonal naive)."""

    name: str
    weeks: int
    uses_covariates: bool = False  # a baseline stays what it is

    def fit(self, counts: Counts, grid: HourGrid, origin: int) -> WeeklyTable:
        per_how = np.zeros((counts.shape[0], WEEK_HOURS))
        for how, idx in enumerate(_latest_per_hour_of_week(grid, origin, self.weeks)):
            if len(idx):
                per_how[:, how] = counts[:, idx].mean(axis=1)
        return WeeklyTable(self.name, per_how, holidays_as_sunday=False)


B1 = SeasonalMean("B1", 1)
B2 = SeasonalMean("B2", 8)


@dataclass(frozen=True)
class WeeklyProfile:
    name: str = "profile"
    level_weeks: int = 8
    profile_weeks: int = 26
    prior_counts: float = 20.0
    uses_covariates: bool = True

    def profile(self, counts: Counts, grid: HourGrid, origin: int) -> Counts:
        """Each series' share of a week's demand falling in each (demand) hour of the week (rows sum to 1)."""
        first = max(0, origin - self.profile_weeks * WEEK_HOURS)
        how = grid.demand_hour_of_week[first:origin]
        exposure = np.bincount(how, minlength=WEEK_HOURS).astype(float)  # hours of each kind seen
        totals = np.stack([np.bincount(how, weights=row, minlength=WEEK_HOURS) for row in counts[:, first:origin]])
        rate = np.where(exposure > 0, totals / np.maximum(exposure, 1), 0.0)
        pooled = rate.sum(axis=0)
        pooled = pooled / pooled.sum() if pooled.sum() > 0 else np.full(WEEK_HOURS, 1 / WEEK_HOURS)
        row_sums = rate.sum(axis=1, keepdims=True)
        own = np.divide(rate, row_sums, out=np.broadcast_to(pooled, rate.shape).copy(), where=row_sums > 0)
        n = totals.sum(axis=1, keepdims=True)
        prior = self.prior_counts * WEEK_HOURS
        return (n * own + prior * pooled) / (n + prior)

    def fit(self, counts: Counts, grid: HourGrid, origin: int) -> WeeklyTable:
        first = max(0, origin - self.level_weeks * WEEK_HOURS)
        level = counts[:, first:origin].mean(axis=1, keepdims=True) if origin > first else np.zeros((len(counts), 1))
        return WeeklyTable(self.name, level * WEEK_HOURS * self.profile(counts, grid, origin),
                           holidays_as_sunday=True)


MODELS: dict[str, Model] = {m.name: m for m in (B1, B2, WeeklyProfile())}
#: the model whose forecasts are published
PUBLISHED = "profile"
