"""Vehicle statuses -> the stations engine's steps -> the alerts engine -> alert rows: hand-made stream, rows
stated by hand from the events; the same rows whatever the arrival order within the allowed lateness, repeats,
batch cuts and restarts (state through its changelog codec), and on the batch path (BatchRunner)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import Settings
from core.tables import TableSpec
from schemas.reference import FleetVehicle, Reference, Station
from schemas.signals import AlertNotice
from streams.batch import BatchRunner
from streams.partitioning import partition_for
from streams.processor import Record
from streams.processors.alerts import BOOKS, AlertEngine
from streams.processors.alerts import PROCESSOR as ALERTS
from streams.processors.stations import PROCESSOR as STATIONS
from streams.processors.stations import StationEngine
from streams.runtime.checkpoint import Rejected
from tests.helpers import NO_VSAV_IN_AREA, T0, vev
from tests.unit.test_disorder import deliver

LATENESS = 30
RULES = NO_VSAV_IN_AREA
# S1 and S2 (area A) and S3 (area B) on three partitions of four
REF = Reference.build(
    [Station(station_id="S1", name="One", area="A", lat=48.85, lon=2.35),
     Station(station_id="S2", name="Two", area="A", lat=48.86, lon=2.36),
     Station(station_id="S3", name="Three", area="B", lat=48.87, lon=2.37)],
    [FleetVehicle(vehicle_id="V1", vehicle_type="VSAV", home_station="S1"),
     FleetVehicle(vehicle_id="V2", vehicle_type="VSAV", home_station="S1"),
     FleetVehicle(vehicle_id="V3", vehicle_type="VSAV", home_station="S2"),
     FleetVehicle(vehicle_id="V4", vehicle_type="VSAV", home_station="S3")])
HOME = {"V1": "S1", "V2": "S1", "V3": "S2", "V4": "S3"}
STREAM = [  # (seconds after T0, vehicle, status, intervention)
    (0, "V1", "available_at_station", None), (0, "V2", "available_at_station", None),
    (0, "V3", "available_at_station", None), (0, "V4", "available_at_station", None),
    (100, "V1", "dispatched", "I1"), (150, "V2", "dispatched", "I2"), (200, "V3", "dispatched", "I3"),
    (300, "V3", "available_on_radio", None), (360, "V3", "dispatched", "I4"), (500, "V1", "available_on_radio", None),
    (900, "V4", "dispatched", "I5"),
    (1000, "V2", "available_on_radio", None), (1000, "V3", "en_route", "I4"), (1000, "V4", "en_route", "I5"),
]
# Area A: V1, V2, V3 all gone at 200 (fires at once); V3 back at 300, gone again at 360 (within the 2 minutes:
# one episode); V1 back at 500 for good: resolved at 620. Area B: V4 gone at 900. Each partition is sealed up
# to its newest event less the lateness (970): what happens after is not known yet.
EXPECTED = sorted([
    ("no-vsav-in-area", "A/VSAV", "A", T0 + 200, "pending", 0.0, "No VSAV available in A"),
    ("no-vsav-in-area", "A/VSAV", "A", T0 + 200, "firing", 0.0, "No VSAV available in A"),
    ("no-vsav-in-area", "A/VSAV", "A", T0 + 620, "resolved", 0.0, "No VSAV available in A"),
    ("no-vsav-in-area", "B/VSAV", "B", T0 + 900, "pending", 0.0, "No VSAV available in B"),
    ("no-vsav-in-area", "B/VSAV", "B", T0 + 900, "firing", 0.0, "No VSAV available in B"),
])


def records() -> list[tuple[float, str, Record]]:
    out = []
    for i, (dt, vid, status, iid) in enumerate(STREAM):
        station = HOME[vid]
        ev = vev(vid, status, T0 + dt, iid, event_id=f"e{i:03d}", station=station)
        out.append((T0 + dt, ev.event_id, Record("vehicle-status", partition_for(station.encode(), 4), i,
                                                 station.encode(), ev.model_dump_json().encode())))
    return out


def alert_rows(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    return sorted({(r.rule, r.scope_key, r.area, r.at, r.transition, r.value, r.message) for r in rows})


def chain(batches: list[list[Record]], rules: Path, restart: bool = False) -> list[tuple[Any, ...]]:
    """Each batch through the stations engine, its messages through the alerts engine (as the live worker);
    ``restart``: both engines' state through their changelog codecs after every batch, on new engines."""
    codecs = {st.name: st for p in (STATIONS, ALERTS) for st in p.states}
    stores: dict[str, dict[str, Any]] = {"stations": {}, BOOKS: {}}
    rows: list[Any] = []

    def engines() -> tuple[StationEngine, AlertEngine]:
        return (StationEngine(REF, 60, LATENESS, publish_steps=True),
                AlertEngine(rules, REF, live=True, partitions=4))

    stations, alerts = engines()
    for batch in batches:
        result = stations.process(batch, {"stations": stores["stations"]})
        derived = [Record("station-steps", 0, i, m.key, m.value) for i, m in enumerate(result.messages)]
        rows += alerts.process(derived, {BOOKS: stores[BOOKS]}).rows.get(ALERTS.tables[0], [])
        if restart:
            for name, table in stores.items():
                for key, value in list(table.items()):
                    table[key] = codecs[name].loads(codecs[name].dumps(value))
            stations, alerts = engines()
    rows += alerts.finish({BOOKS: stores[BOOKS]}).rows[ALERTS.tables[0]]
    return alert_rows(rows)


