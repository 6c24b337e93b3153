"""Crews in the station state: ordering rules per person, current staffed capacity, windows."""

from __future__ import annotations

import copy

import pytest

from schemas.codec import InvalidEvent, decode_crew_status
from streams.crewing import Crewing
from streams.ordering import Outcome
from streams.processor import Record, json_state
from streams.processors.stations import StationEngine
from streams.state import STAFF_INDEX, StationOutput, StationState
from tests.helpers import T0, cev, small_reference, vev

REF = small_reference()  # S1: V1, V2 (VSAV), F1 (FPT)
CREWING = Crewing(REF.crew_rules)
LEADER, DRIVER, MEMBER = ("crew_leader", "team_leader", "team_member"), ("driver", "team_member"), ("team_member",)


def run(st: StationState, *events, out: StationOutput | None = None) -> StationOutput:  # type: ignore[no-untyped-def]
    out = out or StationOutput()
    for ev in events:
        t = ev.event_time.timestamp()
        (st.apply_crew if hasattr(ev, "person_id") else st.apply)(ev, t, out)
    return out


def crew_for_one_vsav(t: float) -> list:  # type: ignore[type-arg]
    return [cev("P1", "available", t, LEADER), cev("P2", "available", t, DRIVER), cev("P3", "available", t, MEMBER)]


def capacity(st: StationState) -> tuple[dict, dict]:  # type: ignore[type-arg]
    out = StationOutput()
    st.current_capacity(CREWING, out)
    return ({r.vehicle_type: (r.available, r.staffed, r.uncrewed, r.crew_tracked) for r in out.capacity_rows},
            {r.qualification: (r.on_duty, r.assigned, r.available, r.unavailable) for r in out.staff_count_rows})


def test_untracked_station_reports_vehicles_only() -> None:
    st = StationState.new("S1", REF, 60)
    run(st, vev("V1", "available_at_station", T0))
    cap, staff = capacity(st)
    assert cap["VSAV"] == (1, 0, 0, 0) and staff == {}


def test_staffed_capacity_and_uncrewed_flag_follow_vehicles_and_crews() -> None:
    st = StationState.new("S1", REF, 60)
    run(st, vev("V1", "available_at_station", T0), vev("V2", "available_at_station", T0),
        vev("F1", "available_at_station", T0, vtype="FPT"), *crew_for_one_vsav(T0))
    cap, staff = capacity(st)
    assert cap["VSAV"] == (2, 1, 1, 1) and cap["FPT"] == (1, 0, 1, 1)
    assert staff["team_member"] == (3, 0, 3, 0) and staff["crew_leader"] == (1, 0, 1, 0)
    # the crew leaves with V1: no VSAV left that can be crewed, V2 flagged
    run(st, vev("V1", "dispatched", T0 + 60, "I1"), cev("P1", "assigned", T0 + 60, LEADER, "V1", "I1"),
        cev("P2", "assigned", T0 + 60, DRIVER, "V1", "I1"), cev("P3", "assigned", T0 + 60, MEMBER, "V1", "I1"))
    cap, staff = capacity(st)
    assert cap["VSAV"] == (1, 0, 1, 1)
    assert staff["team_member"] == (3, 3, 0, 0)
    # a team member becomes unavailable, another comes on duty
    run(st, cev("P4", "available", T0 + 120, DRIVER), cev("P5", "unavailable", T0 + 120, MEMBER))
    cap, staff = capacity(st)
    assert staff["driver"] == (2, 1, 1, 0) and staff["team_member"] == (5, 3, 1, 1)


def test_crew_events_out_of_order_and_duplicated_change_nothing() -> None:
    st = StationState.new("S1", REF, 60)
    st.seal(T0 + 15, run(st, cev("P1", "available", T0 + 10, LEADER, event_id="a")), CREWING)
    out = StationOutput()
    assert st.apply_crew(cev("P1", "off_duty", T0, LEADER), T0, out) is Outcome.STALE  # before the sealed time
    assert st.apply_crew(cev("P1", "available", T0 + 10, LEADER, event_id="a"), T0 + 10, out) is Outcome.DUPLICATE
    assert st.staff["P1"].status.value == "available" and out.staff_rows == []  # type: ignore[union-attr]
    # the newer event wins whatever the arrival order
    assert st.apply_crew(cev("P1", "off_duty", T0 + 20, LEADER), T0 + 20, out) is Outcome.APPLIED
    assert out.staff_rows[-1].status == "off_duty" and out.staff_rows[-1].qualifications == list(LEADER)
    # an older one within the lateness takes its place before it: the person stays off duty since T0 + 20
    assert st.apply_crew(cev("P1", "unavailable", T0 + 17, LEADER), T0 + 17, out) is Outcome.APPLIED
    assert (out.staff_rows[-1].status, out.staff_rows[-1].status_since) == ("off_duty", T0 + 20)


