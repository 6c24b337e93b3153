"""State machine and window aggregation, without Kafka."""

import copy

from streams.crewing import Crewing
from streams.ordering import Outcome
from streams.processor import Record
from streams.processors.stations import StationEngine
from streams.state import StationOutput, StationState
from tests.helpers import T0, small_reference, vev

REF = small_reference()
CREWING = Crewing(REF.crew_rules)


def without_counter(d: dict) -> dict:  # type: ignore[type-arg]
    """State minus the count of records consumed (which a duplicate or stale record still increments)."""
    return {k: v for k, v in d.items() if k != "r"}


def station() -> StationState:
    return StationState.new("S1", REF, 60)


def apply(st: StationState, *events, out: StationOutput | None = None) -> StationOutput:  # type: ignore[no-untyped-def]
    out = out or StationOutput()
    for ev in events:
        st.apply(ev, ev.event_time.timestamp(), out)
    return out


def test_engagement_segments_and_release() -> None:
    st = station()
    out = apply(st, vev("V1", "available_at_station", T0), vev("V1", "dispatched", T0 + 10, "I1"),
                vev("V1", "en_route", T0 + 70, "I1"), vev("V1", "on_scene", T0 + 370, "I1"),
                vev("V1", "available_on_radio", T0 + 1000))
    last = out.engagement_rows[-1]
    assert (last.turnout_s, last.travel_s) == (60.0, 300.0)
    assert last.released_at == T0 + 1000 and last.dispatched_at == T0 + 10
    assert out.vehicle_rows[-1].category == "available" and out.vehicle_rows[-1].intervention_id == ""
    assert out.vehicle_rows[-2].intervention_id == "I1"


def test_event_older_than_the_sealed_time_and_repeated_event_id_do_not_change_state() -> None:
    st = station()
    out = apply(st, vev("V1", "dispatched", T0 + 10, "I1", event_id="a"), vev("V1", "en_route", T0 + 20, "I1"))
    st.seal(T0 + 15, out, CREWING)  # the windows up to T0 + 15 are final: an event before it is beyond the lateness
    before = copy.deepcopy(st.to_dict())
    out = StationOutput()
    assert st.apply(vev("V1", "available_at_station", T0 + 5), T0 + 5, out) is Outcome.STALE
    assert st.apply(vev("V1", "en_route", T0 + 20, "I1", event_id=st.vehicles["V1"].timeline[-1][1]), T0 + 20,
                    out) is Outcome.DUPLICATE
    assert without_counter(st.to_dict()) == without_counter(before)
    assert st.records == before["r"] + 2
    assert out.vehicle_rows == [] and out.engagement_rows == []
    # same time, another id: a real second event (minute-truncated CAD data) is applied
    assert st.apply(vev("V1", "on_scene", T0 + 20, "I1"), T0 + 20, out) is Outcome.APPLIED


def _final(st: StationState, out: StationOutput) -> tuple[object, ...]:
    """What ClickHouse keeps: the newest row per key (versions left out), and every window."""
    st.seal(T0 + 600, out, CREWING)
    def newest(rows, key):  # type: ignore[no-untyped-def]
        return sorted({key(r): r._replace(version=0) for r in rows}.values())
    return (newest(out.engagement_rows, lambda r: (r.intervention_id, r.vehicle_id)),
            newest(out.vehicle_rows, lambda r: r.vehicle_id), out.window_rows.rows())


def test_an_older_event_within_the_lateness_is_put_in_its_place() -> None:
    """The issue's two cases: dispatched (110 s) arriving after out_of_service (140 s), and en_route (260 s)
    before dispatched (200 s) of the next intervention. Rows equal those of the events in time order."""
    events = [vev("V1", "available_at_station", T0), vev("V2", "available_at_station", T0 + 1),
              vev("V1", "dispatched", T0 + 110, "I1"), vev("V1", "out_of_service", T0 + 140),
              vev("V1", "available_at_station", T0 + 180), vev("V1", "dispatched", T0 + 200, "I2"),
              vev("V1", "en_route", T0 + 260, "I2")]
    in_order = StationState.new("S1", REF, 60)
    expected = _final(in_order, apply(in_order, *events))
    disordered = StationState.new("S1", REF, 60)
    out = apply(disordered, *[events[i] for i in (0, 1, 3, 2, 4, 6, 5)])
    got = _final(disordered, out)
    assert got == expected
    engagements = {r.intervention_id: r for r in got[0]}
    assert engagements["I1"].released_at == T0 + 140 and engagements["I2"].turnout_s == 60.0
    assert out.outcomes["applied"] == 7


def test_redeployment_closes_previous_engagement() -> None:
    st = station()
    out = apply(st, vev("V1", "dispatched", T0, "I1"), vev("V1", "dispatched", T0 + 60, "I2"))
    closed = [r for r in out.engagement_rows if r.intervention_id == "I1"][-1]
    assert closed.released_at == T0 + 60
    assert st.vehicles["V1"].engagement.intervention_id == "I2"  # type: ignore[union-attr]


