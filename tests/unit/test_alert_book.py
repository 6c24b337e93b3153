"""The alert book (streams/alert_book.py): rules over every station's sealed values, whatever the order and
cut of the sources' messages, repeats included; and its state across a restart."""

from __future__ import annotations

import math
import os
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from schemas.alert_rules import Rule, RuleSet
from schemas.reference import FleetVehicle, Reference, Station
from streams.alert_book import CALL_EXPIRY_S, DISPATCHED_LOOK_S, AlertBook, watched_values
from streams.windows import Watched
from tests.helpers import NO_VSAV_IN_AREA

EXAMPLES = int(os.environ.get("VIGIE_PROPERTY_EXAMPLES", "200"))

REF = Reference.build(
    [Station(station_id="S1", name="one", area="A", lat=48.8, lon=2.3),
     Station(station_id="S2", name="two", area="A", lat=48.8, lon=2.4),
     Station(station_id="S3", name="three", area="B", lat=48.9, lon=2.3)],
    [FleetVehicle(vehicle_id="V1", vehicle_type="VSAV", home_station="S1"),
     FleetVehicle(vehicle_id="V2", vehicle_type="VSAV", home_station="S1"),
     FleetVehicle(vehicle_id="V3", vehicle_type="VSAV", home_station="S2"),
     FleetVehicle(vehicle_id="V4", vehicle_type="VSAV", home_station="S3"),
     FleetVehicle(vehicle_id="F1", vehicle_type="FPT", home_station="S3")])
SOURCES = ("stations/0", "stations/1")  # S1 and S3 on partition 0, S2 on partition 1 (as the tests cut them)
SOURCE_OF = {"S1": "stations/0", "S3": "stations/0", "S2": "stations/1"}


def rules(text: str) -> tuple[Rule, ...]:
    return RuleSet.model_validate({"rule": [dict(r) for r in _toml(text)]}).rule


def _toml(text: str) -> list[dict[str, object]]:
    import tomllib

    return tomllib.loads(text)["rule"]  # type: ignore[no-any-return]


NO_VSAV = rules(NO_VSAV_IN_AREA)


def vsav(t: float, station: str, available: int, staffed: int = -1) -> tuple[float, str, int, str, int, int]:
    return (t, station, 0, "VSAV", available, staffed)


def saved(book: AlertBook) -> tuple[dict[str, object], dict[int, list[list[object]]]]:
    """The book as its changelog holds it: its state, and the chunks of its waiting steps."""
    book.waiting_chunks()
    return book.to_dict(), dict(book.chunk_data)


def transitions(book: AlertBook) -> list[tuple[str, str, float, str, float, str]]:
    return [(tr.rule.name, tr.scope_key, tr.change.at, tr.change.transition.value, tr.change.value, tr.message)
            for tr in book.transitions()]


def feed(book: AlertBook, messages: list[tuple[str, float, list[tuple[float, str, int, str, int, int]]]]) -> None:
    for source, until, steps in messages:
        book.take(source, until, steps)
        book.settle()


def test_an_area_without_vsav_fires_once_per_episode_and_resolves_after_keep_firing_for() -> None:
    book = AlertBook(NO_VSAV, REF, SOURCES)
    feed(book, [
        ("stations/0", 150, [vsav(100, "S1", 2), vsav(100, "S3", 1)]),
        ("stations/1", 260, [vsav(100, "S2", 1), vsav(250, "S2", 0)]),
        ("stations/0", 450, [vsav(200, "S1", 0), vsav(400, "S1", 1)]),
        ("stations/1", 600, [vsav(300, "S2", 1), vsav(350, "S2", 0)]),
    ])
    # A: 3 until 200, 1 until 250, none from 250 (fires at once), one back at 300 and gone again at 350 (within
    # the 2 minutes: the same episode), back for good at 400. B never runs out.
    assert transitions(book) == [
        ("no-vsav-in-area", "A/VSAV", 250, "pending", 0, "No VSAV available in A"),
        ("no-vsav-in-area", "A/VSAV", 250, "firing", 0, "No VSAV available in A"),
    ]
    assert book.clock == 450  # S1 is known up to 450 only: the resolution (at 520) is not known yet
    feed(book, [("stations/0", 700, [])])
    assert transitions(book) == [("no-vsav-in-area", "A/VSAV", 520, "resolved", 0, "No VSAV available in A")]