def test_windows_hold_staffed_capacity_its_minimum_and_staff_per_qualification() -> None:
    st = StationState.new("S1", REF, 60)
    out = run(st, vev("V1", "available_at_station", T0), vev("V2", "available_at_station", T0),
              vev("F1", "out_of_service", T0, vtype="FPT"), *crew_for_one_vsav(T0),
              *[cev(f"Q{i}", "available", T0, q) for i, q in enumerate((LEADER, DRIVER, MEMBER))],
              # :20 one crew leader unavailable -> one VSAV crewable; :40 back
              cev("Q0", "unavailable", T0 + 20, LEADER), cev("Q0", "available", T0 + 40, LEADER),
              # next window: V1 and its crew leave at 1:10
              vev("V1", "dispatched", T0 + 70, "I1"), cev("P1", "assigned", T0 + 70, LEADER, "V1", "I1"),
              cev("P2", "assigned", T0 + 70, DRIVER, "V1", "I1"), cev("P3", "assigned", T0 + 70, MEMBER, "V1", "I1"))
    st.seal(T0 + 180, out, CREWING)
    rows = {(r.window_start - T0, r.vehicle_type): r for r in out.window_rows}
    w0, w1, w2 = rows[(0, "VSAV")], rows[(60, "VSAV")], rows[(120, "VSAV")]
    assert (w0.available, w0.staffed, w0.min_staffed, w0.crew_tracked) == (2, 2, 1, 1)
    assert (w1.available, w1.staffed, w1.min_staffed) == (1, 1, 1)
    assert (w2.available, w2.staffed, w2.min_staffed) == (1, 1, 1)  # quiet window, carried over
    assert rows[(0, "FPT")].staffed == 0  # out of service: nothing to crew
    staff = {(r.window_start - T0, r.qualification): r for r in out.staff_window_rows}
    cl0 = staff[(0, "crew_leader")]
    assert (cl0.on_duty, cl0.available, cl0.unavailable, cl0.min_available) == (2, 2, 0, 1)
    cl1 = staff[(60, "crew_leader")]
    assert (cl1.on_duty, cl1.assigned, cl1.available, cl1.min_available) == (2, 1, 1, 1)
    assert staff[(120, "team_member")].available == 3 and staff[(120, "team_member")].min_available == 3


def test_state_with_staff_survives_serialisation() -> None:
    a = StationState.new("S1", REF, 60)
    run(a, vev("V1", "available_at_station", T0), *crew_for_one_vsav(T0 + 5))
    b = StationState.from_dict(copy.deepcopy(a.to_dict()))
    oa, ob = StationOutput(), StationOutput()
    for st, out in ((a, oa), (b, ob)):
        run(st, cev("P1", "unavailable", T0 + 65, LEADER, event_id="x"), out=out)
        st.seal(T0 + 200, out, CREWING)
        st.current_capacity(CREWING, out)
    assert oa.window_rows == ob.window_rows and oa.staff_window_rows == ob.staff_window_rows
    assert oa.capacity_rows == ob.capacity_rows and a.to_dict() == b.to_dict()


def _crew_rec(ev, key: str = "S1", offset: int = 0) -> Record:  # type: ignore[no-untyped-def]
    return Record("crew-status", 0, offset, key.encode(), ev.model_dump_json().encode())


def test_engine_routes_crew_records_and_dead_letters_bad_ones() -> None:
    engine = StationEngine(REF, 60, 0)
    store: dict[str, StationState] = {}
    records = [
        _crew_rec(cev("P1", "available", T0, LEADER)),
        _crew_rec(cev("P2", "available", T0, DRIVER, station="S2"), key="S1", offset=1),
        _crew_rec(cev("P3", "available", T0, station="S9"), key="S9", offset=2),
        _crew_rec(cev("P4", "assigned", T0, DRIVER, vehicle="X9"), offset=3),
        Record("crew-status", 0, 4, b"S1", b'{"schema_version":1}'),
    ]
    result = engine.process(records, {"stations": store})
    reasons = [d.reason for d in result.dead_letters]
    assert [d.record.offset for d in result.dead_letters] == [1, 2, 3, 4]
    assert "station_id" in reasons[0] and "unknown station 'S9'" in reasons[1] and "unknown vehicle 'X9'" in reasons[2]
    assert "person_id" in reasons[3]
    names = {spec.name: rows for spec, rows in result.rows.items()}
    assert [r[3] for r in names["crew_status_events"]] == ["P1"]
    assert [r.person_id for r in names["staff_state"]] == ["P1"]
    assert {r.vehicle_type for r in names["station_capacity"]} == {"VSAV", "FPT"}
    assert store["S1"].records == 1