def rules_file(tmp: Path) -> Path:
    path = tmp / "rules.toml"
    path.write_text(RULES)
    return path


def test_the_hand_made_stream_gives_the_stated_alerts(tmp_path: Path) -> None:
    in_order = [[rec for _, _, rec in records()]]
    assert chain(in_order, rules_file(tmp_path)) == EXPECTED
    one_by_one = [[rec] for _, _, rec in records()]
    assert chain(one_by_one, rules_file(tmp_path), restart=True) == EXPECTED


class Rows:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> Sequence[Rejected]:
        for spec, rows in batch.items():
            if spec.name == "alerts":
                self.rows += rows
        return []


def test_the_batch_path_gives_the_same_alerts(tmp_path: Path) -> None:
    s = Settings(alert_rules=rules_file(tmp_path), allowed_lateness_seconds=LATENESS, topic_partitions=4)
    writer = Rows()
    runner = BatchRunner(s, (ALERTS, STATIONS), writer, REF)
    recs = [rec for _, _, rec in records()]
    stats = asyncio.run(runner.run(recs, chunk_events=5))
    assert stats.events == len(recs) and stats.rows["alerts"] == len(EXPECTED)
    assert alert_rows(writer.rows) == EXPECTED
    assert stats.published == {"alerts": len(EXPECTED)}  # for outside consumers: live only, counted here


def test_each_transition_is_published_for_outside_consumers_as_stored(tmp_path: Path) -> None:
    """The ``alerts`` topic's messages (live): one per stored row, keyed by rule and scope, in the rows' order."""
    stations = StationEngine(REF, 60, LATENESS, publish_steps=True)
    alerts = AlertEngine(rules_file(tmp_path), REF, partitions=4)
    stores: dict[str, dict[str, Any]] = {"stations": {}, BOOKS: {}}
    rows: list[Any] = []
    notices: list[Any] = []
    for _, _, rec in records():
        steps = stations.process([rec], {"stations": stores["stations"]}).messages
        result = alerts.process([Record("station-steps", 0, i, m.key, m.value) for i, m in enumerate(steps)],
                                {BOOKS: stores[BOOKS]})
        rows += result.rows[ALERTS.tables[0]]
        notices += result.messages
    done = alerts.finish({BOOKS: stores[BOOKS]})
    rows += done.rows[ALERTS.tables[0]]
    notices += done.messages
    assert {m.topic for m in notices} == {"alerts"}
    parsed = [AlertNotice.model_validate_json(m.value) for m in notices]
    assert [m.key.decode() for m in notices] == [f"{n.rule}/{n.scope_key}" for n in parsed]
    assert [(n.rule, n.scope_key, n.area, n.at.timestamp(), n.transition, n.value, n.message) for n in parsed] == [
        (r.rule, r.scope_key, r.area, r.at, r.transition, r.value, r.message) for r in rows]
    assert alert_rows(rows) == EXPECTED


