"""The alert rules file (TOML): what each rule measures, on which scope, and when it fires and clears.

A rule is one ``[[rule]]`` table::

    [[rule]]
    name = "no-vsav-in-area"          # unique; letters, digits and dashes
    measure = "available"             # see Measure
    scope = "area"                    # see Scope (each measure allows some)
    vehicle_type = "VSAV"
    fire_at = 0                       # the direction is the measure's: capacity fires at or below,
    clear_at = 1                      #   a wait, a duration or a surge at or above; clear_at: the hysteresis
    for = "0s"                        # the condition must hold this long before anyone is notified
    keep_firing_for = "2m"            # and be gone this long before the alert resolves
    severity = "critical"             # critical | warning | info
    message = "No {vehicle_type} available in {area}"

Durations are ``<number><s|m|h>`` (``90s``, ``2m``, ``1.5h``). A message names only fields its scope has
(see ``PLACEHOLDERS``); ``{value}`` is the measured value, ``{fire_at}`` the threshold.
"""

from __future__ import annotations

import re
import string
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from schemas.events import Qualification, VehicleStatus
from schemas.presence import Segment


class Measure(StrEnum):
    AVAILABLE = "available"  # vehicles (of ``vehicle_type``) available; ``staffed``: only those a crew can take
    AVAILABLE_SHARE = "available_share"  # the same, in % of the scope's fleet of that type
    UNASSIGNED_MINUTES = "unassigned_minutes"  # minutes an open intervention has waited without any unit
    STATUS_MINUTES = "status_minutes"  # minutes a unit has been in ``status``
    STAFF_ON_DUTY = "staff_on_duty"  # people holding ``qualification`` on duty at a station
    # interventions opened per ``window`` in an area, in standard deviations above the usual for that hour of
    # the week (at least ``min_count`` of them: a quiet area's one call is no surge)
    SURGE = "surge"
    # people present in a sector against the usual for that hour of the week (``streams/presence.py``): the ratio
    # present / usual of each period whose distance from the usual is beyond chance (the presence settings' robust
    # z), else 1; a crowd fires at or above ``fire_at`` (``presence_high``), an emptied sector at or below it
    # (``presence_low``). Of one ``segment`` (default all); in the periods' time, once sealed (README)
    PRESENCE_HIGH = "presence_high"
    PRESENCE_LOW = "presence_low"


class Scope(StrEnum):
    AREA = "area"
    STATION = "station"
    UNIT = "unit"
    INTERVENTION = "intervention"
    SECTOR = "sector"  # a sector's counts from one source (scope key ``<sector>/<source>``)


#: the scopes each measure is computed on
SCOPES: dict[Measure, frozenset[Scope]] = {
    Measure.AVAILABLE: frozenset({Scope.AREA, Scope.STATION}),
    Measure.AVAILABLE_SHARE: frozenset({Scope.AREA, Scope.STATION}),
    Measure.UNASSIGNED_MINUTES: frozenset({Scope.INTERVENTION}),
    Measure.STATUS_MINUTES: frozenset({Scope.UNIT}),
    Measure.STAFF_ON_DUTY: frozenset({Scope.STATION}),
    Measure.SURGE: frozenset({Scope.AREA}),
    Measure.PRESENCE_HIGH: frozenset({Scope.SECTOR}),
    Measure.PRESENCE_LOW: frozenset({Scope.SECTOR}),
}
PRESENCE_MEASURES = frozenset({Measure.PRESENCE_HIGH, Measure.PRESENCE_LOW})
#: capacity runs out downwards; waits, durations and surges upwards
FIRES_BELOW = frozenset({Measure.AVAILABLE, Measure.AVAILABLE_SHARE, Measure.STAFF_ON_DUTY, Measure.PRESENCE_LOW})

