"""The batch path for history: the same engines as the live worker, driven from an event file or
from the ClickHouse event history, without Kafka or Faust, writing the same tables.

Records are partitioned exactly as the live topics are (murmur2 of the key, the Kafka default), so
each partition's events meet the same state and watermark as they would live. On events that are
in order per partition (up to the allowed lateness), the rows are the same as the live path's.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.partitioner import murmur2

from schemas.reference import Reference
from sinks.clickhouse import ClickHouseSink, make_client
from sinks.tables import TableSpec
from streams.engine import InterventionEngine, Record, StationEngine
from streams.interventions import InterventionState, SectorWindows
from streams.state import StationState
from vigie.settings import Settings


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (Java, aiokafka, librdkafka ``murmur2_random``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def logical_topics(settings: Settings) -> dict[str, str]:
    """Logical topic names (simulator, event files) -> this deployment's topic names."""
    return {"vehicle-status": settings.topic_vehicle_status, "interventions": settings.topic_interventions,
            "crew-status": settings.topic_crew_status}


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
    topics = logical_topics(settings)
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
            yield Record(topics[topic], partition_of(key), line_no, key, value)


def records_from_clickhouse(settings: Settings, source_database: str) -> Iterator[Record]:
    """The stored raw history of ``source_database``, every topic merged in event-time order."""
    client = make_client(settings, source_database)
    query = (
        "SELECT event_ts_ms, 0 AS kind, home_station AS key, source_offset, payload "
        "FROM vehicle_status_events FINAL "
        "UNION ALL SELECT event_ts_ms, 1 AS kind, intervention_id AS key, source_offset, payload "
        "FROM intervention_events FINAL "
        "UNION ALL SELECT event_ts_ms, 2 AS kind, station_id AS key, source_offset, payload "
        "FROM crew_status_events FINAL"
    )
    rows = sorted(client.execute(query), key=lambda r: (r[0], r[1], r[3]))
    client.disconnect()
    topics = (settings.topic_vehicle_status, settings.topic_interventions, settings.topic_crew_status)
    partition_of = PartitionOf(settings.topic_partitions)
    for _, kind, key, offset, payload in rows:
        k = key.encode()
        yield Record(topics[kind], partition_of(k), offset, k, payload.encode())


@dataclass(frozen=True)
class HistorySource:
    """Where the batch path reads: an event file, or the raw history of a ClickHouse database. Plain data, so
    that each process of a parallel run opens the source itself."""

    file: Path | None = None
    clickhouse_database: str | None = None

    def records(self, settings: Settings) -> Iterator[Record]:
        if self.file is not None:
            return records_from_jsonl(self.file, settings)
        if self.clickhouse_database is not None:
            return records_from_clickhouse(settings, self.clickhouse_database)
        raise ValueError("a history source needs an event file or a ClickHouse database")


@dataclass
class HistoryStats:
    events: int = 0
    invalid: int = 0
    seconds: float = 0.0
    rows: Counter[str] = field(default_factory=Counter)
    processes: int = 1

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def add(self, other: HistoryStats) -> None:
        """Counts of another share of the same run (its seconds overlap this one's: not added)."""
        self.events += other.events
        self.invalid += other.invalid
        self.rows.update(other.rows)


