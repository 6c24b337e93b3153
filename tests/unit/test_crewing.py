"""The crewing rule on hand-made cases, and its feasibility test against a brute-force assignment."""

from __future__ import annotations

import itertools
import random

from schemas.events import Qualification as Q
from schemas.reference import CrewRules
from streams.crewing import QUALIFICATIONS, Crewing, profile_mask

CL, DRV, TL, TM = Q.CREW_LEADER, Q.DRIVER, Q.TEAM_LEADER, Q.TEAM_MEMBER
RULES = CrewRules.default()  # VSAV: CL+DRV+TM, FPT: CL+DRV+2TL+2TM, EPA: CL+DRV, ...


def staff(*people: tuple[Q, ...]) -> dict[int, int]:
    out: dict[int, int] = {}
    for quals in people:
        m = profile_mask(quals)
        out[m] = out.get(m, 0) + 1
    return out


def test_two_vehicles_competing_for_the_same_driver_are_both_crewed() -> None:
    # Two EPAs need a crew leader and a driver each. P1 is both; P2 and P4 only lead, P3 only drives.
    # Filling seats one by one (P1 as the first crew leader, P3 as driver) would strand the second EPA
    # without a driver; the rule finds the assignment that crews both (P1 drives).
    people = staff((CL, DRV), (CL,), (DRV,), (CL,))
    assert Crewing(RULES).staffed({"EPA": 2}, people) == {"EPA": 2}
    # without P4 only one can leave, whoever drives it
    assert Crewing(RULES).staffed({"EPA": 2}, staff((CL, DRV), (CL,), (DRV,))) == {"EPA": 1}


def test_higher_priority_type_is_crewed_first_and_the_rest_from_what_is_left() -> None:
    rules = Crewing(RULES)
    # crew for one VSAV (CL, DRV, TM) or part of an FPT: the VSAV goes first
    three = staff((CL,), (DRV,), (TM,))
    assert rules.staffed({"VSAV": 1, "FPT": 1}, three) == {"VSAV": 1, "FPT": 0}
    # two leaders, two drivers, one team member: one VSAV, and the EPA (no team member needed)
    five = staff((CL,), (CL,), (DRV,), (DRV,), (TM,))
    assert rules.staffed({"VSAV": 2, "EPA": 1}, five) == {"VSAV": 1, "EPA": 1}


def test_a_crew_leader_holding_lower_qualifications_fills_a_team_seat() -> None:
    leaders = staff((CL, TL, TM), (CL, TL, TM), (CL, TL, TM), (DRV,))
    # VSAV: one leads, one drives... only one driver, so one VSAV; its team member is a crew leader
    assert Crewing(RULES).staffed({"VSAV": 2}, leaders) == {"VSAV": 1}


def test_fpt_needs_its_full_crew_of_six() -> None:
    five = staff((CL,), (DRV, TM), (TL, TM), (TL, TM), (TM,))
    assert Crewing(RULES).staffed({"FPT": 1}, five) == {"FPT": 0}
    six = staff((CL,), (DRV, TM), (TL, TM), (TL, TM), (TM,), (TM,))
    assert Crewing(RULES).staffed({"FPT": 1}, six) == {"FPT": 1}


def test_no_staff_no_capacity_and_types_without_vehicles_stay_zero() -> None:
    assert Crewing(RULES).staffed({"VSAV": 3, "FPT": 0}, {}) == {"VSAV": 0, "FPT": 0}


def _brute_force_feasible(seats: list[Q], people: list[tuple[Q, ...]]) -> bool:
    """Try every way to give the seats to distinct people."""
    if len(seats) > len(people):
        return False
    return any(all(seat in people[i] for seat, i in zip(seats, chosen, strict=True))
               for chosen in itertools.permutations(range(len(people)), len(seats)))


def test_feasibility_agrees_with_brute_force_assignment() -> None:
    rng = random.Random(11)
    for _ in range(300):
        people = [tuple(q for q in QUALIFICATIONS if rng.random() < 0.4) or (TM,) for _ in range(rng.randint(0, 6))]
        demand = [rng.randint(0, 2) for _ in QUALIFICATIONS]
        seats = [q for q, n in zip(QUALIFICATIONS, demand, strict=True) for _ in range(n)]
        if len(seats) > 6:
            continue
        counts = staff(*people)
        supply = [sum(n for m, n in counts.items() if m & subset) for subset in range(16)]
        assert Crewing._feasible(demand, supply) == _brute_force_feasible(seats, people), (people, seats)


def test_rules_load_from_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "crew_requirements.csv"
    path.write_text("vehicle_type,priority,crew_leader,driver,team_leader,team_member\n"
                    "FPT,1,1,1,2,2\nVSAV,2,1,1,0,1\n")
    rules = CrewRules.load(path, ["FPT", "VSAV"])
    assert rules.priority == ("FPT", "VSAV") and rules.crew_size("FPT") == 6
    assert Crewing(rules).staffed({"VSAV": 1, "FPT": 1}, staff((CL,), (DRV,), (TM,))) == {"VSAV": 1, "FPT": 0}
    assert Crewing(rules).staffed({"VSAV": 1, "FPT": 1}, staff(
        (CL,), (DRV,), (TL, TM), (TL, TM), (TM,), (TM,), (CL,), (DRV,))) == {"FPT": 1, "VSAV": 0}


def test_shipped_reference_states_the_default_requirements(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.settings import PROJECT_ROOT
    from schemas.reference import Reference

    ref = Reference.load(PROJECT_ROOT / "deploy" / "reference" / "paris-sim")
    assert ref.crew_rules == RULES
    ref.write(tmp_path)  # `vigie reference` writes them too
    assert Reference.load(tmp_path).crew_rules == RULES


def test_the_memo_stays_within_its_bound_and_never_changes_an_answer() -> None:
    # a live worker meets new (vehicles, staff) mixes for weeks: the memo must not grow with them (issue #13)
    rng = random.Random(5)
    memo, once = Crewing(RULES, memo_size=64), Crewing(RULES, memo_size=1)
    masks = [profile_mask(q) for q in ((CL,), (DRV,), (TL,), (TM,), (CL, DRV), (TL, TM), (CL, DRV, TL, TM))]
    sizes = []
    for _ in range(2000):
        vehicles = {t: rng.randint(0, 2) for t in ("VSAV", "FPT", "EPA")}
        people = {m: rng.randint(0, 3) for m in rng.sample(masks, 4)}
        assert memo.staffed(vehicles, people) == once.staffed(vehicles, people)
        sizes.append(len(memo._memo))
    assert max(sizes) == 64  # filled up to its bound, never past it