@given(data=st.data())
@settings(max_examples=int(os.environ.get("VIGIE_PROPERTY_EXAMPLES", "200")) // 2, deadline=None,
          derandomize="VIGIE_PROPERTY_EXAMPLES" not in os.environ, suppress_health_check=list(HealthCheck))
def test_any_arrival_order_within_the_lateness_gives_the_same_alerts(tmp_path_factory: Any,
                                                                      data: st.DataObject) -> None:
    rules = rules_file(tmp_path_factory.mktemp("rules"))
    assert chain(deliver(data, records()), rules, restart=data.draw(st.booleans())) == EXPECTED


def test_the_live_clock_without_messages(tmp_path: Path) -> None:
    engine = AlertEngine(rules_file(tmp_path), REF, live=True, idle_s=10.0, partitions=4)
    sources = sorted(engine.book.sources)
    assert len(sources) == 3  # the partitions holding S1, S2 and S3
    for i, source in enumerate(sources[:2]):
        engine.book.take(source, T0 + 100 * (i + 1), [])
        engine.heard[source] = 0.0
    engine.book.settle()
    assert engine.book.clock == -math.inf  # the third, never heard from (recovering, say), holds everything
    assert engine.live_clock(100.0) == -math.inf  # however long the others are silent
    engine.book.take(sources[2], None, [])  # it has no data at all: it holds nothing
    engine.heard[sources[2]] = 95.0
    engine.book.settle()
    assert engine.book.clock == T0 + 100
    assert engine.live_clock(100.0) == T0 + 100  # one heard from 5 s ago: the clock stays
    # every source heard since the start and silent for 10 s: the input is over for now, all known up to the newest
    assert engine.live_clock(106.0) == T0 + 200
    engine.book.take(sources[2], T0 + 400, [])  # its first data: it holds again, from there
    engine.book.settle()
    assert engine.book.sources[sources[2]] == T0 + 400 and engine.book.clock == T0 + 100


def _part(source: str, until: float, behind: bool) -> Record:
    doc = {"parts": [{"source": source, "until": until, "steps": [], **({"behind": True} if behind else {})}]}
    return Record("station-steps", 0, 0, b"all", json.dumps(doc).encode())


def test_a_source_with_records_left_to_read_holds_the_live_clock_however_silent(tmp_path: Path,
                                                                               monkeypatch: Any) -> None:
    """Silence is not the end of the input when the source's processor said it had records left (stalled, or
    still catching up): the clock waits for a part saying it caught up."""
    from streams import processors

    wall = [0.0]
    monkeypatch.setattr(processors.alerts.time, "monotonic", lambda: wall[0])
    engine = AlertEngine(rules_file(tmp_path), REF, live=True, idle_s=10.0, partitions=4)
    sources = sorted(engine.book.sources)
    store: dict[str, dict[str, Any]] = {BOOKS: {}}
    engine.process([_part(s, T0 + 100 * (i + 1), behind=i == 1) for i, s in enumerate(sources)], store)
    assert engine.book.clock == T0 + 100
    wall[0] = 1000.0
    assert engine.live_clock(wall[0]) == T0 + 100  # silent for long, but one source said it is behind
    engine.process([_part(sources[1], T0 + 200, behind=False)], store)  # caught up, nothing new
    assert engine.live_clock(wall[0]) == T0 + 100  # heard just now
    assert engine.live_clock(wall[0] + 10.0) == T0 + 300  # silent 10 s, none behind: over for now


