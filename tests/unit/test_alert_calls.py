"""Interventions and vehicle statuses -> the interventions' and stations' engines -> the alerts engine: an
intervention waiting for a unit fires at its deadline and resolves when a unit is dispatched to it; the rows are
stated by hand, and are the same whatever the arrival order within the allowed lateness, repeats, batch cuts and
restarts, and on the batch path."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import Settings
from streams.batch import BatchRunner
from streams.partitioning import partition_for
from streams.processor import Record
from streams.processors.alerts import PROCESSOR as ALERTS
from streams.processors.alerts import AlertEngine
from streams.processors.interventions import PROCESSOR as INTERVENTIONS
from streams.processors.interventions import InterventionEngine
from streams.processors.stations import PROCESSOR as STATIONS
from streams.processors.stations import StationEngine
from tests.helpers import NO_VSAV_IN_AREA, T0, iev, vev
from tests.unit.test_alert_book import SURGE_TOML, WAITING_5MIN
from tests.unit.test_alert_chain import HOME, LATENESS, REF, Rows, alert_rows
from tests.unit.test_disorder import deliver

RULES = NO_VSAV_IN_AREA + WAITING_5MIN
CALLS = [  # (seconds after T0, intervention, lifecycle)
    (10, "I1", "opened"), (20, "I2", "opened"), (30, "I3", "opened"), (40, "I4", "opened"), (200, "I3", "closed"),
    (250, "I1", "updated"), (1000, "I5", "opened"), (1000, "I6", "opened"), (1000, "I7", "opened"),
]
UNITS = [  # (seconds after T0, vehicle, status, intervention)
    *[(0, v, "available_at_station", None) for v in HOME],
    (50, "V1", "dispatched", "I2"), (100, "V3", "dispatched", "I4"), (400, "V2", "dispatched", "I1"),
    *[(1000, v, "available_on_radio", None) for v in HOME],
]
# I1 (at 48.8, 2.3: nearest station S1, area A) waits from 10 until V2 comes at 400: fires at 310, resolved at 400
# (6.5 minutes); I2 and I4 got a unit within a minute, I3 closed at 200 without one; I5-I7 opened at 1000, after
# the last sealed time (970). Area A's three VSAV are all out from 400 (V2 the last): fires at once.
EXPECTED = sorted([
    ("no-vsav-in-area", "A/VSAV", "A", T0 + 400, "pending", 0.0, "No VSAV available in A"),
    ("no-vsav-in-area", "A/VSAV", "A", T0 + 400, "firing", 0.0, "No VSAV available in A"),
    ("waiting-5min", "I1", "A", T0 + 310, "pending", 5.0, "I1 (fire, Z1) waited 5 min"),
    ("waiting-5min", "I1", "A", T0 + 310, "firing", 5.0, "I1 (fire, Z1) waited 5 min"),
    ("waiting-5min", "I1", "A", T0 + 400, "resolved", 6.5, "I1 (fire, Z1) waited 6.5 min"),
])


def records() -> list[tuple[float, str, Record]]:
    out = []
    for i, (dt, iid, lifecycle) in enumerate(CALLS):
        ev = iev(iid, lifecycle, T0 + dt, event_id=f"c{i:03d}")
        out.append((T0 + dt, ev.event_id, Record("interventions", partition_for(iid.encode(), 4), i, iid.encode(),
                                                 ev.model_dump_json().encode())))
    for i, (dt, vid, status, iid) in enumerate(UNITS):
        station = HOME[vid]
        ev = vev(vid, status, T0 + dt, iid, event_id=f"u{i:03d}", station=station)
        out.append((T0 + dt, ev.event_id, Record("vehicle-status", partition_for(station.encode(), 4), 100 + i,
                                                 station.encode(), ev.model_dump_json().encode())))
    return out


def chain(batches: list[list[Record]], rules: Path, restart: bool = False,
          saved: dict[str, dict[str, Any]] | None = None) -> list[tuple[Any, ...]]:
    """Each batch through the interventions' and stations' engines, their messages through the alerts engine (as
    the live worker); ``restart``: every state through its changelog codec after every batch, on new engines;
    ``saved``: filled with the states as their changelogs hold them after the last batch."""
    codecs = {st.name: st for p in (STATIONS, INTERVENTIONS, ALERTS) for st in p.states}
    stores: dict[str, dict[str, Any]] = {name: {} for name in codecs}
    rows: list[Any] = []

    def engines() -> tuple[InterventionEngine, StationEngine, AlertEngine]:
        return (InterventionEngine(60, LATENESS, publish_steps=True),
                StationEngine(REF, 60, LATENESS, publish_steps=True), AlertEngine(rules, REF, live=True, partitions=4))

    calls, stations, alerts = engines()
    for batch in batches:
        derived = []
        for engine, topic in ((calls, "interventions"), (stations, "vehicle-status")):
            result = engine.process([r for r in batch if r.topic == topic], stores)
            derived += [Record(m.topic, 0, len(derived), m.key, m.value) for m in result.messages]
        rows += alerts.process(derived, stores).rows.get(ALERTS.tables[0], [])
        if restart:
            for name, table in stores.items():
                for key, value in list(table.items()):
                    table[key] = codecs[name].loads(codecs[name].dumps(value))
            calls, stations, alerts = engines()
    if saved is not None:
        saved.update({name: {k: codecs[name].loads(codecs[name].dumps(v)) for k, v in table.items()}
                      for name, table in stores.items()})
    rows += alerts.finish(stores).rows[ALERTS.tables[0]]
    return alert_rows(rows)


def rules_file(tmp: Path) -> Path:
    path = tmp / "rules.toml"
    path.write_text(RULES)
    return path


def test_the_hand_made_stream_gives_the_stated_alerts(tmp_path: Path) -> None:
    in_order = sorted(records(), key=lambda r: (r[0], r[1]))
    assert chain([[rec for _, _, rec in in_order]], rules_file(tmp_path)) == EXPECTED
    assert chain([[rec] for _, _, rec in in_order], rules_file(tmp_path), restart=True) == EXPECTED


@given(data=st.data())
@settings(max_examples=int(os.environ.get("VIGIE_PROPERTY_EXAMPLES", "200")) // 2, deadline=None,
          derandomize="VIGIE_PROPERTY_EXAMPLES" not in os.environ, suppress_health_check=list(HealthCheck))
def test_any_arrival_order_within_the_lateness_gives_the_same_alerts(tmp_path_factory: Any,
                                                                      data: st.DataObject) -> None:
    rules = rules_file(tmp_path_factory.mktemp("rules"))
    assert chain(deliver(data, records()), rules, restart=data.draw(st.booleans())) == EXPECTED


def test_the_batch_path_gives_the_same_alerts(tmp_path: Path) -> None:
    s = Settings(alert_rules=rules_file(tmp_path), allowed_lateness_seconds=LATENESS, topic_partitions=4)
    writer = Rows()
    runner = BatchRunner(s, (ALERTS, INTERVENTIONS, STATIONS), writer, REF)
    recs = [rec for _, _, rec in sorted(records(), key=lambda r: (r[0], r[1]))]
    asyncio.run(runner.run(recs, chunk_events=4))
    assert alert_rows(writer.rows) == EXPECTED


def test_every_change_of_status_is_published_even_past_the_timeline_cap() -> None:
    """The batch path seals once per chunk: a unit with more changes in one chunk than a timeline keeps
    (``TIMELINE_CAP``) still has each published once, in order, across a restart of the state."""
    from streams.state import TIMELINE_CAP

    statuses = ["dispatched", "en_route", "on_scene", "available_on_radio"]
    n = TIMELINE_CAP * 2 + 5
    evs = [vev("V1", statuses[i % 4], T0 + 60 * i, None if i % 4 == 3 else f"I{i // 4}", event_id=f"e{i:04d}",
               station="S1") for i in range(n)]
    recs = [Record("vehicle-status", partition_for(b"S1", 4), i, b"S1", ev.model_dump_json().encode())
            for i, ev in enumerate(evs)]
    codec = STATIONS.states[0]
    store: dict[str, Any] = {"stations": {}}
    published = []
    for batch in (recs[:TIMELINE_CAP + 30], recs[TIMELINE_CAP + 30:]):
        engine = StationEngine(REF, 60, LATENESS, publish_steps=True)  # a restart: a new engine, the saved state
        store["stations"] = {k: codec.loads(codec.dumps(v)) for k, v in store["stations"].items()}
        result = engine.process(batch, store)
        published += [tuple(u[:4]) for m in result.messages for part in json.loads(m.value)["parts"]
                      for u in part.get("units", [])]
    sealed = T0 + 60 * (n - 1) - LATENESS
    assert published == [(ev.event_time.timestamp(), "S1", "V1", ev.status.value) for ev in evs
                         if ev.event_time.timestamp() < sealed]


def test_a_surge_baseline_is_stored_a_day_per_record_and_restarts_give_the_same_alerts(tmp_path: Path) -> None:
    """Ten weeks of one call a day in area A at 10:00, then five in that window: the surge fires against the same
    window of the previous eight weeks, whether every state goes through its changelog codec after each day or
    not; the baseline's records are one per day held (a window rewrites its day, not the weeks), and the days
    older than its eight weeks are gone from the store (tombstoned), not only from the baseline."""
    rules = tmp_path / "rules.toml"
    rules.write_text(SURGE_TOML)
    days = 70
    batches = []
    for d in range(days + 1):
        n = 5 if d == days else 1  # the last day's 10:00 window: five calls
        calls = [(T0 + d * 86400 + 30 * i, f"D{d}-{i}") for i in range(n)]
        evs = [iev(iid, "opened", t, event_id=f"o-{iid}") for t, iid in calls]
        evs += [iev(iid, "closed", t + 60, event_id=f"c-{iid}") for t, iid in calls]
        batch = [Record("interventions", partition_for(e.intervention_id.encode(), 4), 0,
                        e.intervention_id.encode(), e.model_dump_json().encode()) for e in evs]
        for v, station in HOME.items():  # the stations' clocks: every source of the book moves on
            u = vev(v, "available_at_station" if d % 2 else "available_on_radio", T0 + d * 86400 + 7200, None,
                    event_id=f"u{d}-{v}", station=station)
            batch.append(Record("vehicle-status", partition_for(station.encode(), 4), 0, station.encode(),
                                u.model_dump_json().encode()))
        batches.append(batch)
    stores: dict[str, dict[str, Any]] = {}
    kept = chain(batches, rules, restart=False)
    assert chain(batches, rules, restart=True, saved=stores) == kept
    end = T0 + days * 86400 + 600
    # usual: one call in that window each of the eight previous weeks: (5 - 1) / max(sd 0, sqrt(1)) = 4 sigma
    assert [r for r in kept if r[3] == end] == [("surge", "A", "A", end, "firing", 4.0, "A: 4 sigma"),
                                                ("surge", "A", "A", end, "pending", 4.0, "A: 4 sigma")]
    book = stores[ALERTS.states[0].name]
    baseline = book["surge/surge/A"]
    held = [int(k.rsplit("/", 1)[1]) for k in book if k.startswith("surge/surge/A/")]
    assert sorted(held) == baseline["d"]  # every day named is stored, and no other
    held.sort()
    assert held == list(range(held[-1] - 8 * 7, held[-1] + 1)), (held, int(T0) // 86400 + days)
    records_held = [book[f"surge/surge/A/{day}"] for day in held]
    assert all(0 < len(r) <= 144 and all(w // 86400 == day for w, _ in r)
               for r, day in zip(records_held, held, strict=True))
