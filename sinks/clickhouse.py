"""Batched ClickHouse writes through the native protocol, retried until they succeed.

A batch is a mapping table -> rows. :meth:`ClickHouseSink.write` returns only once every table
of the batch is stored: while ClickHouse is unreachable it retries with capped exponential
back-off, and the caller (the Faust agent) holds its stream, so offsets are never committed for
rows that are not stored. Tables are ReplacingMergeTree on natural keys, so re-writing a batch
after a partial failure or a crash replaces rows instead of counting them twice.

Rows ClickHouse refuses (``sinks/errors.py``: retrying cannot help) never block: the table's rows are split
in halves until the refused rows stand alone; the others are stored and the refused ones returned, with the
error, for the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError

from core.settings import Settings
from core.tables import TableSpec
from sinks.errors import is_data_error
from sinks.migrate import migrate
from sinks.queries import past_openings_query
from streams import registry
from streams.runtime import metrics
from streams.runtime.checkpoint import Rejected
from streams.runtime.faults import NO_FAULTS, Faults
from streams.runtime.watchdog import Liveness

log = logging.getLogger("vigie.sink")


def make_client(settings: Settings, database: str | None = None, timeout_s: float = 30) -> Client:
    """``timeout_s``: how long a statement may run (a DROP of gigabytes of parts takes minutes on 18.16)."""
    kwargs: dict[str, Any] = {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "user": settings.clickhouse_user,
        "password": settings.clickhouse_password.get_secret_value(),
        "database": database if database is not None else "default",
        "connect_timeout": 3,
        "send_receive_timeout": timeout_s,
        "settings": {"use_client_time_zone": False},
    }
    if settings.clickhouse_secure:
        kwargs["secure"] = True
        kwargs["verify"] = True
        if settings.clickhouse_ca_certs:
            kwargs["ca_certs"] = settings.clickhouse_ca_certs
    return Client(**kwargs)


class StoredOpenings:
    """The interventions opened as the deployment's ClickHouse holds them, for a live engine
    (``streams/processor.py`` ``StoredHistory``): a fresh alerts book's surge usual. A reading that fails is said
    and gives none (the usual then starts from the book's first window, as without a stored history)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def openings(self, since: float, until: float) -> list[tuple[float, float, float]]:
        sql = past_openings_query(self.settings.clickhouse_database, int(since), math.ceil(until))
        span = [time.strftime("%Y-%m-%d %H:%M", time.gmtime(x)) for x in (since, until)]
        try:
            client = make_client(self.settings)
            try:
                rows = client.execute(sql)
            finally:
                client.disconnect()
        except Exception as e:  # any failure: the usual starts without the stored history
            log.warning("the interventions stored before %s not read (%s): surge rules start without them", span[1], e)
            return []
        log.info("%d interventions stored from %s to %s read for the surge rules' usual", len(rows), *span)
        return [(float(t), float(lat), float(lon)) for t, lat, lon in rows]


def plugin_migrations(settings: Settings) -> list[tuple[str, Path]]:
    """(processor, folder) of every registered processor that ships its own migrations."""
    return [(p.name, p.migrations) for p in registry.processors(settings) if p.migrations is not None]


def run_migrations(settings: Settings) -> list[str]:
    client = make_client(settings.as_migrator())
    try:
        return [f"{m.version:04d}_{m.name}"
                for m in migrate(client.execute, settings.clickhouse_database, plugin_migrations(settings))]
    finally:
        client.disconnect()


def to_columns(spec: TableSpec, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows (or a block that already holds ``columns()``) -> columns, with float epoch seconds turned
    into whole seconds for DateTime columns."""
    columns_of = getattr(rows, "columns", None)
    columns = list(columns_of()) if columns_of else [list(c) for c in zip(*rows, strict=True)]
    for i in spec.datetime_indexes:
        columns[i] = [int(x) for x in columns[i]]
    return columns


class SinkMetrics:
    """Hooks the sink calls; the worker wires them to Prometheus."""

    def on_written(self, table: str, rows: int, seconds: float) -> None: ...
    def on_error(self, table: str, error: BaseException) -> None: ...
    def on_blocked(self, since: float | None) -> None:
        """A write is retrying since ``since`` (monotonic; None: stored, not blocked any more)."""


class PrometheusSinkMetrics(SinkMetrics):
    """Sink outcomes to Prometheus; a stored write is a sign of life for the stall watchdog, a retrying one
    tells it the worker is blocked on ClickHouse (not stalled: a restart would not help)."""

    _watched: ClassVar[list[Liveness]] = []  # every agent's: the gauge is the longest block among them

    def __init__(self, liveness: Liveness | None = None) -> None:
        self.liveness = liveness
        if liveness is not None:
            watched = PrometheusSinkMetrics._watched
            watched.append(liveness)
            metrics.SINK_BLOCKED.set_function(lambda: max(w.sink_blocked_for() for w in watched))

    def on_written(self, table: str, rows: int, seconds: float) -> None:
        metrics.ROWS_WRITTEN.labels(table).inc(rows)
        metrics.FLUSH_SECONDS.labels(table).observe(seconds)
        if self.liveness is not None:
            self.liveness.beat()

    def on_error(self, table: str, error: BaseException) -> None:
        metrics.SINK_ERRORS.labels(table).inc()

    def on_blocked(self, since: float | None) -> None:
        if self.liveness is not None:
            self.liveness.sink_blocked_since = since


def _count(rows: Sequence[Sequence[Any]]) -> int:
    """Rows held (a block of window runs: its entries, each a run)."""
    entries = getattr(rows, "entries", None)
    return len(rows) if entries is None else int(entries)


def _halves(rows: Sequence[Sequence[Any]]) -> list[Sequence[Sequence[Any]]]:
    n = _count(rows)
    sliced = getattr(rows, "sliced", None)
    if sliced is not None:
        return [sliced(0, n // 2), sliced(n // 2, n)]
    return [rows[: n // 2], rows[n // 2:]]


def _only_row(spec: TableSpec, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    entry = rows.columns() if hasattr(rows, "columns") else [[v] for v in rows[0]]
    row = {name: col[0] for name, col in zip(spec.columns, entry, strict=True)}
    repeat = getattr(rows, "repeat", None)
    if repeat is not None:
        row["repeat"] = repeat[0]
    return row


class ClickHouseSink:
    def __init__(self, settings: Settings, metrics: SinkMetrics | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep, faults: Faults = NO_FAULTS) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self.metrics = metrics or SinkMetrics()
        self._clients: dict[str, Client] = {}  # one connection per table: a batch's tables go in parallel
        self._sleep = sleep
        self.faults = faults  # tests only

    def _insert(self, spec: TableSpec, rows: Sequence[Sequence[Any]]) -> None:
        if self.faults.fail_insert():
            raise NetworkError("injected fault (VIGIE_FAULTS sink_fail)")
        client = self._clients.get(spec.name)
        if client is None:
            client = self._clients[spec.name] = make_client(self.settings, self.database)
        cols = ", ".join(spec.columns)
        columns = to_columns(spec, rows)
        repeat = getattr(rows, "repeat", None)
        if spec.runs_table and repeat is not None:  # runs expanded by ClickHouse (materialized view)
            run_cols = ", ".join(name for name, _ in spec.runs_types)
            client.execute(f"INSERT INTO {self.database}.{spec.runs_table} ({run_cols}) VALUES",
                           [*columns, repeat], columnar=True)
            return
        client.execute(f"INSERT INTO {self.database}.{spec.name} ({cols}) VALUES", columns, columnar=True)

    async def _write_one(self, spec: TableSpec, rows: Sequence[Sequence[Any]]) -> BaseException | None:
        """Store one table's rows; the error if they were not stored."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            # bounded: a call hung on a half-dead connection becomes a retry on a fresh one
            await asyncio.wait_for(loop.run_in_executor(None, self._insert, spec, rows),
                                   self.settings.sink_write_timeout_s)
        except Exception as e:  # any failure, a timeout included: reconnect, then retry or split
            self.metrics.on_error(spec.name, e)
            log.warning("ClickHouse write of %d row(s) to %s failed (%s)", _count(rows), spec.name, e)
            self._drop_client(spec.name)
            return e
        self.metrics.on_written(spec.name, len(rows), time.perf_counter() - started)
        return None

    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> list[Rejected]:
        """Store every non-empty table of the batch, the tables in parallel (one connection each). Transient
        failures are retried with capped back-off until stored (never dropped); rows refused for what they
        hold are isolated by halving and returned (every other row is stored)."""
        pending = [(spec, rows) for spec, rows in batch.items() if _count(rows)]
        rejected: list[Rejected] = []
        delay = self.settings.sink_retry_initial_s
        blocked_since: float | None = None
        while pending:
            errors = await self._write_each(pending)
            again, transient = [], False
            for (spec, rows), error in zip(pending, errors, strict=True):
                if error is None:
                    continue
                if not is_data_error(error):
                    again.append((spec, rows))
                    transient = True
                elif _count(rows) > 1:
                    again += [(spec, half) for half in _halves(rows) if _count(half)]
                else:
                    rejected.append(Rejected(spec.name, _only_row(spec, rows), f"{type(error).__name__}: {error}"))
                    log.error("ClickHouse refused a row of %s: %s", spec.name, error)
            pending = again
            if transient:
                if blocked_since is None:
                    blocked_since = time.monotonic()
                    self.metrics.on_blocked(blocked_since)
                log.warning("retrying %d table(s) in %.1fs", len(pending), delay)
                await self._sleep(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_s)
        if blocked_since is not None:
            self.metrics.on_blocked(None)
        return rejected

    async def _write_each(self, parts: list[tuple[TableSpec, Sequence[Sequence[Any]]]]
                          ) -> list[BaseException | None]:
        """Write every part: tables in parallel, the parts of one table one after the other (its connection)."""
        by_table: dict[str, list[int]] = {}
        for i, (spec, _) in enumerate(parts):
            by_table.setdefault(spec.name, []).append(i)
        errors: list[BaseException | None] = [None] * len(parts)

        async def one_table(indexes: list[int]) -> None:
            for i in indexes:
                errors[i] = await self._write_one(*parts[i])

        await asyncio.gather(*(one_table(ix) for ix in by_table.values()))
        return errors

    def _drop_client(self, table: str) -> None:
        client = self._clients.pop(table, None)
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                pass

    def close(self) -> None:
        for table in list(self._clients):
            self._drop_client(table)
