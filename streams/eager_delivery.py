"""Eager delivery of fetched messages to Faust's streams (a worker patch, installed by ``create_pipeline``).

Faust's fetch loop (``Consumer._drain_messages``) hands every message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks per message (the
delivery, the flow-suspension wait, the consumer's stopped and crashed events) and an ``asyncio.wait``,
about a fifth of a busy worker's CPU. The delivery nearly always completes without waiting (a free slot in
the stream's buffer). Here it is first stepped by hand: when it completes at once no task is created; when
it has to wait (flow control during a rebalance, a full buffer) the rest of it goes through Faust's own
``wait_first`` as before, so a flow suspension or a stop still interrupts it.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Generator
from typing import Any

from mode.services import WaitResults

_FLOW_WAIT = asyncio.Event.wait.__code__


class Continued:
    """The rest of a coroutine that was stepped once by hand and then yielded ``pending``: awaited by a
    task, it passes what the coroutine yields to that task and what the task sends or throws back to the
    coroutine (what ``yield from`` does, from the second step on)."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: types.CoroutineType[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task (cancellation)
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def step_first(coro: types.CoroutineType[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` up to its first suspension: (True, its result) when it completed, else (False, a
    :class:`Continued` to await for the rest)."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, Continued(coro, pending)


def install(enabled: bool = True) -> None:
    """Patch Faust's consumer (idempotent; the original ``wait_first`` serves every other call). With
    ``enabled`` False (``VIGIE_KAFKA_EAGER_DELIVERY=false``), put Faust's own back."""
    from faust.transport.consumer import Consumer

    original = getattr(Consumer.wait_first, "__wrapped__", Consumer.wait_first)
    if not enabled:
        Consumer.wait_first = original  # type: ignore[method-assign]
        return

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if (len(coros) == 2 and timeout is None and isinstance(coros[0], types.CoroutineType)
                and getattr(coros[1], "cr_code", None) is _FLOW_WAIT and not self.suspend_flow.is_set()):
            delivery, flow_wait = coros
            try:
                done, value = step_first(delivery)
            except BaseException:
                flow_wait.close()
                raise
            if done:
                flow_wait.close()
                return WaitResults([delivery], [value], False)
            coros = (value, flow_wait)
        return await original(self, *coros, timeout=timeout)

    wait_first.__wrapped__ = original  # type: ignore[attr-defined]
    Consumer.wait_first = wait_first  # type: ignore[method-assign]
