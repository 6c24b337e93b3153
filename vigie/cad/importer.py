"""`vigie import`: a CAD per-unit export -> Vigie events (event-time order), the fleet and stations it
implies, and a report of every row repaired or rejected, and why.

Rules (the same for every brigade; the mapping file says which column is what):
- A row is one unit sent to one call. Its status timestamps are read in lifecycle order (the mapping's
  ``statuses``). An empty timestamp is a status that did not happen (a unit cancelled before arriving
  has no on-scene time, a unit that did not transport has no transport time): counted, not an error.
- A timestamp earlier than the previous one in the row is **clamped** to it (the transition is kept, in
  order, with no duration).
- A unit sent to a new call before the previous one made it available again: the previous response's
  statuses at or after the new dispatch are **dropped** (the unit went from one call to the next).
- Local times are converted with the mapping's time zone: a repeated hour (clocks going back) takes the
  occurrence that keeps the row in order, a skipped hour (clocks going forward) moves one hour later.
- Rejected: an unknown unit type, no dispatch time, an unreadable timestamp or location.
- The call (intervention) opens at its earliest received time and closes at the last status of its
  units.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import itertools
import json
import math
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from schemas.codec import event_line
from schemas.events import (
    InterventionEvent,
    InterventionNature,
    Lifecycle,
    Location,
    Position,
    VehicleStatus,
    VehicleStatusEvent,
)
from schemas.reference import FleetVehicle, Reference, Station, load_fleet, load_stations
from vigie.cad.fields import Field_, value
from vigie.cad.mapping import BadValue, LocalTimes, Mapping, ValueMap, identifier

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")  # schemas.events.Identifier
_LOCATION = re.compile(r"^\(?\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)?$")


@dataclass
class Response:
    """One unit sent to one call, after parsing and repairs."""

    row_id: str
    call_id: str
    unit_id: str
    vehicle_type: str
    statuses: list[tuple[float, VehicleStatus]]  # in lifecycle order, non-decreasing times
    received: float | None
    lat: float
    lon: float
    sector: str
    station_area: str
    area: str
    nature: str
    priority: int
    repaired: bool = False


@dataclass
class ImportReport:
    source: str
    mapping: str
    rows: int = 0
    imported: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> rows
    repairs: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)  # status column -> rows without it
    # values the mapping does not know (a nature, a priority): the default was used; never silent
    unmapped: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)  # rows the mapping's filters leave out, by filter
    samples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 3 distinct examples
    availability_tracked: bool = True  # false: a station-level export (mapping's availability_tracked)
    rows_with_missing: int = 0
    rows_repaired: int = 0
    calls: int = 0
    units: int = 0
    stations: int = 0
    events: int = 0
    first_event: str = ""
    last_event: str = ""

    def note(self, counts: Counter[str], reason: str, sample: str) -> None:
        """Count ``reason``; keep ``sample`` among its first three distinct examples."""
        counts[reason] += 1
        kept = self.samples.setdefault(reason, [])
        if len(kept) < 3 and sample not in kept:
            kept.append(sample)

    def to_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        for k in ("rejected", "repairs", "missing", "unmapped", "filtered"):
            d[k] = dict(sorted(getattr(self, k).items()))
        n = self.imported or 1
        d["share_rows_with_missing_timestamps"] = round(self.rows_with_missing / n, 4)
        d["share_rows_with_inconsistent_timestamps"] = round(self.rows_repaired / n, 4)
        return d

    def render(self) -> str:
        d = self.to_dict()
        lines = [f"import of {self.source} with mapping '{self.mapping}'",
                 f"  rows read {self.rows}, imported {self.imported}, rejected {sum(self.rejected.values())}",
                 f"  {self.calls} calls, {self.units} units, {self.stations} stations, {self.events} events "
                 f"from {self.first_event} to {self.last_event}",
                 f"  rows missing a status time (besides optional ones): "
                 f"{d['share_rows_with_missing_timestamps']:.1%}; "
                 f"with inconsistent times (repaired): {d['share_rows_with_inconsistent_timestamps']:.1%}"]
        if not self.availability_tracked:
            lines.append("  availability NOT tracked: a station-level export (one pseudo-unit per call); engaged "
                         "counts and response times hold, available counts do not")
        for title, counts in (("rejected", self.rejected), ("repaired", self.repairs), ("missing", self.missing),
                              ("unmapped", self.unmapped), ("filtered", self.filtered)):
            for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {title:9} {n:7d}  {reason}")
                if reason in self.samples:
                    lines.append(f"  {'':9} {'':7}    e.g. {'; '.join(self.samples[reason])}")
        return "\n".join(lines)


class ImportProblem(ValueError):
    """A file that cannot be imported as it is: what to change, in words (``vigie import`` exits 2 with it)."""


class NothingImported(ImportProblem):
    """Every row was rejected: the report says why."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"no row of {report.source} could be imported: the reasons are in the report above")
        self.report = report


