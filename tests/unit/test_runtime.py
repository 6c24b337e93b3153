"""The live runtime's parts, without a broker: offset guard, watermark hold, checkpoint order, batch results,
dead letters, the Faust version check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from core.tables import TableSpec, table
from streams.faust_compat import FAUST_VERSION, UnsupportedFaust, check_version
from streams.processor import DEAD_LETTER_MAX_VALUE_BYTES, BatchResult, DeadLetter, Record
from streams.rows import SectorWindowRow, StationWindowRow
from streams.runtime.checkpoint import Checkpoint, Rejected, rejected_row_letter
from streams.runtime.hold import WatermarkHold
from streams.runtime.offsets import OffsetGuard
from streams.windows import WindowBlock

SECTORS = table("sector_windows", SectorWindowRow)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class TestOffsetGuard:
    def make(self, held: int) -> tuple[OffsetGuard, list[str], list[tuple[str, int, int, int]]]:
        calls: list[str] = []
        asked: list[tuple[str, int, int, int]] = []

        async def count_between(topic: str, p: int, start: int, end: int) -> int:
            asked.append((topic, p, start, end))
            return held

        guard = OffsetGuard(count_between, lambda: calls.append("restart"), lambda j: calls.append(f"jump {j.got}"))
        return guard, calls, asked

    def test_a_step_back_is_a_re_read_not_a_restart(self) -> None:
        guard, calls, asked = self.make(held=5)
        run(guard.check([("t", 0, 10), ("t", 0, 11)]))
        run(guard.check([("t", 0, 9)]))
        assert calls == ["jump 9"] and asked == []

    def test_a_hole_holding_records_restarts_before_anything_is_applied(self) -> None:
        guard, calls, asked = self.make(held=3)
        run(guard.check([("t", 1, 10)]))
        run(guard.check([("t", 1, 14)]))
        assert asked == [("t", 1, 11, 14)] and calls == ["jump 14", "restart"]

    def test_a_hole_without_records_is_no_loss(self) -> None:
        guard, calls, _ = self.make(held=0)
        run(guard.check([("t", 1, 10), ("t", 1, 12)]))  # a transaction marker at 11
        assert calls == ["jump 12"]

    def test_assignment_forgets(self) -> None:
        guard, calls, _ = self.make(held=3)
        run(guard.check([("t", 1, 10)]))
        guard.tracker.forget([("t", 1)])
        run(guard.check([("t", 1, 500)]))
        assert calls == []


class FakeConsumer:
    def __init__(self) -> None:
        self.high: dict[tuple[str, int], int | None] = {}
        self.committed_at: dict[tuple[str, int], int] = {}

    def assignment(self) -> list[tuple[str, int]]:
        return list(self.high)

    def highwater(self, topic: str, partition: int) -> int | None:
        return self.high[(topic, partition)]

    def committed(self, topic: str, partition: int) -> int | None:
        return self.committed_at.get((topic, partition))


class TestWatermarkHold:
    def test_behind_while_unread_records_then_for_the_idle_wait(self) -> None:
        now = [100.0]
        nxt: dict[tuple[str, int], int] = {}
        hold = WatermarkHold({"v", "c"}, idle_s=2.0, next_offsets=nxt, clock=lambda: now[0])
        consumer = FakeConsumer()
        consumer.high = {("v", 0): 10, ("c", 0): None, ("other", 0): 99}
        assert hold.behind(consumer) == {("v", 0), ("c", 0)}  # nothing read yet; nothing fetched on c
        nxt[("v", 0)] = 10  # read to the end
        consumer.high[("c", 0)] = 0  # c is empty, never gave a record: holds nothing
        hold.saw([("v", 0)])
        assert hold.behind(consumer) == {("v", 0)}  # just caught up: records of c may still be on their way
        now[0] += 2.5
        assert hold.behind(consumer) == set()  # idle: holds nothing back

    def test_traffic_after_a_quiet_spell_re_arms_the_wait(self) -> None:
        now = [0.0]
        nxt = {("v", 0): 5}
        hold = WatermarkHold({"v"}, idle_s=1.0, next_offsets=nxt, clock=lambda: now[0])
        consumer = FakeConsumer()
        consumer.high = {("v", 0): 5}
        hold.saw([("v", 0)])
        assert hold.behind(consumer) == {("v", 0)}
        now[0] = 5.0
        assert hold.behind(consumer) == set()
        hold.saw([("v", 0)])  # records again after 5 s of silence
        assert hold.behind(consumer) == {("v", 0)}

    def test_committed_offset_stands_in_before_the_first_batch(self) -> None:
        hold = WatermarkHold({"v"}, idle_s=1.0, next_offsets={})
        consumer = FakeConsumer()
        consumer.high = {("v", 0): 7}
        consumer.committed_at = {("v", 0): 7}
        assert hold.behind(consumer) == set()


class Recorder:
    def __init__(self, fail_rows: bool = False, refuse: Sequence[Rejected] = ()) -> None:
        self.log: list[Any] = []
        self.fail_rows = fail_rows
        self.refuse = list(refuse)
        self.letters: list[DeadLetter] = []

    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> list[Any]:
        if self.fail_rows:
            raise ConnectionError("ClickHouse down")
        self.log.append(("rows", {spec.name: len(rows) for spec, rows in batch.items()}))
        return self.refuse

    async def changelog(self, store: str, entries: Sequence[tuple[str, int, Any]]) -> None:
        self.log.append(("changelog", store, list(entries)))

    async def dead_letter(self, dl: DeadLetter) -> None:
        self.log.append(("dead letter", dl.reason))
        self.letters.append(dl)


def _result() -> BatchResult:
    result = BatchResult(rows={SECTORS: [SectorWindowRow(0.0, 60, "Z1", 0, 1)]})
    result.dead_letters.append(DeadLetter(Record("t", 0, 1, b"k", b"{"), "not valid JSON"))
    result.mark("interventions", "I1", 0)
    result.mark("interventions", "I2", 1)  # evicted: gone from the store
    return result


def test_checkpoint_order_dead_letters_rows_then_changelog_with_tombstones() -> None:
    rec = Recorder()
    beats: list[int] = []
    cp = Checkpoint(rec, rec.changelog, rec.dead_letter, lambda: beats.append(1))
    run(cp.commit(_result(), {"interventions": {"I1": "state of I1"}}))
    assert rec.log == [("dead letter", "not valid JSON"), ("rows", {"sector_windows": 1}),
                       ("changelog", "interventions", [("I1", 0, "state of I1"), ("I2", 1, None)])]
    assert beats == [1]


def test_rows_clickhouse_refuses_are_dead_lettered_before_the_changelog() -> None:
    raw = Rejected("vehicle_status_events", {"event_id": "e1", "home_station": "S1", "source_partition": 2,
                                             "source_offset": 41, "payload": '{"x": 1}'}, "TypeMismatchError: range")
    derived = Rejected("station_windows", {"window_start": 2.0**33, "station_id": "S1"}, "TypeMismatchError: range")
    rec = Recorder(refuse=[raw, derived])
    letter = {"vehicle_status_events": lambda r: rejected_row_letter(r, "vehicle-status-x", "home_station")}
    cp = Checkpoint(rec, rec.changelog, rec.dead_letter,
                    rejected_letter=lambda r: letter.get(r.table, rejected_row_letter)(r))
    run(cp.commit(_result(), {"interventions": {"I1": "state of I1"}}))
    assert [e[0] for e in rec.log] == ["dead letter", "rows", "dead letter", "dead letter", "changelog"]
    back, row = rec.letters[1:]
    assert back.record == Record("vehicle-status-x", 2, 41, b"S1", b'{"x": 1}')  # the event as it came
    assert "ClickHouse refused the row for table vehicle_status_events: TypeMismatchError" in back.reason
    assert row.record.topic == "clickhouse:station_windows" and b'"station_id": "S1"' in (row.record.value or b"")


def test_checkpoint_writes_no_changelog_when_rows_are_not_stored() -> None:
    rec = Recorder(fail_rows=True)
    cp = Checkpoint(rec, rec.changelog, rec.dead_letter)
    with pytest.raises(ConnectionError):
        run(cp.commit(_result(), {"interventions": {"I1": "x"}}))
    assert [e[0] for e in rec.log] == ["dead letter"]  # the batch is not acknowledged: it is re-read


def test_merge_keeps_window_runs_and_adds_counts() -> None:
    a, b = WindowBlock(), WindowBlock()
    row = (0.0, 60, "S1", "A", "VSAV", 1, 0, 0, 0, 1, 0.0, 0, 0, 0)
    a.add(row)
    b.add_run(3, (60.0, *row[1:]))
    spec = table("station_windows", StationWindowRow, "station_window_runs")
    r1 = BatchResult(rows={spec: a}, late=1)
    r1.mark("stations", "S1", 0)
    r2 = BatchResult(rows={spec: b, SECTORS: [SectorWindowRow(0.0, 60, "Z", 0, 2)]}, late=2)
    r2.mark("stations", "S2", 1)
    r1.merge(r2)
    merged = r1.rows[spec]
    assert isinstance(merged, WindowBlock) and merged.repeat == [1, 3] and len(merged) == 4
    assert r1.late == 3 and r1.changed == {"stations": {"S1": 0, "S2": 1}} and len(r1.rows[SECTORS]) == 1


def test_dead_letter_of_an_oversized_record_is_cut_with_its_size_and_hash() -> None:
    big = b"x" * (DEAD_LETTER_MAX_VALUE_BYTES + 1000)
    doc = json.loads(DeadLetter(Record("t", 2, 7, None, big), "too big").to_json())
    assert len(base64.b64decode(doc["value_b64"])) == DEAD_LETTER_MAX_VALUE_BYTES
    assert doc["value_truncated"] and doc["value_size"] == len(big)
    assert doc["value_sha256"] == hashlib.sha256(big).hexdigest()
    small = json.loads(DeadLetter(Record("t", 2, 7, b"k", b"{}"), "r").to_json())
    assert base64.b64decode(small["value_b64"]) == b"{}" and "value_truncated" not in small


def test_another_faust_version_is_refused_with_a_clear_message() -> None:
    check_version()  # the installed one is the one pinned
    with pytest.raises(UnsupportedFaust, match=f"written for {FAUST_VERSION}"):
        check_version("0.16.0")


def test_a_row_field_without_a_clickhouse_type_is_refused() -> None:
    from typing import NamedTuple

    class Untyped(NamedTuple):
        a: str

    with pytest.raises(TypeError, match="annotate it with its ClickHouse type"):
        table("x", Untyped)


def test_the_batch_path_runs_its_engines_at_the_engines_collector_pace() -> None:
    """While ``BatchRunner.run`` runs, the collector's thresholds are the engines' (``GC_THRESHOLDS``); after it,
    the caller's again (the tests and tools that call it keep their own)."""
    import gc

    from core.settings import Settings
    from streams.batch import BatchRunner
    from streams.processors.interventions import PROCESSOR as INTERVENTIONS
    from streams.runtime.memory import GC_THRESHOLDS
    from tests.helpers import T0, NoRows, iev

    runner = BatchRunner(Settings(topic_partitions=1), (INTERVENTIONS,), NoRows(), keep_outputs=True)
    seen: list[tuple[int, int, int]] = []
    engine = runner.runs[0].engine
    process = engine.process

    def watched(*args: Any, **kwargs: Any) -> BatchResult:
        seen.append(gc.get_threshold())
        return process(*args, **kwargs)

    engine.process = watched  # type: ignore[method-assign]
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    topic = Settings(topic_partitions=1).topic("interventions")
    stats = asyncio.run(runner.run([Record(topic, 0, 0, b"I1", iev("I1", "opened", T0).model_dump_json().encode())]))
    assert stats.events == 1 and seen == [GC_THRESHOLDS]
    assert gc.get_threshold() == before
