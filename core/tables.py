"""Row types and the ClickHouse tables they fill.

A processor's output rows are NamedTuples whose fields carry their ClickHouse column type
(``Annotated[..., CH("UInt16")]``, or the aliases below). :func:`table` derives everything the sink
and the tests need from the row class: column names and order, ClickHouse types, which columns hold
DateTime values (float epoch seconds in Python), and the Null "runs" table of a window table. A test
compares every registered table with its migrated DDL (names, order and types).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class CH:
    """The ClickHouse type of a row field."""

    type: str


String = Annotated[str, CH("String")]
Strings = Annotated[list[str], CH("Array(String)")]
UInt8 = Annotated[int, CH("UInt8")]
UInt16 = Annotated[int, CH("UInt16")]
UInt32 = Annotated[int, CH("UInt32")]
UInt64 = Annotated[int, CH("UInt64")]
Float64 = Annotated[float, CH("Float64")]
#: float epoch seconds (UTC) in Python, whole seconds in ClickHouse; 0.0 = "no time"
DateTime = Annotated[float, CH("DateTime")]

#: 0.0 stands for "no time" in the optional time columns (ClickHouse DateTime 0 = 1970-01-01).
NO_TIME = 0.0
#: The instants a ClickHouse DateTime holds (UInt32 seconds), 0 excepted (``NO_TIME``): an event outside is
#: refused at decoding, never stored, so it can never block a write.
DATETIME_MIN, DATETIME_MAX = 1, 2**32 - 1


def column_types(row_type: type[tuple[Any, ...]]) -> tuple[tuple[str, str], ...]:
    """(name, ClickHouse type) of every field of a row class, in order."""
    hints = get_type_hints(row_type, include_extras=True)
    out = []
    for name in row_type._fields:  # type: ignore[attr-defined]
        hint = hints[name]
        marks = [a for a in get_args(hint)[1:] if isinstance(a, CH)] if get_origin(hint) is Annotated else []
        if not marks:
            raise TypeError(f"{row_type.__name__}.{name}: annotate it with its ClickHouse type (core.tables)")
        out.append((name, marks[0].type))
    return tuple(out)


@dataclass(frozen=True)
class TableSpec:
    """A ClickHouse table filled with rows of ``row_type`` (field order = column order).

    ``runs_table``: for window tables, a Null table that takes runs of identical consecutive windows
    (``first_window_start``, the other columns, ``window_count``); a materialized view expands each run
    into the table, so a quiet hour of a station is one entry on the wire, not sixty rows."""

    name: str
    row_type: type[tuple[Any, ...]]
    runs_table: str | None = None
    # rows about one person (their statuses): never granted to the dashboards' user (README "Data protection")
    personal: bool = False
    types: tuple[tuple[str, str], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", column_types(self.row_type))

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableSpec) and other.name == self.name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.types)

    @property
    def datetime_indexes(self) -> tuple[int, ...]:
        return tuple(i for i, (_, t) in enumerate(self.types) if t == "DateTime")

    @property
    def runs_types(self) -> tuple[tuple[str, str], ...]:
        """Columns of the runs table (window tables only)."""
        (_, first_type), *rest = self.types
        return (("first_window_start", first_type), *rest, ("window_count", "UInt32"))


def table(name: str, row_type: type[NamedTuple], runs_table: str | None = None, personal: bool = False) -> TableSpec:
    return TableSpec(name, row_type, runs_table, personal)