_DELIMITERS = (",", ";", "\t", "|")


def _open_binary(path: Path) -> IO[bytes]:
    try:
        if str(path).endswith(".gz"):
            return gzip.open(path, "rb")
        if str(path).endswith(".zip"):
            archive = zipfile.ZipFile(path)
            members = [n for n in archive.namelist() if not n.endswith("/")]
            csvs = [n for n in members if n.lower().endswith(".csv")] or members
            if len(csvs) != 1:
                raise ImportProblem(f"{path}: the archive holds {len(csvs)} CSV files ({', '.join(csvs[:5])}); "
                                    "extract the one to import")
            return archive.open(csvs[0])
        return Path(path).open("rb")
    except (OSError, zipfile.BadZipFile) as e:
        raise ImportProblem(f"{path}: {getattr(e, 'strerror', None) or e}") from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV from its header line: the most frequent of , ; tab | (a comma if none)."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def check_header(header: list[str], wanted: dict[str, str]) -> None:
    """Every column the mapping reads is in the file's header, or one message naming each missing one with the
    closest header names."""
    missing = [(column, where) for column, where in wanted.items() if column not in header]
    if missing:
        lines = [f"{where} = {column!r} is not a column of the file"
                 + (f" (closest: {', '.join(repr(c) for c in close)})"
                    if (close := difflib.get_close_matches(column, header, n=3, cutoff=0.5)) else "")
                 for column, where in missing]
        raise ImportProblem("the mapping does not fit the file's header: " + "; ".join(lines)
                            + f". The header has: {', '.join(repr(h) for h in header[:40])}")


