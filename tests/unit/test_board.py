"""The board's clock: the newest event time, or "waiting for events" before the first (not a 1970 clock)."""

from datetime import datetime

from vigie.board import clock_text


def test_clock_before_and_after_the_first_event() -> None:
    assert clock_text([(datetime(1970, 1, 1, 0, 0),)]) == "waiting for events"  # max() of an empty table
    assert clock_text([(None,)]) == "waiting for events"
    assert clock_text([]) == "waiting for events"
    assert clock_text([(datetime(2026, 1, 9, 6, 30, 5),)]) == "simulated clock 2026-01-09 06:30:05 UTC"
