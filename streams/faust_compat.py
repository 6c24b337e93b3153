"""Everything that reaches into Faust's internals, in one place, for the Faust version it was written for.

:func:`check_version` refuses another Faust with a clear message (``create_app`` calls it first): each
function here relies on private attributes of ``faust-streaming`` ``FAUST_VERSION``.

- :func:`apply_fetch_waits`: Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting; and
  one wait does not suit a consumer that is caught up and one that is far behind on a broker that answers a fetch
  only when its wait ends (Tansu).
- :func:`install_eager_delivery`: Faust's fetch loop (``Consumer._drain_messages``) hands every message to the
  streams with ``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks per message
  and an ``asyncio.wait``, about a fifth of a busy worker's CPU. The delivery nearly always completes without
  waiting; here it is first stepped by hand, and only when it has to wait (flow control during a rebalance, a
  full buffer) does the rest of it go through Faust's own ``wait_first``, so a suspension or a stop still
  interrupts it.
- :func:`take_drained`: ``Stream.take_events`` that also closes a batch when nothing more is waiting.
- :func:`state_table`, :func:`write_changelog`: changelog-backed tables with our codecs, written directly.
- :class:`FaustConsumerView`: high watermarks, committed offsets, assignment and flow state, for the hold,
  the watchdog and the metrics.
"""

from __future__ import annotations

import asyncio
import math
import types
from collections.abc import AsyncIterator, Callable, Container, Generator, Iterable, Mapping, Sequence
from importlib.metadata import version
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP, EventT
from mode.services import WaitResults
from mode.utils.aiter import aiter
from mode.utils.futures import notify

FAUST_VERSION = "0.15.3"


class UnsupportedFaust(RuntimeError):
    pass


def check_version(installed: str | None = None) -> None:
    installed = installed or version("faust-streaming")
    if installed != FAUST_VERSION:
        raise UnsupportedFaust(
            f"faust-streaming {installed} is installed; Vigie's runtime (streams/faust_compat.py) reaches into Faust "
            f"internals written for {FAUST_VERSION} only. Install faust-streaming=={FAUST_VERSION} (pyproject.toml "
            "pins it), or port streams/faust_compat.py to the new version and change FAUST_VERSION.")


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


def install_eager_delivery(enabled: bool = True) -> None:
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


_GUARDED_TOPICS: set[str] = set()  # input topics whose gaps only the offset guard may commit past


def install_verified_gaps(topics: Iterable[str]) -> None:
    """Faust takes any forward jump in a partition's delivered offsets for a gap to commit past (compaction,
    transaction markers). It also sees one when a fetch from before its seek to the committed offsets lands
    after the seek (logged in the chaos test: crew-status[0] sought to 91, offset 195 delivered next, and 92..194
    recorded as a gap, records it never delivered that its next commit may pass over). For ``topics``, a gap is
    committed past only once the offset guard has checked at the broker that it holds no record
    (:func:`commit_past_empty`)."""
    from faust.transport.consumer import Consumer

    _GUARDED_TOPICS.update(topics)
    original = getattr(Consumer._add_gap, "__wrapped__", Consumer._add_gap)

    async def add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        if tp.topic not in _GUARDED_TOPICS:
            await original(self, tp, offset_from, offset_to)

    add_gap.__wrapped__ = original  # type: ignore[attr-defined]
    Consumer._add_gap = add_gap  # type: ignore[method-assign]


async def commit_past_empty(app: faust.App, topic: str, partition: int, start: int, end: int) -> None:
    """Offsets ``start`` <= o < ``end`` of a guarded input hold no record (checked at the broker): Faust may
    commit past them once the records around are acknowledged."""
    from faust.transport.consumer import Consumer

    add_gap = getattr(Consumer._add_gap, "__wrapped__", Consumer._add_gap)
    if end > start and app._consumer is not None:
        await add_gap(app._consumer, TP(topic, partition), start, end - 1)


#: A partition this many records behind its high watermark (as of the last fetch) is catching up.
CATCH_UP_RECORDS = 1000


