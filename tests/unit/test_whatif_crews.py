"""What-if with the history's crews (a scenario's ``crews = "history"``): the staff on duty from the crew records,
and a re-run whose units leave only when their station can crew them. Checked on hand-made records with stated
results, and on a simulated history against the seats and qualifications counted here from the raw records."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from core.settings import PROJECT_ROOT
from devtools.simulator import Simulator
from schemas.reference import CrewRules, Reference
from schemas.whatif import Scenario
from streams.crewing import Crewing
from streams.whatif.engine import ScenarioError, Unit, run
from streams.whatif.history import Call, Response
from streams.whatif.roster import Roster
from streams.whatif.study import History, roster_for
from streams.whatif.travel import TravelModel, TravelModels

CREWING = Crewing(CrewRules.default())
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
VSAV_CREW = (("p1", ["crew_leader"]), ("p2", ["driver"]), ("p3", ["team_member"]))


def crew_event(t: float, person: str, station: str, status: str, quals: list[str], n: int = 0) -> dict[str, Any]:
    return {"event_id": f"{person}-{t}-{n}", "event_time": datetime.fromtimestamp(T0 + t, UTC).isoformat(),
            "person_id": person, "station_id": station, "status": status, "qualifications": quals}


def test_the_roster_counts_staff_able_to_crew_per_station_after_each_change() -> None:
    events = [crew_event(0, "p1", "A", "available", ["crew_leader", "driver"]),
              crew_event(0, "p2", "A", "assigned", ["driver"]),
              crew_event(100, "p2", "A", "unavailable", ["driver"]),
              crew_event(200, "p1", "B", "available", ["crew_leader", "driver"]),  # moved to B
              crew_event(300, "p2", "A", "available", ["driver"]),
              crew_event(300, "p2", "A", "off_duty", ["driver"], 1)]  # the same instant: the last one holds
    roster = Roster.from_events(reversed(events), CREWING)  # any order
    assert roster is not None
    both, driver = 0b11, 0b10  # crew_leader is bit 0, driver bit 1
    assert roster.staff_at("A", T0 - 1) == {}
    assert roster.staff_at("A", T0) == {both: 1, driver: 1}  # assigned counts: the re-run replaces assignments
    assert roster.staff_at("A", T0 + 150) == {both: 1}
    assert roster.staff_at("A", T0 + 250) == {} and roster.staff_at("B", T0 + 250) == {both: 1}
    assert roster.staff_at("A", T0 + 300) == {}
    assert roster.staff_at("C", T0) is None  # a station the records do not know
    assert roster.next_change("A", T0) == T0 + 100 and roster.next_change("A", T0 + 200) == float("inf")
    assert Roster.from_events([], CREWING) is None


def test_a_unit_leaves_only_when_its_stations_staff_can_crew_it() -> None:
    """Station A (ambulances VA1, VA2) has one VSAV crew (crew leader, driver, team member) on duty; B, 1.1 km away,
    one ambulance and one crew. Two calls at A's door 60 s apart, each busy 1,800 s after arrival. Without crews:
    VA1 then VA2. With the records: VA1, then B's VB (A's only crew is out with VA1). B's crew unavailable from
    30 s: the second call waits — for A's second crew, on duty at 1,000 s; without it, for VA1 back at 1,920 s."""
    model = TravelModel(accel=1e9, cruise=10.0, start_s=60.0, sigma=1e-9)
    models = TravelModels({}, {}, model)
    a, b = (0.0, 0.0), (0.0, 0.01)
    fleet = {"VA1": Unit("VA1", "VSAV", "A", *a), "VA2": Unit("VA2", "VSAV", "A", *a),
             "VB": Unit("VB", "VSAV", "B", *b)}

    def call(cid: str, t: float) -> Call:
        return Call(cid, t, *a, "a", "rescue", 1, [Response("x", "VSAV", t, t + 60, t + 200, None, None, t + 2000)])

    calls = [call("c1", 0.0), call("c2", 60.0)]
    base = [crew_event(-100, p, "A", "available", q) for p, q in VSAV_CREW]
    base += [crew_event(-100, "b" + p, "B", "available", q) for p, q in VSAV_CREW]
    b_away = [crew_event(30, "b" + p, "B", "unavailable", q) for p, q in VSAV_CREW]
    a_second = [crew_event(1000, "a" + p, "A", "available", q) for p, q in VSAV_CREW]

    def served(events: list[dict[str, Any]] | None) -> list[tuple[str, str, float]]:
        roster = None if events is None else Roster.from_events([{**e} for e in events], CREWING)
        shifted = [Call(c.call_id, T0 + c.opened, c.lat, c.lon, c.sector, c.nature, c.priority,
                        [Response(r.unit, r.vehicle_type, T0 + r.dispatched, T0 + r.en_route, T0 + r.on_scene,
                                  None, None, T0 + r.available) for r in c.responses]) for c in calls]
        return [(c.call_id, r.unit, r.waited_s) for c in run(shifted, fleet, models, 0, roster=roster)
                for r in c.responses]

    assert served(None) == [("c1", "VA1", 0.0), ("c2", "VA2", 0.0)]
    assert served(base) == [("c1", "VA1", 0.0), ("c2", "VB", 0.0)]
    assert served(base + b_away + a_second) == [("c1", "VA1", 0.0), ("c2", "VA2", pytest.approx(1000.0 - 60.0))]
    # VA1: dispatched at 0, 60 s turnout, 60 s drive (0 m), then the 1,800 s after arrival: free at 1,920
    assert served(base + b_away) == [("c1", "VA1", 0.0), ("c2", "VA1", pytest.approx(1920.0 - 60.0))]