def test_a_repeated_or_recut_message_changes_nothing() -> None:
    once = AlertBook(NO_VSAV, REF, SOURCES)
    again = AlertBook(NO_VSAV, REF, SOURCES)
    s0 = [("stations/0", 300, [vsav(100, "S1", 0), vsav(100, "S3", 1)])]
    s1 = [("stations/1", 300, [vsav(100, "S2", 0), vsav(200, "S2", 1)])]
    feed(once, s0 + s1 + [("stations/0", 500, []), ("stations/1", 500, [])])
    # a crash upstream: the stations partition 1 restarts from an older state and cuts its steps differently
    feed(again, [*s0, ("stations/1", 150, [vsav(100, "S2", 0)]), *s1, *s0,
                 ("stations/0", 500, []), ("stations/1", 500, [vsav(200, "S2", 1)])])
    assert transitions(once) == transitions(again) == [
        ("no-vsav-in-area", "A/VSAV", 100, "pending", 0, "No VSAV available in A"),
        ("no-vsav-in-area", "A/VSAV", 100, "firing", 0, "No VSAV available in A"),
        ("no-vsav-in-area", "A/VSAV", 320, "resolved", 0, "No VSAV available in A"),
    ]


def test_a_station_that_never_reported_counts_in_no_scope_and_a_silent_source_holds_the_clock() -> None:
    book = AlertBook(NO_VSAV, REF, SOURCES)
    feed(book, [("stations/0", 1000, [vsav(100, "S1", 0)])])
    assert transitions(book) == []  # partition 1 not heard from: nothing is known past -inf
    feed(book, [("stations/1", 1000, [])])
    # S2 never reported: area A is S1 alone, which has none left
    assert [t[2:4] for t in transitions(book)] == [(100, "pending"), (100, "firing")]
    book.finish()  # nothing further: still firing


SHARE_AND_CREWS = rules('''
[[rule]]
name = "crewed-vsav-share"
measure = "available_share"
scope = "area"
vehicle_type = "VSAV"
staffed = true
fire_at = 50
clear_at = 60
for = "1m"
message = "{area}: {value}% of VSAV crewed"

[[rule]]
name = "no-crew-leader"
measure = "staff_on_duty"
scope = "station"
qualification = "crew_leader"
fire_at = 0
clear_at = 1
message = "{station}: no crew leader"
''')


def test_a_staffed_share_counts_the_stations_whose_crews_are_tracked_against_their_fleet() -> None:
    book = AlertBook(SHARE_AND_CREWS, REF, SOURCES)
    feed(book, [
        # S1 tracks crews (2 VSAV, 2 crewed then 0), S2 does not (-1): only S1's fleet counts
        ("stations/0", 500, [vsav(100, "S1", 2, 2), (100, "S1", 1, "crew_leader", 2, 2), vsav(200, "S1", 2, 0),
                             (200, "S1", 1, "crew_leader", 0, 0), (400, "S1", 1, "crew_leader", 1, 1)]),
        ("stations/1", 500, [vsav(100, "S2", 1)]),
    ])
    assert transitions(book) == [
        ("crewed-vsav-share", "A/VSAV", 200, "pending", 0, "A: 0% of VSAV crewed"),
        ("no-crew-leader", "S1/crew_leader", 200, "pending", 0, "S1: no crew leader"),
        ("no-crew-leader", "S1/crew_leader", 200, "firing", 0, "S1: no crew leader"),
        ("crewed-vsav-share", "A/VSAV", 260, "firing", 0, "A: 0% of VSAV crewed"),
        ("no-crew-leader", "S1/crew_leader", 400, "resolved", 0, "S1: no crew leader"),
    ]


def test_the_state_round_trips_mid_stream() -> None:
    messages = [("stations/0", 150, [vsav(100, "S1", 0), vsav(100, "S3", 0)]),
                ("stations/1", 150, [vsav(100, "S2", 0)]),
                ("stations/0", 400, [vsav(200, "S1", 1)]),
                ("stations/1", 400, [vsav(300, "S2", 1)]),
                ("stations/0", 900, [vsav(500, "S3", 1)]), ("stations/1", 900, [])]
    whole = AlertBook(NO_VSAV, REF, SOURCES)
    feed(whole, messages)
    first = AlertBook(NO_VSAV, REF, SOURCES)
    feed(first, messages[:3])
    got = transitions(first)
    restarted = AlertBook(NO_VSAV, REF, SOURCES)
    restarted.restore(*saved(first))
    feed(restarted, messages[2:])  # the message before the crash comes again
    assert got + transitions(restarted) == transitions(whole)
    assert transitions(whole) == []  # taken
    assert [(t[1], t[2], t[3]) for t in got] == [("A/VSAV", 100, "pending"), ("A/VSAV", 100, "firing"),
                                                  ("B/VSAV", 100, "pending"), ("B/VSAV", 100, "firing")]


