"""The live runtime: one Faust app, one agent (and one timer) per registered processor, built from its
declaration. Each agent is thin: offset guard -> watermark hold -> engine -> checkpoint -> metrics, the
parts in ``streams/runtime/`` (tested without a broker); Faust's internals are reached only through
``streams/faust_compat.py``. Where rows go is injected (``rows_writer``): the CLI layer passes the
ClickHouse sink.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT
from mode import CrashingSupervisor

from core.settings import Settings
from streams import faust_compat
from streams.processor import DeadLetter, EngineContext, Message, Processor, Record, StoredHistory, Stores
from streams.runtime import memory, metrics
from streams.runtime.checkpoint import Checkpoint, Rejected, RowWriter, rejected_row_letter
from streams.runtime.faults import NO_FAULTS, Faults
from streams.runtime.hold import WatermarkHold
from streams.runtime.offsets import OffsetGuard, records_between, resume_offset
from streams.runtime.watchdog import Liveness, restart_process

#: a row writer for one agent, given the agent's liveness
RowWriterFactory = Callable[[Liveness], RowWriter]

log = logging.getLogger("vigie.worker")
RAW = faust.Schema(key_serializer="raw", value_serializer="raw")  # bytes in, bytes out: engines decode


def faust_credentials(settings: Settings) -> Any:
    proto = settings.kafka_security_protocol
    ssl_context = None
    if proto.endswith("SSL"):
        ssl_context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
        if settings.kafka_ssl_certfile:  # mutual TLS
            ssl_context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None,
                                        settings.kafka_ssl_key_password.get_secret_value() or None)
    if proto.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context,
        )
    if ssl_context is not None:
        return faust.SSLCredentials(ssl_context)
    return None


def faust_app(settings: Settings) -> faust.App:
    (settings.state_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=settings.kafka_url(),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.state_dir / settings.app_id),  # Faust's own files (its tables live in memory)
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        table_standby_replicas=0,
        topic_replication_factor=settings.topic_replication_factor,  # its changelogs
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_rebalance_timeout=settings.kafka_rebalance_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_s,
        broker_commit_every=1_000_000,  # commits follow the batches (broker_commit_interval), not a count
        broker_commit_interval=max(0.2, settings.batch_max_seconds),
        stream_buffer_maxsize=max(4096, settings.batch_max_events * 2),
        producer_acks=-1,
        producer_max_batch_size=settings.kafka_producer_max_batch_bytes,
        table_cleanup_interval=3600.0,
        logging_config=None,
    )


@dataclass
class Progress:
    """A log line every 10 s: events processed, invalid, newest event time (all agents of the worker)."""

    at: float = field(default_factory=time.monotonic)
    events: int = 0
    invalid: int = 0

    def add(self, n_events: int, n_invalid: int, newest: float) -> None:
        self.events += n_events
        self.invalid += n_invalid
        now = time.monotonic()
        if now - self.at >= 10.0:
            log.info("processed %d events (%d invalid) in %.0fs; newest event time %s", self.events, self.invalid,
                     now - self.at, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(newest)) if newest else "-")
            self.at, self.events, self.invalid = now, 0, 0


class ProcessorAgent:
    """One processor, live: its engine and stores, and the parts that run around each batch."""

    def __init__(self, proc: Processor, settings: Settings, app: faust.App, rows_writer: RowWriterFactory,
                 dead_letter_topic: Any, progress: Progress, faults: Faults = NO_FAULTS,
                 stored: StoredHistory | None = None) -> None:
        self.proc = proc
        self.settings = settings
        self.app = app
        self.topics = proc.topics(settings)
        self.inputs = {settings.topic(i.topic): i for i in proc.inputs}
        self.engine = proc.engine(EngineContext(settings, live=True, stored=stored))
        self.tables = {st.name: faust_compat.state_table(app, st.name, settings.topic_partitions, st.dumps, st.loads,
                                                         settings.topic_config())
                       for st in proc.states}
        self.view = faust_compat.FaustConsumerView(app, self.topics)
        self.guard = OffsetGuard(self._count_between, restart_process,
                                 lambda j: metrics.OFFSET_JUMPS.labels(j.topic).inc(), self._resume_at,
                                 lambda *gap: faust_compat.commit_past_empty(app, *gap))
        self.hold = (WatermarkHold(self.topics, settings.input_idle_s, self.guard.tracker.next)
                     if (proc.hold_watermark and len(self.topics) > 1) or proc.outputs else None)
        self.raw_inputs = {i.raw_table: i for i in proc.inputs if i.raw_table}
        self.faults = faults
        self.liveness = Liveness()  # this agent's progress (batches and writes stored), for the stall watchdog
        self.outputs = {out: settings.topic(out) for out in (*proc.outputs, *proc.publishes)}
        self.checkpoint = Checkpoint(rows_writer(self.liveness), self._write_changelog, self._dead_letter,
                                     self.liveness.beat, self._rejected_letter, faults, self._publish)
        self.dead_letter_topic = dead_letter_topic
        self.progress = progress
        self.lock = asyncio.Lock()  # one batch (or tick) at a time: state, rows, changelog
        for topic in self.topics:  # every labelled series exists from the start: 0 rather than "no data"
            metrics.EVENTS_INVALID.labels(topic)
        for spec in proc.tables:
            metrics.SINK_ERRORS.labels(spec.name)

    def stores(self) -> Stores:
        return {name: table.data for name, table in self.tables.items()}

    async def _count_between(self, topic: str, partition: int, start: int, end: int) -> int:
        return await asyncio.get_running_loop().run_in_executor(
            None, records_between, self.settings, topic, partition, start, end)

    async def _resume_at(self, topic: str, partition: int) -> int:
        return await asyncio.get_running_loop().run_in_executor(
            None, resume_offset, self.settings, topic, partition)

    async def _write_changelog(self, store: str, entries: Sequence[tuple[str, int, Any]]) -> None:
        await faust_compat.write_changelog(self.tables[store], entries)

    async def _publish(self, messages: Sequence[Message]) -> None:
        await faust_compat.send_acked(self.app, [(self.outputs[m.topic], m.key, m.value) for m in messages])

    def _rejected_letter(self, refused: Rejected) -> DeadLetter:
        """A row ClickHouse refused: the raw event behind it when the row is one (else the row itself)."""
        source = self.raw_inputs.get(refused.table)
        if source is None:
            return rejected_row_letter(refused)
        return rejected_row_letter(refused, self.settings.topic(source.topic), source.raw_key)

    async def _dead_letter(self, dl: DeadLetter) -> None:
        log.warning("dead letter %s[%d]@%d: %s", dl.record.topic, dl.record.partition, dl.record.offset, dl.reason)
        source = self.inputs.get(dl.record.topic)
        if source is not None:
            dl = source.dead_letter(dl)  # an input about people keeps only its schema's fields
        await self.dead_letter_topic.send(key=dl.record.key, value=dl.to_json())

    async def on_batch(self, events: Sequence[EventT]) -> None:
        messages = [ev.message for ev in events]
        offsets = [(m.topic, m.partition, m.offset) for m in messages]
        async with self.lock:
            await self.faults.maybe_stall()  # tests only
            if not await self.guard.check(offsets):
                return  # restarting: nothing of this batch is applied
            behind = None
            if self.hold is not None:
                self.hold.saw({(t, p) for t, p, _ in offsets})
                behind = self.hold.behind(self.view)
            records = [Record(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]
            stores = self.stores()
            result = self.engine.process(records, stores, behind)
            await self.checkpoint.commit(result, stores)
        metrics.observe_batch(self.topics[0], offsets, result, self.view.highwater, time.time())
        self.progress.add(len(events), len(result.dead_letters), result.newest_event_time)

    async def on_tick(self) -> None:
        if self.app.rebalancing or self.lock.locked() or not self.view.started:
            return
        async with self.lock:
            behind = self.hold.behind(self.view) if self.hold is not None else None
            assigned = {p for _, p in self.view.assignment()}
            stores = self.stores()
            result = self.engine.tick(stores, behind, assigned)
            if result is not None:
                await self.checkpoint.commit(result, stores)
            for name, store in stores.items():
                metrics.STATE_ENTRIES.labels(name).set(len(store))
            for kind, n in getattr(self.engine, "state_items", {}).items():
                metrics.STATE_ITEMS.labels(self.proc.name, kind).set(n)

    def register(self) -> None:
        """The agent (crashing on an unexpected error: its batch was not committed, a restart replays it;
        Faust's default would restart the agent further on in the stream) and the tick timer."""
        s = self.settings
        topic = self.app.topic(*self.topics, schema=RAW, partitions=s.topic_partitions)

        async def process(stream: faust.StreamT) -> None:
            async for events in faust_compat.take_drained(stream, s.batch_max_events, s.batch_max_seconds,
                                                          s.batch_close_when_drained, s.batch_min_seconds):
                await self.on_batch(events)

        process.__name__ = process.__qualname__ = f"{self.proc.name}_processor"
        self.app.agent(topic, name=f"{self.proc.name}-processor", supervisor_strategy=CrashingSupervisor)(process)
        self.tracking_assignments()
        if self.proc.tick_seconds is not None:
            async def tick() -> None:
                await self.on_tick()

            tick.__name__ = tick.__qualname__ = f"{self.proc.name}_tick"
            self.app.timer(interval=self.proc.tick_seconds(s))(tick)

    def tracking_assignments(self) -> None:
        async def changed(sender: Any, tps: Any, **kwargs: Any) -> None:
            # assigned or revoked: the next delivery of these partitions starts wherever the group says
            self.guard.tracker.forget((tp.topic, tp.partition) for tp in tps)

        self.app.on_partitions_assigned.connect(changed, weak=False)
        self.app.on_partitions_revoked.connect(changed, weak=False)


class BoundedWorker(faust.Worker):
    stop_timeout: float = 8.0
    _watchdog: threading.Timer | None = None

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            def hard_exit() -> None:
                log.error("worker did not stop within %.1fs: exiting now (uncommitted batches are re-read)",
                          self.stop_timeout)
                os._exit(0)

            self._watchdog = threading.Timer(self.stop_timeout, hard_exit)
            self._watchdog.daemon = True
            self._watchdog.start()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner: at WARN and above Faust's spinner sets the root logger to DEBUG (it spins on
        every record), so every debug call of aiokafka and Faust built a record the handler then dropped
        (~4 % of the worker's CPU under load). Without it the root logger keeps the chosen level."""
        self.spinner = None
        super().on_setup_root_logger(logger, level)

    def _on_sigterm(self) -> None:
        self._arm_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_watchdog()
        super()._on_sigint()


@dataclass
class LiveApp:
    app: faust.App
    agents: list[ProcessorAgent]
    view: faust_compat.FaustConsumerView

    def watched(self) -> list[tuple[Liveness, list[tuple[str, int]]]]:
        """Each agent's liveness and assigned partitions (for the stall watchdog: agents are watched apart)."""
        return [(a.liveness, a.view.assignment()) for a in self.agents]


def create_app(settings: Settings, processors: Sequence[Processor], rows_writer: RowWriterFactory,
               faults: Faults = NO_FAULTS, stored: StoredHistory | None = None) -> LiveApp:
    """``rows_writer(liveness)``: a writer per agent (a ClickHouse connection must not run two inserts at once),
    told the agent's liveness (a stored write is progress, a retrying one a blocked sink). ``stored``: the
    history stored before, for the engines that read it (``EngineContext.stored``)."""
    faust_compat.check_version()
    faust_compat.apply_fetch_waits(settings.kafka_fetch_max_wait_ms, settings.kafka_catch_up_fetch_wait_ms)
    faust_compat.install_eager_delivery(settings.kafka_eager_delivery)
    faust_compat.install_verified_gaps(settings.topic(i.topic) for p in processors for i in p.inputs)
    app = faust_app(settings)
    dead_letters = app.topic(settings.dead_letter_topic, schema=RAW, partitions=1)
    progress = Progress()
    agents = [ProcessorAgent(p, settings, app, rows_writer, dead_letters, progress, faults, stored)
              for p in processors]
    for agent in agents:
        agent.register()

    async def release_memory() -> None:
        memory.release_free_memory()

    app.timer(interval=memory.RELEASE_EVERY_S)(release_memory)
    topics = [t for a in agents for t in a.topics]
    return LiveApp(app, agents, faust_compat.FaustConsumerView(app, topics))
