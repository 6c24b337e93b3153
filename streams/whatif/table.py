"""The ClickHouse table the what-if figures go to (``sinks/migrations/0012_whatif.sql``): the « Scénarios » dashboard
reads it."""

from core.tables import table
from streams.rows import WhatifFigureRow

WHATIF_FIGURES = table("whatif_figures", WhatifFigureRow)
