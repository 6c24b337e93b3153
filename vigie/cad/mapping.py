"""A declarative mapping from a CAD per-unit export to Vigie's events (a TOML file per brigade)."""

from __future__ import annotations

import csv
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.events import InterventionNature, VehicleStatus, VehicleTypeCode
from schemas.reference import DEFAULT_VEHICLE_TYPES
from vigie.cad.fields import Field_, columns_of, value


class MappingError(ValueError):
    """A mapping file that cannot be used: what to change, in words (no traceback)."""


class BadValue(ValueError):
    """A value of a row that cannot be read: the reason (what rows are grouped by in the report) and the value."""

    def __init__(self, reason: str, value: str) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.reason, self.value = reason, value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    """Each is a field (vigie/cad/fields.py): a column, a template over columns, or a table (const, regex, ...)."""

    row_id: Field_
    call_id: Field_
    unit_id: Field_
    unit_type: Field_
    # "(lat, lon)"; none: the intervention is placed at its first unit's station (then --stations is needed)
    location: Field_ | None = None
    sector: Field_  # the intervention's sector (what forecasts count by); made an identifier (identifier())
    area: Field_
    # the first-due station area (stations.from_sector formats it); default: ``sector``
    station_area: Field_ | None = None


class InterventionColumns(_Strict):
    opened: Field_


class ValueMap(_Strict):
    column: Field_
    default: str | int
    values: dict[str, str | int] = Field(default_factory=dict)

    def __call__(self, row: dict[str, str]) -> str | int:
        return self.lookup(row)[0]

    def lookup(self, row: dict[str, str]) -> tuple[str | int, str | None]:
        """The mapped value, and the raw value when it is not in the mapping (the default was used)."""
        raw = value(self.column, row)
        if raw in self.values:
            return self.values[raw], None
        return self.default, raw


class TimeRules(_Strict):
    # a status time earlier than the one before it (or than the call) moves to the next day, instead of being
    # clamped: exports with a date column and time-of-day columns, whose times cross midnight
    roll_over_midnight: bool = False


class RowFilter(_Strict):
    """Rows kept: those whose ``field`` is in ``keep`` (if given) and not in ``drop``; the others are counted as
    filtered out (not rejected)."""

    field: Field_
    keep: list[str] | None = None
    drop: list[str] = Field(default_factory=list)

    def admits(self, row: dict[str, str]) -> bool:
        v = value(self.field, row)
        return (self.keep is None or v in self.keep) and v not in self.drop


class HomeStationRule(_Strict):
    unit: str
    station: str

    @field_validator("unit")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


class OptionalStatuses(_Strict):
    columns: list[str] = Field(default_factory=list)


class StationRules(_Strict):
    from_sector: str
    pool_area: str


