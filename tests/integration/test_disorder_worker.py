"""The disorder property through the real worker: the simulator's events delivered out of order (each event
displaced by up to the allowed lateness, some repeated) give exactly the rows computed from the events."""

from __future__ import annotations

import random

import pytest

from core.settings import Settings
from devtools.produce import publish
from tests.integration.conftest import Stack, start_worker, stop_worker
from tests.integration.test_pipeline import PACE, assert_exact, simulate, wait_for_all_events

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", [41, 42])
def test_out_of_order_delivery_gives_the_in_order_rows(stack: Stack, settings: Settings, seed: int) -> None:
    # 10 minutes of allowed lateness (assert_exact compares windows older than the last event - 10 min): enough
    # for a unit's dispatched / en route / on scene to arrive in any order
    settings = settings.model_copy(update={"allowed_lateness_seconds": 600})
    ref, events = simulate(settings, hours=1.5, seed=seed)
    rng = random.Random(seed)
    lateness = settings.allowed_lateness_seconds
    # arrival order: event time + a delay in [0, lateness] (no event arrives after one more than the lateness
    # newer than itself); 2 % of the records delivered twice, the copy anywhere later
    arrival = sorted(events, key=lambda e: e.event.event_time.timestamp() + rng.uniform(0, lateness))
    moved = sum(1 for a, b in zip(arrival, sorted(events, key=lambda e: e.event.event_time.timestamp()),
                                  strict=True) if a is not b)
    assert moved > len(events) // 4  # the disorder is real ...
    newest: dict[str, float] = {}
    inverted = 0  # ... also within one vehicle or person: an event arriving after a newer one of its own
    for e in arrival:
        who = getattr(e.event, "vehicle_id", None) or getattr(e.event, "person_id", None) or e.key
        t = e.event.event_time.timestamp()
        inverted += t < newest.get(who, t)
        newest[who] = max(t, newest.get(who, t))
    assert inverted > 10, inverted
    for _ in range(len(arrival) // 50):
        i = rng.randrange(len(arrival))
        arrival.insert(rng.randrange(i, len(arrival) + 1), arrival[i])
    worker = start_worker(stack, settings, f"disorder-{seed}")
    publish(settings, arrival, speed=PACE)
    wait_for_all_events(settings, events, stack=stack)
    assert_exact(settings, ref, events, long_run=False)
    stop_worker(worker)