def test_the_stations_say_when_a_partition_is_behind_and_when_it_caught_up() -> None:
    """A part says ``behind`` while its partition has records to read (the live worker's ``behind``); once
    caught up, a tick says so even with nothing new to seal."""
    engine = StationEngine(REF, 60, LATENESS, publish_steps=True)
    store: dict[str, Any] = {"stations": {}}
    p = partition_for(b"S3", 4)
    ev = vev("V4", "available_at_station", T0, event_id="b1", station="S3")
    rec = Record("vehicle-status", p, 0, b"S3", ev.model_dump_json().encode())
    first = engine.process([rec], store, behind={("vehicle-status", p)})
    (part,) = [pt for m in first.messages for pt in json.loads(m.value)["parts"]]
    assert part["behind"] is True and p in engine.clock.told_behind
    tick = engine.tick(store, set(), {p})
    assert tick is not None
    (part,) = [pt for m in tick.messages for pt in json.loads(m.value)["parts"]]
    assert "behind" not in part and part["source"] == f"stations/{p}" and not engine.clock.told_behind
    assert engine.tick(store, set(), {p}) is None or not engine.tick(store, set(), {p}).messages  # said once


def test_live_data_is_sealed_on_the_workers_clock_and_a_replay_of_the_past_is_not(monkeypatch: Any) -> None:
    """A live partition with nothing new is known up to its newest event plus the time since it came: the last
    change is sealed and published without another record. Old data (a replay): only its own events count."""
    import json

    from streams import processors
    from streams.processor import TimeBound

    wall = [1000.0]
    monkeypatch.setattr(processors.stations.time, "monotonic", lambda: wall[0])
    for live, expect_sealed in ((True, True), (False, False)):
        t = T0 + (0 if live else -86400.0)
        engine = StationEngine(REF, 60, LATENESS, publish_steps=True,
                               time_bound=TimeBound(300.0, wall=lambda: T0 + wall[0] - 1000.0))
        store: dict[str, Any] = {"stations": {}}
        ev = vev("V4", "available_at_station", t, event_id="x1", station="S3")
        p = partition_for(b"S3", 4)
        first = engine.process([Record("vehicle-status", p, 0, b"S3", ev.model_dump_json().encode())], store)
        assert all(part["steps"] == [] for m in first.messages for part in json.loads(m.value)["parts"])  # not yet
        wall[0] += 45.0  # nothing comes for 45 s
        tick = engine.tick(store, None, {p})
        steps = [s for m in (tick.messages if tick else []) for part in json.loads(m.value)["parts"]
                 for s in part["steps"]]
        assert (steps == [[t, "S3", 0, "VSAV", 1, -1]]) is expect_sealed, steps
        wall[0] = 1000.0


def test_a_bad_message_is_a_dead_letter_with_its_reason_and_the_next_one_is_taken(tmp_path: Path) -> None:
    engine = AlertEngine(rules_file(tmp_path), REF, partitions=4)
    good = b'{"parts":[{"source":"stations/3","until":100.0,"steps":[[50.0,"S1",0,"VSAV",0,-1]]}]}'
    bad = [b"not json", b'{"parts":[]}', b'{"parts":[{"source":"stations/3","until":"soon","steps":[]}]}']
    records = [Record("station-steps", 0, i, b"all", v) for i, v in enumerate([*bad, good])]
    result = engine.process(records, {BOOKS: {}})
    assert [d.record.offset for d in result.dead_letters] == [0, 1, 2]
    reasons = [d.reason for d in result.dead_letters]
    assert "JSON" in reasons[0] and reasons[1].startswith("parts:") and reasons[2].startswith("parts.0.until:")
    assert engine.book.sources["stations/3"] == 100.0  # the good one was taken


