"""Where the history's units wait for a call: their home station's coordinates (the reference's: a brigade's
stations file, or what the import estimated — the mean location of the calls in the station's first-due area); a
unit of a pool (the import's ``Pool`` stations: units tied to no station, such as SF's medics) at the median
location of the calls it answered in the history (its usual posting, as far as the data tells)."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from schemas.reference import Reference
from streams.whatif.engine import Unit
from streams.whatif.history import Call

POOL_PREFIX = "Pool "  # the name the importer gives a station no call's area names (vigie/cad/importer.py)


def units_from(reference: Reference, calls: Sequence[Call]) -> tuple[dict[str, Unit], dict[str, tuple[float, float]]]:
    """The units (with their bases) and the stations' coordinates."""
    stations = {sid: (st.lat, st.lon) for sid, st in reference.stations.items()}
    answered: dict[str, list[tuple[float, float]]] = {}
    for c in calls:
        for r in c.responses:
            answered.setdefault(r.unit, []).append((c.lat, c.lon))
    units = {}
    for v in reference.fleet.values():
        st = reference.stations[v.home_station]
        lat, lon = st.lat, st.lon
        points = answered.get(v.vehicle_id)
        if st.name.startswith(POOL_PREFIX) and points:
            lat, lon = median(p[0] for p in points), median(p[1] for p in points)
        units[v.vehicle_id] = Unit(v.vehicle_id, v.vehicle_type, v.home_station, lat, lon)
    return units, stations
