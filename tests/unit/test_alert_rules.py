"""The alert rules file: the shipped rules load, and a wrong rule is refused with its name and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from schemas.alert_rules import Measure, Rule, RuleFileError, RuleFileWatcher, RuleSet, Scope, parse_duration

SHIPPED = PROJECT_ROOT / "deploy" / "alerts" / "rules.toml"


def test_the_shipped_rules_cover_every_measure_and_load() -> None:
    rules = RuleSet.load(SHIPPED).rule
    assert {r.measure for r in rules} == set(Measure)
    by_name = {r.name: r for r in rules}
    no_vsav = by_name["no-vsav-in-area"]
    assert (no_vsav.scope, no_vsav.fire_at, no_vsav.clear_level, no_vsav.keep_firing_for_s) == (Scope.AREA, 0, 1, 120)
    assert no_vsav.render(0, area="Paris 11") == "No VSAV available in Paris 11"
    assert by_name["no-crew-leader-on-duty"].for_s == 300


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("2m", 120), ("1.5h", 5400), (45, 45), (" 3 m ", 180)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["2 minutes", "-5s", "m", "", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


BASE = {"name": "r", "measure": "available", "scope": "area", "vehicle_type": "VSAV", "fire_at": 0, "clear_at": 1,
        "message": "none in {area}"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"scope": "unit"}, "computed per area or station, not per 'unit'"),
    ({"clear_at": -1}, "clear_at -1 must be at or above fire_at 0"),
    ({"measure": "status_minutes", "scope": "unit", "vehicle_type": None, "fire_at": 60, "clear_at": 0},
     "needs status"),
    ({"measure": "status_minutes", "scope": "unit", "status": "on_fire", "fire_at": 60, "clear_at": 0},
     "status"),
    ({"measure": "unassigned_minutes", "scope": "intervention", "fire_at": 5, "clear_at": 10}, "at or below"),
    ({"qualification": "driver"}, "qualification applies to measure staff_on_duty only"),
    ({"vehicle_type": None}, "needs vehicle_type"),
    ({"message": "none in {station}"}, "message names {station}"),
    ({"name": "No Spaces"}, "pattern"),
    ({"for": "soon"}, "not a duration"),
    ({"colour": "red"}, "Extra inputs are not permitted"),
    ({"measure": "staff_on_duty", "scope": "station", "qualification": "driver", "staffed": True,
      "message": "x"}, "staffed applies to the available measures only"),
])
def test_a_wrong_rule_is_refused_with_the_reason(change: dict[str, object], reason: str) -> None:
    doc = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=None) as e:
        Rule.model_validate(doc)
    assert reason in str(e.value)


def test_the_file_error_names_the_rule_and_field(tmp_path: Path) -> None:
    f = tmp_path / "rules.toml"
    f.write_text('[[rule]]\nname = "ok"\nmeasure = "surge"\nscope = "area"\nfire_at = 3\nmessage = "surge {area}"\n'
                 '[[rule]]\nname = "bad"\nmeasure = "available"\nscope = "area"\nvehicle_type = "FPT"\n'
                 'fire_at = 0\nmessage = "x"\nkeep_firing_for = "later"\n')
    with pytest.raises(RuleFileError) as e:
        RuleSet.load(f)
    assert "rule 2 (bad), keep_firing_for" in str(e.value) and "not a duration" in str(e.value)
    f.write_text('[[rule]]\nname = "a"\nmeasure = "surge"\nscope = "area"\nfire_at = 3\nmessage = "s"\n' * 2)
    with pytest.raises(RuleFileError, match="two rules are named 'a'"):
        RuleSet.load(f)
    f.write_text("[[rule]\n")
    with pytest.raises(RuleFileError, match=r"rules\.toml"):
        RuleSet.load(f)


def test_the_watcher_gives_the_rules_again_only_when_the_file_changes(tmp_path: Path) -> None:
    """No file: nothing to give. A file: its rules, then nothing until it changes. An unreadable change: said once,
    then nothing until the next change. The file removed: no rules (alerts off)."""
    f = tmp_path / "rules.toml"
    watcher = RuleFileWatcher(f)
    assert watcher.changed() is None
    one = '[[rule]]\nname = "a"\nmeasure = "surge"\nscope = "area"\nfire_at = 3\nmessage = "s"\n'
    f.write_text(one)
    assert [r.name for r in watcher.changed() or ()] == ["a"]
    assert watcher.changed() is None
    f.write_text(one + "[[rule]\n")
    with pytest.raises(RuleFileError):
        watcher.changed()
    assert watcher.changed() is None
    f.write_text(one + one.replace('"a"', '"bb"'))
    assert [r.name for r in watcher.changed() or ()] == ["a", "bb"]
    f.unlink()
    assert watcher.changed() == ()
    assert watcher.changed() is None


def test_vigie_alerts_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vigie.cli import main

    assert main(["alerts", "validate"]) == 0
    out = capsys.readouterr().out
    assert "no-vsav-in-area: critical, available VSAV per area <= 0 (clears at 1)" in out and "10 rules, valid" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\nmeasure = "available"\nscope = "unit"\nfire_at = 0\nmessage = "m"\n')
    assert main(["alerts", "validate", str(bad)]) == 1
    assert "rule 1 (x)" in capsys.readouterr().err
