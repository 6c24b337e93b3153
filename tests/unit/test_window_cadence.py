"""A station's 1-minute windows are the same however often they are sealed: every minute (live, ticks), once per
chunk of history (the batch path, whose chunks span more event time when several processes share the partitions),
or once at the end — long silences included, where quiet windows stop max_fill_windows after the last change (in
event time; a month in the worker) and start again at the next. Found by comparing the SF 2018 year through one and
two batch processes (12.4 M against 11.5 M window rows with the cap counted per seal call)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.reference import CrewRules
from streams.crewing import Crewing
from streams.windows import StationWindows, WindowBlock

W = 60
FILL = 30  # windows of quiet after a change (the worker's default is 1440: a day)
CREWING = Crewing(CrewRules.default())

# (minute of the change, from category, to category): a vehicle moving between available (0) and engaged (1)
changes = st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=12, unique=True).map(sorted)
cadence = st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=20)


def windows(change_minutes: list[int], seal_every: list[int], end_minute: int) -> list[tuple]:
    state = StationWindows(W, {})
    out = WindowBlock()
    state.record(0.0, "VSAV", 3, 0)  # known from the start: unknown (3) -> available (0)
    for i, m in enumerate(change_minutes):
        frm, to = (0, 1) if i % 2 == 0 else (1, 0)
        state.record(m * W + 17.0, "VSAV", frm, to)
    seal_at, k = 0, 0
    while seal_at < end_minute:
        seal_at = min(end_minute, seal_at + seal_every[k % len(seal_every)])
        k += 1
        state.seal(seal_at * W, "S1", "A1", FILL, out, CREWING)
    return [tuple(r) for r in out.rows()]


@settings(max_examples=300, deadline=None)
@given(changes, cadence)
def test_windows_do_not_depend_on_how_often_they_are_sealed(change_minutes: list[int], seal_every: list[int]) -> None:
    end = 480
    once = windows(change_minutes, [end], end)
    assert windows(change_minutes, seal_every, end) == once
    assert windows(change_minutes, [1], end) == once
    # quiet windows stop FILL windows after the window of the last change before them
    starts = [r[0] / W for r in once]
    for s in starts:
        last = max([0] + [m for m in change_minutes if m <= s])
        assert s - last < FILL, (s, last)