def test_a_rerun_with_the_simulated_historys_crews_never_sends_more_than_its_stations_staff() -> None:
    """Two simulated days with staff for half the seats. At each dispatch of the re-run, counted here from the raw
    crew records and the re-run's responses: the station's staff on duty able to crew (available or assigned) holds
    at least the seats of its units out then, in all and per qualification. Without the crews the re-run breaks that
    at some dispatches (the check can fail); with them, never — and its ambulances arrive later."""
    ref = Reference.load(PROJECT_ROOT / "deploy" / "reference" / "paris-sim")
    events = [(e.topic, e.event.model_dump(mode="json"))
              for e in Simulator(ref, seed=3, start=datetime(2026, 1, 9, 6, tzinfo=UTC), staffing_ratio=0.5)
              .events(2 * 86400)]
    history = History.from_events(events, ref, "simulated")
    assert history.roster is not None
    person: dict[str, tuple[float, str, str, str, tuple[str, ...]]] = {}  # person -> latest record
    timeline: dict[str, list[tuple[float, str, str, str, tuple[str, ...]]]] = defaultdict(list)
    for topic, ev in events:
        if topic == "crew-status":
            timeline[ev["station_id"]].append((datetime.fromisoformat(ev["event_time"]).timestamp(), ev["event_id"],
                                               ev["person_id"], ev["status"], tuple(ev["qualifications"])))
    seats = {t: {q.value: n for q, n in need.items()} for t, need in ref.crew_rules.requirements.items()}

    def on_duty(station: str, t: float) -> list[tuple[str, ...]]:
        person.clear()
        for rec in sorted(timeline[station]):
            if rec[0] > t:
                break
            person[rec[2]] = rec
        return [r[4] for r in person.values() if r[3] in ("available", "assigned")]

    def breaches(calls: list[Call]) -> int:
        spans = [(r.dispatched, r.available if r.available is not None else float("inf"), r.unit)
                 for c in calls for r in c.responses]
        n = 0
        for t, _, unit in spans:
            station = history.units[unit].station
            out = [history.units[u].vehicle_type for d, f, u in spans
                   if history.units[u].station == station and d <= t < f]
            need = Counter[str]()
            for vtype in out:
                need.update(seats.get(vtype, {}))
            staff = on_duty(station, t)
            short = sum(need.values()) > len(staff) or any(n_q > sum(q in p for p in staff)
                                                           for q, n_q in need.items())
            n += short
        return n

    models = TravelModels.fit(history.trips())
    free = run(history.calls, history.units, models, 0)
    crewed = run(history.calls, history.units, models, 0, roster=history.roster)
    assert breaches(free) > 0
    assert breaches(crewed) == 0

    def vsav_p1_median(calls: list[Call]) -> float:
        firsts = sorted(min(r.on_scene for r in c.responses if r.vehicle_type == "VSAV" and r.on_scene is not None)
                        - c.opened for c in calls if c.priority == 1
                        and any(r.vehicle_type == "VSAV" and r.on_scene is not None for r in c.responses))
        return firsts[len(firsts) // 2]
    assert vsav_p1_median(crewed) > vsav_p1_median(free)


def test_crews_from_the_history_need_crew_records_and_exclude_staffing() -> None:
    with pytest.raises(ValueError, match='staffing: given with crews = "history"'):
        Scenario(staffing={"A": 1}, crews="history")
    ref = Reference.load(PROJECT_ROOT / "deploy" / "reference" / "paris-sim")
    events = [(e.topic, e.event.model_dump(mode="json"))
              for e in Simulator(ref, seed=1, start=datetime(2026, 1, 9, 6, tzinfo=UTC), crews=False).events(6 * 3600)]
    history = History.from_events(events, ref, "simulated")
    assert history.roster is None and roster_for(history, Scenario()) is None
    with pytest.raises(ScenarioError, match="no crew records"):
        roster_for(history, Scenario(crews="history"))
