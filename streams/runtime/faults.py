"""Deterministic fault injection, for tests only (``VIGIE_FAULTS``; empty in production: every hook is then a
no-op). A test names the fault and where it strikes, asserts that it fired (its log line and its marker file),
then asserts exact rows.

Faults (comma-separated ``name=N``):

- ``sink_fail=N``: the first N ClickHouse inserts fail as a network error would (transient: retried);
- ``kill_after_rows=N``: the process dies (exit 137, as a SIGKILL) once the N-th batch's rows are stored,
  before its changelog records are sent;
- ``kill_after_changelog=N``: it dies once the N-th batch's changelog is acknowledged, before the batch is
  acknowledged (its offsets are then never committed);
- ``stall_at=N``: the N-th batch never completes (the agent waits for ever): the stall watchdog's case.

Each fault fires once per ``marker_dir``: a worker restarted with the same settings (or re-executed by the
watchdog) does not fire it again, so a test sees the recovery.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from pathlib import Path

log = logging.getLogger("vigie.faults")

KINDS = ("sink_fail", "kill_after_rows", "kill_after_changelog", "stall_at")
KILLED_EXIT_CODE = 137


class FaultSpecError(ValueError):
    pass


class Faults:
    def __init__(self, spec: str = "", marker_dir: Path | None = None) -> None:
        self.at: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, n = part.partition("=")
            if name not in KINDS or not n.isdigit() or int(n) < 1:
                raise FaultSpecError(f"VIGIE_FAULTS: {part!r} is not one of {', '.join(k + '=N' for k in KINDS)}")
            self.at[name] = int(n)
        if self.at and marker_dir is None:
            raise FaultSpecError("VIGIE_FAULTS needs a directory for its markers")
        self.marker_dir = marker_dir
        self.count: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.at)

    def marker(self, name: str) -> Path:
        assert self.marker_dir is not None
        return self.marker_dir / f"fault-{name}.fired"

    def _due(self, name: str) -> bool:
        """Counts one occurrence of ``name``'s moment; True when the fault strikes now."""
        n = self.at.get(name)
        if n is None or self.marker(name).exists():
            return False
        self.count[name] += 1
        if name == "sink_fail":
            due = self.count[name] <= n
            if self.count[name] == n:
                self._fired(name)
            return due
        if self.count[name] != n:
            return False
        self._fired(name)
        return True

    def _fired(self, name: str) -> None:
        assert self.marker_dir is not None
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        self.marker(name).write_text(f"{self.at[name]}\n")
        log.error("FAULT INJECTED: %s=%d", name, self.at[name])

    def fail_insert(self) -> bool:
        """True: this insert must fail (``sink_fail``)."""
        return bool(self.at) and self._due("sink_fail")

    def reached(self, stage: str) -> None:
        """A checkpoint stage of a batch: ``rows_stored`` or ``changelog_acked``; dies there when due."""
        if self.at and self._due(f"kill_after_{'rows' if stage == 'rows_stored' else 'changelog'}"):
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(KILLED_EXIT_CODE)

    async def maybe_stall(self) -> None:
        """Before a batch: waits for ever when ``stall_at`` is due (the event loop stays free)."""
        if self.at and self._due("stall_at"):
            await asyncio.Event().wait()


NO_FAULTS = Faults()
