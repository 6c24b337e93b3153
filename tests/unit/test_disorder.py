"""Disorder property: the rows do not depend on the arrival order within the allowed lateness.

Hypothesis draws event sets (vehicles, crews, interventions; ties in time included), delivers them in an
order where no event arrives after one more than the lateness newer than itself (each event gets an arrival
delay in [0, lateness]: sorted by time + delay), repeats some records anywhere, and cuts the stream into
random batches. What ClickHouse keeps (the newest row per key, versions left out, every window row, every raw
event once) must equal the rows of the same events delivered in (time, id) order."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.processor import BatchResult, Record
from streams.processors.interventions import PROCESSOR as INTERVENTIONS
from streams.processors.interventions import InterventionEngine
from streams.processors.stations import PROCESSOR as STATIONS
from streams.processors.stations import StationEngine
from tests.helpers import T0, cev, iev, small_reference, vev

REF = small_reference()  # S1: V1, V2 (VSAV), F1 (FPT)
LATENESS = 30
# 200 seeded cases each in `make test` (the same every run); `make fuzz`: 5,000 with fresh seeds
CASES = settings(max_examples=int(os.environ.get("VIGIE_PROPERTY_EXAMPLES", "200")), deadline=None,
                 derandomize="VIGIE_PROPERTY_EXAMPLES" not in os.environ,
                 suppress_health_check=[HealthCheck.too_slow])

# ReplacingMergeTree keys of the tables with versions (the rest: every row, or raw events by id)
KEYS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "vehicle_state": lambda r: (r.vehicle_id,),
    "engagements": lambda r: (r.intervention_id, r.vehicle_id),
    "staff_state": lambda r: (r.person_id,),
    "station_capacity": lambda r: (r.station_id, r.vehicle_type),
    "station_staff": lambda r: (r.station_id, r.qualification),
    "interventions": lambda r: (r.intervention_id,),
}
VEHICLE_STATUSES = ["available_at_station", "available_on_radio", "dispatched", "en_route", "on_scene",
                    "transporting", "at_hospital", "returning", "out_of_service"]
ENGAGED = {"dispatched", "en_route", "on_scene", "transporting", "at_hospital"}
CREW_STATUSES = ["off_duty", "available", "assigned", "unavailable"]
PROFILES = [("crew_leader", "team_leader", "team_member"), ("driver", "team_member"), ("team_member",),
            ("team_leader", "team_member")]


def kept(results: Sequence[BatchResult]) -> dict[str, Any]:
    """What the tables hold after these batches (ClickHouse's merge rules, computed here, not by the engine)."""
    newest: dict[str, dict[tuple[Any, ...], Any]] = {}
    appended: dict[str, list[Any]] = {}
    raw: dict[str, set[str]] = {}
    for result in results:
        for spec, rows in result.rows.items():
            rows = rows.rows() if hasattr(rows, "rows") else list(rows)
            if spec.name in KEYS:
                table = newest.setdefault(spec.name, {})
                for r in rows:
                    k = KEYS[spec.name](r)
                    if k not in table or r.version >= table[k].version:
                        table[k] = r
            elif spec.name.endswith("_events"):
                raw.setdefault(spec.name, set()).update(r[0] for r in rows)
            else:
                appended.setdefault(spec.name, []).extend(rows)
    # the units' changes of status published for the alerts (a repeat after a restart is one)
    units = {tuple(u) for result in results for m in result.messages if m.topic == "station-steps"
             for part in json.loads(m.value)["parts"] for u in part.get("units", [])}
    # and the interventions opened and closed (a repeat after a restart is one)
    calls = {(kind, *c) for result in results for m in result.messages if m.topic == "intervention-steps"
             for part in json.loads(m.value)["parts"] for kind in ("opened", "closed") for c in part[kind]}
    out: dict[str, Any] = {name: sorted(r._replace(version=0) for r in t.values()) for name, t in newest.items()}
    out["unit_steps"] = sorted(units)
    out["intervention_steps"] = sorted(calls)
    out |= {name: sorted(rows) for name, rows in appended.items()}
    out |= {name: sorted(ids) for name, ids in raw.items()}
    return out


def deliver(data: st.DataObject, events: list[tuple[float, str, Record]]) -> list[list[Record]]:
    """The events in an arrival order displaced by at most the lateness, some repeated, in random batches."""
    delays = data.draw(st.lists(st.floats(0, LATENESS), min_size=len(events), max_size=len(events)))
    order = [rec for _, _, rec in sorted(((t + d, i, e) for i, ((t, _, e), d) in enumerate(
        zip(events, delays, strict=True))), key=lambda x: (x[0], x[1]))]
    for _ in range(data.draw(st.integers(0, 4))):  # a redelivery anywhere later than the first delivery
        i = data.draw(st.integers(0, len(order) - 1))
        order.insert(data.draw(st.integers(i, len(order))), order[i])
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=6))))
    bounds = [0, *cuts, len(order)]
    return [order[a:b] for a, b in pairwise(bounds) if b > a]


