from collections import Counter
from datetime import UTC, datetime

from core.settings import PROJECT_ROOT
from devtools.simulator import Simulator
from schemas.reference import Reference
from vigie.board import render

REF = Reference.load(PROJECT_ROOT / "deploy" / "reference" / "paris-sim")
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday


def day(seed: int) -> list:  # type: ignore[type-arg]
    return list(Simulator(REF, seed=seed, start=START).events(86400))


def test_same_seed_same_events_and_time_order() -> None:
    a, b = day(4), day(4)
    assert [e.event.model_dump_json() for e in a] == [e.event.model_dump_json() for e in b]
    times = [e.event.event_time for e in a]
    assert times == sorted(times)
    assert len({e.event.event_id for e in a}) == len(a)


def test_volume_daily_profile_and_engagement_by_nature() -> None:
    events = day(5)
    opened = [e.event for e in events if e.topic == "interventions" and e.event.lifecycle.value == "opened"]
    assert 1150 <= len(opened) <= 1650  # ~500,000 a year
    by_hour = Counter(e.event_time.hour for e in opened)
    assert sum(by_hour[h] for h in range(2, 6)) * 2 < sum(by_hour[h] for h in range(16, 20))
    engaged: dict[str, set[str]] = {}
    for e in events:
        ev = e.event
        if e.topic == "vehicle-status" and ev.status.value == "dispatched":
            engaged.setdefault(ev.intervention_id, set()).add(ev.vehicle_type)
    nature = {o.intervention_id: o.nature.value for o in opened}
    rescue = [engaged[i] for i, n in nature.items() if n == "rescue_to_person" and i in engaged]
    assert rescue and all(types == {"VSAV"} for types in rescue)
    fires = [engaged[i] for i, n in nature.items() if n == "fire" and i in engaged]
    assert fires and sum({"FPT", "VSAV"} <= t for t in fires) >= 0.9 * len(fires)


def test_every_vehicle_reports_first_and_lifecycle_is_plausible() -> None:
    events = day(6)
    first = {}
    for e in events:
        if e.topic == "vehicle-status":
            first.setdefault(e.event.vehicle_id, e.event.status.value)
    assert len(first) == len(REF.fleet) and set(first.values()) == {"available_at_station"}


def test_board_renders_capacity_per_area_and_type() -> None:
    text = render([("G1", "VSAV", "available", 5), ("G1", "VSAV", "engaged", 2), ("G2", "FPT", "available", 1)],
                  [("fire", 2), ("rescue_to_person", 7)], 12.0, "clock")
    assert "5/7" in text and "1/1" in text and "open interventions: 9" in text
    assert "crews: not reported" in text


def test_board_renders_staffed_capacity_and_staff_by_qualification() -> None:
    text = render([("G1", "VSAV", "available", 5)], [], 0.0, "clock",
                  staffed=[("G1", "VSAV", 5, 3), ("G1", "FPT", 1, 1)],
                  staff=[("G1", "driver", 2, 6), ("G1", "crew_leader", 1, 4)])
    line = next(row for row in text.splitlines() if row.startswith("  area G1") and "!" in row)
    assert "3/5!" in line and "1/1 " in line
    lines = text.splitlines()
    staff_line = lines[next(i for i, row in enumerate(lines) if row.startswith("staff free / on duty")) + 1]
    assert "1/4" in staff_line and "2/6" in staff_line and "0/0" in staff_line


