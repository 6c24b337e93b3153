"""``vigie alerts list``: the alerts firing (and pending) now, or every transition of a period, from ClickHouse."""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from sinks.clickhouse import make_client
from sinks.queries import alert_history_query, open_alerts_query


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
