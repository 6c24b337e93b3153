"""Plausible time: an event ClickHouse cannot store, or one too far ahead of the worker's clock, is a dead
letter with its reason; the records after it are applied and the watermark does not move."""

from __future__ import annotations

import json

from core.settings import Settings
from streams.processor import EngineContext, Record, TimeBound
from streams.processors.interventions import InterventionEngine
from streams.processors.stations import StationEngine
from tests.helpers import T0, iev, small_reference, vev

REF = small_reference()
NOW = T0 + 3600.0


def _vehicle(event_time: str, offset: int) -> Record:
    doc = json.loads(vev("V1", "available_at_station", T0).model_dump_json())
    return Record("vehicle-status", 0, offset, b"S1", json.dumps({**doc, "event_time": event_time}).encode())


def test_out_of_range_and_future_vehicle_events_are_dead_letters_and_the_rest_goes_on() -> None:
    engine = StationEngine(REF, 60, 30, time_bound=TimeBound(300.0, wall=lambda: NOW))
    good = Record("vehicle-status", 0, 5, b"S1", vev("V2", "available_at_station", T0 + 10).model_dump_json().encode())
    records = [_vehicle("1900-01-01T00:00:00+00:00", 1), _vehicle("2200-01-01T00:00:00+00:00", 2),
               _vehicle("2027-03-01T10:00:00+00:00", 3),  # a year ahead of the clock (a terminal's wrong clock)
               _vehicle("2026-03-01T11:05:01+00:00", 4),  # 301 s ahead
               good]
    stores: dict = {"stations": {}}  # type: ignore[type-arg]
    result = engine.process(records, stores)
    reasons = {d.record.offset: d.reason for d in result.dead_letters}
    assert sorted(reasons) == [1, 2, 3, 4]
    assert "greater than or equal to 1970-01-01T00:00:01" in reasons[1]
    assert "less than or equal to 2106-02-07T06:28:15" in reasons[2]
    assert "more than 300 s ahead of the worker's clock (2026-03-01T11:00:00+00:00" in reasons[3]
    assert "2026-03-01T11:05:01+00:00 is more than 300 s ahead" in reasons[4]
    assert stores["stations"]["S1"].vehicles["V2"].status is not None
    assert engine.newest == {0: T0 + 10}  # the watermark never saw the future
    # 300 s ahead exactly is plausible
    at_bound = engine.process([_vehicle("2026-03-01T11:05:00+00:00", 6)], stores)
    assert at_bound.dead_letters == [] and at_bound.outcomes["applied"] == 1


def test_interventions_refuse_future_events_too() -> None:
    engine = InterventionEngine(60, 30, time_bound=TimeBound(60.0, wall=lambda: NOW))
    recs = [Record("interventions", 0, i, b"I1", iev("I1", "opened", t).model_dump_json().encode())
            for i, t in enumerate((T0, NOW + 61, NOW + 60))]
    result = engine.process(recs, {"interventions": {}, "sector-windows": {}})
    assert [d.record.offset for d in result.dead_letters] == [1]
    assert engine.newest[0] == NOW + 60


def test_the_bound_is_the_workers_clock_live_none_on_the_batch_path_and_runs_with_a_sped_up_simulation() -> None:
    s = Settings(max_clock_skew_s=120)
    assert EngineContext(s, live=False).time_bound.latest() == float("inf")
    live = EngineContext(s, live=True).time_bound
    assert live.skew_s == 120
    sped = TimeBound(120, origin=T0, speed=60, wall=lambda: T0 + 10)  # `make run`: 10 s of wall = 10 min
    assert sped.now() == T0 + 600 and sped.latest() == T0 + 720
