"""Publishing simulated events to Kafka with confluent-kafka, paced on the simulated clock."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import IO

from confluent_kafka import Producer

from core.settings import Settings
from devtools.simulator import SimEvent
from schemas.codec import encode
from streams.registry import logical_topics


def make_producer(settings: Settings) -> Producer:
    conf = settings.confluent_config()
    conf.update({
        # murmur2: the Java/aiokafka partitioner, so keys land where Faust expects them
        "partitioner": "murmur2_random",
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "acks": "all",
        # Tansu (the local broker) reports a high watermark at the base offset of a partition's last record
        # batch + 1; the worker's watermark across the vehicle and crew topics needs it exact, so locally
        # every record is its own batch (VIGIE_KAFKA_PRODUCER_MAX_BATCH_BYTES; raise it on Apache Kafka)
        "batch.size": settings.kafka_producer_max_batch_bytes,
        "message.send.max.retries": 1_000_000,
        "retry.backoff.ms": 200,
    })
    return Producer(conf)


def paced(events: Iterable[SimEvent], speed: float, sim_origin: float | None = None) -> Iterator[SimEvent]:
    """Yield events when the wall clock reaches their event time / speed (speed 0: no waiting). The
    simulated instant ``sim_origin`` (default: the first event's) is now; earlier events go at once."""
    wall0 = time.monotonic()
    sim0: float | None = sim_origin
    for ev in events:
        if speed > 0:
            t = ev.event.event_time.timestamp()
            sim0 = t if sim0 is None else sim0
            delay = wall0 + (t - sim0) / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield ev


def publish(settings: Settings, events: Iterable[SimEvent], speed: float = 0.0,
            copy_to: IO[str] | None = None, sim_origin: float | None = None) -> int:
    producer = make_producer(settings)
    topics = logical_topics(settings)
    n = 0
    for ev in paced(events, speed, sim_origin):
        value = encode(ev.event)
        while True:
            try:
                producer.produce(topics[ev.topic], key=ev.key.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if copy_to is not None:
            copy_to.write(f'{{"topic":"{ev.topic}","key":"{ev.key}","event":{value.decode()}}}\n')
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} events not acknowledged by the broker")
    return n
