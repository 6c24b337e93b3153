"""The board's lines: the clock (the newest event time, or "waiting for events" before the first, not a 1970 clock),
the forecast, alerts first, stocks below their minimum."""

from datetime import UTC, datetime

from vigie.board import clock_text, render, stocks_text


def test_clock_before_and_after_the_first_event() -> None:
    assert clock_text([(datetime(1970, 1, 1, 0, 0),)]) == "waiting for events"  # max() of an empty table
    assert clock_text([(None,)]) == "waiting for events"
    assert clock_text([]) == "waiting for events"
    assert clock_text([(datetime(2026, 1, 9, 6, 30, 5),)]) == "simulated clock 2026-01-09 06:30:05 UTC"


def test_the_forecast_line_reads_the_hour_in_progress_and_the_next() -> None:
    from vigie.board import forecast_text

    assert forecast_text([]).startswith("forecast: none yet")
    rows = [(datetime(2026, 1, 9, 6, 0), 57.6, 44, 72, 31), (datetime(2026, 1, 9, 7, 0), 60.2, 47, 75, 0)]
    assert forecast_text(rows) == ("forecast, all sectors: 06:00 hour 31 opened / 58 expected (80 %: 44-72); "
                                   "next hour 60 expected (q90 75)")


def test_a_run_without_tracked_availability_says_so_first() -> None:
    from vigie.board import UNTRACKED, render

    lines = render([("G1", "VSAV", "available", 3)], [], 0.0, "clock", availability_tracked=False).splitlines()
    assert lines[1] == UNTRACKED
    assert UNTRACKED not in render([("G1", "VSAV", "available", 3)], [], 0.0, "clock")


def test_firing_alerts_come_first_most_severe_first_and_are_capped() -> None:
    from vigie.board import MAX_ALERT_LINES, render

    assert "alerts: none firing" in render([], [], 0.0, "clock").splitlines()[2]
    never = 0
    firing = [("critical", "No VSAV available in G1", datetime(2026, 1, 9, 6, 30, 5), "no-vsav", "G1/VSAV", "op2", 0,
               never, "", "")]
    firing += [("warning", f"S{i:02d}: no crew leader on duty", datetime(2026, 1, 9, 7, 0, i), "no-crew-leader",
                f"S{i:02d}/crew_leader", "", 0, never, "", "") for i in range(9)]
    firing += [("info", "S99: no VSAV", datetime(2026, 1, 9, 5, 0), "station-without-vsav", "S99/VSAV", "", 1,
                int(datetime(2026, 1, 9, 9, 0, tzinfo=UTC).timestamp()), "op3", "road works")]
    lines = render([], [], 0.0, "clock", alerts=firing).splitlines()
    assert lines[2] == "ALERTS: 11 firing (1 silenced)"
    assert lines[3] == "  [CRITICAL] since 06:30:05  No VSAV available in G1  [taken by op2]"
    assert lines[4] == "  [WARNING ] since 07:00:00  S00: no crew leader on duty"
    assert lines[3 + MAX_ALERT_LINES] == "  ... and 3 more (vigie alerts list)"
    silenced = render([], [], 0.0, "clock", alerts=firing[-1:]).splitlines()
    assert silenced[3] == "  [INFO    ] since 05:00:00  S99: no VSAV  [silenced until 09:00 by op3: road works]"


def test_stocks_below_their_minimum_are_summed_per_category() -> None:
    assert stocks_text([]) == "stocks: none below its minimum"
    assert stocks_text([("medical_kit", 3), ("oxygen", 1)]) == (
        "stocks below minimum: 4 items — medical_kit 3, oxygen 1 (where: vigie near)")
    many = [(f"c{i}", 10 - i) for i in range(6)]
    assert stocks_text(many) == "stocks below minimum: 45 items — c0 10, c1 9, c2 8, c3 7 and 2 more categories " \
        "(where: vigie near)"
    board = render([("G1", "VSAV", "available", 2)], [], 0.0, "clock", stocks_low=[("foam", 2)])
    assert board.splitlines()[-3] == "stocks below minimum: 2 items — foam 2 (where: vigie near)"


def test_unusual_sectors_largest_departure_first() -> None:
    from vigie.board import presence_text

    assert presence_text([]) == "population present: no unusual sector"
    at = datetime(2026, 4, 4, 19, 0, tzinfo=UTC)
    assert presence_text([("Z41", at, 64160.0, 22587.5, 2.84), ("Z05", at, 15330.0, 39170.0, 0.39)]) == (
        "population present, unusual: Z41 x2.8 (64,160 vs 22,587 at 19:00), Z05 x0.4 (15,330 vs 39,170 at 19:00)")


def test_the_move_up_line_gives_each_types_advice_or_none() -> None:
    from vigie.board import moveup_text

    assert moveup_text([]).startswith("move-up: none computed")
    at = datetime(2026, 4, 4, 19, 5)
    assert moveup_text([("FPT", "", "", "", 0.0, 0.912, 0.912, at),
                        ("VSAV", "V12", "S03", "S17", 412.0, 0.671, 0.707, at)]) == (
        "move-up (19:05): FPT none (91 %); VSAV V12 S03 -> S17 (7 min; coverage 67 -> 71 %)")
    board = render([("G1", "VSAV", "available", 2)], [], 0.0, "clock", moveups=[("FPT", "", "", "", 0.0, 0.5, 0.5, at)])
    assert board.splitlines()[-1] == "move-up (19:05): FPT none (50 %)"
