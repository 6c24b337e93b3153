"""Times typed on the command line."""

from __future__ import annotations

from datetime import UTC, datetime


def instant(text: str) -> float:
    """An ISO date or date-time -> epoch seconds; without an offset, UTC."""
    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
