"""Notifications end to end: alerts and operators' actions in ClickHouse -> `vigie alerts notify`'s sync ->
a real Alertmanager (Debian's, with Vigie's routing) -> the operations room's webhook (a local HTTP server).
A firing alert is notified, then its resolution; a silenced one is held by Alertmanager (it says so) and
notified only once the silence is lifted; an ``info`` one is shown, never sent."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from core.settings import Settings
from devtools.stack import alertmanager_binary, free_port, start_alertmanager
from sinks.alertmanager import Alertmanager
from tests.integration.conftest import Stack, ch_client
from vigie.notify import ROUTING_FILE, WEBHOOK_URL_FILE, Notifier, routing, routing_yaml
from vigie.webhook import WebhookReceiver

pytestmark = pytest.mark.skipif(alertmanager_binary() is None, reason="needs Alertmanager (make install)")


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(int(t), UTC)


def _store(s: Settings, alerts: list[tuple[Any, ...]] = (), actions: list[tuple[Any, ...]] = ()) -> None:  # type: ignore[assignment]
    client = ch_client(s)
    if alerts:  # (rule, severity, scope_key, area, transition, at, message)
        client.execute("INSERT INTO alerts (rule, severity, measure, scope, scope_key, area, station_id, subject, "
                       "transition, at, value, fire_at, message) VALUES",
                       [(r, sev, "available", "area", k, a, "", "VSAV", tr, _at(at), 0.0, 0.0, m)
                        for r, sev, k, a, tr, at, m in alerts])
    if actions:  # (event_id, action, rule, scope_key, at, until, by, why)
        client.execute("INSERT INTO alert_actions (event_id, at, action, rule, scope_key, until, by, why) VALUES",
                       [(e, _at(at), act, r, k, _at(u), by, why) for e, act, r, k, at, u, by, why in actions])
    client.disconnect()


def _am_alerts(url: str) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in Alertmanager(url).alerts()}


def _notified(received: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(rule, status) of every alert in every notification, in order."""
    return [(a["labels"]["alertname"], a["status"]) for n in received for a in n["alerts"]]


def test_alerts_reach_the_webhook_through_alertmanager(stack: Stack, settings: Settings) -> None:
    now = time.time()
    _store(settings, alerts=[
        ("no-vsav-in-area", "critical", "G1/VSAV", "G1", "pending", now - 600, "Aucun VSAV en G1"),
        ("no-vsav-in-area", "critical", "G1/VSAV", "G1", "firing", now - 540, "Aucun VSAV en G1"),
        ("vsav-below-30pct", "warning", "G2/VSAV", "G2", "firing", now - 300, "VSAV < 30 % en G2"),
        ("fpt-note", "info", "G3/FPT", "G3", "firing", now - 200, "FPT bas en G3"),
    ], actions=[("a1", "silence", "vsav-below-30pct", "G2/VSAV", now - 100, now + 3600, "cos-2", "exercice")])
    with WebhookReceiver() as hook:
        port = free_port()
        am = start_alertmanager(port, stack.tmp / f"alertmanager-{port}",
                                routing_yaml(routing(hook.url, group_wait_s=1, group_interval_s=1)))
        url = f"http://127.0.0.1:{port}"
        try:
            notifier = Notifier(settings, url, every_s=1)
            first = notifier.sync_once()
            assert (first.firing, first.resolved, first.silences_created, first.silences_expired) == (3, 0, 1, 0)
            got = hook.wait_for(lambda r: ("no-vsav-in-area", "firing") in _notified(r), 30)
            alert = next(a for n in got for a in n["alerts"] if a["labels"]["alertname"] == "no-vsav-in-area")
            assert alert["labels"] == {"alertname": "no-vsav-in-area", "scope": "G1/VSAV", "severity": "critical",
                                       "area": "G1", "subject": "VSAV", "source": "vigie"}
            assert alert["annotations"]["summary"] == "Aucun VSAV en G1"
            assert alert["startsAt"].startswith(_at(now - 540).strftime("%Y-%m-%dT%H:%M:%S"))
            # Alertmanager's word: the silenced alert is held by the mirrored silence, the info one goes nowhere
            shown = _am_alerts(url)
            assert shown["vsav-below-30pct"]["status"]["state"] == "suppressed"
            assert len(shown["vsav-below-30pct"]["status"]["silencedBy"]) == 1
            assert shown["fpt-note"]["receivers"] == [{"name": "none"}]
            again = notifier.sync_once()  # nothing changed: nothing created or lifted
            assert (again.silences_created, again.silences_expired) == (0, 0)

            _store(settings, alerts=[("no-vsav-in-area", "critical", "G1/VSAV", "G1", "resolved", now - 30,
                                      "Aucun VSAV en G1")])
            assert notifier.sync_once().resolved == 1
            hook.wait_for(lambda r: ("no-vsav-in-area", "resolved") in _notified(r), 30)

            lifted_at = len(hook.received)
            _store(settings, actions=[("a2", "unsilence", "vsav-below-30pct", "G2/VSAV", now - 10, 0, "cos-2", "")])
            assert notifier.sync_once().silences_expired == 1
            got = hook.wait_for(lambda r: ("vsav-below-30pct", "firing") in _notified(r), 30)
            # never notified while silenced; the info alert never
            assert ("vsav-below-30pct", "firing") not in _notified(got[:lifted_at])
            assert all(rule != "fpt-note" for rule, _ in _notified(got))
            assert _am_alerts(url)["vsav-below-30pct"]["status"]["state"] == "active"
        finally:
            am.stop()


def test_the_shipped_routing_is_the_generated_one_and_alertmanager_reads_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert ROUTING_FILE.read_text() == routing_yaml(routing())
    # this machine's Alertmanager (0.25) predates url_file (0.26): checked with the address in place of the file
    local = ROUTING_FILE.read_text().replace(f"url_file: {WEBHOOK_URL_FILE}", "url: http://127.0.0.1:1/")
    (tmp_path / "am.yml").write_text(local)
    done = subprocess.run(["amtool", "check-config", str(tmp_path / "am.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
