"""The ClickHouse tables of the what-if figures (``sinks/migrations/0012_whatif.sql``: the « Scénarios » dashboard
reads it) and of the live move-up advice (``0013_moveup.sql``: the board and « Situation »)."""

from core.tables import table
from streams.rows import MoveUpAdviceRow, WhatifFigureRow

WHATIF_FIGURES = table("whatif_figures", WhatifFigureRow)
MOVEUP_ADVICE = table("moveup_advice", MoveUpAdviceRow)
WHATIF_TABLES = (WHATIF_FIGURES, MOVEUP_ADVICE)  # not a processor's: written by `vigie whatif run` / `vigie moveup`