def test_a_changed_rule_ends_its_alerts() -> None:
    book = AlertBook(NO_VSAV, REF, SOURCES)
    feed(book, [("stations/0", 300, [vsav(100, "S1", 0)]), ("stations/1", 300, [vsav(100, "S2", 0)])])
    assert len(transitions(book)) == 2
    looser = rules(NO_VSAV_IN_AREA.replace('keep_firing_for = "2m"', 'for = "5m"'))
    ended = book.retire(looser)
    assert [(tr.scope_key, tr.change.at, tr.change.transition.value) for tr in ended] == [("A/VSAV", 300, "resolved")]
    fresh = AlertBook(looser, REF, SOURCES)
    fresh.restore(*saved(book))
    feed(fresh, [("stations/0", 800, []), ("stations/1", 800, [])])
    assert transitions(fresh) == []  # values kept (A still has none) but no new observation: a new episode waits


# --- any cut, interleaving and repeat of the sources' messages gives the same transitions -----------------------

def cut_and_interleaved(rng: random.Random, steps: list[Any], until: float) -> list[tuple[str, float, list[Any]]]:
    """Each source's steps (``step[1]``: a station) cut into messages at random times up to ``until``, some
    repeated later (as after a crash upstream), the sources' messages interleaved at random."""
    per_source = {}
    for source in SOURCES:
        mine = [s for s in steps if SOURCE_OF[s[1]] == source]
        cuts = sorted({rng.choice([s[0] for s in mine]) + rng.choice([0.0, 5.0]) for _ in range(3)} if mine else set())
        messages, start = [], -math.inf
        for cut in [*cuts, until]:
            if cut > start:
                messages.append((source, cut, [s for s in mine if start <= s[0] < cut]))
                start = cut
        repeated = list(messages)
        for _ in range(rng.randrange(3)):
            i = rng.randrange(len(messages))
            repeated.insert(rng.randrange(i + 1, len(repeated) + 1), messages[i])
        per_source[source] = repeated
    interleaved = []
    while any(per_source.values()):
        interleaved.append(per_source[rng.choice([s for s, q in per_source.items() if q])].pop(0))
    return interleaved


def _oracle(steps: list[tuple[float, str, int, str, int, int]], until: float, keep: float
            ) -> list[tuple[str, float, str]]:
    """(area, time, transition) of the no-VSAV rule, from the step function of each area's sum (stations that
    reported): on when 0, off when >= 1; pending and firing at once; resolved ``keep`` after the last off."""
    out = []
    for area in ("A", "B"):
        values: dict[str, int] = {}
        series: list[tuple[float, int]] = []
        for t, station, _, _, n, _ in sorted(steps):
            if REF.stations[station].area == area and t < until:
                values[station] = n
                if series and series[-1][0] == t:
                    series.pop()
                series.append((t, sum(values.values())))
        firing, off_since = False, math.nan
        for t, v in series:
            if v == 0 and not firing:
                out += [(area, t, "pending"), (area, t, "firing")]
                firing, off_since = True, math.nan
            elif v == 0:
                if not math.isnan(off_since) and t >= off_since + keep:
                    out += [(area, off_since + keep, "resolved"), (area, t, "pending"), (area, t, "firing")]
                off_since = math.nan
            elif firing and math.isnan(off_since):
                off_since = t
            elif firing and t >= off_since + keep:
                out.append((area, off_since + keep, "resolved"))
                firing, off_since = False, math.nan
        if firing and not math.isnan(off_since) and off_since + keep <= until:
            out.append((area, off_since + keep, "resolved"))
    return sorted(out, key=lambda x: (x[1], x[0], x[2] != "pending"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["S1", "S2", "S3"]), st.integers(0, 2)),
                min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_any_cut_interleaving_and_repeat_gives_the_oracles_transitions(
        raw: list[tuple[int, str, int]], seed: int) -> None:
    rng = random.Random(seed)
    steps = sorted({(t * 10.0, s): vsav(t * 10.0, s, n) for t, s, n in raw}.values())  # one value per instant
    until = 700.0
    book = AlertBook(NO_VSAV, REF, SOURCES)
    feed(book, cut_and_interleaved(rng, steps, until))
    got = [(t[1].split("/")[0], t[2], t[3]) for t in transitions(book)]
    assert sorted(got, key=lambda x: (x[1], x[0], x[2] != "pending")) == _oracle(steps, until, 120.0)


