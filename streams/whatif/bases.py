"""Where the history's units wait for a call: their home station's coordinates (the reference's: a brigade's
stations file, or what the import estimated — the mean location of the calls in the station's first-due area); a
unit of a pool (the import's ``Pool`` stations: units tied to no station, such as SF's medics) at the median
location of the calls it answered in the history (its usual posting, as far as the data tells), and on duty only
when the history shows it working: a pool's units work shifts (SF's medics: 10-hour shifts; of the week's 3,054
pauses between two responses of one medic, 4 last 6.5 to 10 h), and an engine that re-ran the week with all 75 of
SF's medics on duty at once sent them sooner than SF could. A unit's spans on duty are its responses (dispatched to
available again) joined across pauses shorter than ``SHIFT_GAP_S``, widened by its median pause; for a unit seldom
sent (a chief, a fireboat) they are the hours it was seen working, shorter than its duty. A station's units are
always on duty (as its crews are, or as the crew records say: streams/whatif/roster.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median

from schemas.reference import Reference
from streams.whatif.engine import Unit
from streams.whatif.history import Call

POOL_PREFIX = "Pool "  # the name the importer gives a station no call's area names (vigie/cad/importer.py)
SHIFT_GAP_S = 8 * 3600.0  # a pool unit's pause at least this long between two responses: off duty in between


def units_from(reference: Reference, calls: Sequence[Call]) -> tuple[dict[str, Unit], dict[str, tuple[float, float]]]:
    """The units (with their bases) and the stations' coordinates."""
    stations = {sid: (st.lat, st.lon) for sid, st in reference.stations.items()}
    answered: dict[str, list[tuple[float, float]]] = {}
    busy: dict[str, list[tuple[float, float]]] = {}
    for c in calls:
        for r in c.responses:
            answered.setdefault(r.unit, []).append((c.lat, c.lon))
            busy.setdefault(r.unit, []).append((r.dispatched, math.inf if r.available is None else r.available))
    units = {}
    for v in reference.fleet.values():
        st = reference.stations[v.home_station]
        lat, lon = st.lat, st.lon
        points = answered.get(v.vehicle_id)
        on_duty: tuple[tuple[float, float], ...] = ()
        if st.name.startswith(POOL_PREFIX) and points:
            lat, lon = median(p[0] for p in points), median(p[1] for p in points)
            on_duty = shifts(busy[v.vehicle_id])
        units[v.vehicle_id] = Unit(v.vehicle_id, v.vehicle_type, v.home_station, lat, lon, on_duty)
    return units, stations


def shifts(busy: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """The spans on duty of a unit busy at ``busy`` (dispatched, free again; any order): joined across pauses
    shorter than ``SHIFT_GAP_S``, each widened on both sides by the unit's median such pause (a shift starts before
    its first call and ends after its last: by about one pause, as far as the data tells)."""
    spans: list[tuple[float, float]] = []
    pauses: list[float] = []
    for start, end in sorted(busy):
        end = max(end, start + 1.0)  # a response free at once: the span still holds its dispatch
        pause = start - spans[-1][1] if spans else math.inf
        if pause < SHIFT_GAP_S:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            if pause > 0:
                pauses.append(pause)
        else:
            spans.append((start, end))
    pad = median(pauses) if pauses else 0.0
    widened: list[tuple[float, float]] = []
    for a, b in spans:
        if widened and a - pad <= widened[-1][1]:  # a pad of hours (a unit seldom sent) can join two spans
            widened[-1] = (widened[-1][0], b + pad)
        else:
            widened.append((a - pad, b + pad))
    return tuple(widened)
