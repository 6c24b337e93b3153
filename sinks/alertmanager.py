"""Notifications through Prometheus Alertmanager: what Vigie's alerts are now (ClickHouse ``alerts_current``) is
pushed to Alertmanager's API (``/api/v2``), which routes, groups, repeats and sends them (``deploy/alertmanager``).

Each sync is whole, as Alertmanager expects of its clients: every firing alert is sent again with an end a few
intervals ahead (if the notifier stops, Alertmanager resolves them on its own), every alert resolved lately is sent
with its end, and the silences operators set in Vigie (``vigie alerts silence``) are mirrored as Alertmanager
silences (who, until when, why) — a silenced alert is stored and shown but not notified. Alert times are the
worker's clock (event time); Alertmanager's are the wall clock: a time is moved from one to the other (nothing to
move for a live deployment; ``make run``'s simulation runs ahead, x60)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("vigie.notify")

#: a silence Vigie mirrors carries this at the start of its comment, with the silence's end in Vigie's clock
SILENCE_MARK = "[vigie until="


@dataclass(frozen=True, slots=True)
class AlertNow:
    """One alert as ``alerts_current`` holds it (``sinks.queries.notify_alerts_query``'s columns)."""

    rule: str
    scope_key: str
    severity: str
    area: str
    station: str
    subject: str
    state: str  # firing | resolved
    since: float  # when it reached that state (worker's clock, epoch s)
    episode_start: float
    value: float
    message: str
    acknowledged_by: str
    silenced_until: float  # 0: never silenced or unsilenced
    silenced_by: str
    silence_why: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AlertNow:
        r = list(row)
        for i in (7, 8, 9, 12):  # times as epoch seconds (toUInt32 in the query), the value
            r[i] = float(r[i])
        return cls(*r)

    @property
    def key(self) -> tuple[str, str]:
        return self.rule, self.scope_key


@dataclass(frozen=True, slots=True)
class Clocks:
    """The wall clock and the worker's clock read at the same moment, and how fast the worker's runs (``make run``:
    x60 — a simulated hour is a wall minute)."""

    wall: float
    worker: float
    speed: float = 1.0

    def to_wall(self, t: float) -> float:
        return self.wall + (t - self.worker) / self.speed


def _iso(t: float) -> str:
    """RFC 3339 to the millisecond (a time moved between clocks carries float noise below it)."""
    return datetime.fromtimestamp(round(t, 3), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def labels(alert: AlertNow) -> dict[str, str]:
    """What Alertmanager groups, routes and silences on (an empty value is no label there)."""
    found = {"alertname": alert.rule, "scope": alert.scope_key, "severity": alert.severity, "area": alert.area,
             "station": alert.station, "subject": alert.subject, "source": "vigie"}
    return {k: v for k, v in found.items() if v}


def to_alertmanager(alert: AlertNow, clocks: Clocks, hold_s: float, link: str = "") -> dict[str, Any]:
    """One alert in Alertmanager's form: firing until ``hold_s`` from now unless sent again, or resolved now."""
    firing = alert.state == "firing"
    doc: dict[str, Any] = {
        "labels": labels(alert),
        # times in the worker's clock, as the wall screen shows them: the episode's start (pending), and when it
        # fired or resolved
        "annotations": {k: v for k, v in {
            "summary": alert.message, "value": f"{alert.value:g}", "episode_start": _iso(alert.episode_start),
            ("fired_at" if firing else "resolved_at"): _iso(alert.since),
            "acknowledged_by": alert.acknowledged_by}.items() if v},
        "startsAt": _iso(min(clocks.to_wall(alert.since if firing else alert.episode_start), clocks.wall)),
        "endsAt": _iso(clocks.wall + hold_s if firing else clocks.wall),
    }
    if link:
        doc["generatorURL"] = link
    return doc


@dataclass
class SilencePlan:
    """Silences to create (Alertmanager's form) and silence ids to expire."""

    create: list[dict[str, Any]] = field(default_factory=list)
    expire: list[str] = field(default_factory=list)


def _mirrored(silence: Mapping[str, Any]) -> tuple[tuple[str, str], int] | None:
    """(rule, scope) and Vigie's end of a silence this notifier created and still in force, else None."""
    comment = str(silence.get("comment", ""))
    if not comment.startswith(SILENCE_MARK) or silence.get("status", {}).get("state") == "expired":
        return None
    matchers = {m.get("name"): m.get("value") for m in silence.get("matchers", [])}
    until = comment[len(SILENCE_MARK):].split("]", 1)[0]
    if "alertname" not in matchers or "scope" not in matchers or not until.isdigit():
        return None
    return (str(matchers["alertname"]), str(matchers["scope"])), int(until)


def plan_silences(alerts: Sequence[AlertNow], existing: Sequence[Mapping[str, Any]], clocks: Clocks) -> SilencePlan:
    """The Alertmanager silences that make its silences Vigie's: one per alert silenced now (its end after the
    worker's clock), none for an alert unsilenced (or whose silence moved: the old one goes, a new one comes)."""
    wanted = {a.key: a for a in alerts if a.silenced_until > clocks.worker}
    held: dict[tuple[str, str], int] = {}
    plan = SilencePlan()
    for s in existing:
        found = _mirrored(s)
        if found is None:
            continue
        key, until = found
        want = wanted.get(key)
        if want is None or int(want.silenced_until) != until or key in held:
            plan.expire.append(str(s["id"]))
        else:
            held[key] = until
    for key, a in sorted(wanted.items()):
        if key in held:
            continue
        plan.create.append({
            "matchers": [{"name": "alertname", "value": a.rule, "isRegex": False, "isEqual": True},
                         {"name": "scope", "value": a.scope_key, "isRegex": False, "isEqual": True}],
            "startsAt": _iso(clocks.wall), "endsAt": _iso(clocks.to_wall(a.silenced_until)),
            "createdBy": a.silenced_by or "vigie",
            "comment": f"{SILENCE_MARK}{int(a.silenced_until)}] {a.silence_why or 'silenced in Vigie'}"})
    return plan


class AlertmanagerError(RuntimeError):
    pass


class Alertmanager:
    """The few calls of Alertmanager's API v2 the notifier makes (standard library HTTP: no dependency)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/api/v2{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise AlertmanagerError(f"{method} {path}: HTTP {e.code} {e.read()[:300]!r}") from e
        except (urllib.error.URLError, OSError) as e:
            raise AlertmanagerError(f"{method} {path}: {e}") from e
        return json.loads(raw) if raw.strip() else None

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        if alerts:
            self._call("POST", "/alerts", list(alerts))

    def alerts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/alerts") or []  # type: ignore[no-any-return]

    def silences(self) -> list[dict[str, Any]]:
        return self._call("GET", "/silences") or []  # type: ignore[no-any-return]

    def post_silence(self, silence: Mapping[str, Any]) -> str:
        return str(self._call("POST", "/silences", silence)["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        self._call("DELETE", f"/silence/{silence_id}")


@dataclass
class SyncReport:
    firing: int = 0
    resolved: int = 0
    silences_created: int = 0
    silences_expired: int = 0

    def __str__(self) -> str:
        return (f"{self.firing} firing, {self.resolved} resolved sent; silences: {self.silences_created} set, "
                f"{self.silences_expired} lifted")


def sync(am: Alertmanager, alerts: Sequence[AlertNow], clocks: Clocks, hold_s: float, link: str = "") -> SyncReport:
    """One whole sync: silences first (an alert silenced since the last sync is never notified), then alerts."""
    plan = plan_silences(alerts, am.silences(), clocks)
    for s in plan.create:
        am.post_silence(s)
    for sid in plan.expire:
        am.expire_silence(sid)
    sent = [a for a in alerts if a.state in ("firing", "resolved")]
    am.post_alerts([to_alertmanager(a, clocks, hold_s, link) for a in sent])
    firing = sum(1 for a in sent if a.state == "firing")
    return SyncReport(firing, len(sent) - firing, len(plan.create), len(plan.expire))
