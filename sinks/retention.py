"""How long personal data and raw payloads are kept (``vigie db purge``, run daily: the Kubernetes CronJob).

- ``VIGIE_RETENTION_PERSONAL_DAYS``: per-person rows — each crew status event, and a person's current state once
  they have had no event for that long — are deleted. The counts per station and qualification stay.
- ``VIGIE_RETENTION_PAYLOAD_DAYS``: the original record kept with each raw event (``payload``) is blanked, and
  an intervention's exact position with it, in its events and its row (its sector stays). Replays and the batch
  path read payloads: a period past this retention can no longer be replayed.

0 keeps for ever (the default: the operator decides, README "Data protection"). ``vigie db purge`` applies them as
ClickHouse mutations (``ALTER TABLE ... DELETE / UPDATE``), which ClickHouse 18.16 and today's servers run alike;
they apply in the background, part by part. On servers with TTL (19.6 and later) ``vigie db migrate`` also sets the
same retentions as table and column TTLs (:func:`ttl_statements`), so the server applies them as it merges, without
a purge job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sinks.access import server_version

DAY_S = 86400
TTL_SINCE = (19, 6)  # MergeTree table and column TTL


@dataclass(frozen=True)
class Purge:
    table: str
    action: str  # "DELETE" or "UPDATE <assignments>"
    where: str
    what: str

    def count_sql(self, db: str) -> str:
        return f"SELECT count() FROM {db}.{self.table} WHERE {self.where}"

    def sql(self, db: str) -> str:
        return f"ALTER TABLE {db}.{self.table} {self.action} WHERE {self.where}"


def purges(personal_days: float, payload_days: float, now: float) -> list[Purge]:
    """What a purge at ``now`` (epoch seconds) does, table by table."""
    out = []
    if personal_days > 0:
        cut = f"event_time < toDateTime({int(now - personal_days * DAY_S)})"
        out += [Purge("crew_status_events", "DELETE", cut, "crew status events"),
                Purge("staff_state", "DELETE", cut, "people without an event since")]
    if payload_days > 0:
        cut = f"event_time < toDateTime({int(now - payload_days * DAY_S)}) AND payload != ''"
        out += [Purge("vehicle_status_events", "UPDATE payload = ''", cut, "vehicle event payloads"),
                Purge("intervention_events", "UPDATE payload = '', lat = 0, lon = 0", cut,
                      "intervention event payloads and positions")]
        opened = f"opened_at < toDateTime({int(now - payload_days * DAY_S)}) AND (lat != 0 OR lon != 0)"
        out.append(Purge("interventions", "UPDATE lat = 0, lon = 0", opened, "intervention positions"))
        if personal_days <= 0:  # crew payloads go with the payloads when the crew rows themselves are kept
            out.append(Purge("crew_status_events", "UPDATE payload = ''", cut, "crew event payloads"))
    return out


def purge(execute: Callable[..., Any], db: str, personal_days: float, payload_days: float,
          dry_run: bool = False, now: float | None = None) -> list[tuple[Purge, int]]:
    """Runs (or with ``dry_run`` only counts) each purge; returns the rows each one concerns."""
    done = []
    for p in purges(personal_days, payload_days, time.time() if now is None else now):
        (n,), = execute(p.count_sql(db))
        if n and not dry_run:
            execute(p.sql(db))
        done.append((p, int(n)))
    return done


def ttl_statements(db: str, personal_days: float, payload_days: float) -> list[str]:
    """The retentions as TTLs: what :func:`purges` does, done by the server at merges. A retention set back to 0
    leaves an earlier TTL in place (``ALTER TABLE ... REMOVE TTL`` removes it)."""
    out = []
    if personal_days > 0:
        keep = f"INTERVAL {int(personal_days * DAY_S)} SECOND"
        out += [f"ALTER TABLE {db}.crew_status_events MODIFY TTL event_time + {keep}",
                f"ALTER TABLE {db}.staff_state MODIFY TTL event_time + {keep}"]  # a person's row: their last event
    if payload_days > 0:
        keep = f"INTERVAL {int(payload_days * DAY_S)} SECOND"
        columns = [("vehicle_status_events", "payload String", "event_time"),
                   ("intervention_events", "payload String", "event_time"),
                   ("intervention_events", "lat Float64", "event_time"),
                   ("intervention_events", "lon Float64", "event_time"),
                   ("interventions", "lat Float64", "opened_at"), ("interventions", "lon Float64", "opened_at")]
        if personal_days <= 0:
            columns.append(("crew_status_events", "payload String", "event_time"))
        out += [f"ALTER TABLE {db}.{table} MODIFY COLUMN {column} TTL {since} + {keep}"
                for table, column, since in columns]
    return out


def ensure_ttls(execute: Callable[..., Any], db: str, personal_days: float, payload_days: float) -> str:
    """Set the retentions as TTLs where the server has them; returns what was done, for the operator."""
    if not (personal_days or payload_days):
        return "retention: none set (VIGIE_RETENTION_PERSONAL_DAYS / _PAYLOAD_DAYS are 0: kept for ever)"
    major, minor = server_version(execute)
    if (major, minor) < TTL_SINCE:
        return f"retention: ClickHouse {major}.{minor} has no TTL; run `vigie db purge` daily (the CronJob does)"
    statements = ttl_statements(db, personal_days, payload_days)
    for stmt in statements:
        execute(stmt)
    return f"retention: {len(statements)} TTLs set (personal {personal_days:g} days, payloads {payload_days:g} days)"
