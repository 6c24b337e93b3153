"""The ClickHouse sink on a real server: rows it refuses never block a write, transient failures do (and
say so), and every row that can be stored is stored exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.settings import Settings
from sinks.clickhouse import ClickHouseSink, SinkMetrics
from streams.processors.stations import STATION_WINDOWS, VEHICLE_EVENTS
from streams.windows import WindowBlock
from tests.helpers import T0
from tests.integration.conftest import Stack, ch_client

pytestmark = pytest.mark.integration


class Seen(SinkMetrics):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.blocked: list[float | None] = []

    def on_error(self, table: str, error: BaseException) -> None:
        self.errors.append(type(error).__name__)

    def on_blocked(self, since: float | None) -> None:
        self.blocked.append(since)


def raw_row(i: int, t: float) -> tuple[Any, ...]:
    return (f"e{i}", t, int(t * 1000), "V1", "VSAV", "S1", "available_at_station", "", 0.0, 0.0, 0, i, "{}")


def test_a_refused_row_is_isolated_and_returned_the_others_are_stored(settings: Settings) -> None:
    rows = [raw_row(i, T0 + i) for i in range(40)]
    rows[17] = raw_row(17, 2.0**33)  # beyond DateTime: the driver cannot encode it
    rows[31] = raw_row(31, -5.0)
    seen = Seen()
    refused = asyncio.run(ClickHouseSink(settings, seen).write({VEHICLE_EVENTS: rows}))
    assert sorted(r.row["event_id"] for r in refused) == ["e17", "e31"]
    assert all(r.table == "vehicle_status_events" and r.error for r in refused)
    stored = {e for (e,) in ch_client(settings).execute("SELECT event_id FROM vehicle_status_events")}
    assert stored == {f"e{i}" for i in range(40)} - {"e17", "e31"}
    assert seen.errors and seen.blocked == []  # refused rows never count as a blocked sink


def test_an_insert_spanning_too_many_partitions_is_split_until_stored(settings: Settings) -> None:
    # one row a month over 15 years: 180 partitions. ClickHouse >= 19 refuses more than 100 in one insert (the
    # message is checked on chdb in tests/unit/test_sink_errors.py); 18.16, here, has no such limit, so the
    # limit is stood in for by a row the driver cannot encode: the halving must still store the other 179
    rows = [raw_row(i, T0 - i * 31 * 86400) for i in range(180)]
    rows[90] = raw_row(90, 2.0**33)
    seen = Seen()
    refused = asyncio.run(ClickHouseSink(settings, seen).write({VEHICLE_EVENTS: rows}))
    assert [r.row["event_id"] for r in refused] == ["e90"]
    assert len(seen.errors) == 8  # the whole, then one half per level down to the row (log2 180 < 8)
    (n,), = ch_client(settings).execute("SELECT uniqExact(event_id) FROM vehicle_status_events")
    assert n == 179


def test_window_runs_are_split_whole(settings: Settings) -> None:
    block = WindowBlock()
    for i in range(6):
        block.add_run(3, (T0 + i * 180, 60, "S1", "A", "VSAV", 1, 0, 0, 0, 1, 0.0, 0, 0, 0))
    block.add((2.0**33, 60, "S1", "A", "VSAV", 1, 0, 0, 0, 1, 0.0, 0, 0, 0))
    refused = asyncio.run(ClickHouseSink(settings).write({STATION_WINDOWS: block}))
    assert [r.row["window_start"] for r in refused] == [2.0**33]
    (n,), = ch_client(settings).execute("SELECT count() FROM station_windows")
    assert n == 18  # six runs of three windows


def test_clickhouse_down_blocks_and_says_so_then_everything_is_stored(stack: Stack, settings: Settings) -> None:
    seen = Seen()
    sink = ClickHouseSink(settings.model_copy(update={"sink_retry_initial_s": 0.2}), seen)
    stack.clickhouse.stop()
    try:
        async def write_while_down() -> list[Any]:
            task = asyncio.create_task(sink.write({VEHICLE_EVENTS: [raw_row(i, T0 + i) for i in range(5)]}))
            while not seen.blocked:  # the sink reports it is blocked (not a data error: nothing refused)
                await asyncio.sleep(0.05)
            assert not task.done()
            stack.restart_clickhouse_later()
            return await asyncio.wait_for(task, 60)

        refused = asyncio.run(write_while_down())
    finally:
        if stack.clickhouse.proc.poll() is not None:
            stack.restart_clickhouse_later()
    assert refused == [] and seen.blocked[0] is not None and seen.blocked[-1] is None
    (n,), = ch_client(settings).execute("SELECT count() FROM vehicle_status_events")
    assert n == 5
