"""``vigie alerts list``: the alerts firing (and pending) now, or every transition of a period, from ClickHouse;
``vigie alerts ack | silence | unsilence``: an operator's action on one alert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from core.settings import Settings
from schemas.alert_actions import AlertAction
from sinks.clickhouse import make_client
from sinks.queries import alert_history_query, open_alerts_query
from streams.processor import TimeBound


def _line(row: tuple[Any, ...], when_label: str) -> str:
    state, severity, at, value, rule, scope_key, message = row
    return f"{at:%Y-%m-%d %H:%M:%S}  {state:<9} {severity:<8} {rule} [{scope_key}] {when_label}{message} " \
           f"(value {value:g})"


def render_open(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "no alert firing or pending"
    firing = sum(1 for r in rows if r[0] == "firing")
    return "\n".join([f"{firing} firing, {len(rows) - firing} pending (since, state, severity, rule [scope])",
                      *(_line(r, "") for r in rows)])


def render_history(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "no alert transition in this period"
    return "\n".join([f"{len(rows)} transitions (time, transition, severity, rule [scope])",
                      *(_line(r, "") for r in rows)])


def list_alerts(settings: Settings, history: bool = False, since: float | None = None,
                until: float | None = None) -> str:
    client = make_client(settings, settings.clickhouse_database)
    try:
        db = settings.clickhouse_database
        if history:
            return render_history(client.execute(alert_history_query(db, since, until)))
        return render_open(client.execute(open_alerts_query(db)))
    finally:
        client.disconnect()


def send_action(settings: Settings, action: str, rule: str, scope_key: str, by: str, why: str = "",
                until: float | None = None, at: float | None = None) -> AlertAction:
    """An operator's action on one alert, sent to the ``alert-actions`` topic (the worker checks it against the
    rules in force and stores it; a refused one goes to the dead-letter topic with its reason). ``at``: its
    event time (default: the worker's clock — the wall clock, or ``make run``'s sped-up one)."""
    from confluent_kafka import Producer

    when = at if at is not None else TimeBound(None, settings.clock_origin, settings.clock_speed).now()
    doc = AlertAction.model_validate({
        "schema_version": 1, "event_id": f"action-{uuid.uuid4().hex}", "event_time": datetime.fromtimestamp(when, UTC),
        "action": action, "rule": rule, "scope_key": scope_key, "by": by, "why": why,
        "until": datetime.fromtimestamp(until, UTC) if until is not None else None}, strict=False)
    producer = Producer({**settings.confluent_config(), "partitioner": "murmur2_random", "acks": "all"})
    failed: list[str] = []
    producer.produce(settings.topic("alert-actions"), key=b"all", value=doc.model_dump_json().encode(),
                     on_delivery=lambda err, _msg: failed.append(str(err)) if err else None)
    if producer.flush(15) or failed:
        raise RuntimeError(f"the action was not delivered to {settings.topic('alert-actions')}: {failed or 'timeout'}")
    return doc
