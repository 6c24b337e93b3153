"""The Faust app: two thin agents that hand record batches to the engines, store the rows in
ClickHouse, then write the changed state to the changelog; offsets are committed after that.

Order inside one batch (what makes a crash at any point safe):
1. decode, validate, apply to in-memory state (engines; invalid records -> dead letters);
2. send dead letters; store rows in ClickHouse (retried until stored: the stream holds);
3. send one changelog record per touched state key, to the partition the events came from, and wait
   for the broker to have them all;
4. the batch is acknowledged; Faust commits the offsets.
A crash before 3 replays the batch on the old state (same rows, replaced in ClickHouse);
a crash after 3 finds the events already applied (deduplicated by event time and id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP, EventT
from mode import CrashingSupervisor

from schemas.reference import Reference
from sinks.clickhouse import ClickHouseSink
from sinks.tables import ALL_TABLES
from streams import eager_delivery, metrics
from streams.codecs import INTERVENTION_CODEC, KEY_CODEC, SECTORS_CODEC, STATION_CODEC, register_codecs
from streams.engine import BatchResult, InterventionEngine, Record, StationEngine
from streams.offsets import OffsetTracker, records_between
from streams.watchdog import Liveness, restart_process
from vigie.settings import Settings

log = logging.getLogger("vigie.worker")


def faust_credentials(settings: Settings) -> Any:
    proto = settings.kafka_security_protocol
    ssl_context = None
    if proto.endswith("SSL"):
        ssl_context = faust.ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
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


@dataclass
class Pipeline:
    app: faust.App
    sinks: tuple[ClickHouseSink, ClickHouseSink]
    station_engine: StationEngine
    intervention_engine: InterventionEngine
    liveness: Liveness
    input_topics: tuple[str, ...]

    def consumer_state(self) -> str:
        """Faust's flow state of the input partitions (for the watchdog's diagnosis)."""
        c = self.app._consumer
        if c is None:
            return "no consumer"

        def mine(tps: Any) -> list[str]:
            return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps if tp.topic in self.input_topics)

        def offsets(d: Any) -> dict[str, Any]:
            return {f"{tp.topic}[{tp.partition}]": o for tp, o in d.items() if tp.topic in self.input_topics}

        return (f"flow_active={c.flow_active} app_flow_active={self.app.flow_control.is_active()} "
                f"assigned={mine(c.assignment())} active={mine(c._active_partitions or ())} "
                f"paused={mine(c._paused_partitions)} buffered={mine(c._buffered_partitions)} "
                f"read={offsets(c._read_offset)} committed={offsets(c._committed_offset)}")

    def assigned_inputs(self) -> list[tuple[str, int]]:
        """Input partitions assigned to this worker (read from the watchdog thread; empty until started)."""
        consumer = self.app._consumer
        if consumer is None:
            return []
        try:
            return [(tp.topic, tp.partition) for tp in consumer.assignment() if tp.topic in self.input_topics]
        except Exception:
            return []


def _records(events: Sequence[EventT]) -> list[Record]:
    out = []
    for ev in events:
        m = ev.message
        out.append(Record(m.topic, m.partition, m.offset, m.key, m.value))
    return out


async def write_changelog(table: Any, entries: Sequence[tuple[str, int, Any]]) -> None:
    """Send one changelog record per (key, partition, value) (None: a tombstone) and wait until the broker
    has them all. Faust's own ``send_changelog`` only buffers the record, and its commit does not wait for
    that buffer to drain (``ProducerBuffer.flush`` gives up after 0.1 s without a send), so offsets could
    be committed for state a crash then loses. Here the batch is acknowledged only once its state is
    durable.

    The records are serialized here with the table's own codecs (what Faust decodes on recovery) and handed
    to the app's producer directly: Faust's ``Topic.send`` (channels, per-message futures, buffer checks) cost
    about as much per record as the state change itself."""
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


def _apply_fetch_max_wait(fetch_max_wait_ms: int) -> None:
    """Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting: wrap the factory
    and set ours on the consumer before it starts (its fetcher takes the value at start)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = getattr(AIOKafkaConsumerThread._create_worker_consumer, "__wrapped__",
                       AIOKafkaConsumerThread._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    create.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def _state_table(app: faust.App, name: str, partitions: int, value_codec: str) -> Any:
    """A changelog-backed table of state objects (str keys). Faust takes the serializers used both to
    write the changelog and to decode it on recovery from these attributes (not from the schema), and
    builds the changelog topic when the table is registered: rebuild it once they are set."""
    table = app.Table(name, partitions=partitions)
    table.key_serializer = KEY_CODEC
    table.value_serializer = value_codec
    table.changelog_topic = table._new_changelog_topic()
    return table


def create_pipeline(settings: Settings, reference: Reference | None = None) -> Pipeline:
    register_codecs()
    _apply_fetch_max_wait(settings.kafka_fetch_max_wait_ms)
    eager_delivery.install(settings.kafka_eager_delivery)
    reference = reference or Reference.load(settings.reference_dir)
    parts = settings.topic_partitions
    (settings.state_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_url(),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.state_dir / settings.app_id),  # Faust's own files (its tables live in memory)
        web_enabled=False,
        autodiscover=False,
        topic_partitions=parts,
        topic_allow_declare=True,
        table_standby_replicas=0,
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
    raw = faust.Schema(key_serializer="raw", value_serializer="raw")
    # one agent for both station-keyed topics: a station's vehicles and crews meet in one state entry
    station_topics = app.topic(settings.topic_vehicle_status, settings.topic_crew_status, schema=raw,
                               partitions=parts)
    intervention_topic = app.topic(settings.topic_interventions, schema=raw, partitions=parts)
    dead_letter_topic = app.topic(settings.topic_dead_letter, schema=raw, partitions=1)
    stations = _state_table(app, "stations", parts, STATION_CODEC)
    interventions = _state_table(app, "interventions", parts, INTERVENTION_CODEC)
    sectors = _state_table(app, "sector-windows", parts, SECTORS_CODEC)
    # one connection per agent: a clickhouse-driver client must not run two queries at once
    # every labelled series exists from the start, so dashboards show 0 rather than "no data"
    for topic in (settings.topic_vehicle_status, settings.topic_crew_status, settings.topic_interventions):
        metrics.EVENTS_INVALID.labels(topic)
    for spec in ALL_TABLES:
        metrics.SINK_ERRORS.labels(spec.name)
    liveness = Liveness()  # a batch stored or a write attempted: progress, for the stall watchdog
    vehicle_sink = ClickHouseSink(settings, metrics.PrometheusSinkMetrics(liveness))
    intervention_sink = ClickHouseSink(settings, metrics.PrometheusSinkMetrics(liveness))
    station_engine = StationEngine(reference, settings.window_seconds, settings.allowed_lateness_seconds,
                                   crew_topic=settings.topic_crew_status)
    intervention_engine = InterventionEngine(settings.window_seconds, settings.allowed_lateness_seconds,
                                             settings.intervention_retention_hours * 3600, skip_applied_offsets=True)
    last_eviction = [time.monotonic()]

    progress = {"at": time.monotonic(), "events": 0, "invalid": 0}
    tracker = OffsetTracker()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        tracker.forget((tp.topic, tp.partition) for tp in assigned)

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        tracker.forget((tp.topic, tp.partition) for tp in revoked)

    async def in_order(events: Sequence[EventT]) -> None:
        """Before a batch is applied: no partition may skip records (see streams/offsets.py)."""
        for j in tracker.check((ev.message.topic, ev.message.partition, ev.message.offset) for ev in events):
            metrics.OFFSET_JUMPS.labels(j.topic).inc()
            if not j.forward:
                log.warning("%s[%d] re-read from offset %d (expected %d): applied records are deduplicated",
                            j.topic, j.partition, j.got, j.expected)
                continue
            skipped = await asyncio.get_running_loop().run_in_executor(
                None, records_between, settings, j.topic, j.partition, j.expected, j.got)
            if skipped:
                log.error("%d records skipped on %s[%d] (offsets %d to %d): restarting the worker before applying "
                          "anything; it re-reads from the committed offsets", skipped, j.topic, j.partition,
                          j.expected, j.got - 1)
                restart_process()
            log.info("%s[%d]: offsets %d to %d hold no record (transaction markers or compaction)",
                     j.topic, j.partition, j.expected, j.got - 1)

    station_inputs = (settings.topic_vehicle_status, settings.topic_crew_status)

    caught_up_since: dict[tuple[str, int], float] = {}
    records_at: dict[int, float] = {}  # partition -> when a batch last brought station records for it
    station_lock = asyncio.Lock()  # one station batch (or re-seal) at a time: state, rows, changelog

    def inputs_behind(batch_partitions: set[int] | None = None) -> set[tuple[str, int]]:
        """Station-topic partitions of this worker that may still bring older records (see
        ``StationEngine.watermark``): the broker's high watermark (from the last fetch) is past the next
        offset to apply (unknown: nothing fetched yet), or the partition was read to its end less than
        ``VIGIE_INPUT_IDLE_S`` ago — records produced at the same moment on the other topic may still be on
        their way (a full-speed replay sends hours of event time in a second). Traffic coming back to a
        partition quiet for longer than that re-arms the wait. After it an input is idle and holds nothing
        back; a partition that never gave an event holds nothing either."""
        consumer = app.consumer
        now = time.monotonic()
        for p in batch_partitions or ():
            if now - records_at.get(p, float("-inf")) > settings.input_idle_s:
                for topic in station_inputs:
                    if (topic, p) in caught_up_since:
                        caught_up_since[(topic, p)] = now
            records_at[p] = now
        out = set()
        for tp in consumer.assignment():
            if tp.topic not in station_inputs:
                continue
            key = (tp.topic, tp.partition)
            hw = consumer.highwater(tp)
            nxt = tracker.next.get(key)
            if nxt is None:
                nxt = consumer._committed_offset.get(tp) or 0  # Kafka semantics: the next offset to read
            if hw is None or nxt < hw:
                out.add(key)
                caught_up_since.pop(key, None)
            elif key in station_engine.newest_tp and now - caught_up_since.setdefault(key, now) < settings.input_idle_s:
                out.add(key)
        return out

    def log_progress(n_events: int, n_invalid: int, newest: float) -> None:
        progress["events"] += n_events
        progress["invalid"] += n_invalid
        now = time.monotonic()
        if now - progress["at"] >= 10.0:
            log.info("processed %d events (%d invalid) in %.0fs; newest event time %s",
                     progress["events"], progress["invalid"], now - progress["at"],
                     time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(newest)) if newest else "-")
            progress.update(at=now, events=0, invalid=0)

    async def finish(sink: ClickHouseSink, events: Sequence[EventT], result: BatchResult, agent_topic: str) -> None:
        """Store the batch; then metrics. Outcomes and late changes are the agent's (labelled with its main
        topic: the station agent counts vehicle and crew events together); freshness is per topic."""
        for dl in result.dead_letters:
            log.warning("dead letter %s[%d]@%d: %s", dl.record.topic, dl.record.partition, dl.record.offset,
                        dl.reason)
            await dead_letter_topic.send(key=dl.record.key, value=dl.to_json())
        await sink.write(result.rows)
        liveness.beat()
        last: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset of the batch
        per_topic: Counter[str] = Counter()
        for ev in events:
            m = ev.message
            last[(m.topic, m.partition)] = m.offset
            per_topic[m.topic] += 1
        for topic, n in per_topic.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(n)
            metrics.BATCH_SIZE.labels(topic).observe(n)
        for topic, n in Counter(dl.record.topic for dl in result.dead_letters).items():
            metrics.EVENTS_INVALID.labels(topic).inc(n)
        for outcome, n in result.outcomes.items():
            metrics.EVENT_OUTCOMES.labels(agent_topic, outcome).inc(n)
        if result.late:
            metrics.LATE_CHANGES.labels(agent_topic).inc(result.late)
        now = time.time()
        for topic, newest in result.newest_by_topic.items():
            metrics.FRESHNESS.labels(topic).set(now - newest)
        log_progress(len(events), len(result.dead_letters), result.newest_event_time)
        for (topic, p), off in last.items():
            hw = app.consumer.highwater(TP(topic, p)) if app.consumer else None
            if hw is not None:
                metrics.CONSUMER_LAG.labels(topic, str(p)).set(max(0, hw - off - 1))

    async def store_stations(events: Sequence[EventT], result: BatchResult) -> None:
        """Rows to ClickHouse, then the touched stations to their changelog (under ``station_lock``)."""
        await finish(vehicle_sink, events, result, settings.topic_vehicle_status)
        await write_changelog(stations, [(key, p, stations.data[key]) for key, p in result.touched.items()])

    # An unexpected error must stop the worker (its batch was not committed: a restart replays it);
    # Faust's default would restart the agent further on in the stream, past the failed batch.
    @app.agent(station_topics, name="vehicle-status-processor", supervisor_strategy=CrashingSupervisor)
    async def process_vehicle_status(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max_events, within=settings.batch_max_seconds):
            async with station_lock:
                await in_order(events)
                result = station_engine.process(_records(events), stations.data,
                                                inputs_behind({ev.message.partition for ev in events}))
                await store_stations(events, result)

    @app.timer(interval=max(0.2, settings.input_idle_s / 2))
    async def release_watermark_holds() -> None:
        """Windows held back by an input that just caught up close once it is idle, even if no record comes."""
        if app.rebalancing or station_lock.locked() or app._consumer is None:
            return
        async with station_lock:
            behind = inputs_behind()
            assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic in station_inputs}
            due = station_engine.partitions_to_reseal(behind, assigned)
            if not due:
                return
            result = station_engine.process([], stations.data, behind, seal_partitions=due)
            if result.touched:
                await store_stations([], result)

    @app.agent(intervention_topic, name="intervention-processor", supervisor_strategy=CrashingSupervisor)
    async def process_interventions(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max_events, within=settings.batch_max_seconds):
            await in_order(events)
            result, sector_keys = intervention_engine.process(_records(events), interventions.data, sectors.data)
            await finish(intervention_sink, events, result, settings.topic_interventions)
            await write_changelog(interventions,
                                  [(key, p, interventions.data[key]) for key, p in result.touched.items()])
            await write_changelog(sectors, [(key, p, sectors.data[key]) for key, p in sector_keys.items()])
            if time.monotonic() - last_eviction[0] >= settings.intervention_eviction_interval_s:
                last_eviction[0] = time.monotonic()
                evicted = intervention_engine.evict_closed(interventions.data)
                await write_changelog(interventions, [(key, p, None) for key, p in evicted.items()])  # tombstones

    return Pipeline(app, (vehicle_sink, intervention_sink), station_engine, intervention_engine, liveness,
                    (settings.topic_vehicle_status, settings.topic_crew_status, settings.topic_interventions))
