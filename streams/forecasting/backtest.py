"""Forecasts for an origin, and the rolling-origin backtest that scores them against the baselines.

A forecast starts at an origin (an hour; the history before it is all it sees) and ends at a local midnight.
Its distribution's dispersion is fitted per bin size and level on the model's own errors over the
``calibration_weeks`` weeks before the origin (one-week-ahead forecasts from earlier origins), so a backtest never
looks past its origin. Levels: each series ("sector") and all series together ("all", the sum).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.forecasting.calendar import BIN_HOURS, WEEK_HOURS, HourGrid, aggregate
from streams.forecasting.covariates import fit_effects, multiplier
from streams.forecasting.distribution import QUANTILES, crps, fit_dispersion, quantiles
from streams.forecasting.models import B1, B2, MODELS, PUBLISHED, Counts, Model, WeeklyTable

LEVELS = ("sector", "all")
#: the weeks a covariate's effect is learnt on (the profile's own window)
TRAINING_WEEKS = 26
_BACKFITTING_ROUNDS = 4
#: the name of the all-series level in stored forecasts (no sector identifier can take it)
ALL_SECTORS = "*"


@dataclass(frozen=True)
class Series:
    """Hourly counts (rows: ``names``, columns: the hours of ``grid``)."""

    names: tuple[str, ...]
    grid: HourGrid
    counts: Counts
    # optional covariates (name -> series x hours of the grid, future hours included): covariates.on_grid
    covariates: dict[str, Counts] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.counts.shape != (len(self.names), self.grid.hours):
            raise ValueError(f"counts {self.counts.shape} do not match {len(self.names)} series x {self.grid.hours} h")


@dataclass(frozen=True)
class Bins:
    """One level of a forecast at one bin size: ``mean`` (rows x bins), each bin's first hour (grid index)."""

    bin_hours: int
    level: str
    rows: tuple[str, ...]
    starts: npt.NDArray[np.int64]
    mean: Counts
    alpha: float

    def quantiles(self) -> npt.NDArray[np.int64]:
        return quantiles(self.mean, self.alpha)


@dataclass(frozen=True)
class Forecast:
    model: str
    origin: int  # grid index
    end: int
    bins: tuple[Bins, ...]

    def at(self, bin_hours: int, level: str) -> Bins:
        return next(b for b in self.bins if b.bin_hours == bin_hours and b.level == level)


def _levels(names: tuple[str, ...], hourly: Counts) -> dict[str, tuple[tuple[str, ...], Counts]]:
    return {"sector": (names, hourly), "all": ((ALL_SECTORS,), hourly.sum(axis=0, keepdims=True))}


def _full_bins(grid: HourGrid, bin_hours: int, origin: int, end: int, values: Counts) -> tuple[Counts, Any]:
    """Sums per local bin of hours [origin, end), keeping only bins wholly inside it."""
    keys = grid.bin_keys(bin_hours)
    sums, starts = aggregate(values, keys[origin:end])
    starts = starts + origin
    keep = np.ones(len(starts), dtype=bool)
    if len(starts) and origin > 0 and keys[origin - 1] == keys[origin]:
        keep[0] = False
    if len(starts) and end < grid.hours and keys[end] == keys[end - 1]:
        keep[-1] = False
    return sums[..., keep], starts[keep]


@dataclass(frozen=True)
class Trained:
    """A model fitted at an origin: its weekly table per series and its dispersion per (bin hours, level)."""

    names: tuple[str, ...]
    table: WeeklyTable
    alphas: dict[tuple[int, str], float]
    origin: int  # epoch seconds: the history it saw ends there
    effects: dict[str, float] = field(default_factory=dict)  # covariate -> beta (a multiplier exp(beta x value))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.table.model, "origin": self.origin, "names": list(self.names),
                "holidays_as_sunday": self.table.holidays_as_sunday,
                "expected": np.round(self.table.expected, 6).tolist(),
                "alphas": [{"bin_hours": b, "level": level, "alpha": a} for (b, level), a in self.alphas.items()],
                "effects": self.effects}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trained:
        table = WeeklyTable(d["model"], np.array(d["expected"], dtype=float), bool(d["holidays_as_sunday"]))
        if table.expected.shape != (len(d["names"]), WEEK_HOURS):
            raise ValueError(f"a trained model holds {WEEK_HOURS} hours of the week per series")
        return cls(tuple(d["names"]), table, {(int(a["bin_hours"]), a["level"]): float(a["alpha"])
                                              for a in d["alphas"]}, int(d["origin"]),
                   {str(k): float(v) for k, v in d.get("effects", {}).items()})

    def hourly(self, series: Series, origin: int, end: int) -> Counts:
        """Expected counts of hours [origin, end): the weekly table, times the covariates' effects."""
        out = self.table.predict(series.grid, origin, end)
        missing = [n for n, b in self.effects.items() if b and n not in series.covariates]
        if missing:
            raise ValueError(f"the model has learnt the effect of covariate(s) {missing}: give their file")
        factor = multiplier(self.effects, series.covariates, origin, end)
        return out if factor is None else out * factor