@pytest.mark.parametrize("doc, reason", [
    ({"status": "assigned"}, "requires a vehicle_id"),
    ({"status": "available", "vehicle_id": "V1"}, "takes no vehicle_id"),
    ({"qualifications": ["driver", "driver"]}, "listed twice"),
    ({"qualifications": []}, "qualifications"),
    ({"qualifications": ["pilot"]}, "qualifications"),
    ({"name": "Jean Dupont"}, "name"),
])
def test_crew_event_validation(doc: dict, reason: str) -> None:  # type: ignore[type-arg]
    base = {"schema_version": 1, "event_id": "e1", "event_time": "2026-03-01T10:00:00Z", "person_id": "FF01",
            "station_id": "S1", "status": "available", "qualifications": ["driver"]}
    import json
    with pytest.raises(InvalidEvent) as e:
        decode_crew_status(json.dumps({**base, **doc}).encode())
    assert reason in e.value.reason


def test_watermark_waits_for_the_input_behind_then_a_reseal_closes_the_windows() -> None:
    engine = StationEngine(REF, 60, 0)
    store: dict[str, StationState] = {}
    vehicle = [Record("vehicle-status", 0, i, b"S1", vev("V1", s, T0 + t, iid).model_dump_json().encode())
               for i, (s, t, iid) in enumerate([("available_at_station", 0, None), ("dispatched", 200, "I1")])]
    crew = _crew_rec(cev("P1", "available", T0 + 10, LEADER))
    # the crew partition has unread records and gave nothing yet: no window may close
    held = engine.process(vehicle, {"stations": store}, behind={("crew-status", 0)})
    assert len(held.rows[next(k for k in held.rows if k.name == "station_windows")]) == 0
    assert engine.partitions_to_reseal({("crew-status", 0)}, {0}) == set()
    # its record arrives (older than the vehicles'): it is in time, and the watermark is the crew's newest
    in_time = engine.process([crew], {"stations": store}, behind={("crew-status", 0)})
    assert in_time.late == 0 and engine.watermark(0, {("crew-status", 0)}) == T0 + 10
    # nothing behind any more: the partition's watermark moved, a re-seal without records closes the windows
    assert engine.partitions_to_reseal(set(), {0}) == {0}
    assert engine.partitions_to_reseal(set(), set()) == set()  # not assigned here: never resealed
    resealed = engine.process([], {"stations": store}, set(), seal_partitions={0})
    windows = [r for r in resealed.rows[next(k for k in resealed.rows if k.name == "station_windows")]
               if r.vehicle_type == "VSAV"]
    assert [r.window_start - T0 for r in windows] == [0, 60, 120]
    assert windows[0].crew_tracked == 1 and "S1" in resealed.changed["stations"]
    assert engine.partitions_to_reseal(set(), {0}) == set()


def _windows(result) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [r for r in result.rows[next(k for k in result.rows if k.name == "station_windows")]
            if r.vehicle_type == "VSAV"]


def test_a_restarted_engine_closes_the_windows_its_predecessor_held_without_a_new_record() -> None:
    """A worker stopped while the crew input held its windows back: the next one recovers the state (the
    changelog) and, with nothing left to read, must close them on its first tick, or with its first record
    even when that record is an old re-delivery."""
    dumps, loads = json_state(StationState)
    vehicle = [Record("vehicle-status", 0, i, b"S1", vev("V1", s, T0 + t, iid).model_dump_json().encode())
               for i, (s, t, iid) in enumerate([("available_at_station", 0, None), ("dispatched", 200, "I1")])]
    store: dict[str, StationState] = {}
    held = StationEngine(REF, 60, 0).process(vehicle, {"stations": store}, behind={("crew-status", 0)})
    assert _windows(held) == []

    def recovered() -> dict[str, StationState]:
        return {k: loads(dumps(v)) for k, v in store.items()}

    restarted, state = StationEngine(REF, 60, 0), recovered()
    assert restarted.tick({"stations": state}, set(), set()) is None  # partition 0 not assigned here
    closed = restarted.tick({"stations": state}, set(), {0})
    assert closed is not None and [r.window_start - T0 for r in _windows(closed)] == [0, 60, 120]
    redelivered = StationEngine(REF, 60, 0).process(vehicle[:1], {"stations": recovered()}, behind=set())
    assert [r.window_start - T0 for r in _windows(redelivered)] == [0, 60, 120]


