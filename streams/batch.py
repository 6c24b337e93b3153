"""The batch path for history: every registered processor's engine, as live, driven from stored records
without Kafka or Faust, writing the same tables (``sinks/history.py`` wires the sources and ClickHouse).

Records are partitioned exactly as the live topics are (murmur2 of the key, the Kafka default), so
each partition's events meet the same state and watermark as they would live. On events that are
in order per partition (up to the allowed lateness), the rows are the same as the live path's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.tables import TableSpec
from schemas.reference import Reference
from streams import registry
from streams.partitioning import partition_for
from streams.processor import BatchResult, Engine, EngineContext, Message, Processor, Record, Stores
from streams.runtime.checkpoint import RowWriter
from streams.runtime.memory import engines_gc

_EVENT_FIELD = b',"event":'
# the head of a line as Vigie writes it (plain topic and key, no escapes); anything else is parsed as JSON
_PLAIN_HEAD = re.compile(rb'\{"topic":"([^"\\]+)","key":"([^"\\]+)"')


class PartitionOf:
    """Kafka's default partition of a key, remembered per key (a station's key comes back all the time; the
    partitioner is plain Python). The memory is bounded: it starts afresh past ``max_keys``."""

    def __init__(self, partitions: int, max_keys: int = 200_000) -> None:
        self.partitions = partitions
        self.max_keys = max_keys
        self._known: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        p = self._known.get(key)
        if p is None:
            if len(self._known) >= self.max_keys:
                self._known.clear()
            p = self._known[key] = partition_for(key, self.partitions)
        return p


def records_from_jsonl(path: Path, settings: Settings) -> Iterator[Record]:
    """Lines of ``vigie simulate --output`` / ``vigie import``: ``{"topic": ..., "key": ..., "event": {...}}``.
    Lines written that way (event last) give their event bytes as they are; others are parsed."""
    topics = registry.logical_topics(settings)
    partition_of = PartitionOf(settings.topic_partitions)
    plain_head = _PLAIN_HEAD.fullmatch
    with Path(path).open("rb") as f:
        for line_no, line in enumerate(f):
            head, sep, rest = line.partition(_EVENT_FIELD)
            value = rest.rstrip()[:-1] if sep else b""
            plain = plain_head(head) if value.startswith(b"{") and value.endswith(b"}") else None
            if plain is not None:
                topic, key = plain.group(1).decode(), plain.group(2)
            else:
                doc = json.loads(line)
                value = json.dumps(doc["event"], separators=(",", ":"), ensure_ascii=False).encode()
                topic, key = doc["topic"], doc["key"].encode()
            yield Record(topics.get(topic, topic), partition_of(key), line_no, key, value)


@dataclass
class HistoryStats:
    events: int = 0
    invalid: int = 0
    seconds: float = 0.0
    rows: Counter[str] = field(default_factory=Counter)
    processes: int = 1
    unrouted: Counter[str] = field(default_factory=Counter)  # records of topics no processor reads
    refused: Counter[str] = field(default_factory=Counter)  # rows ClickHouse refused, per table
    published: Counter[str] = field(default_factory=Counter)  # messages for outside consumers, not sent

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def add(self, other: HistoryStats) -> None:
        """Counts of another share of the same run (its seconds overlap this one's: not added)."""
        self.events += other.events
        self.invalid += other.invalid
        self.rows.update(other.rows)
        self.unrouted.update(other.unrouted)
        self.refused.update(other.refused)
        self.published.update(other.published)


@dataclass
class _Run:
    """One processor on the batch path: its engine, its stores (plain dicts) and the chunk's records."""

    proc: Processor
    engine: Engine
    stores: Stores
    buffer: list[Record] = field(default_factory=list)


class BatchRunner:
    """Runs records through every processor's engine in chunks and stores each chunk's rows (``writer``)."""

    def __init__(self, settings: Settings, processors: Iterable[Processor], writer: RowWriter,
                 reference: Reference | None = None, keep_outputs: bool = False) -> None:
        """``keep_outputs``: what engines publish to one another is kept in ``outputs`` (a share of a parallel
        run, whose readers run once over every share's outputs), not processed."""
        self.settings = settings
        self.writer = writer
        ctx = EngineContext(settings, live=False, reference_override=reference)
        self.runs = [_Run(p, p.engine(ctx), {st.name: {} for st in p.states}) for p in processors]
        self.by_topic = {t: run for run in self.runs for t in run.proc.topics(settings)}
        self.partitions = range(settings.topic_partitions)
        self.stats = HistoryStats()
        self.partition_of = PartitionOf(settings.topic_partitions)
        self.derived_offsets: dict[str, int] = {}  # offsets of the messages engines publish to one another
        self.derived = 0  # of the records processed, those published by an engine (not input events)
        self.keep_outputs = keep_outputs
        self.outputs: list[Message] = []
        self.outside = {t for run in self.runs for t in run.proc.publishes}

    async def run(self, records: Iterable[Record], chunk_events: int = 20_000) -> HistoryStats:
        """Chunks are processed while the previous chunk's rows are being written (one write in flight, in
        order): ClickHouse works on one chunk while Python works on the next. The collector runs at the engines'
        pace meanwhile (``streams/runtime/memory.py``)."""
        with engines_gc():
            return await self._run(records, chunk_events)

    async def _run(self, records: Iterable[Record], chunk_events: int) -> HistoryStats:
        started = time.perf_counter()
        by_topic = self.by_topic
        pending = 0
        writing: asyncio.Task[None] | None = None
        for rec in records:
            run = by_topic.get(rec.topic)
            if run is None:
                self.stats.unrouted[rec.topic] += 1  # no registered processor reads this topic
                continue
            run.buffer.append(rec)
            pending += 1
            if pending >= chunk_events:
                writing = await self._flush(writing)
                pending = 0
        writing = await self._flush(writing)
        await writing
        await self._finish()
        self.stats.seconds += time.perf_counter() - started
        return self.stats

    async def _finish(self) -> None:
        """The input is over: engines that keep something back for later records give it now (``finish``)."""
        done = BatchResult()
        for run in self.runs:
            finish = getattr(run.engine, "finish", None)
            if finish is not None:
                done.merge(finish(run.stores))
        self._route(done.messages)  # only messages for outside consumers can come now (counted)
        rows = {spec: table_rows for spec, table_rows in done.rows.items() if table_rows}
        for spec, table_rows in rows.items():
            self.stats.rows[spec.name] += len(table_rows)
        await self._store(rows)

    async def _flush(self, previous: asyncio.Task[None] | None) -> asyncio.Task[None]:
        """Process a chunk, wait for the previous chunk's write, start this one's. What an engine publishes to
        another processor (``BatchResult.messages``) is that processor's input in the same chunk."""
        chunk = BatchResult()  # every pass's rows, per table (a WindowBlock keeps its runs)
        events = 0
        while any(run.buffer for run in self.runs):
            for run in self.runs:
                if not run.buffer:
                    continue
                result = run.engine.process(run.buffer, run.stores)
                tick = run.engine.tick(run.stores, None, self.partitions)  # eviction, as live every interval
                if tick is not None:
                    result.merge(tick)
                chunk.merge(result)
                self.stats.invalid += len(result.dead_letters)
                events += len(run.buffer)
                run.buffer = []
                self._route(result.messages)
        if previous is not None:
            await previous
        self.stats.events += events - self.derived
        self.derived = 0
        rows = {spec: table_rows for spec, table_rows in chunk.rows.items() if table_rows}
        for spec, table_rows in rows.items():
            self.stats.rows[spec.name] += len(table_rows)
        return asyncio.create_task(self._store(rows))

    def _route(self, messages: Sequence[Message]) -> None:
        if self.outside:  # live only (``Processor.publishes``): counted, not sent
            kept = [m for m in messages if m.topic not in self.outside]
            for m in messages:
                if m.topic in self.outside:
                    self.stats.published[m.topic] += 1
            messages = kept
        if self.keep_outputs:
            self.outputs += messages
            return
        self.derived += len(messages)
        for m in messages:
            topic = self.settings.topic(m.topic)
            reader = self.by_topic[topic]  # the registry checked that every output has a reader
            offset = self.derived_offsets[topic] = self.derived_offsets.get(topic, -1) + 1
            reader.buffer.append(Record(topic, self.partition_of(m.key), offset, m.key, m.value))

    async def _store(self, rows: dict[TableSpec, Sequence[Any]]) -> None:
        for refused in await self.writer.write(rows):  # stored without them; counted, and logged by the sink
            self.stats.refused[refused.table] += 1