# --- a unit too long in a status: a timer whose deadline passes with the clock -----------------------------------

ON_SCENE = rules('''
[[rule]]
name = "on-scene-over-3min"
measure = "status_minutes"
scope = "unit"
status = "on_scene"
fire_at = 3
clear_at = 0
severity = "warning"
message = "{unit} ({station}, {vehicle_type}) on scene of {intervention} for {value} min"
''')
UnitStep = tuple[float, str, str, str, str]


def unit(t: float, vehicle: str, status: str, iid: str = "") -> UnitStep:
    return (t, REF.fleet[vehicle].home_station, vehicle, status, iid)


def test_a_unit_on_scene_too_long_fires_at_its_deadline_without_any_further_status() -> None:
    book = AlertBook(ON_SCENE, REF, SOURCES)
    book.take("stations/1", 5000, [])  # S2's partition: known far ahead, nothing to say
    book.take("stations/0", 100, [], [unit(50, "V1", "on_scene", "I1"), unit(60, "F1", "on_scene", "I2")])
    book.settle()
    assert transitions(book) == []
    # F1 leaves at 220, before its deadline (240); V1's deadline (230) passes with the clock alone
    book.take("stations/0", 231, [], [unit(220, "F1", "returning", "I2")])
    book.settle()
    fired = "V1 (S1, VSAV) on scene of I1 for 3 min"
    assert transitions(book) == [("on-scene-over-3min", "S1/V1", 230, "pending", 3, fired),
                                 ("on-scene-over-3min", "S1/V1", 230, "firing", 3, fired)]
    # V1 leaves at 500: resolved, with the time it spent on scene; F1 back on scene at 300, leaving at its
    # deadline exactly (480): not fired
    book.take("stations/0", 600, [], [unit(300, "F1", "on_scene", "I3"), unit(480, "F1", "returning", "I3"),
                                      unit(500, "V1", "returning", "I1")])
    book.settle()
    assert transitions(book) == [("on-scene-over-3min", "S1/V1", 500, "resolved", 7.5,
                                  "V1 (S1, VSAV) on scene of I1 for 7.5 min")]


def test_two_episodes_of_a_unit_taken_at_once_name_their_own_intervention() -> None:
    """The batch path takes a chunk's transitions at once: each episode's message names the intervention the unit
    served then, not the latest."""
    book = AlertBook(ON_SCENE, REF, SOURCES)
    book.take("stations/1", 5000, [])
    book.take("stations/0", 2000, [], [unit(0, "V1", "on_scene", "I1"), unit(300, "V1", "returning", "I1"),
                                       unit(400, "V1", "on_scene", "I2"), unit(700, "V1", "returning", "I2")])
    book.settle()
    assert [(t[2], t[3], t[5]) for t in transitions(book)] == [
        (180, "pending", "V1 (S1, VSAV) on scene of I1 for 3 min"),
        (180, "firing", "V1 (S1, VSAV) on scene of I1 for 3 min"),
        (300, "resolved", "V1 (S1, VSAV) on scene of I1 for 5 min"),
        (580, "pending", "V1 (S1, VSAV) on scene of I2 for 3 min"),
        (580, "firing", "V1 (S1, VSAV) on scene of I2 for 3 min"),
        (700, "resolved", "V1 (S1, VSAV) on scene of I2 for 5 min")]


