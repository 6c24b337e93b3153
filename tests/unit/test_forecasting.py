"""Forecasts' pure logic: the local calendar, the baselines against a by-hand reading of their definition, the
model on series whose true rates are known, the count distribution against first principles, and the backtest's
promise never to look past its origin."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from streams.forecasting.backtest import ALL_SECTORS, Series, Trained, forecast, run_backtest, train
from streams.forecasting.calendar import HOUR, HourGrid
from streams.forecasting.covariates import CovariateFileError, fit_effects, on_grid, read_spans
from streams.forecasting.distribution import crps, fit_dispersion, quantiles
from streams.forecasting.models import B1, B2, WeeklyProfile

PARIS = "Europe/Paris"
START = int(datetime(2025, 1, 6, tzinfo=ZoneInfo(PARIS)).timestamp())  # a Monday, local midnight


def local(grid: HourGrid, i: int) -> datetime:
    return datetime.fromtimestamp(grid.epoch(i), UTC).astimezone(ZoneInfo(grid.zone))


def test_the_grid_reads_hours_in_local_time_with_days_of_23_and_25_hours() -> None:
    grid = HourGrid(START, 300 * 24, PARIS)
    for i in range(0, grid.hours, 37):
        t = local(grid, i)
        assert grid.hour_of_week[i] == t.weekday() * 24 + t.hour
    day_lengths = {datetime.fromordinal(int(d)).date(): int(n) for d, n in zip(*np.unique(grid.day, return_counts=True),
                                                                                  strict=True)}
    assert day_lengths[datetime(2025, 3, 30).date()] == 23  # clocks forward
    assert day_lengths[datetime(2025, 10, 26).date()] == 25  # clocks back
    assert set(day_lengths.values()) - {23, 25} == {24}
    for i in grid.midnights():
        if i < grid.hours:
            assert local(grid, int(i)).hour == 0


def test_a_public_holiday_is_read_as_a_sunday() -> None:
    grid = HourGrid(START, 250 * 24, PARIS, "FR")
    bastille = [i for i in range(grid.hours) if local(grid, i).date() == datetime(2025, 7, 14).date()]
    assert len(bastille) == 24 and grid.holiday[bastille].all()
    assert [int(grid.demand_hour_of_week[i]) for i in bastille] == [6 * 24 + h for h in range(24)]
    assert int(grid.holiday.sum()) == 24 * sum(1 for d in ("01-01", "04-21", "05-01", "05-08", "05-29", "06-09",
                                                           "07-14", "08-15") if d >= "01-06")


def _random_counts(series: int, hours: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.5, size=(series, hours)).astype(float)


def test_the_baselines_follow_their_definition_across_a_clock_change() -> None:
    grid = HourGrid(START, 16 * 7 * 24, PARIS)
    counts = _random_counts(2, grid.hours, 1)
    origin = next(int(i) for i in grid.midnights() if local(grid, int(i)) >= datetime(2025, 4, 7, tzinfo=UTC))
    by_local = {local(grid, i).replace(tzinfo=None): i for i in range(grid.hours)}  # local reading -> index
    b1 = B1.fit(counts, grid, origin).predict(grid, origin, origin + 168)
    b2 = B2.fit(counts, grid, origin).predict(grid, origin, origin + 168)
    for j in range(168):
        t = local(grid, origin + j).replace(tzinfo=None)
        # the same local hour of the week, the latest 8 occurrences (Sunday 02:00 did not happen on 30 March)
        back = [by_local.get(t - timedelta(days=7 * k)) for k in range(1, 11)]
        weeks_back = [i for i in back if i is not None][:8]
        assert b1[:, j].tolist() == counts[:, weeks_back[0]].tolist()
        assert b2[:, j] == pytest.approx(counts[:, weeks_back].mean(axis=1))


def test_the_model_finds_known_weekly_rates_and_its_levels_add_up() -> None:
    grid = HourGrid(START, 30 * 168, PARIS)
    how = grid.hour_of_week
    shape = 1 + 0.8 * np.sin(2 * np.pi * (how % 24) / 24) + 0.3 * (how // 24 >= 5)
    other_shape = 1 + 0.5 * np.cos(2 * np.pi * (how % 24) / 24)  # a sector busy at other hours
    true = np.stack([0.3 * shape, 2.0 * shape, 5.0 * other_shape])
    counts = np.random.default_rng(7).poisson(true).astype(float)
    origin = int(grid.midnights()[-8])
    end = origin + 7 * 24
    fc = forecast(WeeklyProfile(), Series(("a", "b", "c"), grid, counts), origin, end)
    hourly = fc.at(1, "sector").mean
    for row, tol in ((1, 0.15), (2, 0.12)):  # busy series: hourly means within 12-15 % of the truth on average
        assert np.abs(hourly[row] - true[row, origin:end]).mean() / true[row, origin:end].mean() < tol
    day = fc.at(24, "sector").mean
    assert day.sum(axis=0) == pytest.approx(fc.at(24, "all").mean[0])
    assert hourly.sum() == pytest.approx(day.sum())


def test_a_forecast_never_reads_the_counts_after_its_origin() -> None:
    grid = HourGrid(START, 20 * 168, PARIS)
    counts = _random_counts(3, grid.hours, 3)
    origin = int(grid.midnights()[-15])
    series = Series(("a", "b", "c"), grid, counts)
    changed = counts.copy()
    changed[:, origin:] = np.random.default_rng(4).poisson(9, size=changed[:, origin:].shape)
    for model in (B1, B2, WeeklyProfile()):
        a = forecast(model, series, origin, origin + 168)
        b = forecast(model, Series(series.names, grid, changed), origin, origin + 168)
        for x, y in zip(a.bins, b.bins, strict=True):
            assert np.array_equal(x.mean, y.mean) and x.alpha == y.alpha


def test_a_trained_model_saved_and_loaded_gives_the_same_forecast() -> None:
    grid = HourGrid(START, 20 * 168, PARIS)
    series = Series(("a", "b"), grid, _random_counts(2, grid.hours, 5))
    origin = int(grid.midnights()[-8])
    trained = train(WeeklyProfile(), series, origin)
    again = Trained.from_dict(trained.to_dict())
    a, b = forecast(trained, series, origin, origin + 168), forecast(again, series, origin, origin + 168)
    for x, y in zip(a.bins, b.bins, strict=True):
        assert np.allclose(x.mean, y.mean, atol=1e-5) and x.alpha == y.alpha
    with pytest.raises(ValueError, match="train it again"):
        forecast(trained, Series(("a", "z"), grid, series.counts), origin, origin + 168)


def test_quantiles_and_crps_from_first_principles() -> None:
    mean = np.array([0.0, 0.4, 2.0, 30.0])
    q = quantiles(mean, 0.0)
    assert q.dtype.kind == "i" and (q >= 0).all()

    def poisson_cdf(m: float, k: int) -> float:
        return sum(math.exp(-m) * m**i / math.factorial(i) for i in range(k + 1))

    for m, row in zip(mean[1:], q[1:], strict=True):
        for level, k in zip((0.1, 0.5, 0.8, 0.9), row, strict=True):
            assert poisson_cdf(m, int(k)) >= level > (poisson_cdf(m, int(k) - 1) if k > 0 else 0.0)
    brute = sum((poisson_cdf(2.0, k) - (3 <= k)) ** 2 for k in range(60))
    assert crps(np.array([2.0]), 0.0, np.array([3.0]))[0] == pytest.approx(brute, rel=1e-9)


def test_the_dispersion_fitted_on_negative_binomial_counts_is_theirs() -> None:
    rng = np.random.default_rng(11)
    mean = rng.uniform(2, 20, size=40_000)
    alpha = 0.15
    seen = rng.negative_binomial(1 / alpha, (1 / alpha) / (1 / alpha + mean))
    assert fit_dispersion(mean, seen) == pytest.approx(alpha, rel=0.1)
    assert fit_dispersion(mean, rng.poisson(mean)) < 0.01


def test_the_backtest_on_poisson_series_keeps_its_intervals_honest() -> None:
    grid = HourGrid(START, 40 * 168, PARIS)
    rate = 1.0 + 0.7 * np.sin(2 * np.pi * (grid.hour_of_week % 24) / 24)
    counts = np.random.default_rng(21).poisson(np.stack([rate * k for k in (1.0, 2.5, 4.0)])).astype(float)
    report = run_backtest(Series(("a", "b", "c"), grid, counts), weeks=8)
    passed = {c.name: c for c in report.criteria()}
    assert passed["bins averaging >= 3: 80 % interval holds 0.78-0.90"].ok, passed
    assert passed["bins averaging >= 3: q90 exceeded 5-12 %"].ok, passed
    # on a stationary series the profile beats the noisier baselines at every bin and level
    for b, level in ((1, "sector"), (3, "sector"), (24, "sector"), (1, "all")):
        assert report.score("profile", b, level).rmse < report.score("B2", b, level).rmse
    assert ALL_SECTORS == "*"
    assert report.origins == sorted(report.origins) and len(report.origins) == 8
    assert all((b - a) % HOUR == 0 for a, b in zip(report.origins, report.origins[1:], strict=False))


def _match_days(grid: HourGrid) -> list[int]:
    """Every other Saturday 14:00 local: the first hour of a 4-hour scheduled event."""
    saturdays = [int(i) for i in range(grid.hours) if grid.hour_of_week[i] == 5 * 24 + 14]
    return saturdays[::2]


def test_a_scheduled_event_learnt_from_the_past_raises_the_forecast_of_the_next(tmp_path: Path) -> None:
    grid = HourGrid(START, 30 * 168, PARIS)
    base = np.stack([1.0 + 0.5 * np.sin(2 * np.pi * (grid.hour_of_week % 24) / 24)] * 2)
    rate = base.copy()
    spans = []
    for i in _match_days(grid):
        rate[1, i:i + 4] *= 3.0  # the stadium's sector only
        spans.append(f"{local(grid, i).isoformat()},{local(grid, i + 4).isoformat()},b,match,1")
    counts = np.random.default_rng(8).poisson(rate).astype(float)
    path = tmp_path / "covariates.csv"
    path.write_text("start,end,sector,name,value\n" + "\n".join(spans) + "\n")
    series = Series(("a", "b"), grid, counts, on_grid(read_spans(path), ("a", "b"), grid))
    last = _match_days(grid)[-1]
    origin = int(next(m for m in grid.midnights() if m <= last and m > last - 24))
    trained = train(WeeklyProfile(), series, origin)
    assert trained.effects["match"] == pytest.approx(math.log(3.0), abs=0.15)
    with_it = forecast(trained, series, origin, origin + 168).at(1, "sector").mean
    without = forecast(WeeklyProfile(), Series(("a", "b"), grid, counts), origin, origin + 168).at(1, "sector").mean
    hours = slice(last - origin, last - origin + 4)
    truth = rate[1, last:last + 4]
    error_with, error_without = (np.abs(f[1, hours] - truth).mean() for f in (with_it, without))
    assert error_with < 0.25 * truth.mean() and error_with < 0.5 * error_without
    # the other sector barely moves (its profile borrows from the pooled one, which the event no longer inflates)
    assert np.abs(with_it[0] / without[0] - 1).mean() < 0.02
    again = Trained.from_dict(trained.to_dict())
    assert again.effects == pytest.approx(trained.effects)
    with pytest.raises(ValueError, match="give their file"):
        forecast(again, Series(("a", "b"), grid, counts), origin, origin + 168)


def test_a_weather_measure_gets_a_proportional_effect() -> None:
    grid = HourGrid(START, 30 * 168, PARIS)
    heat = np.zeros((1, grid.hours))
    heat[0, (grid.day % 9 == 0)] = np.random.default_rng(2).uniform(0, 6, size=int((grid.day % 9 == 0).sum()))
    rate = 2.0 * np.exp(0.1 * heat)
    counts = np.random.default_rng(3).poisson(rate).astype(float)
    effects = fit_effects(counts, np.full_like(rate, 2.0), {"heat_above_30c": heat, "never": np.zeros_like(heat)})
    assert effects["heat_above_30c"] == pytest.approx(0.1, abs=0.02)
    assert effects["never"] == 0.0


@pytest.mark.parametrize(("text", "reason"), [
    ("start,end,name,value\n", "missing column"),
    ("start,end,sector,name,value\n2026-01-01T10:00,2026-01-01T12:00,*,x,1\n", "line 2: .* no time zone"),
    ("start,end,sector,name,value\n2026-01-01T10:00Z,2026-01-01T09:00Z,*,x,1\n", "line 2: end .* not after"),
    ("start,end,sector,name,value\n2026-01-01T10:00Z,2026-01-01T12:00Z,*,x,hot\n", "line 2: value 'hot'"),
])
def test_a_covariates_file_that_cannot_be_read_says_where_and_why(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(CovariateFileError, match=reason):
        read_spans(path)


def test_the_covariates_file_named_in_the_settings_reaches_the_series(tmp_path: Path) -> None:
    from core.settings import Settings
    from vigie.forecast import Target

    grid = HourGrid(START, 3 * 168, PARIS)
    series = Series(("a", "b"), grid, _random_counts(2, grid.hours, 1))
    path = tmp_path / "c.csv"
    path.write_text("start,end,sector,name,value\n"
                    f"{local(grid, 30).isoformat()},{local(grid, 33).isoformat()},*,heat_above_30c,2.5\n")
    assert Target(Settings(), "db").with_covariates(series) is series
    got = Target(Settings(forecast_covariates=str(path)), "db").with_covariates(series).covariates
    assert set(got) == {"heat_above_30c"}
    assert np.flatnonzero(got["heat_above_30c"][0]).tolist() == [30, 31, 32]
    assert (got["heat_above_30c"][:, 30:33] == 2.5).all()