def in_order(events: list[tuple[float, str, Record]]) -> list[list[Record]]:
    return [[rec for _, _, rec in sorted(events, key=lambda x: (x[0], x[1]))]]


def run(engine_factory: Callable[[], Any], stores: Callable[[], dict[str, Any]], batches: list[list[Record]],
        restore: bool = False) -> dict[str, Any]:
    """``restore``: after each batch the state goes through its changelog codec and back (a restart)."""
    engine, store = engine_factory(), stores()
    codecs = {st.name: st for p in (STATIONS, INTERVENTIONS) for st in p.states}
    results = []
    for batch in batches:
        results.append(engine.process(batch, store))
        if restore:
            for name, table in store.items():
                for key, value in list(table.items()):
                    table[key] = codecs[name].loads(codecs[name].dumps(value))
    return kept(results)


@st.composite
def station_events(draw: st.DrawFn) -> list[tuple[float, str, Record]]:
    """Vehicle and crew events of station S1 (times in whole seconds, so ties happen)."""
    out = []
    n = draw(st.integers(1, 40))
    for i in range(n):
        t = T0 + draw(st.integers(0, 400))
        eid = f"e{draw(st.integers(0, 10**6)):07d}-{i}"
        if draw(st.booleans()):
            vid = draw(st.sampled_from(["V1", "V2", "F1"]))
            status = draw(st.sampled_from(VEHICLE_STATUSES))
            iid = draw(st.sampled_from(["I1", "I2"])) if status in ENGAGED or (
                status == "returning" and draw(st.booleans())) else None
            ev: Any = vev(vid, status, t, iid, event_id=eid, vtype="FPT" if vid == "F1" else "VSAV")
            topic = "vehicle-status"
        else:
            pid = draw(st.sampled_from(["P1", "P2", "P3"]))
            status = draw(st.sampled_from(CREW_STATUSES))
            on = status == "assigned"
            ev = cev(pid, status, t, draw(st.sampled_from(PROFILES)), "V1" if on else None, "I1" if on else None,
                     event_id=eid)
            topic = "crew-status"
        out.append((t, eid, Record(topic, 0, i, b"S1", ev.model_dump_json().encode())))
    return out


@given(events=station_events(), data=st.data())
@CASES
def test_station_rows_do_not_depend_on_arrival_order(events: list[tuple[float, str, Record]],
                                                     data: st.DataObject) -> None:
    def engine() -> StationEngine:
        return StationEngine(REF, 60, LATENESS, publish_steps=True)

    expected = run(engine, lambda: {"stations": {}}, in_order(events))
    restore = data.draw(st.booleans())  # the state saved and restored between batches, as after a restart
    assert run(engine, lambda: {"stations": {}}, deliver(data, events), restore) == expected


@st.composite
def intervention_events(draw: st.DrawFn) -> list[tuple[float, str, Record]]:
    out = []
    for i in range(draw(st.integers(1, 30))):
        t = T0 + draw(st.integers(0, 400))
        eid = f"i{draw(st.integers(0, 10**6)):07d}-{i}"
        iid = draw(st.sampled_from(["I1", "I2", "I3", "I4"]))
        ev = iev(iid, draw(st.sampled_from(["opened", "updated", "closed"])), t,
                 sector=draw(st.sampled_from(["Z1", "Z2"])), event_id=eid,
                 nature=draw(st.sampled_from(["fire", "road_accident"])))
        out.append((t, eid, Record("interventions", 0, i, iid.encode(), ev.model_dump_json().encode())))
    return out


@given(events=intervention_events(), data=st.data())
@CASES
def test_intervention_rows_and_sector_counts_do_not_depend_on_arrival_order(
        events: list[tuple[float, str, Record]], data: st.DataObject) -> None:
    def engine() -> InterventionEngine:
        return InterventionEngine(60, LATENESS, publish_steps=True)

    def stores() -> dict[str, Any]:
        return {"interventions": {}, "sector-windows": {}}

    expected = run(engine, stores, in_order(events))
    assert run(engine, stores, deliver(data, events), data.draw(st.booleans())) == expected


def test_the_property_fails_when_older_events_are_applied_in_arrival_order() -> None:
    """The comparison is not blind: an older event dropped as stale (the rule before timelines) shows."""
    events = [vev("V1", "available_at_station", T0, event_id="a"), vev("V1", "dispatched", T0 + 110, "I1",
                                                                        event_id="b"),
              vev("V1", "out_of_service", T0 + 140, event_id="c")]
    recs = [(e.event_time.timestamp(), e.event_id, Record("vehicle-status", 0, i, b"S1",
                                                         e.model_dump_json().encode())) for i, e in enumerate(events)]
    expected = run(lambda: StationEngine(REF, 60, LATENESS), lambda: {"stations": {}}, in_order(recs))
    without_b = run(lambda: StationEngine(REF, 60, LATENESS), lambda: {"stations": {}},
                    [[recs[0][2], recs[2][2]]])
    assert without_b != expected
    disordered = run(lambda: StationEngine(REF, 60, LATENESS), lambda: {"stations": {}},
                     [[recs[0][2], recs[2][2]], [recs[1][2]]])
    assert disordered == expected