class HistoryRunner:
    """Runs records through the engines in chunks and stores each chunk's rows."""

    def __init__(self, settings: Settings, reference: Reference | None = None,
                 sink: ClickHouseSink | None = None) -> None:
        self.settings = settings
        ref = reference or Reference.load(settings.reference_dir)
        self.vehicles = StationEngine(ref, settings.window_seconds, settings.allowed_lateness_seconds,
                                      crew_topic=settings.topic_crew_status)
        self.interventions = InterventionEngine(settings.window_seconds, settings.allowed_lateness_seconds,
                                                settings.intervention_retention_hours * 3600)
        self.stations: dict[str, StationState] = {}
        self.intervention_states: dict[str, InterventionState] = {}
        self.sectors: dict[str, SectorWindows] = {}
        self.sink = sink or ClickHouseSink(settings)
        self.stats = HistoryStats()

    async def run(self, records: Iterable[Record], chunk_events: int = 20_000) -> HistoryStats:
        """Chunks are processed while the previous chunk's rows are being written (one write in flight, in
        order): ClickHouse works on one chunk while Python works on the next."""
        started = time.perf_counter()
        intervention_topic = self.settings.topic_interventions
        vehicle_buf: list[Record] = []  # station-keyed records: vehicle and crew status
        intervention_buf: list[Record] = []
        writing: asyncio.Task[None] | None = None
        for rec in records:
            (intervention_buf if rec.topic == intervention_topic else vehicle_buf).append(rec)
            if len(vehicle_buf) + len(intervention_buf) >= chunk_events:
                writing = await self._flush(vehicle_buf, intervention_buf, writing)
                vehicle_buf, intervention_buf = [], []
        writing = await self._flush(vehicle_buf, intervention_buf, writing)
        await writing
        self.stats.seconds += time.perf_counter() - started
        return self.stats

    async def _flush(self, vehicle_buf: list[Record], intervention_buf: list[Record],
                     previous: asyncio.Task[None] | None) -> asyncio.Task[None]:
        """Process a chunk, wait for the previous chunk's write, start this one's."""
        rows: dict[TableSpec, list[tuple[Any, ...]]] = {}
        if vehicle_buf:
            result = self.vehicles.process(vehicle_buf, self.stations)
            rows.update(result.rows)
            self.stats.invalid += len(result.dead_letters)
        if intervention_buf:
            iresult, _ = self.interventions.process(intervention_buf, self.intervention_states, self.sectors)
            rows.update(iresult.rows)
            self.stats.invalid += len(iresult.dead_letters)
            self.interventions.evict_closed(self.intervention_states)
        if previous is not None:
            await previous
        self.stats.events += len(vehicle_buf) + len(intervention_buf)
        for spec, table_rows in rows.items():
            self.stats.rows[spec.name] += len(table_rows)
        return asyncio.create_task(self.sink.write(rows))


def _run_share(settings: Settings, source: HistorySource, share: int, shares: int, chunk_events: int,
               reference: Reference | None) -> HistoryStats:
    """One process of a parallel run: the records of partitions ``p % shares == share``, in their order."""
    records = (r for r in source.records(settings) if r.partition % shares == share)
    return asyncio.run(HistoryRunner(settings, reference).run(records, chunk_events))


def run_history(settings: Settings, source: HistorySource, processes: int = 1, chunk_events: int = 20_000,
                reference: Reference | None = None) -> HistoryStats:
    """The batch path over ``source`` into ``settings.clickhouse_database``, in ``processes`` processes (0: one
    per core), at most one per partition (``stats.processes``: how many ran).

    State lives per partition (a station's or an intervention's events share one), so the partitions are
    shared out between the processes (partition p to process p mod N) and each runs its own engines and
    writes its own rows: the same rows as one process. Each process reads the whole source and keeps its
    partitions' records (reading is a few µs per event, processing several times that); from ClickHouse each
    loads the whole raw history. ``seconds``: wall time, process start-up included."""
    processes = max(1, min(processes or os.cpu_count() or 1, settings.topic_partitions))
    if processes == 1:
        return _run_share(settings, source, 0, 1, chunk_events, reference)
    started = time.perf_counter()
    total = HistoryStats(processes=processes)
    # spawn, not fork: the caller may hold threads (Kafka clients, executors) a forked child would inherit
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = [pool.submit(_run_share, settings, source, i, processes, chunk_events, reference)
                  for i in range(processes)]
        for done in shares:
            total.add(done.result())
    total.seconds = time.perf_counter() - started
    return total