def apply_fetch_waits(caught_up_ms: int, behind_ms: int) -> None:
    """Every fetch request of the worker's aiokafka consumer waits ``caught_up_ms`` at the broker while its
    partitions are caught up, and ``behind_ms`` while one is ``CATCH_UP_RECORDS`` or more behind, or behind at all
    with the last fetch bringing it nothing. Apache Kafka answers as soon as data is there, so a longer wait costs a
    lagging consumer nothing; Tansu fills a fetch only until its wait ends, and finding a record in a big partition
    costs more than a short wait (measured at 100,000 one-record batches: 50 ms returned one record per fetch on
    2026-12-01, 57 fetches in 4.7 s on 2026-12-03; 200 ms all of them in 1.7 s, then 0.8 s). On 2026-12-03, with 16
    partitions of ~87,500 records, a consumer 250 records behind in each got none in 60 s of 50 ms fetches (a live
    worker stalled so at the end of a simulated 8 weeks), all 4,000 in 3.8 s with 500 ms."""
    from aiokafka.consumer.fetcher import Fetcher

    original = getattr(Fetcher._get_actions_per_node, "__wrapped__", Fetcher._get_actions_per_node)

    def actions(self: Any, assignment: Any) -> Any:
        asked: dict[Any, int] = getattr(self, "_vigie_asked", {})
        self._fetch_max_wait_ms = behind_ms if _catching_up(assignment, asked, self._records) else caught_up_ms
        out = original(self, assignment)
        if out[0]:  # requests go out: the positions they ask from
            self._vigie_asked = _positions(assignment)
        return out

    actions.__wrapped__ = original  # type: ignore[attr-defined]
    Fetcher._get_actions_per_node = actions  # type: ignore[method-assign]


def _positions(assignment: Any) -> dict[Any, int]:
    states = ((tp, assignment.state_value(tp)) for tp in assignment.tps)
    return {tp: state.position for tp, state in states if state is not None and state.has_valid_position}


def _catching_up(assignment: Any, asked: Mapping[Any, int], buffered: Container[Any] = ()) -> bool:
    """Whether a partition is far behind, or behind and still where the last request asked from with nothing
    fetched waiting to be read (its fetch brought nothing: on Tansu, the wait ran out before the position was
    found)."""
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state is None or state.highwater is None or not state.has_valid_position:
            continue
        behind = state.highwater - state.position
        if behind >= CATCH_UP_RECORDS or (behind > 0 and asked.get(tp) == state.position and tp not in buffered):
            return True
    return False


class _Codec(codecs.Codec):
    def __init__(self, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]) -> None:
        super().__init__()
        self._dumps_fn, self._loads_fn = dumps, loads

    def _dumps(self, obj: Any) -> bytes:
        return self._dumps_fn(obj)

    def _loads(self, s: bytes) -> Any:
        return self._loads_fn(s)


KEY_CODEC = "vigie-key"  # str keys of every state table, registered once
codecs.register(KEY_CODEC, _Codec(lambda k: k.encode() if isinstance(k, str) else bytes(k), bytes.decode))


def state_table(app: faust.App, name: str, partitions: int, dumps: Callable[[Any], bytes],
                loads: Callable[[bytes], Any], topic_config: dict[str, str] | None = None) -> Any:
    """A changelog-backed table (str keys) whose values go through ``dumps``/``loads``. Faust takes the
    serializers used to write the changelog and to decode it on recovery from these attributes (not from the
    schema), and builds the changelog topic when the table is registered: rebuilt once they are set."""
    value_codec = f"vigie-state-{name}"
    codecs.register(value_codec, _Codec(dumps, loads))
    table = app.Table(name, partitions=partitions, extra_topic_configs=topic_config or {})
    table.key_serializer = KEY_CODEC
    table.value_serializer = value_codec
    table.changelog_topic = table._new_changelog_topic()
    return table


async def write_changelog(table: Any, entries: Sequence[tuple[str, int, Any]]) -> None:
    """One changelog record per (key, partition, value) (None: a tombstone), awaited until the broker has them
    all. Faust's own ``send_changelog`` only buffers, and its commit does not wait for that buffer (its flush
    gives up after 0.1 s without a send), so offsets could be committed for state a crash then loses. Records
    are serialized with the table's codecs (what recovery decodes) and handed to the producer directly:
    ``Topic.send`` cost about as much per record as the state change itself."""
    if not entries:
        return
    producer = table.app.producer
    topic = table.changelog_topic.get_topic_name()
    key_codec, value_codec = table.key_serializer, table.value_serializer
    pending = []
    for key, partition, value in entries:
        pending.append(await producer.send(
            topic, codecs.dumps(key_codec, key), None if value is None else codecs.dumps(value_codec, value),
            partition, None, None))
    await asyncio.gather(*pending)


async def send_acked(app: Any, records: Sequence[tuple[str, bytes, bytes]]) -> None:
    """(topic, key, value) records, partitioned by key as Kafka's default partitioner does, awaited until the
    broker has them all (see ``write_changelog``)."""
    if not records:
        return
    producer = app.producer
    pending = [await producer.send(topic, key, value, None, None, None) for topic, key, value in records]
    await asyncio.gather(*pending)