def test_windows_counts_minimum_and_engaged_minutes() -> None:
    st = station()  # V1, V2 (VSAV) and F1 (FPT), all unknown at first
    out = apply(st, vev("V1", "available_at_station", T0), vev("V2", "available_at_station", T0),
                vev("F1", "out_of_service", T0, vtype="FPT"),
                vev("V1", "dispatched", T0 + 15, "I1"),     # VSAV available 2 -> 1 at :15
                vev("V2", "dispatched", T0 + 30, "I2"),     # 1 -> 0 at :30
                vev("V2", "available_on_radio", T0 + 45),   # 0 -> 1 at :45
                vev("V1", "available_at_station", T0 + 90))  # next window: 1 -> 2 at 1:30
    st.seal(T0 + 180, out, CREWING)
    rows = {(r.window_start - T0, r.vehicle_type): r for r in out.window_rows}
    w0 = rows[(0, "VSAV")]
    assert (w0.available, w0.engaged, w0.out_of_service, w0.unknown, w0.min_available) == (1, 1, 0, 0, 0)
    # engaged: V1 from :15 to :60 (45 s) + V2 from :30 to :45 (15 s) = 60 s = 1 vehicle-minute
    assert w0.engaged_vehicle_minutes == 1.0
    w1 = rows[(60, "VSAV")]
    assert (w1.available, w1.engaged, w1.min_available, w1.engaged_vehicle_minutes) == (2, 0, 1, 0.5)
    w2 = rows[(120, "VSAV")]  # a quiet window is still emitted, counts carried over
    assert (w2.available, w2.min_available, w2.engaged_vehicle_minutes) == (2, 2, 0.0)
    assert rows[(0, "FPT")].out_of_service == 1
    assert (T0 + 180, "VSAV") not in rows  # still open


def test_simultaneous_changes_count_as_one_step_for_the_minimum() -> None:
    st = station()
    out = apply(st, vev("V1", "available_at_station", T0), vev("V2", "dispatched", T0, "I1"),
                vev("V1", "dispatched", T0 + 10, "I2"), vev("V2", "available_at_station", T0 + 10))
    st.seal(T0 + 60, out, CREWING)
    w0 = next(r for r in out.window_rows if r.vehicle_type == "VSAV")
    assert w0.min_available == 1  # V1 leaves as V2 comes back, at the same instant


def test_late_change_is_applied_to_the_open_window() -> None:
    st = station()
    out = apply(st, vev("V1", "available_at_station", T0), vev("V2", "available_at_station", T0 + 1))
    st.seal(T0 + 120, out, CREWING)
    apply(st, vev("V1", "dispatched", T0 + 30, "I1"), out=out)  # its window was already emitted
    st.seal(T0 + 180, out, CREWING)
    w = {r.window_start - T0: r for r in out.window_rows if r.vehicle_type == "VSAV"}
    assert w[0].available == 2 and w[60].available == 2
    assert w[120].available == 1 and w[120].engaged_vehicle_minutes == 1.0


def test_state_survives_serialisation() -> None:
    a = station()
    apply(a, vev("V1", "available_at_station", T0), vev("V1", "dispatched", T0 + 5, "I1"))
    b = StationState.from_dict(copy.deepcopy(a.to_dict()))
    oa, ob = StationOutput(), StationOutput()
    for st, out in ((a, oa), (b, ob)):
        apply(st, vev("V1", "en_route", T0 + 65, "I1", event_id="x"), out=out)
        st.seal(T0 + 200, out, CREWING)
    assert oa.window_rows == ob.window_rows and oa.engagement_rows == ob.engagement_rows
    assert a.to_dict() == b.to_dict()


def _rec(ev, key: str = "S1", offset: int = 0) -> Record:  # type: ignore[no-untyped-def]
    return Record("vehicle-status", 0, offset, key.encode(), ev.model_dump_json().encode())


def test_engine_dead_letters_bad_records_and_goes_on() -> None:
    engine = StationEngine(REF, 60, 0)
    store: dict[str, StationState] = {}
    good = vev("V1", "available_at_station", T0)
    records = [
        Record("vehicle-status", 0, 1, b"S1", b"{not json"),
        _rec(vev("V9", "available_at_station", T0), offset=2),
        _rec(vev("V3", "available_at_station", T0, station="S2"), key="S1", offset=3),
        _rec(good, offset=4),
    ]
    result = engine.process(records, {"stations": store})
    reasons = [d.reason for d in result.dead_letters]
    assert [d.record.offset for d in result.dead_letters] == [1, 2, 3]
    assert "not valid JSON" in reasons[0] and "unknown vehicle 'V9'" in reasons[1] and "home station" in reasons[2]
    assert store["S1"].vehicles["V1"].status is not None
    assert len(result.rows[next(k for k in result.rows if k.name == "vehicle_state")]) == 1


def test_engine_replay_of_a_batch_is_idempotent() -> None:
    engine = StationEngine(REF, 60, 0)
    store: dict[str, StationState] = {}
    evs = [vev("V1", "available_at_station", T0), vev("V1", "dispatched", T0 + 30, "I1"),
           vev("V2", "available_at_station", T0 + 70)]
    engine.process([_rec(e, offset=i) for i, e in enumerate(evs)], {"stations": store})
    snapshot = copy.deepcopy(store["S1"].to_dict())
    again = engine.process([_rec(e, offset=i) for i, e in enumerate(evs)], {"stations": store})
    assert without_counter(store["S1"].to_dict()) == without_counter(snapshot)
    assert store["S1"].records == 6  # consumed twice: the version of its capacity rows keeps growing
    assert again.outcomes["applied"] == 0 and again.outcomes["duplicate"] + again.outcomes["stale"] == 3