def read_rows(path: Path, encoding: str | None = None, delimiter: str | None = None,
              expect: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The rows of a CSV (plain, .gz or a .zip holding one CSV), in ``encoding`` (default UTF-8, a BOM skipped)
    with ``delimiter`` (default: sniffed from the header); ``expect``: columns that must be in the header."""
    text = io.TextIOWrapper(_open_binary(path), encoding=encoding or "utf-8-sig", newline="")
    reader = None
    try:
        with text:
            first = text.readline()
            if not first.strip():
                raise ImportProblem(f"{path}: empty file (no header line)")
            delim = delimiter or sniff_delimiter(first)
            header = [h.strip() for h in next(csv.reader([first], delimiter=delim))]
            if expect:
                check_header(header, expect)
            reader = csv.DictReader(text, fieldnames=header, delimiter=delim)
            yield from reader
    except UnicodeDecodeError as e:
        where = f" (data row {reader.line_num})" if reader is not None else " (header line)"
        raise ImportProblem(f"{path} is not {encoding or 'UTF-8'}: byte {e.object[e.start]:#04x}{where}; give the "
                            "file's encoding with --encoding (e.g. latin-1, cp1252) or `encoding` in the mapping"
                            ) from None
    except LookupError as e:
        raise ImportProblem(f"unknown encoding: {e}") from None


class Importer:
    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self.times = LocalTimes(mapping)

    def parse(self, rows: Iterable[dict[str, str]], report: ImportReport) -> list[Response]:
        out = []
        filters = list(enumerate(self.mapping.filter))
        for row in rows:
            report.rows += 1
            left_out = next((i for i, f in filters if not f.admits(row)), None)
            if left_out is not None:
                spec = self.mapping.filter[left_out].field
                report.note(report.filtered, f"filter[{left_out}] on {_label(spec)}", repr(value(spec, row)))
                continue
            try:
                resp = self._parse_row(row, report)
            except BadValue as e:
                report.note(report.rejected, e.reason, f"row {report.rows}: {e.value!r}")
                continue
            out.append(resp)
        report.imported = len(out)
        return out

    def _parse_row(self, row: dict[str, str], report: ImportReport) -> Response:
        m, cols = self.mapping, self.mapping.columns
        unit_type = value(cols.unit_type, row)
        if unit_type not in m.unit_types:
            raise BadValue(f"unit type ({_label(cols.unit_type)}) not in the mapping's unit_types", unit_type)
        ids = {name: value(spec, row) for name, spec in (("row id", cols.row_id), ("call id", cols.call_id),
                                                         ("unit id", cols.unit_id))}
        for name, text in ids.items():
            if not _IDENTIFIER.match(text):
                raise BadValue(f"{name} not an identifier (1-64 letters, digits, _ . : -, starting with a letter or "
                               "digit)", text)
        m.home_station_of(ids["unit id"], m.unit_types[unit_type])
        lat, lon = self._location(row)
        received_naive = self.times.naive(value(m.intervention.opened, row))
        received = self.times.to_epoch(received_naive) if received_naive is not None else None
        statuses, missing, repaired = self._statuses(row, received, report)
        if missing:
            report.rows_with_missing += 1
        return Response(
            row_id=ids["row id"], call_id=ids["call id"], unit_id=ids["unit id"],
            vehicle_type=m.unit_types[unit_type], statuses=statuses, received=received, lat=lat, lon=lon,
            sector=identifier(value(cols.sector, row)) or "unknown",
            station_area=identifier(value(cols.station_area or cols.sector, row)) or "unknown",
            area=identifier(value(cols.area, row)) or "unknown",
            nature=str(self._mapped(m.nature, "nature", row, report)),
            priority=int(self._mapped(m.priority, "priority", row, report)), repaired=repaired,
        )

    def _location(self, row: dict[str, str]) -> tuple[float, float]:
        """The incident's (lat, lon); NaN when the mapping has no location (placed at a station later)."""
        spec = self.mapping.columns.location
        if spec is None:
            return math.nan, math.nan
        where = value(spec, row)
        loc = _LOCATION.match(where)
        if not loc:
            raise BadValue(f"no readable location ({_label(spec)})", where)
        lat, lon = float(loc.group(1)), float(loc.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadValue(f"location out of range ({_label(spec)})", where)
        return lat, lon

    def _statuses(self, row: dict[str, str], received: float | None, report: ImportReport
                  ) -> tuple[list[tuple[float, VehicleStatus]], bool, bool]:
        """The row's statuses in lifecycle order with non-decreasing times; whether a (non-optional) one is
        missing; whether a time was repaired."""
        m = self.mapping
        statuses: list[tuple[float, VehicleStatus]] = []
        missing = repaired = False
        roll = m.times.roll_over_midnight
        previous: float | None = received if roll else None
        for column, status in m.statuses.items():
            naive = self.times.naive(value(column, row))
            if naive is None:
                if status is VehicleStatus.DISPATCHED:
                    raise BadValue(f"no dispatch time ({column})", "")
                report.missing[column] += 1
                missing = missing or column not in m.optional_statuses.columns
                continue
            fold = 0
            if self.times.is_ambiguous(naive):
                report.repairs["ambiguous local time (clocks going back): the in-order occurrence taken"] += 1
                if previous is not None and self.times.to_epoch(naive, 0) < previous:
                    fold = 1
            elif self.times.is_missing(naive):
                report.repairs["non-existent local time (clocks going forward): moved one hour later"] += 1
            t = self.times.to_epoch(naive, fold)
            if roll and previous is not None and t < previous:
                t = self.times.to_epoch(naive + timedelta(days=1))  # a time of day past midnight
                report.repairs[f"{column} earlier in the day than the status before it: on the next day"] += 1
            if previous is not None and t < previous:
                report.repairs[f"{column} before the previous status: clamped to it"] += 1
                repaired = True
                t = previous
            statuses.append((t, status))
            previous = t
        return statuses, missing, repaired

    @staticmethod
    def _mapped(values: ValueMap, what: str, row: dict[str, str], report: ImportReport) -> str | int:
        mapped, unknown = values.lookup(row)
        if unknown is not None:
            report.note(report.unmapped,
                        f"{what} ({_label(values.column)}) not in the mapping: {values.default!r} used", repr(unknown))
        return mapped

    @staticmethod
    def resolve_overlaps(responses: list[Response], report: ImportReport) -> None:
        """A unit dispatched again before its previous response ended: end the previous one there."""
        by_unit: dict[str, list[Response]] = defaultdict(list)
        for r in responses:
            by_unit[r.unit_id].append(r)
        for rs in by_unit.values():
            rs.sort(key=lambda r: (r.statuses[0][0], r.row_id))
            for before, after in itertools.pairwise(rs):
                cut = after.statuses[0][0]
                kept = [(t, s) for t, s in before.statuses if t < cut or s is VehicleStatus.DISPATCHED]
                if len(kept) < len(before.statuses):
                    report.repairs["unit sent to another call before available: earlier response ended there"] += 1
                    before.statuses = kept
                    before.repaired = True

    def derive_reference(self, responses: list[Response], stations_given: list[Station] | None = None,
                         fleet_given: list[FleetVehicle] | None = None) -> Reference:
        """The fleet (``fleet_given``, the brigade's file, else what the rows imply: each unit's most frequent type,
        its home station by the mapping's rules) and the stations (``stations_given``, else derived: see the
        module's docstring)."""
        fleet = fleet_given if fleet_given is not None else self._derived_fleet(responses)
        if stations_given is not None:
            unknown = sorted({v.home_station for v in fleet} - {st.station_id for st in stations_given})
            if unknown:
                raise ImportProblem(f"the stations file lacks {len(unknown)} station(s) the units belong to: "
                                    f"{', '.join(unknown[:10])}")
            return Reference.build(stations_given, fleet, self.mapping.vehicle_types)
        by_sector: dict[str, list[Response]] = defaultdict(list)
        for r in responses:
            by_sector[self.mapping.stations.from_sector.format(sector=r.station_area)].append(r)
        all_lat = sum(r.lat for r in responses) / len(responses)
        all_lon = sum(r.lon for r in responses) / len(responses)
        stations = []
        for sid in sorted({v.home_station for v in fleet}):
            incidents = by_sector.get(sid)
            if incidents:
                area = Counter(r.area for r in incidents).most_common(1)[0][0]
                lat = sum(r.lat for r in incidents) / len(incidents)
                lon = sum(r.lon for r in incidents) / len(incidents)
                name = f"Station {sid}"
            else:
                area, lat, lon, name = self.mapping.stations.pool_area, all_lat, all_lon, f"Pool {sid}"
            stations.append(Station(station_id=sid, name=name, area=area, lat=round(lat, 5), lon=round(lon, 5)))
        return Reference.build(stations, fleet, self.mapping.vehicle_types)

    def _derived_fleet(self, responses: list[Response]) -> list[FleetVehicle]:
        types: dict[str, Counter[str]] = defaultdict(Counter)
        for r in responses:
            types[r.unit_id][r.vehicle_type] += 1
        fleet = []
        for unit, counts in sorted(types.items()):
            vtype = counts.most_common(1)[0][0]
            fleet.append(FleetVehicle(vehicle_id=unit, vehicle_type=vtype,
                                      home_station=self.mapping.home_station_of(unit, vtype)))
        return fleet

    def events(self, responses: list[Response], ref: Reference,
               report: ImportReport) -> list[tuple[str, str, VehicleStatusEvent | InterventionEvent]]:
        """(topic, key, event) in event-time order (a call opens before its units move, closes after)."""
        out: list[tuple[float, int, str, str, VehicleStatusEvent | InterventionEvent]] = []
        calls: dict[str, list[Response]] = defaultdict(list)
        for r in responses:
            calls[r.call_id].append(r)
            home = ref.fleet[r.unit_id].home_station
            vtype = ref.fleet[r.unit_id].vehicle_type
            if vtype != r.vehicle_type:
                report.repairs["unit listed with another unit type: its most frequent type kept"] += 1
            # Events of one unit at the same time are ordered by event id (streams/ordering.py): the id sorts
            # as the unit's responses (first time, row id: see resolve_overlaps) and the statuses within a row
            first = f"{int(r.statuses[0][0]):08x}.{r.row_id}"
            for i, (t, status) in enumerate(r.statuses):
                engaged = status is not VehicleStatus.AVAILABLE_ON_RADIO
                position = Position(lat=r.lat, lon=r.lon) if status is VehicleStatus.ON_SCENE else None
                ev = VehicleStatusEvent(
                    schema_version=1, event_id=f"{first}.{i}", event_time=_dt(t),
                    vehicle_id=r.unit_id, vehicle_type=vtype, home_station=home, status=status,
                    intervention_id=r.call_id if engaged else None, position=position)
                out.append((t, 1, "vehicle-status", home, ev))
        for call_id, rs in calls.items():
            first = min(rs, key=lambda r: (r.received is None, r.received or 0.0))
            opened = min((r.received for r in rs if r.received is not None),
                         default=min(r.statuses[0][0] for r in rs))
            closed = max(t for r in rs for t, _ in r.statuses)
            loc = Location(lat=first.lat, lon=first.lon, sector=first.sector)
            nature = InterventionNature(first.nature)
            for lifecycle, t, order in ((Lifecycle.OPENED, opened, 0), (Lifecycle.CLOSED, closed, 2)):
                ev = InterventionEvent(
                    schema_version=1, event_id=f"{call_id}:{lifecycle.value}", event_time=_dt(t),
                    intervention_id=call_id, nature=nature, lifecycle=lifecycle, location=loc,
                    priority=first.priority)
                out.append((t, order, "interventions", call_id, ev))
        # stable: equal times keep lifecycle order (minute-truncated or clamped times are often equal)
        out.sort(key=lambda e: (e[0], e[1]))
        report.calls, report.events = len(calls), len(out)
        if out:
            report.first_event, report.last_event = _dt(out[0][0]).isoformat(), _dt(out[-1][0]).isoformat()
        return [(topic, key, ev) for _, _, topic, key, ev in out]

    def run(self, source: Path, out_dir: Path, stations_file: Path | None = None,
            fleet_file: Path | None = None, encoding: str | None = None, delimiter: str | None = None
            ) -> ImportReport:
        report = ImportReport(source=str(source), mapping=self.mapping.name,
                              availability_tracked=self.mapping.availability_tracked)
        if self.mapping.columns.location is None and stations_file is None:
            raise ImportProblem("the mapping has no location column: give --stations (a stations.csv with their "
                                "coordinates); each intervention is placed at its first unit's station")
        rows = read_rows(source, encoding or self.mapping.encoding, delimiter or self.mapping.delimiter,
                         self.mapping.mapped_columns())
        responses = self.parse(rows, report)
        if not responses:
            raise NothingImported(report)
        self.resolve_overlaps(responses, report)
        report.rows_repaired = sum(r.repaired for r in responses)
        try:  # the brigade's own files win over what the data implies
            ref = self.derive_reference(responses, load_stations(stations_file) if stations_file else None,
                                        load_fleet(fleet_file) if fleet_file else None)
        except (ValueError, OSError) as e:
            if isinstance(e, ImportProblem):
                raise
            raise ImportProblem(f"reference files: {' '.join(str(e).split())[:600]}") from None
        if self.mapping.columns.location is None:
            for r in responses:  # no location in the export: at the unit's station
                home = ref.stations[ref.fleet[r.unit_id].home_station]
                r.lat, r.lon = home.lat, home.lon
        events = self.events(responses, ref, report)
        report.units, report.stations = len(ref.fleet), len(ref.stations)
        out_dir.mkdir(parents=True, exist_ok=True)
        ref.write(out_dir / "reference")
        with (out_dir / "events.jsonl").open("w", encoding="utf-8") as f:
            for topic, key, ev in events:
                f.write(event_line(topic, key, ev))
        (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        return report


def _label(spec: Field_ | None) -> str:
    """How a report names a field: its column, or its template."""
    if spec is None or isinstance(spec, str):
        return str(spec)
    return spec.column or spec.template or f"const {spec.const!r}"


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
