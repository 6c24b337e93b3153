"""Explicit topic creation (the local broker would auto-create 4 partitions otherwise)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from vigie.settings import Settings


def wanted_topics(settings: Settings) -> dict[str, int]:
    return {
        settings.topic_vehicle_status: settings.topic_partitions,
        settings.topic_interventions: settings.topic_partitions,
        # keyed by station like vehicle-status, with as many partitions: a station's crews and vehicles
        # land on the same partition number and meet in one state entry
        settings.topic_crew_status: settings.topic_partitions,
        settings.topic_dead_letter: 1,
    }


def ensure_topics(settings: Settings, timeout: float = 15.0) -> dict[str, int]:
    """Create the missing topics; fail loudly if one exists with another partition count."""
    admin = AdminClient(settings.confluent_config())
    existing = admin.list_topics(timeout=timeout).topics
    wanted = wanted_topics(settings)
    missing = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()
               if name not in existing]
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