def test_a_units_timer_survives_a_restart() -> None:
    book = AlertBook(ON_SCENE, REF, SOURCES)
    book.take("stations/1", 5000, [])
    book.take("stations/0", 750, [], [unit(700, "V2", "on_scene", "I7")])
    book.settle()
    fresh = AlertBook(ON_SCENE, REF, SOURCES)
    fresh.restore(*saved(book))
    fresh.take("stations/0", 750, [], [unit(700, "V2", "on_scene", "I7")])  # repeated after the crash: no change
    fresh.take("stations/0", 900, [])
    fresh.settle()
    assert [(t[1], t[2], t[3]) for t in transitions(fresh)] == [("S1/V2", 880, "pending"), ("S1/V2", 880, "firing")]


def _unit_oracle(steps: list[UnitStep], until: float) -> list[tuple[str, float, str, float]]:
    """(vehicle, time, transition, value) of the 3-minute on-scene rule, from each unit's periods in a status:
    a period on scene that lasts beyond 180 s fires at 180 s (if the clock passed it), and resolves when it ends
    (if it ended before ``until``), with its length in minutes."""
    out = []
    for vehicle in ("V1", "V2", "V3", "V4", "F1"):
        mine = sorted((t, status) for t, _, v, status, _ in steps if v == vehicle and t < until)
        periods: list[list[float | str]] = []  # [status, start, end]
        for t, status in mine:
            if not periods or periods[-1][0] != status:
                if periods:
                    periods[-1][2] = t
                periods.append([status, t, math.inf])
        for status, start, end in periods:
            deadline = float(start) + 180
            if status == "on_scene" and deadline < min(float(end), until):
                out += [(vehicle, deadline, "pending", 3.0), (vehicle, deadline, "firing", 3.0)]
                if float(end) < until:
                    out.append((vehicle, float(end), "resolved", round((float(end) - float(start)) / 60, 1)))
    return sorted(out, key=lambda x: (x[1], x[0], x[2] != "pending"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 80), st.sampled_from(["V1", "V2", "V3", "V4", "F1"]),
                          st.sampled_from(["on_scene", "returning", "on_scene", "at_hospital"])),
                min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_units_timers_give_the_oracles_transitions_whatever_the_cut_interleaving_and_repeats(
        raw: list[tuple[int, str, str]], seed: int) -> None:
    rng = random.Random(seed)
    steps = sorted({(t * 10.0, v): unit(t * 10.0, v, status, "I1") for t, v, status in raw}.values())
    until = 1000.0
    book = AlertBook(ON_SCENE, REF, SOURCES)
    taken = []
    for source, until_, units in cut_and_interleaved(rng, steps, until):
        book.take(source, until_, [], units)
        book.settle()
        taken += transitions(book)  # stored before the state is (as the engine does)
        if rng.random() < 0.2:  # a restart
            fresh = AlertBook(ON_SCENE, REF, SOURCES)
            fresh.restore(*saved(book))
            book = fresh
    got = [(t[1].split("/")[1], t[2], t[3], t[4]) for t in taken]
    assert sorted(got, key=lambda x: (x[1], x[0], x[2] != "pending")) == _unit_oracle(steps, until)


# --- an intervention waiting for a unit; a surge of calls in an area --------------------------------------------

WAITING_5MIN = '''
[[rule]]
name = "waiting-5min"
measure = "unassigned_minutes"
scope = "intervention"
fire_at = 5
clear_at = 0
severity = "critical"
message = "{intervention} ({nature}, {sector}) waited {value} min"
'''
UNASSIGNED = rules(WAITING_5MIN)
CALLS = ("interventions/0", "interventions/1")


def opened(t: float, iid: str, lat: float = 48.8, lon: float = 2.3) -> tuple[float, str, str, str, float, float]:
    return (t, iid, "Z1", "fire", lat, lon)


def test_an_intervention_without_unit_fires_at_its_deadline_and_resolves_when_a_unit_comes() -> None:
    book = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    book.take("stations/1", 5000, [])
    book.take("interventions/1", None, [])  # no data at all: holds nothing
    # I1 (nearest station S3: area B) opened at 10; I2 at 20, its unit dispatched at 15 (the CAD's dispatch
    # recorded before the opening); I3 at 30, closed at 200 without a unit
    book.take("interventions/0", 100, [], (), [opened(10, "I1", lat=48.9), opened(20, "I2"), opened(30, "I3")])
    book.take("stations/0", 100, [], [unit(15, "V1", "dispatched", "I2")])
    book.settle()
    assert transitions(book) == []
    book.take("interventions/0", 400, [], (), (), [(200, "I3")])
    book.take("stations/0", 320, [])
    book.settle()
    fired = "I1 (fire, Z1) waited 5 min"
    assert transitions(book) == [("waiting-5min", "I1", 310, "pending", 5, fired),
                                 ("waiting-5min", "I1", 310, "firing", 5, fired)]
    book.take("stations/0", 400, [], [unit(350, "V2", "dispatched", "I1")])
    book.settle()
    (resolved,) = book.transitions()
    assert (resolved.scope_key, resolved.area, resolved.station, resolved.subject, resolved.change.at,
            resolved.change.transition.value, resolved.change.value) == ("I1", "B", "", "fire", 350, "resolved", 5.7)
    assert not book.calls and not book.alerts and ("waiting-5min", "I1") not in book.scopes  # nothing left