def test_crews_leave_with_their_vehicles_and_follow_the_watches() -> None:
    events = list(Simulator(REF, seed=9, start=START).events(2 * 86400))
    rules = REF.crew_rules
    status: dict[str, str] = {}
    station_of: dict[str, str] = {}
    crew_of: dict[str, dict[str, list[str]]] = {}  # vehicle -> person -> qualifications
    dispatched_at: dict[str, float] = {}
    on_duty_by_day: dict[tuple[str, int], set[str]] = {}
    for e in events:
        ev = e.event
        t = ev.event_time.timestamp()
        if e.topic == "vehicle-status" and ev.status.value == "dispatched":
            dispatched_at[ev.vehicle_id] = t
            crew_of[ev.vehicle_id] = {}
        if e.topic != "crew-status":
            continue
        assert e.key == ev.station_id and "name" not in ev.model_dump()
        station_of.setdefault(ev.person_id, ev.station_id)
        assert station_of[ev.person_id] == ev.station_id
        if ev.status.value == "assigned":
            assert status.get(ev.person_id) == "available"  # only free staff leave
            assert dispatched_at[ev.vehicle_id] == t  # with the vehicle's dispatch
            assert REF.fleet[ev.vehicle_id].home_station == ev.station_id
            crew_of[ev.vehicle_id][ev.person_id] = [q.value for q in ev.qualifications]
        if ev.status.value != "off_duty":
            on_duty_by_day.setdefault((ev.station_id, int((t - 7 * 3600) // 86400)), set()).add(ev.person_id)
        status[ev.person_id] = ev.status.value
    assert crew_of and all(crew_of.values())
    for vid, crew in crew_of.items():  # each crew fills its vehicle's seats exactly
        seats = rules.requirements[REF.fleet[vid].vehicle_type]
        assert len(crew) == sum(seats.values()), vid
        for q, n in seats.items():
            assert sum(q.value in quals for quals in crew.values()) >= n
    # a new watch each day: the people on duty one day are not those of the next
    station = next(iter(REF.stations))
    days = sorted(d for s, d in on_duty_by_day if s == station)
    assert len(days) >= 2 and not on_duty_by_day[(station, days[1])] & on_duty_by_day[(station, days[2])]
    seen = {e.event.status.value for e in events if e.topic == "crew-status"}
    assert seen == {"available", "assigned", "off_duty", "unavailable"}


def test_major_incidents_engage_thirty_vsav_in_one_area_and_come_from_their_own_stream() -> None:
    from collections import Counter
    from datetime import UTC, datetime

    from core.settings import Settings
    from devtools.simulator import MAJOR_NEEDS, Simulator
    from schemas.reference import Reference

    ref = Reference.load(Settings().reference_dir)
    start = datetime(2026, 1, 9, tzinfo=UTC)
    plain = list(Simulator(ref, seed=3, start=start, crews=False).events(6 * 3600))
    majors = list(Simulator(ref, seed=3, start=start, crews=False, major_incidents_per_day=4).events(6 * 3600))
    dispatched = Counter(e.event.intervention_id for e in majors
                         if e.topic == "vehicle-status" and e.event.status.value == "dispatched")
    big = [iid for iid, n in dispatched.items() if n >= 20]
    assert big, "no major incident in 6 h at 4 a day"
    for iid in big:
        units = {e.event.vehicle_id: e.event.vehicle_type for e in majors if e.topic == "vehicle-status"
                 and e.event.intervention_id == iid and e.event.status.value == "dispatched"}
        assert Counter(units.values()) == Counter(MAJOR_NEEDS)  # the area had them all to give
    # until the first major incident, the events are those of the same seed without any
    first = next(i for i, e in enumerate(majors) if e.topic == "interventions" and e.event.intervention_id == big[0])
    assert [e.event for e in majors[:first]] == [e.event for e in plain[:first]]


def _waits_and_stays(events: list) -> tuple[list[tuple[float, int]], list[float]]:  # type: ignore[type-arg]
    """Calls waiting more than 5 minutes for their first dispatch (minutes, priority); minutes at hospital."""
    opened = {e.event.intervention_id: e.event for e in events
              if e.topic == "interventions" and e.event.lifecycle.value == "opened"}
    first: dict[str, float] = {}
    arrived: dict[str, float] = {}
    stays = []
    for e in events:
        ev = e.event
        if e.topic != "vehicle-status":
            continue
        t = ev.event_time.timestamp()
        if ev.status.value == "dispatched":
            first.setdefault(ev.intervention_id, t)
        elif ev.status.value == "at_hospital":
            arrived[ev.vehicle_id] = t
        elif ev.vehicle_id in arrived:
            stays.append((t - arrived.pop(ev.vehicle_id)) / 60)
    waits = [((first[i] - o.event_time.timestamp()) / 60, o.priority) for i, o in opened.items() if i in first]
    return [(w, p) for w, p in waits if w > 5], stays


def test_delays_a_few_non_urgent_calls_wait_and_a_few_ambulances_at_hospital() -> None:
    """What the alerts on interventions waiting for a unit and units stuck at hospital have to see in make run;
    without delays (``delays=False``), neither."""
    waits, stays = _waits_and_stays(day(6))
    assert 5 <= len(waits) <= 40  # ~4 % of ~450 priority-3 calls
    assert all(p == 3 and 6 <= w <= 16.5 for w, p in waits)
    long = [s for s in stays if s > 45]
    assert 5 <= len(long) <= 0.1 * len(stays) and all(50 <= s <= 90 for s in long)
    plain = list(Simulator(REF, seed=6, start=START, delays=False).events(86400))
    waits, stays = _waits_and_stays(plain)
    assert not waits and max(stays) <= 35


def test_an_intervention_no_vehicle_can_answer_is_closed_ten_minutes_after_its_dispatch_time() -> None:
    """Staff for under a third of the seats: some calls find no crewed vehicle at all. Each such intervention is closed
    (600 s after the dispatch time it would have had, itself 30-90 s after opening, or a deferred one's 6-15 min
    more), and the simulator goes on (it used to stop on a KeyError)."""
    sim = Simulator(REF, seed=3, start=START, staffing_ratio=0.3)
    events = list(sim.events(2 * 86400))
    opened: dict[str, float] = {}
    closed: dict[str, float] = {}
    dispatched: set[str] = set()
    for e in events:
        ev = e.event
        if e.topic == "interventions":
            (opened if ev.lifecycle.value == "opened" else closed)[ev.intervention_id] = ev.event_time.timestamp()
        elif e.topic == "vehicle-status" and ev.status.value == "dispatched":
            dispatched.add(ev.intervention_id)
    end = START.timestamp() + 2 * 86400
    unanswered = [i for i in opened if i not in dispatched and opened[i] < end - 3600]  # closed within the run
    assert sim.shortfalls > 0 and unanswered
    assert all(i in closed and 630 <= closed[i] - opened[i] <= 690 + 15 * 60 for i in unanswered)
