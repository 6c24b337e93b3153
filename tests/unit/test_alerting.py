"""An alert's life (streams/alerting.py) against hand-made series and a second-by-second oracle."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.alerting import Alert, Change, Direction, StaleObservation, Threshold, Transition

EXAMPLES = int(os.environ.get("VIGIE_PROPERTY_EXAMPLES", "200"))
NO_VSAV = Threshold(Direction.BELOW, fire_at=0, clear_at=1, for_s=0, keep_firing_for_s=120)


def run(th: Threshold, series: list[tuple[float, float]], until: float) -> list[tuple[float, str, float]]:
    a = Alert(th)
    for t, v in series:
        a.observe(t, v)
    a.advance(until)
    return [(c.at, c.transition.value, c.value) for c in a.take()]


def test_no_vsav_left_fires_at_once_and_resolves_two_minutes_after_one_is_back() -> None:
    got = run(NO_VSAV, [(0, 3), (100, 1), (160, 0), (200, 1), (260, 0), (400, 2)], until=1000)
    # 160: none left (fires at once); 200: one back, 260: none again within the 2 min: the same episode;
    # 400: back for good, resolved at 520
    assert got == [(160, "pending", 0), (160, "firing", 0), (520, "resolved", 0)]


def test_a_condition_toggling_every_20_s_for_5_min_under_for_60_s_is_never_notified() -> None:
    th = Threshold(Direction.BELOW, fire_at=0, clear_at=1, for_s=60)
    series = [(t, 0 if (t // 20) % 2 == 0 else 2) for t in range(0, 300, 20)]
    got = run(th, [*series, (300, 2)], until=1000)
    assert [x[1] for x in got] == ["pending", "cancelled"] * 8
    assert "firing" not in {x[1] for x in got}


def test_a_deadline_passes_on_the_clock_alone() -> None:
    """An intervention waiting for a unit: the value (minutes waited) needs no further record to cross."""
    a = Alert(Threshold(Direction.ABOVE, fire_at=1, clear_at=1, for_s=600))
    a.observe(1000, 1)
    a.advance(1599)
    assert [c.transition for c in a.take()] == [Transition.PENDING]
    a.advance(1600)
    assert a.take() == [Change(1600, Transition.FIRING, 1)]


def test_hysteresis_holds_between_the_two_levels() -> None:
    th = Threshold(Direction.BELOW, fire_at=2, clear_at=4)
    got = run(th, [(0, 5), (10, 2), (20, 3), (30, 3.9), (40, 4)], until=100)
    assert got == [(10, "pending", 2), (10, "firing", 2), (40, "resolved", 2)]


def test_worst_value_of_the_episode_is_reported() -> None:
    th = Threshold(Direction.ABOVE, fire_at=10, clear_at=5, for_s=30)
    got = run(th, [(0, 12), (10, 20), (20, 15), (50, 4)], until=100)
    assert got == [(0, "pending", 12), (30, "firing", 20), (50, "resolved", 20)]


def test_refuses_bad_thresholds_and_old_observations() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        Threshold(Direction.BELOW, fire_at=3, clear_at=1)
    with pytest.raises(ValueError, match="hysteresis"):
        Threshold(Direction.ABOVE, fire_at=3, clear_at=5)
    a = Alert(NO_VSAV)
    a.observe(100, 1)
    with pytest.raises(StaleObservation):
        a.observe(50, 0)


def test_state_survives_a_restart_between_observations() -> None:
    th = Threshold(Direction.BELOW, fire_at=0, clear_at=1, for_s=60, keep_firing_for_s=60)
    a = Alert(th)
    a.observe(0, 0)
    first = a.take()
    b = Alert.from_list(th, a.to_list())
    b.observe(90, 1)
    b.advance(200)
    assert [c.transition for c in first + b.take()] == ["pending", "firing", "resolved"]


def oracle(th: Threshold, values: list[float]) -> list[tuple[float, str]]:
    """Second by second, without the class's bookkeeping: ``values[s]`` holds during second s; a deadline
    reached at second s passes before the value of second s applies."""
    out: list[tuple[float, str]] = []
    on = firing = pending = False
    edge = 0

    def deadlines(s: int) -> None:
        nonlocal pending, firing
        if pending and on and s - edge >= th.for_s:
            pending, firing = False, True
            out.append((edge + th.for_s, "firing"))
        if firing and not on and s - edge >= th.keep_firing_for_s:
            firing = False
            out.append((edge + th.keep_firing_for_s, "resolved"))

    below = th.direction is Direction.BELOW
    strict = th.clear_at == th.fire_at
    for s, v in enumerate(values):
        deadlines(s)
        rises = (v <= th.fire_at) if below else (v >= th.fire_at)
        falls = ((v > th.clear_at) if strict else (v >= th.clear_at)) if below else \
            ((v < th.clear_at) if strict else (v <= th.clear_at))
        if not on and rises:
            on, edge = True, s
            if not firing and not pending:
                pending = True
                out.append((s, "pending"))
        elif on and falls:
            on, edge = False, s
            if pending:
                pending = False
                out.append((s, "cancelled"))
        deadlines(s)  # a zero ``for`` or ``keep_firing_for`` passes at once
    return out


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(values=st.lists(st.integers(0, 4), min_size=1, max_size=120),
       fire=st.integers(0, 2), gap=st.integers(0, 2), for_s=st.integers(0, 15), keep=st.integers(0, 15),
       above=st.booleans(), ticks=st.lists(st.integers(0, 130), max_size=20))
def test_transitions_match_the_oracle_whatever_the_clock_ticks(values: list[int], fire: int, gap: int, for_s: int,
                                                               keep: int, above: bool, ticks: list[int]) -> None:
    """Sampled once a second, with the clock advanced at arbitrary extra moments in between: the same
    transitions at the same times as the oracle (so they do not depend on when the worker's tick runs)."""
    th = (Threshold(Direction.ABOVE, fire + gap, fire, for_s, keep) if above
          else Threshold(Direction.BELOW, fire, fire + gap, for_s, keep))
    a = Alert(th)
    ticks_at = sorted(ticks)
    for s, v in enumerate(values):
        while ticks_at and ticks_at[0] < s:
            a.advance(ticks_at.pop(0))
        a.observe(s, v)
    a.advance(len(values) - 1)
    got = [(c.at, c.transition.value) for c in a.take()]
    assert got == [x for x in oracle(th, values) if x[0] <= len(values) - 1]


def test_surge_score_against_the_same_slot_of_previous_weeks() -> None:
    from streams.alerting import WEEK_S, SurgeBaseline

    b = SurgeBaseline(window_s=600, weeks=4, min_weeks=3)
    slot = 1_767_600_000 - 1_767_600_000 % WEEK_S + 3 * 3600  # some 10-min slot of a week
    for week, n in enumerate([4, 6, 5, 5]):  # four weeks of the slot; other windows of those weeks quiet
        b.add(slot + week * WEEK_S - 3000, 0)
        b.add(slot + week * WEEK_S, n)
    now = slot + 4 * WEEK_S
    assert b.usual(now) == [5, 5, 6, 4]
    # mean 5, sample sd sqrt(2/3) = 0.816 < Poisson floor sqrt(5) = 2.236: 12 calls are (12 - 5) / 2.236 sd above
    assert b.score(now, 12, min_count=5) == pytest.approx(7 / 5 ** 0.5)
    assert b.score(now, 4, min_count=5) == float("-inf")  # below the minimum count
    young = SurgeBaseline(window_s=600, weeks=4, min_weeks=3)
    young.add(slot, 5)
    young.add(slot + WEEK_S, 5)
    assert young.usual(slot + 2 * WEEK_S) == [5, 5] and young.score(slot + 2 * WEEK_S, 30, 5) == float("-inf")


def test_a_surge_baseline_stored_whole_before_it_was_stored_by_day_comes_back() -> None:
    from streams.alerting import WEEK_S, SurgeBaseline

    old = {"w": 600, "k": 3, "m": 2, "f": 0, "c": [[0, 2], [WEEK_S, 3]]}  # a record written before by-day records
    b = SurgeBaseline.from_dict(old)
    assert b.usual(2 * WEEK_S) == [3, 2] and b.to_dict() == {"w": 600, "k": 3, "m": 2, "f": 0, "d": [0, 7]}
    assert SurgeBaseline.from_dict(b.to_dict(), {d: b.day_counts(d) for d in (0, 7)}).usual(2 * WEEK_S) == [3, 2]


def test_surge_baseline_counts_a_re_delivered_window_once_and_zero_for_a_quiet_watched_slot() -> None:
    from streams.alerting import WEEK_S, SurgeBaseline

    b = SurgeBaseline(window_s=600, weeks=3, min_weeks=3)
    b.add(0, 0)  # watched from here
    b.add(WEEK_S, 3)
    b.add(WEEK_S, 3)  # the same sealed window again
    assert b.usual(3 * WEEK_S) == [0, 3, 0]
    assert b.score(3 * WEEK_S, 5, 1) == pytest.approx((5 - 1) / 3 ** 0.5)  # sd sqrt(3) = 1.73 > floor 1