def test_dispatches_are_remembered_for_the_expiry_only() -> None:
    """Ten days of interventions whose units report after the closing (an ambulance still transporting) or never
    closed: what the book remembers of their dispatches stays within the last 72 hours (+ the hour between looks),
    the 72 hours all kept, for an opening heard late (issue #13: the state stays flat; 1,440 without the bound)."""
    book = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    book.take("stations/1", 10 * 86400 + 600, [])
    book.take("interventions/1", None, [])
    held = []
    for n in range(10 * 24 * 6):  # an intervention every 10 minutes
        t, iid = n * 600.0, f"I{n}"
        book.take("interventions/0", t + 60, [], (), [opened(t, iid)], [(t + 30, iid)])
        book.take("stations/0", t + 60, [], [unit(t + 5, "V1", "dispatched", iid), unit(t + 40, "V1", "transporting",
                                                                                       iid)])
        book.settle()
        held.append(len(book.dispatched))
    assert max(held) == (CALL_EXPIRY_S + DISPATCHED_LOOK_S) // 600
    assert all(iid in book.dispatched for iid in (f"I{n}" for n in range(1440 - 72 * 6, 1440)))
    assert transitions(book) == []  # every call had its unit at once


def test_without_any_units_status_no_intervention_is_said_to_wait() -> None:
    """A feed of calls alone (a station-level CAD export, weeks of past demand): no unit ever, no alert."""
    book = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    for source in ("stations/0", "stations/1", "interventions/1"):
        book.take(source, None, [])
    book.take("interventions/0", 5000, [], (), [opened(10, "I1"), opened(20, "I2")])
    book.settle()
    assert transitions(book) == [] and not book.calls


def test_an_intervention_waiting_across_a_restart_fires_once() -> None:
    book = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    for source in ("stations/0", "interventions/1"):
        book.take(source, None, [])
    book.take("stations/1", 5000, [], [unit(5, "V3", "available_at_station")])  # units are fed
    book.take("interventions/0", 100, [], (), [opened(10, "I1")])
    book.settle()
    fresh = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    fresh.restore(*saved(book))
    fresh.take("interventions/0", 100, [], (), [opened(10, "I1")])  # repeated after the crash
    fresh.take("interventions/0", 400, [])
    fresh.settle()
    assert [(t[1], t[2], t[3]) for t in transitions(fresh)] == [("I1", 310, "pending"), ("I1", 310, "firing")]
    again = AlertBook(UNASSIGNED, REF, SOURCES + CALLS)
    again.restore(*saved(fresh))
    again.take("interventions/0", 900, [], (), (), [(700, "I1")])  # closed without a unit
    again.settle()
    assert [(t[1], t[2], t[3], t[4]) for t in transitions(again)] == [("I1", 700, "resolved", 11.5)]


SURGE_TOML = """
[[rule]]
name = "surge"
measure = "surge"
scope = "area"
window = "10m"
min_count = 3
fire_at = 3
clear_at = 2
severity = "warning"
message = "{area}: {value} sigma"
"""
SURGE = rules(SURGE_TOML)
WEEK = 7 * 86400
BASE = 600 * 3000  # a window's start


