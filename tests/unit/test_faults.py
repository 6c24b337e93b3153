"""The fault hooks: parsed strictly, silent when unset, each fault once per marker directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.runtime.faults import NO_FAULTS, Faults, FaultSpecError


def test_no_faults_in_production() -> None:
    assert not NO_FAULTS and not NO_FAULTS.fail_insert()
    NO_FAULTS.reached("rows_stored")  # nothing happens


def test_specs_are_checked() -> None:
    for bad in ("kill=3", "sink_fail", "sink_fail=0", "stall_at=x"):
        with pytest.raises(FaultSpecError):
            Faults(bad, Path("/tmp"))


def test_sink_fail_fails_the_first_n_inserts_once_per_marker(tmp_path: Path) -> None:
    f = Faults("sink_fail=3", tmp_path)
    assert [f.fail_insert() for _ in range(5)] == [True, True, True, False, False]
    assert (tmp_path / "fault-sink_fail.fired").exists()
    again = Faults("sink_fail=3", tmp_path)  # a restarted worker: already fired
    assert not again.fail_insert()


def test_a_kill_fires_at_its_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr("os._exit", exits.append)
    f = Faults("kill_after_changelog=2", tmp_path)
    f.reached("rows_stored")
    f.reached("changelog_acked")
    assert exits == []
    f.reached("rows_stored")
    f.reached("changelog_acked")
    assert exits == [137] and (tmp_path / "fault-kill_after_changelog.fired").exists()