class Mapping(_Strict):
    # another mapping this one starts from (read and merged before validation; here for the JSON Schema)
    extends: str | None = None
    name: str
    timezone: str
    timestamp_formats: list[str]
    # how the CSV is written (`vigie import --encoding/--delimiter` win): default UTF-8 (a BOM is skipped) and the
    # delimiter found in the header line among , ; tab |
    encoding: str | None = None
    delimiter: str | None = None
    columns: Columns
    intervention: InterventionColumns
    statuses: dict[str, VehicleStatus]  # CAD column -> status, in lifecycle order
    optional_statuses: OptionalStatuses = Field(default_factory=OptionalStatuses)
    unit_types: dict[str, str]
    # vehicle types beyond Vigie's catalogue (code -> label) that unit_types may name: an export that tells apart
    # units the catalogue would merge (SF's chiefs, rescue captains and support units); the import's reference
    # lists them in vehicle_types.csv
    vehicle_types: dict[VehicleTypeCode, str] = Field(default_factory=dict)
    nature: ValueMap
    priority: ValueMap
    home_station: list[HomeStationRule]
    stations: StationRules
    times: TimeRules = Field(default_factory=TimeRules)
    filter: list[RowFilter] = Field(default_factory=list)
    # false for a station-level export (no appliance ids: one pseudo-unit per call, built by a template): engaged
    # counts and response times hold, "available" does not; said in the run's data_quality and on the board
    availability_tracked: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @model_validator(mode="after")
    def _types_known(self) -> Mapping:
        known = {**DEFAULT_VEHICLE_TYPES, **self.vehicle_types}
        unknown = sorted({t for t in self.unit_types.values() if t not in known})
        if unknown:
            raise ValueError(f"unit_types names {', '.join(unknown)}: neither in Vigie's catalogue "
                             f"({', '.join(DEFAULT_VEHICLE_TYPES)}) nor in the mapping's vehicle_types")
        return self

    @field_validator("nature")
    @classmethod
    def _natures_exist(cls, v: ValueMap) -> ValueMap:
        for nature in [v.default, *v.values.values()]:
            InterventionNature(nature)
        return v

    @classmethod
    def load(cls, path: Path) -> Mapping:
        """The mapping file; a ``MappingError`` naming the file and every field at fault."""
        try:
            return cls.model_validate(_read_with_base(Path(path), ()))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(file)'}: {err['msg']}"
                                 for err in e.errors())
            raise MappingError(f"mapping {path}: {problems}") from None
        except tomllib.TOMLDecodeError as e:
            raise MappingError(f"mapping {path} is not valid TOML: {e}") from None
        except OSError as e:
            raise MappingError(f"mapping {path}: {e.strerror or e}") from None


    def mapped_columns(self) -> dict[str, str]:
        """Every CSV column the mapping reads -> where the mapping names it."""
        named: list[tuple[str, Field_ | None]] = [(f"columns.{k}", getattr(self.columns, k))
                                                  for k in Columns.model_fields]
        named += [("intervention.opened", self.intervention.opened), ("nature.column", self.nature.column),
                  ("priority.column", self.priority.column)]
        named += [(f"statuses.{key!r}", key) for key in self.statuses]
        named += [(f"filter[{i}].field", f.field) for i, f in enumerate(self.filter)]
        return {column: where for where, spec in reversed(named) for column in columns_of(spec)}

    def home_station_of(self, unit_id: str, vehicle_type: str) -> str:
        for rule in self.home_station:
            m = re.match(rule.unit, unit_id)
            if m:
                return rule.station.format(unit=unit_id, type=vehicle_type, **m.groupdict())
        raise BadValue("no home-station rule matches the unit", unit_id)


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A mapping file's table; ``extends = "other.toml"`` (relative to the file) starts from another mapping,
    whose tables this file's keys update key by key (a variant of a brigade's mapping repeats nothing)."""
    path = path.resolve()
    if path in seen:
        raise MappingError(f"mapping {path} extends itself (through {' -> '.join(p.name for p in seen)})")
    with path.open("rb") as f:
        table = _with_lookup_files(tomllib.load(f), path.parent)
    base = table.pop("extends", None)
    if base is None:
        return table
    return _merged(_read_with_base(path.parent / str(base), (*seen, path)), table)


def _with_lookup_files(table: Any, folder: Path) -> Any:
    """Every ``lookup_file`` (a CSV with a header ``key,value``, beside the mapping) read into its ``lookup``."""
    if isinstance(table, list):
        return [_with_lookup_files(t, folder) for t in table]
    if not isinstance(table, dict):
        return table
    out = {k: _with_lookup_files(v, folder) for k, v in table.items()}
    name = out.pop("lookup_file", None)
    if name is not None:
        source = folder / str(name)
        try:
            with source.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise MappingError(f"lookup_file {source}: {e.strerror or e}") from None
        if rows and set(rows[0]) != {"key", "value"}:
            raise MappingError(f"lookup_file {source}: the header must be key,value (it is {','.join(rows[0])})")
        out["lookup"] = {r["key"].strip(): r["value"].strip() for r in rows} | out.get("lookup", {})
    return out


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, given in override.items():
        out[key] = _merged(out[key], given) if isinstance(given, dict) and isinstance(out.get(key), dict) else given
    return out


_NOT_IN_IDENTIFIER = re.compile(r"[^A-Za-z0-9_.:\-]+")


def identifier(value: str) -> str:
    """A CAD value (a sector or neighbourhood name) as an event identifier: every run of characters an
    identifier cannot hold becomes one ``-`` ("Nob Hill" -> "Nob-Hill"), and it starts with a letter or digit."""
    return _NOT_IN_IDENTIFIER.sub("-", value.strip()).lstrip("-_.:")[:64]


_FIRST_DAY, _LAST_DAY = datetime(1970, 1, 2), datetime(2106, 2, 6)


class LocalTimes:
    """CAD local wall-clock strings -> UTC epoch seconds, DST-aware.

    An ambiguous time (the repeated hour when clocks go back) is resolved by the caller with ``fold``; a
    time that does not exist (the hour skipped when clocks go forward) is moved one hour later, as CAD
    systems that log local time without offset do in practice. Both are counted."""

    def __init__(self, mapping: Mapping) -> None:
        self.zone = ZoneInfo(mapping.timezone)
        self.formats = mapping.timestamp_formats

    def naive(self, text: str) -> datetime | None:
        text = text.strip()
        if not text:
            return None
        for fmt in self.formats:
            try:
                parsed = datetime.strptime(text, fmt)
            except ValueError:
                continue
            # a day inside the range an event time may take (schemas.events.EventTime), with a margin for zones
            if not _FIRST_DAY <= parsed <= _LAST_DAY:
                raise BadValue(f"timestamp outside {_FIRST_DAY:%Y-%m-%d}..{_LAST_DAY:%Y-%m-%d}", text)
            return parsed
        raise BadValue(f"timestamp matching none of {self.formats}", text)

    def is_ambiguous(self, naive: datetime) -> bool:
        """A wall time that happened twice (the offsets of its two readings differ, and it exists)."""
        a, b = naive.replace(tzinfo=self.zone, fold=0), naive.replace(tzinfo=self.zone, fold=1)
        return a.utcoffset() != b.utcoffset() and not self.is_missing(naive)

    def is_missing(self, naive: datetime) -> bool:
        local = naive.replace(tzinfo=self.zone)
        return local.astimezone(ZoneInfo("UTC")).astimezone(self.zone).replace(tzinfo=None) != naive

    def to_epoch(self, naive: datetime, fold: int = 0) -> float:
        if self.is_missing(naive):
            naive = naive + timedelta(hours=1)
        return naive.replace(tzinfo=self.zone, fold=fold).timestamp()
