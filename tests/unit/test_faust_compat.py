"""Eager delivery: a coroutine stepped by hand completes at once, or is continued by a task exactly as if the
task had run it from the start (results, exceptions, cancellation), and Faust's fetch loop call is served."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams.faust_compat import install_eager_delivery as install
from streams.faust_compat import step_first


async def no_wait(log: list[str]) -> int:
    log.append("ran")
    return 7


async def waits_on(fut: asyncio.Future[int], log: list[str]) -> int:
    log.append("before")
    await asyncio.sleep(0)  # a bare yield first
    try:
        value = await fut
    except asyncio.CancelledError:
        log.append("cancelled inside")
        raise
    log.append("after")
    return value * 2


def test_a_coroutine_that_never_waits_completes_in_the_first_step() -> None:
    log: list[str] = []
    done, value = step_first(no_wait(log))
    assert (done, value, log) == (True, 7, ["ran"])


def test_a_waiting_coroutine_is_continued_by_a_task() -> None:
    async def main() -> tuple[int, list[str]]:
        log: list[str] = []
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done, rest = step_first(waits_on(fut, log))
        assert not done and log == ["before"]
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0.01)
        assert not task.done()
        fut.set_result(21)
        return await task, log

    assert asyncio.run(main()) == (42, ["before", "after"])


def test_errors_and_cancellation_reach_the_coroutine() -> None:
    async def main() -> list[str]:
        log: list[str] = []
        loop = asyncio.get_running_loop()
        failing: asyncio.Future[int] = loop.create_future()
        _, rest = step_first(waits_on(failing, log))
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0.01)
        failing.set_exception(ValueError("bad"))
        with pytest.raises(ValueError, match="bad"):
            await task
        pending: asyncio.Future[int] = loop.create_future()
        _, rest = step_first(waits_on(pending, log))
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pending.cancelled()
        return log

    assert asyncio.run(main()) == ["before", "before", "cancelled inside"]


def test_fetch_loop_calls_are_served_eagerly_and_others_by_faust() -> None:
    from faust.transport.consumer import Consumer

    install(True)
    try:
        class Fake:  # what the patched method reads of a consumer
            suspend_flow = asyncio.Event()
            wait_first = Consumer.wait_first

        async def main() -> None:
            consumer = Fake()
            log: list[str] = []
            result = await consumer.wait_first(no_wait(log), consumer.suspend_flow.wait())
            assert result.results == [7] and not result.stopped and log == ["ran"]
            other = no_wait(log)
            with pytest.raises(AttributeError, match="_stopped"):  # Faust's own, which needs a real service
                await consumer.wait_first(other)
            other.close()

        asyncio.run(main())
    finally:
        install(False)
    assert not hasattr(Consumer.wait_first, "__wrapped__")


def _collect_batches(max_events: int, puts: list[list[int]], min_age: float, patience_s: float = 10.0
                     ) -> list[list[int]]:
    """Run an agent reading through ``take_drained`` in Faust's test context (no broker); each inner list of
    ``puts`` is put at once, then the test waits until the stream has taken them all (at most ``patience_s``)."""
    import faust

    from streams.faust_compat import take_drained

    app = faust.App(f"take-drained-{max_events}-{min_age}", store="memory://", web_enabled=False,
                    autodiscover=False)
    batches: list[list[int]] = []
    taken: list[list[int]] = []  # the batches handed on while the agent runs (stopping it flushes the rest)

    @app.agent()
    async def collect(stream):  # type: ignore[no-untyped-def]
        # the age cap (60 s) is far beyond the test's wait: a batch here closes on drain or on size
        async for events in take_drained(stream, max_events, 60.0, True, min_age):
            batches.append([e.value for e in events])

    async def main() -> None:
        async with collect.test_context() as agent:
            sent = 0
            for group in puts:
                for value in group:
                    await agent.put(value)
                sent += len(group)
                for _ in range(round(patience_s / 0.05)):  # until the stream has handed every value on
                    if sum(map(len, batches)) == sent:
                        break
                    await asyncio.sleep(0.05)
            taken.extend(batches)

    asyncio.run(main())
    return taken


def test_a_batch_closes_when_nothing_more_waits() -> None:
    batches = _collect_batches(100, [[0, 1, 2, 3, 4], [5, 6, 7]], min_age=0.05)
    # handed on in order, not held for the 60 s age cap; the second group, put once the first was handed on, apart
    # (the test's puts step the stream between them: the first group can close on a momentary drain, in parts)
    assert [v for b in batches for v in b] == list(range(8)) and batches[-1][-3:] == [5, 6, 7]
    assert all(5 not in b or b[0] == 5 for b in batches)


def test_batches_come_at_most_every_min_age_counted_from_the_previous_close() -> None:
    """The first event after a quiet spell is handed on at once, not held ``min_age`` for company (the interval
    runs from the previous batch's close); the next ones, within ``min_age`` of that close, wait for it to pass."""
    batches = _collect_batches(100, [[0], [1, 2]], min_age=30.0, patience_s=1.0)
    assert batches == [[0]]


def test_under_load_a_batch_closes_on_size() -> None:
    batches = _collect_batches(3, [list(range(8))], min_age=0.0)
    assert [v for b in batches for v in b] == list(range(8)) and max(map(len, batches)) <= 3


class _Assignment:
    """aiokafka's assignment as the fetch-wait rule reads it: partitions, each with a high watermark (from the last
    fetch) and a position."""

    def __init__(self, **parts: tuple[int | None, int | None]) -> None:
        self.tps = list(parts)
        self._states = {tp: SimpleNamespace(highwater=hw, position=pos, has_valid_position=pos is not None)
                        for tp, (hw, pos) in parts.items()}

    def state_value(self, tp: str) -> SimpleNamespace:
        return self._states[tp]


def test_the_long_fetch_wait_goes_to_a_partition_far_behind_or_behind_and_fetched_nothing() -> None:
    from streams.faust_compat import CATCH_UP_RECORDS, _catching_up, _positions

    assert not _catching_up(_Assignment(a=(500, 500), b=(None, 3), c=(9, None)), {})  # caught up or unknown
    assert _catching_up(_Assignment(a=(500, 500), b=(CATCH_UP_RECORDS + 10, 10)), {})  # far behind
    assert not _catching_up(_Assignment(b=(CATCH_UP_RECORDS + 9, 10)), {})  # a little behind: the short wait
    # a little behind, and the last request asked from where it still is: its fetch brought nothing
    behind = _Assignment(a=(500, 500), b=(300, 50))
    asked = _positions(behind)
    assert asked == {"a": 500, "b": 50}
    assert _catching_up(behind, asked)
    assert not _catching_up(behind, {"a": 500, "b": 40})  # it moved since: the short wait again
    assert not _catching_up(behind, asked, buffered={"b"})  # fetched, not read yet: nothing to say of the broker
    assert not _catching_up(_Assignment(a=(500, 500)), {"a": 500})  # the same place, caught up