def test_capacity_rows_versions_grow_with_the_input_and_across_a_lost_state() -> None:
    def versions(st: StationState) -> int:
        out = StationOutput()
        st.current_capacity(CREWING, out)
        return out.capacity_rows[0].version

    old = StationState.new("S1", REF, 60)
    run(old, *[vev("V1", "available_at_station", T0 + i) for i in range(50)])
    v_old = versions(old)
    run(old, vev("V1", "available_at_station", T0))  # a stale re-delivery still moves the version forward
    assert versions(old) > v_old
    fresh = StationState.new("S1", REF, 60)  # state lost, same database: later events must still win
    run(fresh, vev("V1", "dispatched", T0 + 60, "I1"))
    assert versions(fresh) > versions(old)


def test_a_topic_racing_ahead_holds_the_windows_no_further_than_hold_max() -> None:
    """The crew topic gives a day of events while the vehicle topic behind gives nothing (a worker catching up
    reads them unevenly): the windows close up to ``hold_max_s`` before the newest crew event, and people off
    duty before that leave the state, instead of everything staying open (and growing) until the vehicles come."""
    engine = StationEngine(REF, 60, 0, hold_max_s=3600.0, staff_retention_s=600.0, eviction_interval_s=0.0)
    store: dict[str, StationState] = {}
    behind = {("vehicle-status", 0)}
    crews = []
    for h in range(24):  # a new person every hour, on duty for 30 minutes
        crews += [cev(f"P{h}", "available", T0 + h * 3600, LEADER), cev(f"P{h}", "off_duty", T0 + h * 3600 + 1800,
                                                                        LEADER)]
    result = engine.process([_crew_rec(ev, offset=i) for i, ev in enumerate(crews)], {"stations": store}, behind)
    newest = T0 + 23 * 3600 + 1800
    assert engine.watermark(0, behind) == newest - 3600.0
    windows = _windows(result)
    assert windows and max(w.window_start for w in windows) == pytest.approx(newest - 3600.0 - 60, abs=60)
    engine.tick({"stations": store}, behind, {0})
    assert len(store["S1"].staff) <= 3  # only those of the last hour and a half may remain
    # without the bound the same input holds everything: no window, every person kept
    held = StationEngine(REF, 60, 0, hold_max_s=1e12, staff_retention_s=600.0, eviction_interval_s=0.0)
    kept: dict[str, StationState] = {}
    assert _windows(held.process([_crew_rec(ev, offset=i) for i, ev in enumerate(crews)], {"stations": kept},
                                 behind)) == []
    held.tick({"stations": kept}, behind, {0})
    assert len(kept["S1"].staff) == 24


def test_a_person_first_seen_late_leaves_the_state_only_once_the_change_is_in_the_windows() -> None:
    """A new person's first record arrives after its window closed (late: clamped to the open window). The
    eviction of people off duty must wait until that change is folded (it crashed the worker with a KeyError on
    the windows' staff counters: found catching up a 42-day backlog), then it leaves with the counters right."""
    engine = StationEngine(REF, 60, 0, staff_retention_s=60.0, eviction_interval_s=0.0)
    store: dict[str, StationState] = {}
    def radio(i: int, t: float) -> Record:
        status = "available_at_station" if i % 2 else "available_on_radio"
        return Record("vehicle-status", 0, i, b"S1", vev("V1", status, t).model_dump_json().encode())

    engine.process([radio(i, T0 + 600 * i) for i in range(13)], {"stations": store})  # sealed up to T0 + 2 h
    late = engine.process([_crew_rec(cev("P9", "off_duty", T0 + 600, LEADER), offset=0)], {"stations": store})
    assert late.late == 1
    engine.tick({"stations": store}, None, {0})  # its change waits in the open window: it stays
    assert "P9" in store["S1"].staff
    engine.process([radio(13 + i, T0 + 7800 + 600 * i) for i in range(3)], {"stations": store})  # folded now
    engine.tick({"stations": store}, None, {0})
    st = store["S1"]
    assert "P9" not in st.staff
    assert all(counts[STAFF_INDEX["off_duty"]] == 0 for counts in st.windows.staff.values())