#: what a message may name, per scope (every rule also has rule, severity, value, fire_at)
PLACEHOLDERS: dict[Scope, frozenset[str]] = {
    Scope.AREA: frozenset({"area", "vehicle_type"}),
    Scope.STATION: frozenset({"area", "station", "vehicle_type", "qualification"}),
    Scope.UNIT: frozenset({"area", "station", "unit", "vehicle_type", "status", "intervention"}),
    Scope.INTERVENTION: frozenset({"intervention", "sector", "nature"}),
    Scope.SECTOR: frozenset({"sector", "source", "segment", "area"}),
}
COMMON_PLACEHOLDERS = frozenset({"rule", "severity", "value", "fire_at"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """``"90s"``, ``"2m"``, ``"1.5h"`` (or a number of seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if m is None:
            raise ValueError(f"{value!r} is not a duration like 90s, 2m or 1.5h")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    measure: Measure
    scope: Scope
    fire_at: float
    clear_at: float | None = None  # default: fire_at (no hysteresis)
    for_s: Duration = Field(0.0, alias="for")
    keep_firing_for_s: Duration = Field(0.0, alias="keep_firing_for")
    severity: Literal["critical", "warning", "info"] = "warning"
    message: str = Field(min_length=1)
    vehicle_type: str | None = None
    staffed: bool = False
    status: VehicleStatus | None = None
    qualification: Qualification | None = None
    # surge only
    window: Duration = 600.0
    min_count: int = Field(3, ge=1)
    # presence only (default: all)
    segment: Segment | None = None

    @property
    def fires_below(self) -> bool:
        return self.measure in FIRES_BELOW

    @property
    def clear_level(self) -> float:
        return self.fire_at if self.clear_at is None else self.clear_at

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        m = self.measure
        if self.scope not in SCOPES[m]:
            raise ValueError(f"measure {m.value!r} is computed per {' or '.join(sorted(SCOPES[m]))}, "
                             f"not per {self.scope.value!r}")
        needs = {Measure.STATUS_MINUTES: "status", Measure.STAFF_ON_DUTY: "qualification"}.get(m)
        if needs and getattr(self, needs) is None:
            raise ValueError(f"measure {m.value!r} needs {needs}")
        for name in ("status", "qualification"):
            if getattr(self, name) is not None and needs != name:
                raise ValueError(f"{name} applies to measure "
                                 f"{'status_minutes' if name == 'status' else 'staff_on_duty'} only")
        if self.segment is not None and m not in PRESENCE_MEASURES:
            raise ValueError("segment applies to the presence measures only")
        if self.staffed and m not in (Measure.AVAILABLE, Measure.AVAILABLE_SHARE):
            raise ValueError("staffed applies to the available measures only")
        if m in (Measure.AVAILABLE, Measure.AVAILABLE_SHARE) and self.vehicle_type is None:
            raise ValueError(f"measure {m.value!r} needs vehicle_type")
        clear = self.clear_level
        if (clear < self.fire_at) if self.fires_below else (clear > self.fire_at):
            raise ValueError(f"clear_at {clear:g} must be {'at or above' if self.fires_below else 'at or below'} "
                             f"fire_at {self.fire_at:g}: measure {m.value!r} fires "
                             f"{'at or below' if self.fires_below else 'at or above'} it")
        allowed = PLACEHOLDERS[self.scope] | COMMON_PLACEHOLDERS
        for _, field_name, _, _ in string.Formatter().parse(self.message):
            if field_name is not None and field_name not in allowed:
                raise ValueError(f"message names {{{field_name}}}, which a {self.scope.value} alert does not have "
                                 f"(it has {', '.join(sorted(allowed))})")
        return self

    def render(self, value: float, **fields: str) -> str:
        """The message with this alert's fields (a field its scope lacks stays empty)."""
        known = {k: "" for k in PLACEHOLDERS[self.scope]}
        known.update(fields)
        return self.message.format(rule=self.name, severity=self.severity, value=f"{value:g}",
                                   fire_at=f"{self.fire_at:g}", **known)


class RuleFileError(ValueError):
    pass


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for r in self.rule:
            if r.name in seen:
                raise ValueError(f"two rules are named {r.name!r}")
            seen.add(r.name)
        return self

    @staticmethod
    def version(path: Path) -> tuple[float, int] | None:
        """What tells a rules file changed (its modification time and size); None: no file."""
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Reads and checks a rules file; ``RuleFileError`` says which rule and field is wrong, and why."""
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RuleFileError(f"{path}: {e}") from None
        try:
            return cls.model_validate(doc)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                loc = list(err["loc"])
                where = "file"
                if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
                    rules = doc.get("rule") or []
                    name = rules[loc[1]].get("name", "?") if loc[1] < len(rules) else "?"
                    where = f"rule {loc[1] + 1} ({name})" + (f", {'.'.join(map(str, loc[2:]))}" if loc[2:] else "")
                problems.append(f"{where}: {err['msg']}")
            raise RuleFileError(f"{path}: " + "; ".join(problems)) from None


class RuleFileWatcher:
    """A rules file read again when it changes (its modification time and size), for each reader of it (the alerts,
    the stations, which publish what the rules read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version: tuple[float, int] | None = None  # nothing read yet: a file there is a change

    def changed(self) -> tuple[Rule, ...] | None:
        """The file's rules when it changed since the last call (none: the file is gone, alerts off); None: no
        change. ``RuleFileError``: changed but unreadable (said once: the next call waits for another change)."""
        version = RuleSet.version(self.path)
        if version == self.version:
            return None
        self.version = version
        return RuleSet.load(self.path).rule if version is not None else ()