def test_a_surge_fires_at_the_end_of_its_window_against_the_same_window_of_the_previous_weeks() -> None:
    book = AlertBook(SURGE, REF, SOURCES + CALLS)
    for source in ("stations/0", "stations/1", "interventions/1"):
        book.take(source, None, [])
    # one call a week in area A in the same 10 minutes, three weeks running (the first one starts the watch);
    # then five in that window of the fourth week: (5 - 1) / max(sd 0, sqrt(1)) = 4 sigma
    history = [opened(BASE + k * WEEK + 10, f"H{k}") for k in range(3)]
    surge = [opened(BASE + 3 * WEEK + 20 * i, f"S{i}") for i in range(5)]
    book.take("interventions/0", BASE + 3 * WEEK, [], (), history)
    book.settle()
    assert transitions(book) == []
    book.take("interventions/0", BASE + 3 * WEEK + 1300, [], (), surge)
    book.settle()
    end = BASE + 3 * WEEK + 600
    assert transitions(book) == [("surge", "A", end, "pending", 4, "A: 4 sigma"),
                                 ("surge", "A", end, "firing", 4, "A: 4 sigma"),
                                 ("surge", "A", end + 600, "resolved", 4, "A: 4 sigma")]  # the next window: quiet
    # four calls the next week at that time: usual 5, 1, 1 (mean 2.33, sd 2.31): 0.72 sigma, no alert
    book.take("interventions/0", BASE + 4 * WEEK + 700, [], (), [
        opened(BASE + 4 * WEEK + 30 * i, f"T{i}") for i in range(4)])
    book.settle()
    assert transitions(book) == []
    assert book.baselines[("surge", "A")].usual(BASE + 5 * WEEK) == [4, 5, 1, 1, 1]


def test_a_fresh_book_takes_the_usual_from_the_openings_stored_before_its_first_window() -> None:
    """Live, a deployment's imported history (or make run's past weeks) is in ClickHouse, not in the book: at its
    first window, the book reads the openings stored over the weeks before it. The case above, with the three
    weeks stored: the same surge from the first window watched; without them, no usual yet."""
    stored = [(BASE + k * WEEK + 10.0, 48.8, 2.3) for k in range(3)]  # area A (S1's place)
    stored += [(BASE + 2 * WEEK + 7200.0, 48.9, 2.3), (BASE - 9 * WEEK, 48.8, 2.3)]  # area B; 9 weeks before
    asked: list[tuple[float, float]] = []

    def past(since: float, until: float) -> list[tuple[float, float, float]]:
        asked.append((since, until))
        return [o for o in stored if since <= o[0] < until]

    surge = [opened(BASE + 3 * WEEK + 20 * i, f"S{i}") for i in range(5)]
    end = BASE + 3 * WEEK + 600
    for seeded in (True, False):
        book = AlertBook(SURGE, REF, SOURCES + CALLS)
        book.past = past if seeded else None
        for source in ("stations/0", "stations/1", "interventions/1"):
            book.take(source, None, [])
        book.take("interventions/0", BASE + 3 * WEEK + 1300, [], (), surge)
        book.settle()
        if seeded:
            assert asked == [(BASE + 3 * WEEK - 8 * WEEK, BASE + 3 * WEEK)]  # once, the 8 weeks before
            assert transitions(book) == [("surge", "A", end, "pending", 4, "A: 4 sigma"),
                                         ("surge", "A", end, "firing", 4, "A: 4 sigma"),
                                         ("surge", "A", end + 600, "resolved", 4, "A: 4 sigma")]
            # the weeks before the first stored opening are not quiet weeks; area B's opening counted in B
            assert book.baselines[("surge", "A")].usual(BASE + 4 * WEEK) == [5, 1, 1, 1]
            assert book.baselines[("surge", "B")].usual(BASE + 3 * WEEK + 7200) == [1, 0, 0]
            assert ("surge", "A") in book.dirty and ("surge", "B") in book.dirty  # stored with the book
        else:
            assert transitions(book) == []  # one week watched: no usual yet


def test_the_stations_publish_what_the_shipped_rules_read() -> None:
    """Two vehicle types (the ambulances' staffed count too), one qualification, and the units' statuses: into
    and out of those the timers on units read, and their dispatches (the timer on interventions)."""
    shipped = RuleSet.load(Settings().alert_rules).rule
    assert watched_values(shipped) == Watched(frozenset({"VSAV", "FPT"}), frozenset({"crew_leader"}),
                                              frozenset({"VSAV"}), frozenset({"on_scene", "at_hospital"}), True)
    assert watched_values(shipped).units
    assert watched_values(rules(NO_VSAV_IN_AREA)) == Watched(frozenset({"VSAV"}), frozenset())
    assert not watched_values(rules(NO_VSAV_IN_AREA)).units