def _fitted(model: Model, series: Series, origin: int) -> Trained:
    """The model's weekly table and covariate effects from the counts before ``origin`` (no dispersions yet)."""
    table = model.fit(series.counts, series.grid, origin)
    effects: dict[str, float] = {}
    if model.uses_covariates and series.covariates:
        # backfitting: the weekly table is learnt again from the counts with the effects taken out (a recurring
        # event would otherwise be half in the profile, half in its effect), then the effects again
        first = max(0, origin - TRAINING_WEEKS * WEEK_HOURS)
        window = {n: x[:, first:origin] for n, x in series.covariates.items()}
        for _ in range(_BACKFITTING_ROUNDS):
            effects = fit_effects(series.counts[:, first:origin], table.predict(series.grid, first, origin), window)
            factor = multiplier(effects, series.covariates, 0, origin)
            if factor is None:
                break
            table = model.fit(series.counts[:, :origin] / factor, series.grid, origin)
        effects = fit_effects(series.counts[:, first:origin], table.predict(series.grid, first, origin), window)
    return Trained(series.names, table, {}, series.grid.epoch(origin), effects)


def train(model: Model, series: Series, origin: int, calibration_weeks: int = 4) -> Trained:
    """``model`` fitted on the counts before ``origin``; its dispersions fitted on its own one-week-ahead errors
    over the ``calibration_weeks`` weeks before it (Poisson when the history is too short for any)."""
    grid, history = series.grid, series.counts[:, :origin]
    pairs: dict[tuple[int, str], list[tuple[Counts, Counts]]] = defaultdict(list)
    for k in range(1, calibration_weeks + 1):
        o = origin - k * WEEK_HOURS
        if o < 2 * WEEK_HOURS:
            break
        expected = _levels(series.names, _fitted(model, series, o).hourly(series, o, o + WEEK_HOURS))
        seen = _levels(series.names, history[:, o:o + WEEK_HOURS])
        for level in LEVELS:
            for b in BIN_HOURS:
                pairs[(b, level)].append((_full_bins(grid, b, o, o + WEEK_HOURS, expected[level][1])[0],
                                          _full_bins(grid, b, o, o + WEEK_HOURS, seen[level][1])[0]))
    alphas = {key: fit_dispersion(np.concatenate([m.ravel() for m, _ in p]), np.concatenate([y.ravel() for _, y in p]))
              for key, p in pairs.items()}
    alphas = {(b, level): alphas.get((b, level), 0.0) for level in LEVELS for b in BIN_HOURS}
    return replace(_fitted(model, series, origin), alphas=alphas)


def forecast(model: Model | Trained, series: Series, origin: int, end: int) -> Forecast:
    """A forecast of hours [origin, end) of ``series.grid``, by a model trained at ``origin`` (trained now, from
    the counts before it, when given a ``Model``)."""
    if end > series.grid.hours:
        raise ValueError("the series' grid must reach the forecast's end")
    trained = model if isinstance(model, Trained) else train(model, series, origin)
    if trained.names != series.names:
        raise ValueError(f"the trained model knows sectors {list(trained.names)[:5]}..., the history others: "
                         "train it again")
    hourly = trained.hourly(series, origin, end)
    out = []
    for level, (rows, values) in _levels(series.names, hourly).items():
        for b in BIN_HOURS:
            mean, starts = _full_bins(series.grid, b, origin, end, values)
            out.append(Bins(b, level, rows, starts, mean, trained.alphas[(b, level)]))
    return Forecast(trained.table.model, origin, end, tuple(out))


