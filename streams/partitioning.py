"""Which partition a key goes to: Kafka's default partitioner, as the batch path and the publishers use it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (Java, aiokafka, librdkafka ``murmur2_random``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
