"""How long personal data and raw payloads are kept (``vigie db purge``, run daily: the Kubernetes CronJob).

- ``VIGIE_RETENTION_PERSONAL_DAYS``: per-person rows — each crew status event, and a person's current state once
  they have had no event for that long — are deleted. The counts per station and qualification stay.
- ``VIGIE_RETENTION_PAYLOAD_DAYS``: the original record kept with each raw event (``payload``) is blanked, and
  an intervention's exact position with it, in its events and its row (its sector stays). Replays and the batch
  path read payloads: a period past this retention can no longer be replayed.

0 keeps for ever (the default: the operator decides, README "Data protection"). Both are ClickHouse mutations
(``ALTER TABLE ... DELETE / UPDATE``), which ClickHouse 18.16 and today's servers run alike; they apply in the
background, part by part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DAY_S = 86400


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
