"""Explicit topic creation (the local broker would auto-create 4 partitions otherwise)."""

from __future__ import annotations

from collections.abc import Collection

from confluent_kafka.admin import AdminClient, NewTopic

from core.settings import Settings
from streams import registry


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Every registered processor's inputs, all with the same partition count (inputs of one processor keyed
    alike land on the same partition number and meet in one state entry), the topics published for outside
    consumers and the dead-letter topic (one partition each)."""
    wanted = dict.fromkeys(registry.input_topics(settings), settings.topic_partitions)
    wanted.update(dict.fromkeys(registry.published_topics(settings).values(), 1))  # outside consumers: in order
    wanted[settings.dead_letter_topic] = 1
    return wanted


def new_topics(settings: Settings, existing: Collection[str]) -> list[NewTopic]:
    """The wanted topics not in ``existing``, with the replication the settings ask for."""
    return [NewTopic(name, num_partitions=n, replication_factor=settings.topic_replication_factor,
                     config=settings.topic_config()) for name, n in wanted_topics(settings).items()
            if name not in existing]


def ensure_topics(settings: Settings, timeout: float = 15.0) -> dict[str, int]:
    """Create the missing topics; fail loudly if one exists with another partition count."""
    admin = AdminClient(settings.confluent_config())
    existing = admin.list_topics(timeout=timeout).topics
    wanted = wanted_topics(settings)
    missing = new_topics(settings, existing)
    if missing:
        for name, fut in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                fut.result(timeout)
            except Exception as e:
                if "already exists" not in str(e).lower():
                    raise RuntimeError(f"cannot create topic {name}: {e}") from e
    found = {name: len(admin.list_topics(topic=name, timeout=timeout).topics[name].partitions) for name in wanted}
    for name, n in wanted.items():
        if found[name] != n:
            raise RuntimeError(
                f"topic {name} has {found[name]} partitions, Vigie is configured for {n} "
                "(VIGIE_TOPIC_PARTITIONS): changing it would split state; recreate the topic or adjust the setting"
            )
    return found
