"""What-if figures into ClickHouse (``whatif_figures``)."""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_driver import Client

from sinks.clickhouse import to_columns
from streams.rows import WhatifFigureRow
from streams.whatif.table import WHATIF_FIGURES


def write_figures(client: Client, database: str, rows: Sequence[WhatifFigureRow]) -> None:
    client.execute(f"INSERT INTO {database}.{WHATIF_FIGURES.name} ({', '.join(WHATIF_FIGURES.columns)}) VALUES",
                   to_columns(WHATIF_FIGURES, rows), columnar=True)
