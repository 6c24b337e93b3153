"""The alert book (streams/alert_book.py): rules over every station's sealed values, whatever the order and
cut of the sources' messages, repeats included; and its state across a restart."""

from __future__ import annotations

import math
import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.alert_rules import Rule, RuleSet
from schemas.reference import FleetVehicle, Reference, Station
from streams.alert_book import AlertBook
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
    restarted.restore(first.to_dict())
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
    fresh.restore(book.to_dict())
    feed(fresh, [("stations/0", 800, []), ("stations/1", 800, [])])
    assert transitions(fresh) == []  # values kept (A still has none) but no new observation: a new episode waits


# --- any cut, interleaving and repeat of the sources' messages gives the same transitions -----------------------

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
    per_source: dict[str, list[tuple[str, float, list]]] = {}  # type: ignore[type-arg]
    for source in SOURCES:
        mine = [s for s in steps if SOURCE_OF[s[1]] == source]
        cuts = sorted({rng.choice([s[0] for s in mine]) + rng.choice([0.0, 5.0]) for _ in range(3)} if mine else set())
        messages, start = [], -math.inf
        for cut in [*cuts, until]:
            if cut > start:
                messages.append((source, cut, [s for s in mine if start <= s[0] < cut]))
                start = cut
        repeated = list(messages)
        for _ in range(rng.randrange(3)):  # repeats, as after a crash upstream
            i = rng.randrange(len(messages))
            repeated.insert(rng.randrange(i + 1, len(repeated) + 1), messages[i])
        per_source[source] = repeated
    interleaved = []
    queues = {s: list(m) for s, m in per_source.items()}
    while any(queues.values()):
        source = rng.choice([s for s, q in queues.items() if q])
        interleaved.append(queues[source].pop(0))
    book = AlertBook(NO_VSAV, REF, SOURCES)
    feed(book, interleaved)
    got = [(t[1].split("/")[0], t[2], t[3]) for t in transitions(book)]
    assert sorted(got, key=lambda x: (x[1], x[0], x[2] != "pending")) == _oracle(steps, until, 120.0)
