"""Simulated water points: per area of the reference, a few dozen hydrants and cisterns; now and then one goes
out of service (a leak, works, frost) for 2 to 48 hours."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel

from schemas.reference import Reference
from vigie_water_points.events import WaterPointEvent, WaterPointKind, WaterPointStatus
from vigie_water_points.processor import TOPIC


def events(reference: Reference, start: datetime, seconds: float, seed: int
           ) -> Iterator[tuple[str, str, BaseModel]]:
    """``(logical topic, key, event)`` in event-time order."""
    rng = random.Random(seed)
    t0 = start.timestamp()
    areas = sorted({s.area for s in reference.stations.values()})
    timeline: list[tuple[float, str, str, WaterPointKind, WaterPointStatus, float]] = []
    for area in areas:
        for i in range(30):
            wp = f"WP-{area}-{i:03d}"
            kind = WaterPointKind.HYDRANT if i % 5 else WaterPointKind.CISTERN
            flow = 60.0 if kind is WaterPointKind.HYDRANT else 120.0
            timeline.append((t0, wp, area, kind, WaterPointStatus.IN_SERVICE, flow))
            t = t0 + rng.expovariate(1 / 43200)
            while t < t0 + seconds:
                timeline.append((t, wp, area, kind, WaterPointStatus.OUT_OF_SERVICE, flow))
                t += rng.uniform(2 * 3600, 48 * 3600)
                if t < t0 + seconds:
                    timeline.append((t, wp, area, kind, WaterPointStatus.IN_SERVICE, flow))
                t += rng.expovariate(1 / 43200)
    for n, (t, wp, area, kind, status, flow) in enumerate(sorted(timeline, key=lambda e: (e[0], e[1]))):
        yield TOPIC, wp, WaterPointEvent(schema_version=1, event_id=f"wp-{seed}-{n}",
                                         event_time=datetime.fromtimestamp(int(t), UTC), water_point_id=wp,
                                         area=area, kind=kind, status=status, flow_m3h=flow)
