"""Tumbling event-time windows of resource counts for one station, per vehicle type.

Category changes are buffered as ``pending`` until the watermark passes them, then folded in
time order. Per window and type the row holds the counts at the window end, the minimum available
count held during the window, and the engaged vehicle-minutes (integral of the engaged count).
A change older than the sealed time is late: it is applied at the sealed time instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.rows import StationWindowRow

#: Order of the counters in ``TypeCounts.counts``.
CATEGORIES = ("available", "engaged", "out_of_service", "unknown")
CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
AVAILABLE, ENGAGED = 0, 1


class WindowBlock:
    """Station window rows kept as columns (the order of ``StationWindowRow``). A run of identical quiet
    windows is appended in one step, which is what most window rows are over history."""

    __slots__ = ("cols",)

    def __init__(self) -> None:
        self.cols: list[list[Any]] = [[] for _ in StationWindowRow._fields]

    def add(self, row: StationWindowRow) -> None:
        for col, value in zip(self.cols, row, strict=True):
            col.append(value)

    def add_run(self, first_start: float, count: int, row: StationWindowRow) -> None:
        """``count`` windows from ``first_start``, every other value as in ``row``."""
        w = row.window_seconds
        self.cols[0].extend([first_start + i * w for i in range(count)])
        for col, value in zip(self.cols[1:], row[1:], strict=True):
            col.extend([value] * count)

    def columns(self) -> list[list[Any]]:
        return self.cols

    def rows(self) -> list[StationWindowRow]:
        return [StationWindowRow(*r) for r in zip(*self.cols, strict=True)]

    def __iter__(self) -> Iterator[StationWindowRow]:
        return iter(self.rows())

    def __len__(self) -> int:
        return len(self.cols[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowBlock) and self.cols == other.cols

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class TypeCounts:
    counts: list[int]
    min_available: int
    engaged_seconds: float = 0.0

    def to_list(self) -> list[object]:
        return [self.counts, self.min_available, self.engaged_seconds]

    @classmethod
    def from_list(cls, data: list) -> TypeCounts:  # type: ignore[type-arg]
        return cls(list(data[0]), int(data[1]), float(data[2]))


@dataclass(slots=True)
class StationWindows:
    """Window accumulators of one station. ``pending`` holds (time, type, from_cat, to_cat)."""

    window_seconds: int
    types: dict[str, TypeCounts]
    window_start: float | None = None
    sealed_time: float | None = None
    pending: list[tuple[float, str, int, int]] = field(default_factory=list)

    @classmethod
    def for_fleet(cls, window_seconds: int, unknown_per_type: dict[str, int]) -> StationWindows:
        types = {t: TypeCounts([0, 0, 0, n], 0) for t, n in unknown_per_type.items()}
        return cls(window_seconds, types)

    def add_type(self, vehicle_type: str) -> None:
        if vehicle_type not in self.types:
            self.types[vehicle_type] = TypeCounts([0, 0, 0, 0], 0)

    def record(self, t: float, vehicle_type: str, from_cat: int, to_cat: int) -> bool:
        """Buffer one category change. Returns True when it was late (clamped to the sealed time)."""
        late = self.sealed_time is not None and t < self.sealed_time
        if late:
            t = self.sealed_time  # type: ignore[assignment]
        self.add_type(vehicle_type)
        self.pending.append((t, vehicle_type, from_cat, to_cat))
        return late

    def seal(self, until: float, station_id: str, area: str, max_fill_windows: int, out: WindowBlock) -> None:
        """Fold the changes older than ``until`` and emit every window that ends at or before it."""
        if self.sealed_time is not None and until <= self.sealed_time:
            return
        ready = sorted(c for c in self.pending if c[0] < until)
        if self.window_start is None:
            if not ready:
                return  # nothing ever happened here: no window to start from
            self.window_start = ready[0][0] - ready[0][0] % self.window_seconds
            self.sealed_time = self.window_start
            for tc in self.types.values():
                tc.min_available = tc.counts[AVAILABLE]
        self.pending = [c for c in self.pending if c[0] >= until]
        i = 0
        while i < len(ready):
            t = ready[i][0]
            self._close_windows_before(t, station_id, area, max_fill_windows, out)
            self._integrate(t)
            touched = set()
            while i < len(ready) and ready[i][0] == t:  # simultaneous changes count as one step
                _, vtype, frm, to = ready[i]
                counts = self.types[vtype].counts
                counts[frm] -= 1
                counts[to] += 1
                touched.add(vtype)
                i += 1
            for vtype in touched:
                tc = self.types[vtype]
                # a value replaced at the very instant the window opens was never held in it
                held = tc.min_available if t > self.window_start else tc.counts[AVAILABLE]
                tc.min_available = min(held, tc.counts[AVAILABLE])
        self._close_windows_before(until, station_id, area, max_fill_windows, out)
        self._integrate(until)

    def _integrate(self, t: float) -> None:
        assert self.sealed_time is not None
        span = t - self.sealed_time
        if span > 0:
            for tc in self.types.values():
                tc.engaged_seconds += tc.counts[ENGAGED] * span
            self.sealed_time = t

    def _close_windows_before(
        self, t: float, station_id: str, area: str, max_fill_windows: int, out: WindowBlock
    ) -> None:
        """Emit every window that ends at or before ``t``. Only the first can hold changes (they are folded
        in time order): the ones after it are quiet copies of its end state, emitted as runs."""
        assert self.window_start is not None
        w = self.window_seconds
        if self.window_start + w > t:
            return
        end = self.window_start + w
        self._integrate(end)
        for vtype, tc in sorted(self.types.items()):
            c = tc.counts
            out.add(StationWindowRow(self.window_start, w, station_id, area, vtype, c[0], c[1], c[2], c[3],
                                     tc.min_available, round(tc.engaged_seconds / 60.0, 6)))
            tc.min_available, tc.engaged_seconds = c[AVAILABLE], 0.0
        self.window_start = end
        quiet = int((t - end) // w)
        if quiet <= 0:
            return
        emitted = min(quiet, max_fill_windows - 1)
        for vtype, tc in sorted(self.types.items()):
            c = tc.counts
            out.add_run(end, emitted, StationWindowRow(end, w, station_id, area, vtype, c[0], c[1], c[2], c[3],
                                                       c[AVAILABLE], round(c[ENGAGED] * w / 60.0, 6)))
        if emitted < quiet:
            # A long silence (idle partition, replay gap): jump instead of emitting every window.
            self.window_start = t - t % w
        else:
            self.window_start = end + quiet * w
        self.sealed_time = self.window_start

    def to_dict(self) -> dict[str, object]:
        return {
            "w": self.window_seconds,
            "t": {k: v.to_list() for k, v in self.types.items()},
            "ws": self.window_start,
            "st": self.sealed_time,
            "p": [list(c) for c in self.pending],
        }

    @classmethod
    def from_dict(cls, d: dict) -> StationWindows:  # type: ignore[type-arg]
        return cls(
            int(d["w"]),
            {k: TypeCounts.from_list(v) for k, v in d["t"].items()},
            d["ws"],
            d["st"],
            [(float(a), str(b), int(c), int(e)) for a, b, c, e in d["p"]],
        )

