"""Per-intervention state, and per-partition counts of interventions opened by sector and window.

- ``opened_at`` is the earliest ``opened`` event time seen (min: order- and duplicate-proof);
  ``closed_at`` the latest ``closed`` one; descriptive fields (nature, location, priority) follow
  the newest event in ``(time, id)`` order only, so an older event never overwrites them.
- Sector windows hold the *set* of intervention ids opened in each open window, so re-applying an
  ``opened`` event after a crash can never count it twice. An intervention counts in the sector of the
  ``opened`` event that set its opened time (not of later updates): the same in any arrival order.
  Windows are emitted when the partition watermark passes their end, one row per (window, sector, source
  partition); queries sum partitions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.tables import NO_TIME
from schemas.events import InterventionEvent, Lifecycle
from streams.ordering import Outcome, admit
from streams.rows import InterventionRow, SectorWindowRow
from streams.windowing import clamp_late, window_of


@dataclass(slots=True)
class InterventionState:
    intervention_id: str
    nature: str = ""
    priority: int = 0
    sector: str = ""
    lat: float = 0.0
    lon: float = 0.0
    opened_at: float = NO_TIME
    closed_at: float = NO_TIME
    event_time: float = NO_TIME
    ids_at_time: list[str] = field(default_factory=list)
    partition: int = -1
    records: int = 0  # records consumed (any outcome): with the newest time, the version of its rows
    # the opening event: the first ``opened`` in (time, id) order; its sector is where the opening counts
    opened_by: str = ""
    opened_sector: str = ""
    # the opening event's nature and place (the alerts': fixed by the opening, whatever came after it)
    opened_nature: str = ""
    opened_lat: float = 0.0
    opened_lon: float = 0.0

    @property
    def status(self) -> str:
        if self.closed_at and self.closed_at >= self.opened_at:
            return "closed"
        return "open" if self.opened_at else "unopened"

    def apply(self, event: InterventionEvent, t: float) -> str:
        """Apply one event; returns ``applied``, ``duplicate`` or ``stale`` (older than the state:
        only the opened/closed times may still move, never the descriptive fields)."""
        self.records += 1
        rejected = admit(self, event.event_id, t)  # the shared ordering rule (streams/ordering.py)
        if rejected is Outcome.DUPLICATE:
            return rejected.value
        if event.lifecycle is Lifecycle.OPENED and (
                not self.opened_at or (t, event.event_id) < (self.opened_at, self.opened_by)):
            self.opened_at, self.opened_by, self.opened_sector = t, event.event_id, event.location.sector
            self.opened_nature, self.opened_lat, self.opened_lon = event.nature.value, event.location.lat, \
                event.location.lon
        elif event.lifecycle is Lifecycle.CLOSED and t > self.closed_at:
            self.closed_at = t
        if rejected is not None:
            return rejected.value  # stale: only the opened / closed times may still move
        loc = event.location
        self.nature, self.priority = event.nature.value, event.priority
        self.sector, self.lat, self.lon = loc.sector, loc.lat, loc.lon
        return "applied"

    def row(self) -> InterventionRow:
        return InterventionRow(
            self.intervention_id, self.nature, self.priority, self.sector, self.lat, self.lon,
            self.status, self.opened_at, self.closed_at,
            # a row re-derived by an older event (an earlier opening) is newer than the one it replaces
            int(self.event_time * 1000) * 1_000_000 + self.records % 1_000_000,
        )

    def to_list(self) -> list[object]:
        return [self.nature, self.priority, self.sector, self.lat, self.lon,
                self.opened_at, self.closed_at, self.event_time, self.ids_at_time, self.partition, self.records,
                self.opened_by, self.opened_sector, self.opened_nature, self.opened_lat, self.opened_lon]

    @classmethod
    def from_list(cls, intervention_id: str, d: list) -> InterventionState:  # type: ignore[type-arg]
        return cls(intervention_id, d[0], int(d[1]), d[2], float(d[3]), float(d[4]),
                   float(d[5]), float(d[6]), float(d[7]), list(d[8]), int(d[9]), int(d[10]) if len(d) > 10 else 0,
                   str(d[11]) if len(d) > 11 else "", str(d[12]) if len(d) > 12 else d[2],
                   *((str(d[13]), float(d[14]), float(d[15])) if len(d) > 15 else (d[0], float(d[3]), float(d[4]))))


@dataclass(slots=True)
class SectorWindows:
    """Open sector windows of one partition: window start -> sector -> intervention ids."""

    window_seconds: int
    partition: int
    open: dict[float, dict[str, set[str]]] = field(default_factory=dict)
    sealed_time: float | None = None
    # intervention id -> (window start, sector) it is counted in (only for open windows)
    placed: dict[str, tuple[float, str]] = field(default_factory=dict)
    # the input offset of this partition up to which events are applied (live path; -1: none yet)
    applied_offset: int = -1
    # published for the alerts (``intervention-steps``): the interventions whose opening or closing may still be
    # to publish, with the time of that change, and the ``until`` of the partition's last part; its newest event
    changed: dict[str, float] = field(default_factory=dict)
    closings: list[tuple[float, str]] = field(default_factory=list)
    steps_until: float | None = None
    newest: float = NO_TIME

    def place(self, intervention_id: str, sector: str, opened_at: float) -> bool:
        """Count the intervention in the window of ``opened_at`` and ``sector`` (moved if either moved).
        Returns True when late (its window was already emitted; counted in the open window)."""
        opened_at, late = clamp_late(opened_at, self.sealed_time)
        start = window_of(opened_at, self.window_seconds)
        before = self.placed.get(intervention_id)
        if before is not None:
            if before == (start, sector):
                return late
            self.open.get(before[0], {}).get(before[1], set()).discard(intervention_id)
        self.open.setdefault(start, {}).setdefault(sector, set()).add(intervention_id)
        self.placed[intervention_id] = (start, sector)
        return late

    def seal(self, until: float) -> list[SectorWindowRow]:
        """Emit the windows that end at or before ``until``."""
        if self.sealed_time is not None and until <= self.sealed_time:
            return []
        self.sealed_time = window_of(until, self.window_seconds)
        rows = []
        for start in sorted(s for s in self.open if s + self.window_seconds <= until):
            for sector, ids in sorted(self.open.pop(start).items()):
                for iid in ids:
                    self.placed.pop(iid, None)
                if ids:
                    rows.append(SectorWindowRow(start, self.window_seconds, sector, self.partition, len(ids)))
        return rows

    def to_dict(self) -> dict[str, object]:
        return {
            "w": self.window_seconds, "p": self.partition, "st": self.sealed_time, "ao": self.applied_offset,
            "o": [[start, {s: sorted(ids) for s, ids in secs.items()}] for start, secs in self.open.items()],
            "ch": self.changed, "cl": self.closings, "su": self.steps_until, "n": self.newest,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SectorWindows:  # type: ignore[type-arg]
        sw = cls(int(d["w"]), int(d["p"]), sealed_time=d["st"], applied_offset=int(d.get("ao", -1)),
                 changed={str(k): float(v) for k, v in d.get("ch", {}).items()},
                 closings=[(float(t), str(i)) for t, i in d.get("cl", [])], steps_until=d.get("su"),
                 newest=float(d.get("n", NO_TIME)))
        for start, secs in d["o"]:
            sw.open[float(start)] = {s: set(ids) for s, ids in secs.items()}
            for sector, ids in secs.items():
                for iid in ids:
                    sw.placed[iid] = (float(start), sector)
        return sw


@dataclass(slots=True)
class InterventionOutput:
    intervention_rows: list[InterventionRow] = field(default_factory=list)
    sector_rows: list[SectorWindowRow] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    late_opened: int = 0
