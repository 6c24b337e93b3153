"""The hours a forecast works on, read in the brigade's local time: hour of the week, local days and 3-hour
blocks (23 or 25 hours on the days clocks change), public holidays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt

HOUR = 3600
WEEK_HOURS = 168
SUNDAY = 6
#: the bin sizes forecasts are made and scored in (hours)
BIN_HOURS = (1, 3, 24)

IntArray = npt.NDArray[np.int64]


def holiday_calendar(spec: str, years: range) -> set[int]:
    """Proleptic ordinals of the public holidays of ``spec`` (``FR``, ``US-CA``: country, optional subdivision;
    empty: none)."""
    if not spec:
        return set()
    country, _, subdiv = spec.partition("-")
    days = holidays.country_holidays(country, subdiv=subdiv or None, years=list(years))
    return {d.toordinal() for d in days}


@dataclass(frozen=True)
class HourGrid:
    """``hours`` consecutive UTC hours from ``start`` (epoch seconds, on the hour), with their local reading."""

    start: int
    hours: int
    zone: str
    holidays: str = ""
    _local: tuple[IntArray, IntArray, IntArray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.start % HOUR:
            raise ValueError(f"a grid starts on the hour, not at {self.start}")
        tz = ZoneInfo(self.zone)
        hour = np.empty(self.hours, dtype=np.int64)
        dow = np.empty(self.hours, dtype=np.int64)
        day = np.empty(self.hours, dtype=np.int64)
        for i in range(self.hours):
            local = datetime.fromtimestamp(self.start + i * HOUR, UTC).astimezone(tz)
            hour[i], dow[i], day[i] = local.hour, local.weekday(), local.toordinal()
        object.__setattr__(self, "_local", (hour, dow, day))

    @property
    def hour(self) -> IntArray:
        return self._local[0]

    @property
    def day(self) -> IntArray:
        """Proleptic ordinal of the local date."""
        return self._local[2]

    @cached_property
    def hour_of_week(self) -> IntArray:
        """0 = Monday 00:00-01:00 local, ..., 167 = Sunday 23:00."""
        return self._local[1] * 24 + self.hour

    @cached_property
    def holiday(self) -> npt.NDArray[np.bool_]:
        if not self.hours:
            return np.zeros(0, dtype=bool)
        years = range(datetime.fromordinal(int(self.day[0])).year, datetime.fromordinal(int(self.day[-1])).year + 1)
        days = holiday_calendar(self.holidays, years)
        return np.isin(self.day, np.fromiter(days, dtype=np.int64, count=len(days)))

    @cached_property
    def demand_hour_of_week(self) -> IntArray:
        """The hour of the week demand follows: a public holiday's hours are read as a Sunday's."""
        return np.where(self.holiday, SUNDAY * 24 + self.hour, self.hour_of_week)

    def bin_keys(self, bin_hours: int) -> IntArray:
        """The local bin of each hour: the hour itself, its 3-hour block of the local day, or its local day."""
        if bin_hours == 1:
            return np.arange(self.hours, dtype=np.int64)
        if bin_hours == 3:
            return self.day * 8 + self.hour // 3
        if bin_hours == 24:
            return self.day
        raise ValueError(f"bins are of {BIN_HOURS} hours, not {bin_hours}")

    def midnights(self) -> IntArray:
        """Indexes of the hours that start a local day; the grid's end counts when it is one."""
        if not self.hours:
            return np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.diff(self.day) != 0) + 1
        if self.hour[0] == 0:
            starts = np.insert(starts, 0, 0)
        if datetime.fromtimestamp(self.epoch(self.hours), UTC).astimezone(ZoneInfo(self.zone)).hour == 0:
            starts = np.append(starts, self.hours)
        return starts.astype(np.int64)

    def extended(self, hours: int) -> HourGrid:
        """The same grid, ``hours`` longer."""
        return HourGrid(self.start, self.hours + hours, self.zone, self.holidays)

    def epoch(self, index: int) -> int:
        return self.start + index * HOUR


def bins(keys: IntArray) -> tuple[IntArray, IntArray]:
    """(first index of each bin, bin number of each hour) for bin keys that are non-decreasing."""
    starts = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1) != 0) if len(keys) else np.zeros(0, np.int64)
    number = np.cumsum(np.diff(keys, prepend=keys[0] - 1 if len(keys) else 0) != 0) - 1
    return starts.astype(np.int64), number.astype(np.int64)


def aggregate(values: npt.NDArray[np.float64], keys: IntArray) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Sums of ``values`` (last axis: hours) per bin, and each bin's first hour."""
    starts, _ = bins(keys)
    return np.add.reduceat(values, starts, axis=-1) if len(starts) else values[..., :0], starts
