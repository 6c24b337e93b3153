"""Simulator pacing: events before the origin go at once (backfill), later ones at --speed."""

from datetime import UTC, datetime

from core.settings import Settings
from devtools import produce
from devtools.simulator import Simulator
from schemas.reference import Reference


def test_backfill_then_real_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [1000.0]
    sleeps: list[float] = []
    monkeypatch.setattr(produce.time, "monotonic", lambda: clock[0])

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    monkeypatch.setattr(produce.time, "sleep", sleep)
    start = datetime(2026, 1, 9, 6, tzinfo=UTC)
    events = list(Simulator(Reference.load(Settings().reference_dir), seed=3, start=start).events(7200))
    origin = start.timestamp() + 3600  # one hour of backfill, then one hour at x1
    sent_at = [(e.event.event_time.timestamp(), clock[0]) for e in produce.paced(events, 1.0, origin)]
    past = [wall for t, wall in sent_at if t <= origin]
    future = [(t, wall) for t, wall in sent_at if t > origin]
    assert past and future
    assert all(wall == 1000.0 for wall in past)  # no waiting for the past
    assert all(abs(wall - (1000.0 + t - origin)) < 1e-6 for t, wall in future)  # then on the wall clock
