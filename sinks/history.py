"""``vigie history``: the batch path (``streams/batch.py``) from an event file or from a ClickHouse database's
raw history, into ClickHouse, in one or several processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from schemas.reference import Reference
from sinks.clickhouse import ClickHouseSink, make_client
from streams import registry
from streams.batch import BatchRunner, HistoryStats, PartitionOf, records_from_jsonl
from streams.processor import Message, Record


def records_from_clickhouse(settings: Settings, source_database: str) -> Iterator[Record]:
    """The stored raw history of ``source_database`` (every registered input that keeps one and whose table
    exists there), every topic merged in event-time order (ties: registry order, then offset)."""
    client = make_client(settings, source_database)
    existing = {name for (name,) in client.execute(
        "SELECT name FROM system.tables WHERE database = %(db)s", {"db": source_database})}
    inputs = [i for p in registry.processors(settings) for i in p.inputs if i.raw_table in existing]
    query = " UNION ALL ".join(
        f"SELECT event_ts_ms, {kind} AS kind, {i.raw_key} AS key, source_offset, payload FROM {i.raw_table} FINAL"
        for kind, i in enumerate(inputs))
    rows = sorted(client.execute(query), key=lambda r: (r[0], r[1], r[3])) if inputs else []
    client.disconnect()
    topics = [settings.topic(i.topic) for i in inputs]
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
class RecordsSource:
    """Records already made (a replay's, with its progress, pause and stop): one process only."""

    records_iter: Iterator[Record]

    def records(self, settings: Settings) -> Iterator[Record]:
        return self.records_iter


def _run_share(settings: Settings, source: HistorySource | RecordsSource, share: int, shares: int, chunk_events: int,
               reference: Reference | None) -> tuple[HistoryStats, list[Message]]:
    """One process of a parallel run: the records of partitions ``p % shares == share``, in their order, through
    the processors that read them; what they publish to other processors comes back (every share's together
    make those processors' input, see ``run_history``)."""
    records = (r for r in source.records(settings) if r.partition % shares == share)
    sink = ClickHouseSink(settings)
    try:
        parallel = shares > 1
        readers = registry.readers_of_outputs(settings) if parallel else ()
        procs = [p for p in registry.processors(settings) if p not in readers]
        runner = BatchRunner(settings, procs, sink, reference, keep_outputs=parallel)
        stats = asyncio.run(runner.run(records, chunk_events))
        return stats, runner.outputs
    finally:
        sink.close()


def _run_readers(settings: Settings, messages: list[Message], reference: Reference | None) -> HistoryStats:
    """The processors reading other processors' outputs, over every share's outputs (their readers take them
    in any interleaving: see ``streams/alert_book.py``)."""
    sink = ClickHouseSink(settings)
    try:
        runner = BatchRunner(settings, registry.readers_of_outputs(settings), sink, reference)
        records = (Record(settings.topic(m.topic), runner.partition_of(m.key), i, m.key, m.value)
                   for i, m in enumerate(messages))
        stats = asyncio.run(runner.run(records))
        stats.events = 0  # what processors published, not input events
        return stats
    finally:
        sink.close()


def run_history(settings: Settings, source: HistorySource | RecordsSource, processes: int = 1,
                chunk_events: int = 20_000, reference: Reference | None = None) -> HistoryStats:
    """The batch path over ``source`` into ``settings.clickhouse_database``, in ``processes`` processes (0: one
    per core), at most one per partition (``stats.processes``: how many ran).

    State lives per partition (a station's or an intervention's events share one), so the partitions are
    shared out between the processes (partition p to process p mod N) and each runs its own engines and
    writes its own rows: the same rows as one process. Each process reads the whole source and keeps its
    partitions' records (reading is a few µs per event, processing several times that); from ClickHouse each
    loads the whole raw history. What processors publish to one another (the stations' steps) comes back from
    every process, and their readers (the alerts, a view across all partitions) run on it once all are done.
    ``seconds``: wall time, process start-up included."""
    processes = max(1, min(processes or os.cpu_count() or 1, settings.topic_partitions))
    if processes == 1 or isinstance(source, RecordsSource):  # an iterator cannot be shared between processes
        return _run_share(settings, source, 0, 1, chunk_events, reference)[0]
    started = time.perf_counter()
    total = HistoryStats(processes=processes)
    # spawn, not fork: the caller may hold threads (Kafka clients, executors) a forked child would inherit
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = [pool.submit(_run_share, settings, source, i, processes, chunk_events, reference)
                  for i in range(processes)]
        outputs: list[Message] = []
        for done in shares:
            stats, published = done.result()
            total.add(stats)
            outputs += published
    total.add(_run_readers(settings, outputs, reference))
    total.seconds = time.perf_counter() - started
    return total