@dataclass
class Score:
    model: str
    bin_hours: int
    level: str
    subset: str  # "all" bins, or those starting on a public "holiday"
    bins: int
    mae: float
    rmse: float
    crps: float
    busy_bins: int  # bins of series averaging >= 3 interventions per bin: where the interval is scored
    coverage80: float  # share of busy bins within [q10, q90]
    exceed90: float  # share of busy bins above q90


@dataclass
class Criterion:
    name: str
    ok: bool
    detail: str


@dataclass
class Backtest:
    origins: list[int]  # epoch seconds
    weeks: int
    scores: list[Score]
    seconds: dict[str, float] = field(default_factory=dict)  # per model: the whole backtest
    seconds_per_origin: dict[str, float] = field(default_factory=dict)  # per model: the slowest origin

    def score(self, model: str, bin_hours: int, level: str, subset: str = "all") -> Score:
        return next(s for s in self.scores
                    if (s.model, s.bin_hours, s.level, s.subset) == (model, bin_hours, level, subset))

    def criteria(self, model: str = PUBLISHED) -> list[Criterion]:
        """The bar a published model must clear (the forecasts issue's done-when list)."""
        out = []

        def ratio(bin_hours: int, level: str, metric: str, baseline: str, bound: float) -> None:
            mine = getattr(self.score(model, bin_hours, level), metric)
            theirs = getattr(self.score(baseline, bin_hours, level), metric)
            out.append(Criterion(f"{_bin_name(bin_hours)} x {level}: {metric} <= {bound:.2f} x {baseline}",
                                 mine <= bound * theirs, f"{mine:.4f} vs {theirs:.4f} ({mine / theirs:.3f})"))

        ratio(24, "sector", "mae", "B1", 0.80)
        ratio(24, "sector", "mae", "B2", 1.00)
        for b, level in ((3, "sector"), (1, "all")):
            ratio(b, level, "rmse", "B1", 0.80)
            ratio(b, level, "rmse", "B2", 1.00)
        ratio(1, "sector", "crps", "B2", 1.00)
        busy = [s for s in self.scores if s.model == model and s.subset == "all" and s.busy_bins]
        n = sum(s.busy_bins for s in busy)
        if n:  # every bin of a series averaging >= 3 per bin, all bin sizes and levels together
            cover = sum(s.coverage80 * s.busy_bins for s in busy) / n
            above = sum(s.exceed90 * s.busy_bins for s in busy) / n
            out.append(Criterion("bins averaging >= 3: 80 % interval holds 0.78-0.90", 0.78 <= cover <= 0.90,
                                 f"{cover:.3f} of {n} bins"))
            out.append(Criterion("bins averaging >= 3: q90 exceeded 5-12 %", 0.05 <= above <= 0.12,
                                 f"{above:.3f} of {n} bins"))
        slowest = self.seconds_per_origin.get(model, 0.0)
        out.append(Criterion("one origin (every series, fit + forecast) <= 10 s", slowest <= 10,
                             f"{slowest:.2f} s"))
        total = sum(self.seconds.values())
        out.append(Criterion("whole backtest (every model) <= 120 s", total <= 120, f"{total:.1f} s"))
        return out

    def table(self) -> str:
        head = (f"{'bin':<5} {'level':<7} {'model':<8} {'subset':<9} {'bins':>6} {'MAE':>8} {'RMSE':>8} "
                f"{'CRPS':>8} {'MAE/B1':>7} {'MAE/B2':>7} {'cover80':>8} {'>q90':>6}")
        lines = [head]
        for s in self.scores:
            b1, b2 = self.score("B1", s.bin_hours, s.level, s.subset), self.score("B2", s.bin_hours, s.level, s.subset)
            cover = f"{s.coverage80:8.3f} {s.exceed90:6.3f}" if s.busy_bins else f"{'-':>8} {'-':>6}"
            lines.append(f"{_bin_name(s.bin_hours):<5} {s.level:<7} {s.model:<8} {s.subset:<9} {s.bins:>6} "
                         f"{s.mae:8.4f} {s.rmse:8.4f} {s.crps:8.4f} {_ratio(s.mae, b1.mae):>7} "
                         f"{_ratio(s.mae, b2.mae):>7} {cover}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"origins": self.origins, "weeks": self.weeks, "scores": [asdict(s) for s in self.scores],
                "seconds": self.seconds, "seconds_per_origin": self.seconds_per_origin,
                "criteria": [asdict(c) for c in self.criteria()]}