def test_live_partitions_without_data_are_announced_once_and_not_while_an_input_holds_them() -> None:
    import json

    from streams.processor import TimeBound

    engine = StationEngine(REF, 60, LATENESS, publish_steps=True, time_bound=TimeBound(300.0))
    store: dict[str, Any] = {"stations": {}}
    held = [("vehicle-status", 1)]  # not read to its end yet: it may still bring data
    result = engine.tick(store, held, {0, 1, 2})
    assert result is not None
    (message,) = result.messages
    assert json.loads(message.value) == {"parts": [{"source": "stations/0", "until": None, "steps": []},
                                                   {"source": "stations/2", "until": None, "steps": []}]}
    again = engine.tick(store, [], {0, 1, 2})
    assert again is not None and [p["source"] for m in again.messages for p in json.loads(m.value)["parts"]] == [
        "stations/1"]
    assert engine.tick(store, [], {0, 1, 2}) is None  # told once
    batch = StationEngine(REF, 60, LATENESS, publish_steps=True)  # the batch path: its input's end says it
    assert batch.tick(store, None, {0, 1, 2}) is None


def test_a_changed_rules_file_is_read_again_and_the_alerts_of_a_changed_rule_end(tmp_path: Path) -> None:
    import os

    rules = rules_file(tmp_path)
    engine = AlertEngine(rules, REF, live=True, idle_s=10.0, partitions=4)
    stores: dict[str, Any] = {BOOKS: {}}
    parts = [{"source": s, "until": T0 + 300, "steps": [[T0 + 100, st, 0, "VSAV", 0, -1]]}
             for s, st in zip(sorted(engine.book.sources), ("S2", "S3", "S1"), strict=True)]  # their partitions
    import json

    first = engine.process([Record("station-steps", 0, 0, b"all", json.dumps({"parts": parts}).encode())], stores)
    assert sorted((r.scope_key, r.transition) for r in first.rows[ALERTS.tables[0]]) == [
        ("A/VSAV", "firing"), ("A/VSAV", "pending"), ("B/VSAV", "firing"), ("B/VSAV", "pending")]
    rules.write_text(RULES.replace('keep_firing_for = "2m"', 'for = "10m"'))  # the rule changed
    os.utime(rules, (time.time() + 5, time.time() + 5))  # a new modification time, whatever the clock's grain
    tick = engine.tick(stores, None, {0})
    assert tick is not None
    assert sorted((r.scope_key, r.at, r.transition) for r in tick.rows[ALERTS.tables[0]]) == [
        ("A/VSAV", T0 + 300, "resolved"), ("B/VSAV", T0 + 300, "resolved")]
    assert engine.book.rules[0].for_s == 600.0
    rules.write_text("[[rule]]\nname = 'broken'\n")  # an invalid file: the rules in force stay
    os.utime(rules, (time.time() + 10, time.time() + 10))
    engine.tick(stores, None, {0})
    assert engine.book.rules[0].for_s == 600.0


def test_an_action_is_checked_then_stored_and_one_naming_no_rule_in_force_is_a_dead_letter(tmp_path: Path) -> None:
    import json

    engine = AlertEngine(rules_file(tmp_path), REF, partitions=4)

    def action(**fields: Any) -> Record:
        doc = {"schema_version": 1, "event_id": f"a{len(fields)}", "event_time": "2026-03-01T10:00:00Z",
               "action": "acknowledge", "rule": "no-vsav-in-area", "scope_key": "A/VSAV", "by": "op-1", **fields}
        return Record("alert-actions", 0, 0, b"all", json.dumps(doc).encode())

    bad = {
        "until: a silence needs an end": action(action="silence", why="drill"),
        "until: a silence needs an end after": action(action="silence", why="drill", until="2026-03-01T09:00:00Z"),
        "why: say why": action(action="silence", until="2026-03-01T12:00:00Z"),
        "until: only a silence has one": action(until="2026-03-01T12:00:00Z"),
        "rule: no rule 'gone' in force (no-vsav-in-area)": action(rule="gone"),
        "scope_key: String should match": action(scope_key="A-VSAV"),
    }
    result = engine.process([*bad.values(), action(action="silence", why="drill", until="2026-03-01T12:00:00Z")],
                            {BOOKS: {}})
    assert len(result.dead_letters) == len(bad)
    for letter, expected in zip(result.dead_letters, bad, strict=True):
        assert expected in letter.reason, (expected, letter.reason)
    (row,) = result.rows[ALERTS.tables[1]]
    assert (row.action, row.rule, row.scope_key, row.until - row.at, row.by, row.why) == (
        "silence", "no-vsav-in-area", "A/VSAV", 7200.0, "op-1", "drill")


