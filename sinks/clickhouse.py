"""Batched ClickHouse writes through the native protocol, retried until they succeed.

A batch is a mapping table -> rows. :meth:`ClickHouseSink.write` returns only once every table
of the batch is stored: while ClickHouse is unreachable it retries with capped exponential
back-off, and the caller (the Faust agent) holds its stream, so offsets are never committed for
rows that are not stored. Tables are ReplacingMergeTree on natural keys, so re-writing a batch
after a partial failure or a crash replaces rows instead of counting them twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clickhouse_driver import Client

from sinks.migrate import migrate
from sinks.tables import TableSpec
from vigie.settings import Settings

log = logging.getLogger("vigie.sink")


def make_client(settings: Settings, database: str | None = None) -> Client:
    kwargs: dict[str, Any] = {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "user": settings.clickhouse_user,
        "password": settings.clickhouse_password.get_secret_value(),
        "database": database if database is not None else "default",
        "connect_timeout": 3,
        "send_receive_timeout": 30,
        "settings": {"use_client_time_zone": False},
    }
    if settings.clickhouse_secure:
        kwargs["secure"] = True
        kwargs["verify"] = True
        if settings.clickhouse_ca_certs:
            kwargs["ca_certs"] = settings.clickhouse_ca_certs
    return Client(**kwargs)


def run_migrations(settings: Settings) -> list[str]:
    client = make_client(settings)
    try:
        return [f"{m.version:04d}_{m.name}" for m in migrate(client.execute, settings.clickhouse_database)]
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


class ClickHouseSink:
    def __init__(self, settings: Settings, metrics: SinkMetrics | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self.metrics = metrics or SinkMetrics()
        self._client: Client | None = None
        self._sleep = sleep

    def _insert(self, spec: TableSpec, rows: Sequence[Sequence[Any]]) -> None:
        client = self._client
        if client is None:
            client = self._client = make_client(self.settings, self.database)
        cols = ", ".join(spec.columns)
        client.execute(f"INSERT INTO {self.database}.{spec.name} ({cols}) VALUES", to_columns(spec, rows),
                       columnar=True)

    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> None:
        """Store every non-empty table of the batch; retry until done (never drops)."""
        loop = asyncio.get_running_loop()
        pending = [(spec, rows) for spec, rows in batch.items() if rows]
        delay = self.settings.sink_retry_initial_s
        while pending:
            spec, rows = pending[0]
            started = time.perf_counter()
            try:
                # bounded: a call hung on a half-dead connection becomes a retry on a fresh one
                await asyncio.wait_for(loop.run_in_executor(None, self._insert, spec, rows),
                                       self.settings.sink_write_timeout_s)
            except Exception as e:  # any failure, a timeout included: reconnect and retry
                self.metrics.on_error(spec.name, e)
                log.warning("ClickHouse write to %s failed (%s); retrying in %.1fs", spec.name, e, delay)
                self._drop_client()
                await self._sleep(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_s)
                continue
            self.metrics.on_written(spec.name, len(rows), time.perf_counter() - started)
            pending.pop(0)
            delay = self.settings.sink_retry_initial_s

    def _drop_client(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
            except Exception:
                pass
            self._client = None

    def close(self) -> None:
        self._drop_client()