def _bin_name(bin_hours: int) -> str:
    return {1: "hour", 3: "3h", 24: "day"}[bin_hours]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def origins(grid: HourGrid, weeks: int) -> list[int]:
    """The ``weeks`` weekly origins of a backtest: local midnights, the last one a week before the grid's last
    local midnight (each origin is followed by 7 whole local days)."""
    midnights = grid.midnights()
    if len(midnights) < 7 * weeks + 1:
        raise ValueError(f"a {weeks}-week backtest needs {weeks} whole weeks of history after the first")
    return [int(midnights[len(midnights) - 1 - 7 * k]) for k in range(weeks, 0, -1)]


def run_backtest(series: Series, weeks: int = 8, models: tuple[Model, ...] = (B1, B2, MODELS[PUBLISHED])
                 ) -> Backtest:
    """Rolling origin, weekly steps, horizon 7 days, over the last ``weeks`` weeks of ``series``."""
    grid = series.grid
    starts = origins(grid, weeks)
    if starts[0] < 9 * WEEK_HOURS:
        raise ValueError("a backtest needs at least 9 weeks of history before its first origin")
    ends = [*starts[1:], int(grid.midnights()[-1])]
    collected: dict[tuple[str, int, str], list[tuple[Counts, Counts, float, Any, Any]]] = defaultdict(list)
    seconds: dict[str, float] = {}
    slowest: dict[str, float] = {}
    for model in models:
        seconds[model.name] = 0.0
        for origin, end in zip(starts, ends, strict=True):
            started = time.perf_counter()
            fc = forecast(model, series, origin, end)
            took = time.perf_counter() - started
            seconds[model.name] += took
            slowest[model.name] = max(slowest.get(model.name, 0.0), took)
            seen = _levels(series.names, series.counts[:, origin:end])
            for b in fc.bins:
                y, _ = _full_bins(grid, b.bin_hours, origin, end, seen[b.level][1])
                collected[(model.name, b.bin_hours, b.level)].append(
                    (b.mean, y, b.alpha, b.quantiles(), grid.holiday[b.starts]))
    scores = [s for key, parts in collected.items() for s in _scores(key, parts)]
    return Backtest([grid.epoch(o) for o in starts], weeks, scores, seconds, slowest)


def _scores(key: tuple[str, int, str], parts: list[tuple[Counts, Counts, float, Any, Any]]) -> list[Score]:
    model, bin_hours, level = key
    mean = np.concatenate([p[0] for p in parts], axis=1)
    seen = np.concatenate([p[1] for p in parts], axis=1)
    q = np.concatenate([p[3] for p in parts], axis=1)
    holiday = np.concatenate([p[4] for p in parts])
    scores_crps = np.concatenate([crps(p[0], p[2], p[1]).reshape(p[0].shape) for p in parts], axis=1)
    busy_rows = seen.mean(axis=1) >= 3
    lo, hi = q[..., QUANTILES.index(0.1)], q[..., QUANTILES.index(0.9)]
    out = []
    for subset, cols in (("all", np.ones(len(holiday), dtype=bool)), ("holidays", holiday)):
        if not cols.any():
            continue
        err = (mean - seen)[:, cols]
        busy = np.zeros_like(seen, dtype=bool)
        busy[busy_rows] = True
        busy = busy[:, cols]
        inside = ((seen >= lo) & (seen <= hi))[:, cols]
        above = (seen > hi)[:, cols]
        n_busy = int(busy.sum())
        out.append(Score(model, bin_hours, level, subset, int(err.size), float(np.abs(err).mean()),
                         float(np.sqrt((err**2).mean())), float(scores_crps[:, cols].mean()), n_busy,
                         float(inside[busy].mean()) if n_busy else float("nan"),
                         float(above[busy].mean()) if n_busy else float("nan")))
    return out
