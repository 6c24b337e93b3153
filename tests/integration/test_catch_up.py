"""A consumer far behind on the local broker catches up: the worker's fetches wait longer while a partition is
behind (streams/faust_compat.apply_fetch_waits). On Tansu a fetch is filled only until its wait ends, and finding a
position in a big partition costs more as it grows: how much depends on the machine (a partition of 100,000
one-record batches read with the local stack's 50 ms wait gave one record per fetch on 2026-12-01 and ~1,800 per
fetch on 2026-12-03, same broker), so what is tested is the rule, not the broker's speed: long waits while behind,
the short wait once caught up, every record once and in order, in few fetches."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.stack import LOCAL_BROKER, free_port, start_broker
from streams import faust_compat

pytestmark = pytest.mark.integration
RECORDS = 100_000
SHORT_MS = int(LOCAL_BROKER["kafka_fetch_max_wait_ms"])  # type: ignore[call-overload]
LONG_MS = 500


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker whose one partition holds RECORDS one-record batches (as the local stack's producers write)."""
    port = free_port()
    broker = start_broker(port, tmp_path_factory.mktemp("catch-up"))
    boot = f"127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": boot})
        admin.create_topics([NewTopic("backlog", 1, 1)])["backlog"].result(30)
        producer = Producer({"bootstrap.servers": boot, "batch.size": 1, "linger.ms": 5})
        for i in range(RECORDS):
            while True:
                try:
                    producer.produce("backlog", key=b"k", value=b"%08d" % i)
                    break
                except BufferError:
                    producer.poll(0.05)
        assert producer.flush(120) == 0
        yield boot
    finally:
        broker.stop()


async def consume(boot: str) -> tuple[list[int], list[int]]:
    """Records per fetch and the wait each fetch request asked for, until every record is read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=boot, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=SHORT_MS)
    await consumer.start()
    tp = TopicPartition("backlog", 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    sizes: list[int] = []
    waits: list[int] = []
    expected = 0
    try:
        while sum(sizes) < RECORDS and len(sizes) < 5000:
            batch = (await consumer.getmany(tp, timeout_ms=2000, max_records=RECORDS)).get(tp, [])
            for record in batch:  # in order, none lost or repeated
                assert record.value == b"%08d" % expected
                expected += 1
            sizes.append(len(batch))
            waits.append(consumer._fetcher._fetch_max_wait_ms)  # of the request built after this fetch
        await consumer.getmany(tp, timeout_ms=300)  # caught up: the next requests
        waits.append(consumer._fetcher._fetch_max_wait_ms)
    finally:
        await consumer.stop()
    return sizes, waits


@pytest.fixture
def restore_fetcher() -> Iterator[None]:
    original = getattr(Fetcher._get_actions_per_node, "__wrapped__", Fetcher._get_actions_per_node)
    yield
    Fetcher._get_actions_per_node = original  # type: ignore[method-assign]


def test_a_lagging_consumer_catches_up_then_goes_back_to_the_short_wait(backlog: str,
                                                                          restore_fetcher: None) -> None:
    faust_compat.apply_fetch_waits(SHORT_MS, LONG_MS)
    sizes, waits = asyncio.run(consume(backlog))
    assert sum(sizes) == RECORDS
    assert len(sizes) < 200 and max(sizes) > 1000, (len(sizes), sizes[:20])
    assert waits[0] == LONG_MS and waits[-1] == SHORT_MS
