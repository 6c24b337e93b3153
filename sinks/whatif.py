"""What-if figures (``whatif_figures``) and the live move-up advice (``moveup_advice``) into ClickHouse."""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_driver import Client

from core.tables import TableSpec
from sinks.clickhouse import to_columns
from streams.rows import MoveUpAdviceRow, WhatifFigureRow
from streams.whatif.table import MOVEUP_ADVICE, WHATIF_FIGURES


def write_figures(client: Client, database: str, rows: Sequence[WhatifFigureRow]) -> None:
    _write(client, database, WHATIF_FIGURES, rows)


def write_advice(client: Client, database: str, rows: Sequence[MoveUpAdviceRow]) -> None:
    _write(client, database, MOVEUP_ADVICE, rows)


def _write(client: Client, database: str, spec: TableSpec, rows: Sequence[tuple[object, ...]]) -> None:
    client.execute(f"INSERT INTO {database}.{spec.name} ({', '.join(spec.columns)}) VALUES", to_columns(spec, rows),
                   columnar=True)
