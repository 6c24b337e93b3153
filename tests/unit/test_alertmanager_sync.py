"""What the notifier sends Alertmanager (sinks/alertmanager.py), stated by hand: labels, times moved from the
worker's clock to the wall clock, and the silences that mirror Vigie's (created, kept, moved, lifted)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devtools.stack import free_port
from sinks.alertmanager import (
    Alertmanager,
    AlertmanagerError,
    AlertNow,
    Clocks,
    plan_silences,
    to_alertmanager,
)

FIRING = AlertNow("no-vsav-in-area", "G1/VSAV", "critical", "G1", "", "VSAV", "firing", 1_000_600.0, 1_000_500.0,
                  0.0, "Aucun VSAV disponible en G1", "cos-1", 0.0, "", "")
#: the worker's clock 2 h ahead of the wall clock, running at its pace
CLOCKS = Clocks(wall=2_000_000.0, worker=2_007_200.0)


def test_an_alert_in_alertmanagers_form() -> None:
    doc = to_alertmanager(replace(FIRING, since=2_007_000.0), CLOCKS, hold_s=75, link="http://wall/")
    assert doc == {
        "labels": {"alertname": "no-vsav-in-area", "scope": "G1/VSAV", "severity": "critical", "area": "G1",
                   "subject": "VSAV", "source": "vigie"},  # no station: an area's alert
        "annotations": {"summary": "Aucun VSAV disponible en G1", "value": "0",
                        "episode_start": "1970-01-12T13:55:00.000Z", "fired_at": "1970-01-24T05:30:00.000Z",
                        "acknowledged_by": "cos-1"},  # in the worker's clock, as the wall screen shows them
        "startsAt": "1970-01-24T03:30:00.000Z",  # 200 s before the wall clock's now (2,000,000 s)
        "endsAt": "1970-01-24T03:34:35.000Z",  # now + 75 s: resolved by Alertmanager unless sent again
        "generatorURL": "http://wall/",
    }
    resolved = to_alertmanager(replace(FIRING, state="resolved", since=2_007_100.0, episode_start=2_006_900.0),
                               CLOCKS, hold_s=75)
    assert (resolved["startsAt"], resolved["endsAt"]) == ("1970-01-24T03:28:20.000Z", "1970-01-24T03:33:20.000Z")
    assert resolved["annotations"]["resolved_at"] == "1970-01-24T05:31:40.000Z" and "fired_at" not in resolved[
        "annotations"]
    assert "generatorURL" not in resolved
    # make run's clock runs x60: 300 s of it before now are 5 s of the wall clock
    sped = Clocks(wall=2_000_000.0, worker=2_007_200.0, speed=60.0)
    assert to_alertmanager(replace(FIRING, since=2_006_900.0), sped, 75)["startsAt"] == "1970-01-24T03:33:15.000Z"
    # a time ahead of the wall clock (it cannot be, live) starts now
    assert to_alertmanager(replace(FIRING, since=2_007_500.0), CLOCKS, 75)["startsAt"] == "1970-01-24T03:33:20.000Z"


def _mirror(sid: str, rule: str, scope: str, until: int, state: str = "active") -> dict[str, object]:
    return {"id": sid, "status": {"state": state}, "comment": f"[vigie until={until}] works",
            "matchers": [{"name": "alertname", "value": rule}, {"name": "scope", "value": scope}]}


def test_silences_follow_vigies() -> None:
    silenced = replace(FIRING, silenced_until=2_010_800.0, silenced_by="cos-2", silence_why="travaux")
    plan = plan_silences([silenced], [], CLOCKS)
    assert plan.expire == []
    assert plan.create == [{
        "matchers": [{"name": "alertname", "value": "no-vsav-in-area", "isRegex": False, "isEqual": True},
                     {"name": "scope", "value": "G1/VSAV", "isRegex": False, "isEqual": True}],
        "startsAt": "1970-01-24T03:33:20.000Z", "endsAt": "1970-01-24T04:33:20.000Z",  # 1 h after now, as in Vigie
        "createdBy": "cos-2", "comment": "[vigie until=2010800] travaux"}]
    held = _mirror("s1", "no-vsav-in-area", "G1/VSAV", 2_010_800)
    assert plan_silences([silenced], [held], CLOCKS).create == []  # in force already: nothing to do
    assert plan_silences([silenced], [held], CLOCKS).expire == []
    moved = plan_silences([replace(silenced, silenced_until=2_011_000.0)], [held], CLOCKS)
    assert moved.expire == ["s1"] and [c["comment"] for c in moved.create] == ["[vigie until=2011000] travaux"]
    lifted = plan_silences([FIRING], [held], CLOCKS)  # unsilenced in Vigie (silenced_until 0)
    assert lifted.expire == ["s1"] and lifted.create == []
    over = plan_silences([replace(silenced, silenced_until=2_007_000.0)], [held], CLOCKS)  # its end is past
    assert over.expire == ["s1"] and over.create == []
    # make run (x60): an hour of the worker's clock is a minute of Alertmanager's
    sped = plan_silences([silenced], [], Clocks(wall=2_000_000.0, worker=2_007_200.0, speed=60.0))
    assert sped.create[0]["endsAt"] == "1970-01-24T03:34:20.000Z"


def test_silences_not_vigies_are_left_alone() -> None:
    someone_elses = {"id": "x", "status": {"state": "active"}, "comment": "maintenance window",
                     "matchers": [{"name": "alertname", "value": "no-vsav-in-area"}]}
    expired = _mirror("s0", "no-vsav-in-area", "G1/VSAV", 2_010_800, state="expired")
    plan = plan_silences([FIRING], [someone_elses, expired], CLOCKS)
    assert plan.expire == [] and plan.create == []


def test_a_second_mirror_of_one_silence_is_lifted() -> None:
    silenced = replace(FIRING, silenced_until=2_010_800.0, silenced_by="cos-2")
    twice = [_mirror("s1", "no-vsav-in-area", "G1/VSAV", 2_010_800), _mirror("s2", "no-vsav-in-area", "G1/VSAV",
                                                                            2_010_800, state="pending")]
    plan = plan_silences([silenced], twice, CLOCKS)
    assert plan.expire == ["s2"] and plan.create == []


def test_an_unreachable_alertmanager_is_an_error_that_says_where() -> None:
    with pytest.raises(AlertmanagerError, match="GET /silences"):
        Alertmanager(f"http://127.0.0.1:{free_port()}", timeout_s=2).silences()