def take_drained(stream: Any, max_: int, within: float, drained: bool = True, min_age: float = 0.0
                 ) -> AsyncIterator[Sequence[EventT]]:
    """Batches of events, as ``Stream.take_events(max_, within)`` (which closes a batch only on size or age).
    With ``drained``, a batch also closes when nothing more waits in the stream's queue, once ``min_age`` seconds
    have passed since the previous batch closed: under light load a batch is what the fetches brought (freshness)
    and batches come at most every ``min_age`` (each is a ClickHouse insert per table: small inserts by the hundred
    per second make ClickHouse merge all the time); under heavy load the queue does not run dry and batches close on
    size; ``within`` stays the cap. The interval runs from the previous close, not from the batch's first event:
    the events that came while the previous batch was processed have waited that long already, and a batch cycle
    longer than ``min_age`` (at 2,000 events/s, ~160 ms of engine, inserts and changelog) added ``min_age`` to each
    cycle for nothing. Registered like Faust's own buffering generators."""
    if not drained:
        return stream.take_events(max_, within=within)
    agen = _take_drained(stream, max_, within, min_age)
    stream._active_agens.add(agen)
    return agen


async def _take_drained(self: Any, max_: int, within: float, min_age: float) -> AsyncIterator[Sequence[EventT]]:
    # Faust 0.15.3's Stream.take_events, with the drain test in ``add_to_buffer``
    events: list[EventT] = []
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    stream_enable_acks: bool = self.enable_acks
    buffer_consuming: asyncio.Future[None] | None = None
    channel_it = aiter(self.channel)
    queue = getattr(channel_it, "queue", None)
    loop = asyncio.get_running_loop()
    closed_at = -math.inf  # when the previous batch closed
    timer: asyncio.TimerHandle | None = None  # closes a drained batch once min_age has passed since closed_at

    def close_if_drained() -> None:
        nonlocal timer
        timer = None
        if events and queue is not None and queue.empty():
            buffer_full.set()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal buffer_consuming, timer
        try:
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            event = self.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            events.append(event)
            if len(events) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await self.wait(buffer_consumed)
            elif queue is not None and queue.empty():  # drained
                since = loop.time() - closed_at
                if since >= min_age:
                    buffer_full.set()
                elif timer is None:
                    timer = loop.call_later(min_age - since, close_if_drained)
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            self.log.exception("Error adding to take buffer: %r", exc)
            await self.crash(exc)
        return value

    self.enable_acks = False
    self.add_processor(add_to_buffer)
    self._enable_passive(channel_it)
    try:
        while not self.should_stop:
            await self.wait_for_stopped(buffer_full, timeout=within)
            if events:
                if timer is not None:
                    timer.cancel()
                    timer = None
                buffer_consuming = self.loop.create_future()
                closed_at = loop.time()
                try:
                    yield list(events)
                finally:
                    for event in events:
                        await self.ack(event)
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        if timer is not None:
            timer.cancel()
        self.enable_acks = stream_enable_acks
        self._processors.remove(add_to_buffer)


class FaustConsumerView:
    """The consumer as the runtime parts read it (``streams/runtime/hold.py``'s ``ConsumerView``), from Faust's
    consumer: assignment, high watermarks of the last fetch, committed offsets, flow state."""

    def __init__(self, app: faust.App, topics: Iterable[str]) -> None:
        self.app = app
        self.topics = frozenset(topics)

    @property
    def started(self) -> bool:
        return self.app._consumer is not None

    def assignment(self) -> list[tuple[str, int]]:
        consumer = self.app._consumer
        if consumer is None:
            return []
        try:  # also read from the watchdog's thread
            return [(tp.topic, tp.partition) for tp in consumer.assignment() if tp.topic in self.topics]
        except Exception:
            return []

    def highwater(self, topic: str, partition: int) -> int | None:
        consumer = self.app._consumer
        return None if consumer is None else consumer.highwater(TP(topic, partition))

    def committed(self, topic: str, partition: int) -> int | None:
        consumer = self.app._consumer
        return None if consumer is None else consumer._committed_offset.get(TP(topic, partition))

    def describe(self) -> str:
        """Faust's flow state of the input partitions (for the watchdog's diagnosis)."""
        c = self.app._consumer
        if c is None:
            return "no consumer"

        def mine(tps: Any) -> list[str]:
            return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps if tp.topic in self.topics)

        def offsets(d: Any) -> dict[str, Any]:
            return {f"{tp.topic}[{tp.partition}]": o for tp, o in d.items() if tp.topic in self.topics}

        return (f"flow_active={c.flow_active} app_flow_active={self.app.flow_control.is_active()} "
                f"assigned={mine(c.assignment())} active={mine(c._active_partitions or ())} "
                f"paused={mine(c._paused_partitions)} buffered={mine(c._buffered_partitions)} "
                f"read={offsets(c._read_offset)} committed={offsets(c._committed_offset)}")
