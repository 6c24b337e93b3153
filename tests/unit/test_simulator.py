from collections import Counter
from datetime import UTC, datetime

from schemas.reference import Reference
from vigie.board import render
from vigie.settings import PROJECT_ROOT
from vigie.simulator import Simulator

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
