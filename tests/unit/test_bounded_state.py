"""Bounded state: people long off duty and interventions never closed leave the state, without changing a
row; per-entity lists are capped."""

from __future__ import annotations

from typing import Any

from streams.ordering import MAX_IDS_AT_TIME, Outcome, admit
from streams.processor import Record
from streams.processors.interventions import InterventionEngine
from streams.processors.stations import StationEngine
from streams.state import TIMELINE_CAP, StationOutput, StationState
from tests.helpers import T0, cev, iev, small_reference, vev
from tests.unit.test_disorder import kept

REF = small_reference()
HOUR = 3600.0


def _records(events: list[Any]) -> list[Record]:
    return [Record("crew-status" if hasattr(e, "person_id") else "vehicle-status", 0, i, b"S1",
                   e.model_dump_json().encode()) for i, e in enumerate(events)]


def _day_of_rotating_ids() -> list[Any]:
    """Three days; each day a new watch (new pseudonymous ids) comes on duty and leaves at the end."""
    out: list[Any] = [vev("V1", "available_at_station", T0)]
    for day in range(3):
        start = T0 + day * 24 * HOUR
        for n in range(4):
            out.append(cev(f"D{day}P{n}", "available", start + n, ("crew_leader", "team_leader", "team_member")))
            out.append(cev(f"D{day}P{n}", "off_duty", start + 23 * HOUR + n, ("crew_leader", "team_leader",
                                                                              "team_member")))
        out.append(vev("V1", "dispatched", start + 2 * HOUR, "I1"))
        out.append(vev("V1", "available_at_station", start + 3 * HOUR))
    return out


def test_people_long_off_duty_leave_the_state_and_no_row_changes() -> None:
    events = _day_of_rotating_ids()

    def run(retention_s: float) -> tuple[dict[str, Any], StationState]:
        engine = StationEngine(REF, 60, 30, staff_retention_s=retention_s, eviction_interval_s=0)
        store: dict[str, StationState] = {}
        results = []
        for day in range(3):  # one batch a day, and a tick after it (as the worker's timer)
            day_events = [e for e in events if T0 + day * 24 * HOUR <= e.event_time.timestamp()
                          < T0 + (day + 1) * 24 * HOUR]
            results.append(engine.process(_records(day_events), {"stations": store}))
            tick = engine.tick({"stations": store}, None, {0})
            if tick is not None:
                results.append(tick)
        return kept(results), store["S1"]

    kept_forever, forever = run(10 * 24 * HOUR)
    evicting, bounded = run(12 * HOUR)
    assert len(forever.staff) == 12 and sorted(bounded.staff) == ["D2P0", "D2P1", "D2P2", "D2P3"]
    assert evicting == kept_forever  # every table's rows, windows included (crews still tracked)
    # an old event of someone evicted is beyond the lateness: stale, not a new person
    out = StationOutput()
    assert bounded.apply_crew(cev("D0P1", "available", T0 + 5), T0 + 5, out) is Outcome.STALE
    assert "D0P1" not in bounded.staff


def test_interventions_never_closed_leave_after_the_idle_time() -> None:
    engine = InterventionEngine(60, 30, retention_s=HOUR, idle_s=10 * HOUR)
    store: dict[str, Any] = {}
    recs = [Record("interventions", 0, i, iid.encode(), iev(iid, kind, t).model_dump_json().encode())
            for i, (iid, kind, t) in enumerate([("I1", "opened", T0), ("I2", "opened", T0 + HOUR),
                                                ("I2", "closed", T0 + 2 * HOUR), ("I3", "opened", T0 + 9 * HOUR),
                                                ("I4", "opened", T0 + 11 * HOUR)])]
    engine.process(recs, {"interventions": store, "sector-windows": {}})
    evicted = engine.evict_closed(store)
    # I1: never closed, idle 11 h > 10 h; I2: closed 9 h ago > 1 h; I3 idle 2 h; I4 new
    assert evicted == {"I1": 0, "I2": 0} and sorted(store) == ["I3", "I4"]


def test_a_quiet_vehicle_s_timeline_is_trimmed_at_the_tidy_and_no_row_changes() -> None:
    """A burst of one vehicle inside one batch, then hours of another's events sealing the station further: the
    quiet vehicle's entries older than the sealed time leave memory at the tidy (not only at its next event)."""
    burst = [vev("V1", status, T0 + 60 * i, "I1" if i else None)
             for i, status in enumerate(["available_at_station", "dispatched", "en_route", "on_scene",
                                         "returning", "available_at_station"])]
    later = [vev("V2", "out_of_service" if i % 2 else "available_at_station", T0 + HOUR * (1 + i)) for i in range(6)]

    def run(tidy_every_s: float) -> tuple[dict[str, Any], StationState, dict[str, object]]:
        engine = StationEngine(REF, 60, 30, eviction_interval_s=tidy_every_s)
        store: dict[str, StationState] = {}
        results = [engine.process(_records(burst), {"stations": store}),
                   engine.process(_records(later), {"stations": store})]
        saved = store["S1"].to_dict()
        tick = engine.tick({"stations": store}, None, {0})
        results += [tick] if tick is not None else []
        assert store["S1"].to_dict() == saved  # what the changelog holds is the same
        return kept(results), store["S1"], saved

    untidied_rows, untidied, _ = run(10 * 24 * HOUR)
    tidied_rows, tidied, _ = run(0)
    assert len(untidied.vehicles["V1"].timeline) == 7  # the initial entry and the burst, held since
    assert [e[0] for e in tidied.vehicles["V1"].timeline] == [T0 + 300]  # the state at the sealed time
    assert tidied_rows == untidied_rows
    out = StationOutput()  # a late event of V1 is beyond the lateness either way
    assert tidied.apply(vev("V1", "out_of_service", T0 + 200), T0 + 200, out) is Outcome.STALE


def test_per_entity_lists_are_capped() -> None:
    st = StationState.new("S1", REF, 60)
    out = StationOutput()
    for i in range(3 * TIMELINE_CAP):  # a burst inside the lateness (nothing sealed): the cap holds
        st.apply(vev("V1", "available_at_station" if i % 2 else "out_of_service", T0 + i), T0 + i, out)
    assert len(st.vehicles["V1"].timeline) == TIMELINE_CAP
    assert st.apply(vev("V1", "out_of_service", T0 + 1), T0 + 1, out) is Outcome.STALE  # before the kept entries

    class Entity:
        def __init__(self) -> None:
            self.event_time = 0.0
            self.ids_at_time: list[str] = []

    e = Entity()
    for i in range(3 * MAX_IDS_AT_TIME):
        admit(e, f"id{i:04d}", T0)
    assert len(e.ids_at_time) == MAX_IDS_AT_TIME