def test_steps_waiting_for_a_source_behind_are_stored_in_chunks_not_in_the_book(tmp_path: Path) -> None:
    """A worker catching up reads the sources unevenly: what waits for the one behind goes to chunk records of
    bounded size (the book's own record stays small), and a restart from the records gives the same alerts."""
    from streams.processors.alerts import BOOK_KEY

    codec = ALERTS.states[0]
    s1, s2, s3 = (f"stations/{partition_for(s.encode(), 4)}" for s in ("S1", "S2", "S3"))
    ahead = [[T0 + i, "S1", 0, "VSAV", (i // 100) % 3, -1] for i in range(20_000)]  # S1 races ahead

    def part(source: str, until: float, steps: list[list[Any]]) -> Record:
        return Record("station-steps", 0, 0, b"all", json.dumps({"parts": [
            {"source": source, "until": until, "steps": steps}]}).encode())

    def run(restart: bool) -> list[tuple[Any, ...]]:
        engine = AlertEngine(rules_file(tmp_path), REF, live=True, partitions=4)
        store: dict[str, Any] = {}
        first = engine.process([part(s1, T0 + 20_000, ahead), part(s2, T0 + 50, [[T0, "S2", 0, "VSAV", 0, -1]]),
                                part(s3, T0 + 50, [[T0, "S3", 0, "VSAV", 1, -1]])], {BOOKS: store})
        rows = list(first.rows[ALERTS.tables[0]])
        if restart:
            sizes = {k: len(codec.dumps(store[k])) for k in first.changed[BOOKS] if k in store}
            assert sizes[BOOK_KEY] < 20_000 and len(sizes) >= 5 and max(sizes.values()) < 400_000
            written = list(first.changed[BOOKS])  # the changelog's order: a crash keeps a prefix of it
            assert written.index(BOOK_KEY) > max(i for i, k in enumerate(written) if k.startswith("waiting/"))
            for cut in range(len(written) + 1):
                kept = {k: codec.loads(codec.dumps(store[k])) for k in written[:cut] if k in store}
                crashed = AlertEngine(rules_file(tmp_path), REF, live=True, partitions=4)
                crashed.process([], {BOOKS: kept})
                assert crashed.book.lost_chunks == 0
            store = {k: codec.loads(codec.dumps(v)) for k, v in store.items()}
            engine = AlertEngine(rules_file(tmp_path), REF, live=True, partitions=4)
        done = engine.process([part(s2, T0 + 30_000, []), part(s3, T0 + 30_000, [])], {BOOKS: store})
        return alert_rows(rows + list(done.rows[ALERTS.tables[0]]))

    once = run(restart=False)
    assert len(once) > 100  # area A's VSAV (S1's and S2's) at 0 every 300 s: an episode each time
    assert run(restart=True) == once


NO_FPT_IN_AREA = NO_VSAV_IN_AREA.replace("VSAV", "FPT").replace("no-vsav", "no-fpt")
MIXED = Reference.build(  # one station with a VSAV and an FPT, one with a VSAV
    [Station(station_id="S1", name="One", area="A", lat=48.85, lon=2.35),
     Station(station_id="S2", name="Two", area="A", lat=48.86, lon=2.36)],
    [FleetVehicle(vehicle_id="V1", vehicle_type="VSAV", home_station="S1"),
     FleetVehicle(vehicle_id="F1", vehicle_type="FPT", home_station="S1"),
     FleetVehicle(vehicle_id="V2", vehicle_type="VSAV", home_station="S2")])


def _published(result: Any) -> list[tuple[str, str, int]]:
    """The (station, vehicle type, vehicles available) of the value steps a stations batch published."""
    return sorted((step[1], step[3], step[4]) for m in result.messages for part in json.loads(m.value)["parts"]
                  for step in part["steps"])


def _status(i: int, vid: str, status: str, dt: float, iid: str | None = None) -> Record:
    station = "S2" if vid == "V2" else "S1"
    ev = vev(vid, status, T0 + dt, iid, event_id=f"m{i:03d}", vtype="FPT" if vid == "F1" else "VSAV", station=station)
    return Record("vehicle-status", partition_for(station.encode(), 4), i, station.encode(),
                  ev.model_dump_json().encode())


def test_the_stations_publish_the_values_the_rules_read_and_a_rule_added_reads_from_the_next_change(
        tmp_path: Path) -> None:
    """Rules on VSAVs only: no step of the FPT is published (nor any unit's status: no timer reads them). A rule
    on FPTs added to the file: the FPT's values are published from its next change on."""
    rules = tmp_path / "rules.toml"
    rules.write_text(NO_VSAV_IN_AREA)
    engine = StationEngine(MIXED, 60, LATENESS, publish_steps=True, rules_path=rules)
    stores: dict[str, Any] = {"stations": {}}
    first = engine.process([_status(0, "V1", "available_at_station", 0), _status(1, "F1", "available_at_station", 0),
                            _status(2, "V1", "dispatched", 100, "I1"), _status(3, "F1", "dispatched", 110, "I1"),
                            _status(4, "V1", "en_route", 200, "I1")], stores)
    assert _published(first) == [("S1", "VSAV", 0), ("S1", "VSAV", 1)]  # sealed up to 170: V1 in, then out
    assert all("units" not in part for m in first.messages for part in json.loads(m.value)["parts"])
    rules.write_text(NO_VSAV_IN_AREA + NO_FPT_IN_AREA)
    os.utime(rules, (time.time() + 5, time.time() + 5))  # a new modification time, whatever the clock's grain
    second = engine.process([_status(5, "F1", "available_on_radio", 300), _status(6, "V1", "on_scene", 400, "I1")],
                            stores)
    # sealed up to 370: the FPT's return at 300 (its value given anew), nothing of the VSAV's unchanged value
    assert _published(second) == [("S1", "FPT", 1)]


def test_a_step_no_rule_read_is_read_by_a_rule_added_before_the_clock_passed_it(tmp_path: Path) -> None:
    """The alerts' book keeps the steps no rule reads aside until the clock passes them: a rule added by a reload
    meanwhile reads them (the stations publish a value watched anew before the alerts reload, or after)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(NO_VSAV_IN_AREA)
    engine = AlertEngine(rules, MIXED, live=True, idle_s=1e9, partitions=4)
    stores: dict[str, Any] = {BOOKS: {}}
    s1, s2 = (f"stations/{partition_for(s.encode(), 4)}" for s in ("S1", "S2"))

    def message(offset: int, parts: list[dict[str, Any]]) -> Record:
        return Record("station-steps", 0, offset, b"all", json.dumps({"parts": parts}).encode())

    engine.process([message(0, [{"source": s1, "until": T0 + 300, "steps": [[T0 + 200, "S1", 0, "FPT", 0, -1]]},
                                {"source": s2, "until": T0 + 100, "steps": []}])], stores)
    assert engine.book.clock == T0 + 100 and len(engine.book.unwatched) == 1  # the FPT's step, aside
    rules.write_text(NO_VSAV_IN_AREA + NO_FPT_IN_AREA)
    os.utime(rules, (time.time() + 5, time.time() + 5))
    engine.tick(stores, None, {0})
    later = engine.process([message(1, [{"source": s2, "until": T0 + 400, "steps": []}])], stores)
    assert sorted((r.rule, r.scope_key, r.at, r.transition) for r in later.rows[ALERTS.tables[0]]) == [
        ("no-fpt-in-area", "A/FPT", T0 + 200, "firing"), ("no-fpt-in-area", "A/FPT", T0 + 200, "pending")]
    assert engine.book.unwatched == []  # passed by the clock: gone


def test_the_changes_no_rule_reads_are_not_published_and_change_no_alert(monkeypatch: Any) -> None:
    """The stations publish only the changes a rule reads: of a value read (not a crew leader's availability when
    only those on duty are read), of a unit into or out of a timed status, a unit's dispatch. Two simulated days
    with crews and major incidents, the shipped rules, on the batch path: the same alert rows as when every value
    of every type and qualification and every unit's change is published, with far fewer steps sent. Its first
    call waits 11 minutes, before any unit is sent anywhere: its alert holds on each station giving its first
    change whatever it is (the alerts tell a feed with units from one of calls alone by any unit's status)."""
    from datetime import UTC, datetime

    from devtools.simulator import Simulator
    from schemas.codec import encode
    from streams import alert_book, registry
    from streams.processors import stations as stations_module
    from streams.processors.interventions import PROCESSOR as INTERVENTIONS

    s = Settings(topic_partitions=4)
    ref = Reference.load(s.reference_dir)
    topics = registry.logical_topics(s)
    sim = Simulator(ref, seed=31, start=datetime(2026, 1, 5, tzinfo=UTC), major_incidents_per_day=3)
    records = [Record(topics[e.topic], partition_for(e.key.encode(), 4), i, e.key.encode(), encode(e.event))
               for i, e in enumerate(sim.events(2 * 86400)) if e.topic in topics]
    sent: list[int] = []
    series: list[dict[tuple[str, str, str], list[tuple[float, int]]]] = []  # per rule, scope and station
    take, apply, set_value = alert_book.AlertBook.take, alert_book.AlertBook._apply, alert_book._Scope.set
    now = [0.0]

    def counted(book: Any, source: str, until: Any, steps: Any, units: Any = (), *rest: Any) -> None:
        sent[-1] += len(steps) + len(units)
        take(book, source, until, steps, units, *rest)

    def applied(book: Any, t: float, group: Any) -> bool:
        now[0] = t
        return apply(book, t, group)

    def values_read(scope: Any, station: str, n: int) -> None:
        """Each value a scope reads of a station, when it changed."""
        held = series[-1].setdefault((scope.rule.name, scope.key, station), [])
        if not held or held[-1][1] != n:
            held.append((now[0], n))
        set_value(scope, station, n)

    monkeypatch.setattr(alert_book.AlertBook, "take", counted)
    monkeypatch.setattr(alert_book.AlertBook, "_apply", applied)
    monkeypatch.setattr(alert_book._Scope, "set", values_read)

    def run() -> list[Any]:
        sent.append(0)
        series.append({})
        writer = Rows()
        asyncio.run(BatchRunner(s, (STATIONS, INTERVENTIONS, ALERTS), writer, ref).run(records, chunk_events=3000))
        return alert_rows(writer.rows)

    published = run()
    monkeypatch.setattr(stations_module, "watched_values", lambda rules: None)  # every value, every change
    assert run() == published
    assert series[0] == series[1]  # the values the rules read, each change at its time
    assert sent[0] < 0.4 * sent[1], sent
    rules = {row[0] for row in published}  # both timers fired (and resolved: a unit left its timed status)
    assert {"at-hospital-over-45min", "intervention-without-unit", "staffed-vsav-below-30pct"} <= rules, rules
