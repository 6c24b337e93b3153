"""Independent computation of what ClickHouse must hold, straight from the produced events.

Written separately from ``streams/`` on purpose: plain loops over the event list, no shared code.
"""

from __future__ import annotations

from collections import defaultdict

from schemas.reference import Reference
from vigie.simulator import SimEvent

AVAILABLE = {"available_at_station", "available_on_radio"}
OUT = {"out_of_service"}


def category(status: str | None) -> str:
    if status is None:
        return "unknown"
    if status in AVAILABLE:
        return "available"
    if status in OUT:
        return "out_of_service"
    return "engaged"


def final_vehicle_status(events: list[SimEvent]) -> dict[str, str]:
    last: dict[str, tuple[float, str]] = {}
    for e in events:
        if e.topic == "vehicle-status":
            t = e.event.event_time.timestamp()
            if e.event.vehicle_id not in last or t >= last[e.event.vehicle_id][0]:
                last[e.event.vehicle_id] = (t, e.event.status.value)
    return {v: s for v, (_, s) in last.items()}


def capacity(ref: Reference, events: list[SimEvent]) -> dict[tuple[str, str, str], int]:
    final = final_vehicle_status(events)
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for v in ref.fleet.values():
        out[(v.home_station, v.vehicle_type, category(final.get(v.vehicle_id)))] += 1
    return dict(out)


def station_windows(ref: Reference, events: list[SimEvent], window: int, until: float) -> dict[tuple, tuple]:
    """(window_start, station, type) -> (available, engaged, oos, unknown, min_available, engaged_minutes)
    for every window that ends at or before ``until``, from the first event on."""
    status: dict[str, str | None] = {v: None for v in ref.fleet}
    timeline: list[tuple[float, str, str]] = sorted(
        (e.event.event_time.timestamp(), e.event.vehicle_id, e.event.status.value)
        for e in events if e.topic == "vehicle-status")
    first = timeline[0][0]
    start = first - first % window

    def counts() -> dict[tuple[str, str], list[int]]:
        c: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        order = ["available", "engaged", "out_of_service", "unknown"]
        for vid, st in status.items():
            v = ref.fleet[vid]
            c[(v.home_station, v.vehicle_type)][order.index(category(st))] += 1
        return c

    result = {}
    i = 0
    w = start
    while w + window <= until:
        end = w + window
        # values held during the window: after the changes at w, then after each later instant < end
        while i < len(timeline) and timeline[i][0] <= w:
            status[timeline[i][1]] = timeline[i][2]
            i += 1
        c = counts()
        mins = {k: v[0] for k, v in c.items()}
        engaged_seconds = {k: 0.0 for k in c}
        t_prev = w
        while i < len(timeline) and timeline[i][0] < end:
            t = timeline[i][0]
            for k, v in c.items():
                engaged_seconds[k] += v[1] * (t - t_prev)
            while i < len(timeline) and timeline[i][0] == t:
                status[timeline[i][1]] = timeline[i][2]
                i += 1
            c = counts()
            for k, v in c.items():
                mins[k] = min(mins[k], v[0])
            t_prev = t
        for k, v in c.items():
            engaged_seconds[k] += v[1] * (end - t_prev)
            result[(w, k[0], k[1])] = (v[0], v[1], v[2], v[3], mins[k], round(engaged_seconds[k] / 60.0, 6))
        w = end
    return result


def response_times(events: list[SimEvent]) -> dict[str, int]:
    """intervention -> seconds from the call (opened) to the first vehicle on scene."""
    opened: dict[str, float] = {}
    first_arrival: dict[str, float] = {}
    for e in events:
        ev = e.event
        t = ev.event_time.timestamp()
        if e.topic == "interventions" and ev.lifecycle.value == "opened":
            opened[ev.intervention_id] = min(t, opened.get(ev.intervention_id, t))
        elif e.topic == "vehicle-status" and ev.status.value == "on_scene":
            first_arrival[ev.intervention_id] = min(t, first_arrival.get(ev.intervention_id, t))
    return {i: int(first_arrival[i] - opened[i]) for i in first_arrival if i in opened}


def turnouts(events: list[SimEvent]) -> dict[tuple[str, str], float]:
    """(intervention, vehicle) -> en route minus dispatched."""
    dispatched: dict[tuple[str, str], float] = {}
    out = {}
    for e in events:
        ev = e.event
        if e.topic != "vehicle-status" or ev.intervention_id is None:
            continue
        k = (ev.intervention_id, ev.vehicle_id)
        t = ev.event_time.timestamp()
        if ev.status.value == "dispatched":
            dispatched.setdefault(k, t)
        elif ev.status.value == "en_route" and k in dispatched and k not in out:
            out[k] = t - dispatched[k]
    return out


def sector_openings(events: list[SimEvent], window: int) -> dict[tuple[float, str], int]:
    out: dict[tuple[float, str], int] = defaultdict(int)
    for e in events:
        ev = e.event
        if e.topic == "interventions" and ev.lifecycle.value == "opened":
            t = ev.event_time.timestamp()
            out[(t - t % window, ev.location.sector)] += 1
    return dict(out)
