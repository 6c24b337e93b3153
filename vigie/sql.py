"""``vigie sql``: queries against a run's database from the terminal (no ``clickhouse-client`` needed), read-only
by default: as the dashboards' user when its password is known (the local stack's is), else as the configured user
with ClickHouse's ``readonly=1``; ``--write`` as the migrator."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Any

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from core.settings import Settings
from sinks.clickhouse import make_client


def connect(settings: Settings, database: str, write: bool) -> tuple[Client, dict[str, Any], str]:
    """A client, the per-query settings, and who it reads as (said to the user)."""
    as_reader = settings.as_reader()
    if not write and as_reader is not None:
        return make_client(as_reader, database), {}, f"{settings.clickhouse_reader_user} (read-only user)"
    if write:  # any change, DDL included: the migrator's account (the pipeline's own cannot alter a table)
        migrator = settings.as_migrator()
        return make_client(migrator, database), {}, migrator.clickhouse_user
    return make_client(settings, database), {"readonly": 1}, settings.clickhouse_user + ", readonly=1"


def render(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> str:
    """Tab-separated, a header line first (pastes into a spreadsheet; reads in a terminal)."""
    lines = ["\t".join(name for name, _ in columns)]
    lines += ["\t".join("" if v is None else str(v) for v in row) for row in rows]
    return "\n".join(lines)


def statements(lines: IO[str]) -> Iterator[str]:
    """Statements typed or piped, each ended by ``;`` (the last may lack it)."""
    buffer: list[str] = []
    for line in lines:
        buffer.append(line.rstrip("\n"))
        if line.rstrip().endswith(";"):
            text = "\n".join(buffer).strip().rstrip(";").strip()
            buffer.clear()
            if text:
                yield text
    text = "\n".join(buffer).strip().rstrip(";").strip()
    if text:
        yield text


def run_sql(settings: Settings, database: str, query: str | None, write: bool = False,
            stdin: IO[str] = sys.stdin) -> int:
    client, query_settings, who = connect(settings, database, write)
    failed = 0
    try:
        if query is None and stdin.isatty():
            print(f"vigie sql: database {database} as {who}; end each statement with ';', Ctrl-D to leave",
                  file=sys.stderr)
        for sql in [query] if query is not None else statements(stdin):
            try:
                rows, columns = client.execute(sql, with_column_types=True, settings=query_settings)
            except ch_errors.Error as e:
                failed += 1
                print(f"error: {' '.join(str(e).split('Stack trace:')[0].split())}", file=sys.stderr)
                continue
            print(render(columns, rows))
    finally:
        client.disconnect()
    return 1 if failed else 0
