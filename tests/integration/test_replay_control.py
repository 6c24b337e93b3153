"""`vigie replay` can be paused, resumed and stopped from another shell, and stops its workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from devtools.simulator import Simulator
from schemas.codec import event_line
from schemas.reference import Reference
from tests.integration.conftest import Stack, new_settings, wait_until

pytestmark = pytest.mark.integration


def processes_with_env(entry: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if entry.encode() in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def published(log: Path) -> int:
    counts = re.findall(r"replay ctl: ([\d,]+)(?:/[\d,]+ \(\d+%\))? events", log.read_text())
    return int(counts[-1].replace(",", "")) if counts else 0


def test_pause_resume_stop(stack: Stack, tmp_path: Path) -> None:
    s = new_settings(stack)
    ref = Reference.load(s.reference_dir)
    events_file = tmp_path / "events.jsonl"
    with events_file.open("w") as f:
        for ev in Simulator(ref, seed=5, start=datetime(2026, 2, 1, tzinfo=UTC)).events(6 * 3600):
            f.write(event_line(ev.topic, ev.key, ev.event))
    env = {**os.environ, **s.to_env(), "VIGIE_RUN_DIR": str(tmp_path / "run")}
    vigie = [sys.executable, "-m", "vigie.cli"]
    log = tmp_path / "replay.log"
    proc = subprocess.Popen([*vigie, "replay", "start", "--run", "ctl", "--events", str(events_file),
                             "--reference", str(s.reference_dir), "--speed", "600"],
                            env=env, stderr=log.open("w"), stdout=subprocess.DEVNULL, cwd=PROJECT_ROOT)
    try:
        wait_until(lambda: published(log) > 0, 60, "the replay publishing")
        assert processes_with_env(f"VIGIE_APP_ID={s.app_id}-replay-ctl")  # the run's own worker is up

        def control(command: str) -> None:
            subprocess.run([*vigie, "replay", command, "--run", "ctl"], env=env, check=True, timeout=30,
                           cwd=PROJECT_ROOT, capture_output=True)

        control("pause")
        wait_until(lambda: "[paused]" in log.read_text(), 10, "the pause shown")
        held = published(log)
        time.sleep(2)
        assert published(log) == held  # nothing published while paused
        control("resume")
        wait_until(lambda: published(log) > held, 30, "publishing again")
        control("stop")
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "run" / "replays" / "ctl.pid").exists()
    assert processes_with_env(f"VIGIE_APP_ID={s.app_id}-replay-ctl") == []  # its workers stopped too
    assert "stopped before every event was processed" in log.read_text()
