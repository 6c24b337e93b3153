"""``vigie forecast``: backtest the models on a run's history, train one, publish forecasts (once or on a
schedule) into the run's ``forecasts`` table, which the dashboards read."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from core.settings import Settings
from sinks.clickhouse import make_client
from sinks.forecasts import NoHistory, forecast_rows, hourly_counts, write_forecasts
from streams.forecasting.backtest import ALL_SECTORS, Backtest, Series, Trained, forecast, run_backtest, train
from streams.forecasting.calendar import HOUR, WEEK_HOURS
from streams.forecasting.covariates import on_grid, read_spans
from streams.forecasting.models import MODELS, PUBLISHED
from vigie.when import instant

#: the history a forecast is fitted on (the model reads 26 weeks; its calibration 4 more)
TRAINING_WEEKS = 31
#: the least history a forecast is made from: two weeks (a week to fit, a week to calibrate on)
MIN_HISTORY_HOURS = 2 * WEEK_HOURS


@dataclass(frozen=True)
class Target:
    """Where a command reads and writes: a run's database; and the covariates file, if any."""

    settings: Settings
    database: str

    def client(self) -> Client:
        return make_client(self.settings, self.database)

    def with_covariates(self, series: Series) -> Series:
        path = self.settings.forecast_covariates
        if not path:
            return series
        return replace(series, covariates=on_grid(read_spans(Path(path)), series.names, series.grid))


def parse_at(text: str | None) -> int | None:
    """An ISO time (UTC unless it says) -> epoch seconds of its hour."""
    if text is None:
        return None
    return int(instant(text)) // HOUR * HOUR


def backtest(target: Target, weeks: int) -> Backtest:
    s = target.settings
    client = target.client()
    try:
        series = hourly_counts(client, target.database, s.timezone, s.holidays)
    finally:
        client.disconnect()
    return run_backtest(target.with_covariates(series), weeks)


def print_backtest(target: Target, report: Backtest, out: Path | None) -> bool:
    print(f"backtest of {target.database}: {report.weeks} weekly origins from "
          f"{datetime.fromtimestamp(report.origins[0], UTC):%Y-%m-%d %H:%M} UTC, horizon 7 days, "
          f"{target.settings.timezone} time, holidays: {target.settings.holidays or 'none'}\n")
    print(report.table())
    print()
    ok = True
    for c in report.criteria():
        ok &= c.ok
        print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    if out is not None:
        out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"\nwritten to {out}")
    return ok


def trained_at(target: Target, at: int | None, model: str = PUBLISHED) -> Trained:
    """The model fitted on the history before ``at`` (default: the end of the newest counted hour)."""
    s = target.settings
    client = target.client()
    try:
        series = hourly_counts(client, target.database, s.timezone, s.holidays, until=at, weeks=TRAINING_WEEKS)
    finally:
        client.disconnect()
    _enough(series.grid.hours, target.database)
    return train(MODELS[model], target.with_covariates(series), series.grid.hours)


def _enough(hours: int, database: str) -> None:
    if hours < MIN_HISTORY_HOURS:
        raise NoHistory(f"{database} holds {hours} hours of intervention counts; a forecast needs at least "
                         f"{MIN_HISTORY_HOURS} (two weeks)")


def predict(target: Target, days: int, at: int | None = None, model: str = PUBLISHED,
            trained: Trained | None = None) -> tuple[int, int, list[str]]:
    """Forecast ``days`` local days after the origin (``at``, default the end of the newest counted hour) into
    the run's ``forecasts``; returns (origin, rows written, a summary of the next day)."""
    s = target.settings
    client = target.client()
    try:
        series = hourly_counts(client, target.database, s.timezone, s.holidays, until=at, weeks=TRAINING_WEEKS,
                               extra_hours=days * 24 + 26)  # a margin: the last local midnight falls inside
        origin = series.grid.hours - (days * 24 + 26)
        _enough(origin, target.database)
        midnights = [int(m) for m in series.grid.midnights() if m > origin]
        end = midnights[days - 1] if len(midnights) >= days else midnights[-1]
        series = target.with_covariates(series)
        fc = forecast(trained if trained is not None else MODELS[model], series, origin, end)
        rows = forecast_rows(series, fc)
        write_forecasts(client, target.database, rows)
    finally:
        client.disconnect()
    day = sorted((r for r in rows if r.bin_hours == 1 and r.sector == ALL_SECTORS), key=lambda r: r.bin_start)[:24]
    summary = [f"next 24 h, all sectors: {sum(r.mean for r in day):.1f} expected"]
    return series.grid.epoch(origin), len(rows), summary


def predict_every(target: Target, days: int, seconds: float, model: str = PUBLISHED) -> int:
    """``predict`` now and every ``seconds`` until SIGTERM / Ctrl-C; a run with too little history waits for
    more (said once)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    waiting_said = False
    try:
        while not stop.is_set():
            try:
                origin, n, summary = predict(target, days, model=model)
                print(f"{datetime.now(UTC):%H:%M:%S} forecast from {datetime.fromtimestamp(origin, UTC):%Y-%m-%d %H:%M}"
                      f" UTC: {n:,} rows; {summary[0]}", flush=True)
                waiting_said = False
            except NoHistory as e:
                if not waiting_said:
                    print(f"{datetime.now(UTC):%H:%M:%S} waiting: {e}", flush=True)
                    waiting_said = True
            except ch_errors.Error as e:  # ClickHouse away: try again at the next turn
                print(f"{datetime.now(UTC):%H:%M:%S} ClickHouse: {e}", flush=True)
            stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    return 0

