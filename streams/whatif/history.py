"""The calls of a history and each unit's response to them, from Vigie's own events (an import's ``events.jsonl``,
or the raw history): what the what-if engine re-runs, and what its trace mode must give back.

A response runs from a unit's ``dispatched`` naming a call to its next available status or its next dispatch,
whichever comes first: a CAD export leaves a response without its available time when the unit was sent on to the
next call first (SF's week: 32 responses, each unit dispatched again 12 s to 68 min later), and a unit sent on was
free by then — not engaged to the end of the history. A status missing from a response (a unit cancelled before
arriving has no on-scene time, one that did not transport no hospital time) is ``None``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ENGAGED = ("dispatched", "en_route", "on_scene", "transporting", "at_hospital", "returning")
FREE = ("available_at_station", "available_on_radio")


@dataclass(slots=True)
class Response:
    """One unit sent to one call; times in epoch seconds."""

    unit: str
    vehicle_type: str
    dispatched: float
    en_route: float | None = None
    on_scene: float | None = None
    transporting: float | None = None
    at_hospital: float | None = None
    available: float | None = None  # None: the history ends before
    waited_s: float = 0.0  # a simulated response: how long the call waited for a free unit of the type

    @property
    def turnout_s(self) -> float | None:
        return None if self.en_route is None else self.en_route - self.dispatched

    @property
    def travel_s(self) -> float | None:
        return None if self.en_route is None or self.on_scene is None else self.on_scene - self.en_route


@dataclass(slots=True)
class Call:
    call_id: str
    opened: float
    lat: float
    lon: float
    sector: str
    nature: str
    priority: int
    responses: list[Response] = field(default_factory=list)  # in dispatch order


def read_events(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(topic, event)`` from an import's ``events.jsonl``."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                doc = json.loads(line)
                yield doc["topic"], doc["event"]


def _t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def calls_from_events(events: Iterable[tuple[str, dict[str, Any]]]) -> list[Call]:
    """The calls (in opening order) with their responses, from interventions and vehicle statuses in any order."""
    calls: dict[str, Call] = {}
    statuses: list[tuple[float, str, str, str, str, str]] = []  # (time, event id, unit, type, status, call)
    for topic, ev in events:
        if topic == "interventions" and ev["lifecycle"] == "opened":
            t, loc = _t(ev["event_time"]), ev.get("location") or {}
            known = calls.get(ev["intervention_id"])
            if known is None or t < known.opened:
                calls[ev["intervention_id"]] = Call(ev["intervention_id"], t, float(loc.get("lat", 0.0)),
                                                    float(loc.get("lon", 0.0)), str(loc.get("sector", "")),
                                                    ev["nature"], int(ev.get("priority") or 3))
        elif topic == "vehicle-status":
            statuses.append((_t(ev["event_time"]), ev["event_id"], ev["vehicle_id"], ev["vehicle_type"], ev["status"],
                             ev.get("intervention_id") or ""))
    statuses.sort()
    current: dict[str, Response] = {}  # unit -> its response going on
    for t, _, unit, vtype, status, call_id in statuses:
        if status == "dispatched":
            if unit in current:  # sent on before its previous response made it available: that one ends here
                current.pop(unit).available = t
            if call_id in calls:
                current[unit] = Response(unit, vtype, t)
                calls[call_id].responses.append(current[unit])
        elif unit not in current:
            continue
        elif status in FREE or status == "out_of_service":
            current.pop(unit).available = t
        elif status in ("en_route", "on_scene", "transporting", "at_hospital"):
            r = current[unit]
            if getattr(r, status) is None:
                setattr(r, status, t)
    return sorted(calls.values(), key=lambda c: (c.opened, c.call_id))
