"""Every dashboard panel query, expanded as Grafana and the ClickHouse plugin do, runs on ClickHouse 18.16
and on the current engine (chdb) after a simulated run, gives the same result on both, and shows the
numbers an independent computation from the events expects. Also reports each query's time."""

from __future__ import annotations

import asyncio
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.settings import Settings
from devtools.simulator import Simulator
from grafana import forecasts, generate, situation, station_detail
from grafana.datasources import CLICKHOUSE_PLUGIN
from grafana.macros import ALL, TimeRange, Variable, expand
from schemas.codec import encode
from sinks import queries
from sinks.clickhouse import ClickHouseSink, make_client
from sinks.forecasts import write_forecasts
from streams import registry
from streams.batch import BatchRunner, partition_for
from streams.processor import Record
from streams.rows import ForecastRow
from tests.integration import expected
from tests.integration.conftest import Stack, new_settings
from tests.integration.engines import Engines
from tests.integration.expected_panels import Picture, counts_by, picture, quantile_exact

pytestmark = pytest.mark.integration
START = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
HOURS = 24  # a day of simulated history
SIT = generate.load(situation.UID)
DET = generate.load(station_detail.UID)


def query_of(dash: dict, title: str) -> str:
    """A panel's query by its title (as shown for a run whose availability is tracked)."""
    return next(q.text for q in generate.panel_queries(dash) if q.panel.replace("${availability}", "") == title)


@dataclass
class Run:
    p: Picture
    ref: Any
    windows: dict[tuple, tuple]
    eng: Engines
    events: list[Any]
    settings: Settings
    alert_transitions: list[tuple[str, str, float, str, float]] | None = None  # computed once, by the first test


@pytest.fixture(scope="module")
def run(stack: Stack) -> Iterator[Run]:
    s = new_settings(stack)
    from schemas.reference import Reference

    ref = Reference.load(s.reference_dir)
    # major incidents: an area's crewed VSAV run low now and then (the alerts panel); with this seed alerts still
    # fire at the end of the day (an ambulance at hospital, a station without VSAV): the panels are checked on them
    events = list(Simulator(ref, seed=22, start=START, major_incidents_per_day=3).events(HOURS * 3600))
    topics = registry.logical_topics(s)
    records = [Record(topics[e.topic], partition_for(e.key.encode(), s.topic_partitions), i, e.key.encode(),
                      encode(e.event)) for i, e in enumerate(events)]
    asyncio.run(BatchRunner(s, registry.processors(s), ClickHouseSink(s), ref).run(records))
    client = make_client(s, s.clickhouse_database)
    write_forecasts(client, s.clickhouse_database, hand_made_forecasts(picture(ref, events)))
    client.disconnect()
    engines = Engines(stack, s)
    RUN_DB[:] = [s.clickhouse_database]
    p = picture(ref, events)
    windows = expected.station_windows(ref, events, 60, tr(p).end.timestamp() + 1)
    yield Run(p, ref, windows, engines, events, s)
    engines.chdb.close()


def hand_made_forecasts(p: Picture) -> list[ForecastRow]:
    """Forecasts of the simulated day (1 h, 3 h and the day; every sector seen and ``*``) with values made up
    here, so that the panels' output can be computed from them and the events alone."""
    sectors = sorted({i["sector"] for i in p.interventions.values() if i["opened"] is not None})
    rows = []
    for hours in (1, 3, 24):
        for b in range(0, HOURS + 24, hours):  # and a day after the events: bins not begun
            start = START.timestamp() + b * 3600
            total = 0.0
            for k, sector in enumerate(sectors):
                mean = round(0.1 * ((b + k) % 7), 1)
                total += mean
                rows.append(ForecastRow(start, start + hours * 3600, hours, sector, "profile", START.timestamp(),
                                        mean, 0, int(mean), int(mean) + 1, int(mean) + (b + k) % 3, 0.0))
            rows.append(ForecastRow(start, start + hours * 3600, hours, "*", "profile", START.timestamp(),
                                    round(total, 1), int(total * 0.8), int(total), int(total * 1.1),
                                    int(total * 1.2), 0.0))
    return rows


def tr(p: Picture, interval_s: int = 60) -> TimeRange:
    end = p.clock - 600
    end -= end % 60
    return TimeRange(START, datetime.fromtimestamp(end - 1, UTC), interval_s)


RUN_DB: list[str] = []  # the run's database, set by the fixture (the dashboards' `run` variable)


def state(**selected: list[str]) -> dict[str, Variable]:
    out = {n: Variable(n, v, options=()) for n, v in selected.items()}
    out["run"] = Variable("run", RUN_DB[0])
    out.update({n: Variable(n, d) for n, d in
                (("turnout_target_s", "120"), ("travel_target_s", "600"), ("arrival_target_s", "720"))})
    return out


def rows(engines: Engines, name: str, sql: str) -> list[list[str]]:
    text = engines.both(sql, name)
    return [line.split("\t") for line in text.splitlines()]


def ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


AREA_STATES = [["$__all"], ["G2"]]


@pytest.mark.parametrize("areas", AREA_STATES)
def test_wall_screen_current_state_panels(run, areas: list[str]) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    vars_ = state(area=areas)
    seen = [v for v in p.vehicles.values() if areas == [ALL] or v.area in areas]
    for title, cat in (("Disponibles par type", "available"), ("Engagés par type", "engaged"),
                       ("Hors service par type", "out_of_service")):
        got = {r[0]: int(r[1]) for r in rows(eng, title, expand(query_of(SIT, title), vars_, tr(p)))}
        assert got == counts_by(seen, lambda v: v.vehicle_type, cat), title
    per_area_type = counts_by(seen, lambda v: (v.area, v.vehicle_type), "available")
    got = {r[0]: int(r[1]) for r in rows(eng, "exhausted", expand(query_of(SIT, "Types épuisés par groupement"),
                                                                 vars_, tr(p)))}
    want: dict[str, int] = defaultdict(int)
    for (area, _), n in per_area_type.items():
        want[area] += n == 0
    assert got == dict(want)
    got_short = [(r[0], r[1]) for r in rows(eng, "shortages", expand(
        query_of(SIT, "Ruptures : type sans véhicule disponible"), vars_, tr(p)))]
    assert got_short == sorted(k for k, n in per_area_type.items() if n == 0)
    got_pct = {r[0]: float(r[1]) for r in rows(eng, "capacity per area", expand(
        query_of(SIT, "Capacité disponible par groupement"), vars_, tr(p)))}
    avail = counts_by(seen, lambda v: v.area, "available")
    total: dict[str, int] = defaultdict(int)
    for v in seen:
        total[v.area] += 1
    assert got_pct.keys() == avail.keys()
    for area, pct in got_pct.items():
        assert pct == pytest.approx(100 * avail[area] / total[area], abs=0.051)
    # vehicles on the map: last known position and category
    got_pos = {r[0]: (r[4], float(r[6]), float(r[7])) for r in rows(eng, "positions", expand(
        query_of(SIT, "Véhicules"), vars_, tr(p)))}
    assert got_pos == {vid: (v.category, v.lat, v.lon) for vid, v in p.vehicles.items() if v in seen}


@pytest.mark.parametrize("areas", AREA_STATES)
def test_wall_screen_open_interventions(run, areas: list[str]) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    got = rows(eng, "open interventions", expand(query_of(SIT, "Interventions en cours"), state(area=areas), tr(p)))
    units: dict[str, list[str]] = defaultdict(list)
    for vid, v in p.vehicles.items():
        if v.category == "engaged" and v.intervention and (areas == [ALL] or v.area in areas):
            units[v.intervention].append(vid)
    want = []
    for iid, i in p.interventions.items():
        if i["opened"] is not None and i["closed"] is None and (areas == [ALL] or units.get(iid)):
            want.append((i["priority"], i["opened"], iid, i["nature"], i["sector"],
                         int(p.clock - i["opened"]), len(units.get(iid, [])), sorted(units.get(iid, []))))
    want.sort()
    assert len(want) > 3
    assert [(int(r[2]), ts(r[4]), r[0], r[1], r[3], int(r[5]), int(r[6]), sorted(r[7].split()))
            for r in got] == want[:100]


@pytest.mark.parametrize("selection", ["all", "one area"])
def test_wall_screen_firing_alerts(run, selection: str) -> None:  # type: ignore[no-untyped-def]
    """The alerts table holds the transitions computed from the events; the panel shows those whose latest
    transition is « firing », the most severe first, then the oldest (all areas, or the area of one of them); the
    board's query too."""
    s, ref, eng = run.settings, run.ref, run.eng
    rules = {r["name"]: dict(r) for r in tomllib.loads(s.alert_rules.read_text())["rule"]}
    if run.alert_transitions is None:  # the oracle is slow (it recomputes every scope at every event): once
        run.alert_transitions = expected.alert_transitions(ref, run.events, list(rules.values()),
                                                           s.allowed_lateness_seconds, s.topic_partitions)
    want = run.alert_transitions
    stored = sorted((r[0], r[1], ts(r[2]), r[3], float(r[4])) for r in rows(
        eng, "alerts", "SELECT rule, scope_key, at, transition, value FROM alerts FINAL"))
    assert stored == want
    assert {"staffed-vsav-below-30pct", "station-without-vsav", "at-hospital-over-45min",
            "intervention-without-unit"} <= {w[0] for w in want}
    rank = {"cancelled": 0, "resolved": 0, "pending": 1, "firing": 2}
    latest: dict[tuple[str, str], tuple[float, int, str]] = {}
    for rule, key, at, transition, _ in want:
        latest[(rule, key)] = max(latest.get((rule, key), (at, -1, "")), (at, rank[transition], transition))

    calls = expected.intervention_areas(ref, run.events)
    stored_areas = dict(rows(eng, "call alert areas", "SELECT DISTINCT scope_key, area FROM alerts "
                                                      "WHERE measure = 'unassigned_minutes' ORDER BY scope_key"))
    assert stored_areas == {key: calls[key] for rule, key, *_ in want if rules[rule]["measure"] == "unassigned_minutes"}

    def area_of(key: str) -> str:  # a station's, an area, or an intervention's (the nearest station's)
        where = key.split("/")[0]
        return ref.stations[where].area if where in ref.stations else calls.get(where, where)

    severity = {"critical": 0, "warning": 1, "info": 2}
    every = sorted(area_of(key) for (_, key), (_, _, tr) in latest.items() if tr == "firing")
    areas = [ALL] if selection == "all" or not every else [every[-1]]
    firing = sorted((severity[rules[rule]["severity"]], at, rule, key) for (rule, key), (at, _, tr) in latest.items()
                    if tr == "firing" and (areas == [ALL] or area_of(key) in areas))
    assert firing, "nothing firing at the end of the day: the panel would be checked on nothing"
    got = rows(eng, "firing alerts", expand(query_of(SIT, "Alertes en cours"), state(area=areas), tr(run.p)))
    level = {0: "critique", 1: "alerte", 2: "info"}
    assert [(r[0], ts(r[1]), r[3]) for r in got] == [(level[sv], at, rule) for sv, at, rule, _ in firing]
    if areas == [ALL]:
        board = rows(eng, "board alerts", queries.firing_alerts_query(s.clickhouse_database))
        assert [(r[3], r[4]) for r in board] == [(rule, key) for _, _, rule, key in firing]
    # the annotations: each episode from firing to its resolution (to the clock while it fires) that overlaps
    # the time range
    t = tr(run.p)
    episodes = []
    for rule, key, at, transition, _ in want:
        if transition != "firing" or at > t.end.timestamp() or (areas != [ALL] and area_of(key) not in areas):
            continue
        end = min((a for r, k, a, tr_, _ in want if (r, k) == (rule, key) and tr_ == "resolved" and a >= at),
                  default=None)
        if end is None or end >= t.start.timestamp():
            episodes.append((at, end if end is not None else run.p.clock, rule, key))
    assert len(episodes) > 2 and any(e[1] > t.end.timestamp() for e in episodes)
    notes = rows(eng, "alert annotations", expand(query_of(SIT, "annotation: Alertes"), state(area=areas), t))
    assert [(ts(r[0]), ts(r[1]), r[2].rsplit(" — ", 1)[1], r[3]) for r in notes] == [
        (at, end, f"{rule} [{key}]", f"{rules[rule]['severity']},{rule}") for at, end, rule, key in sorted(
            episodes, key=lambda e: (e[0], e[2], e[3]))]


@pytest.mark.parametrize("interval_s", [60, 300])
@pytest.mark.parametrize("areas", AREA_STATES)
def test_wall_screen_available_trend(run, areas: list[str], interval_s: int) -> None:  # type: ignore[no-untyped-def]
    p, ref, windows, eng = run.p, run.ref, run.windows, run.eng
    t = tr(p, interval_s)
    per_minute: dict[tuple[float, str], int] = defaultdict(int)
    for (w, station, vtype), vals in windows.items():
        if t.start.timestamp() <= w <= t.end.timestamp() and (areas == [ALL] or ref.stations[station].area in areas):
            per_minute[(w, vtype)] += vals[0]
    want: dict[tuple[float, str], int] = {}
    for (w, vtype), n in per_minute.items():
        k = (w - w % interval_s, vtype)
        want[k] = min(n, want.get(k, n))
    got = {(ts(r[0]), r[1]): int(r[2]) for r in rows(eng, f"trend {interval_s}s", expand(
        query_of(SIT, "Capacité disponible — tendance"), state(area=areas), t))}
    assert got == want and len(got) > 10


def test_wall_screen_response_times_against_targets(run) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    t = tr(p)
    lo, hi = t.start.timestamp(), t.end.timestamp()
    segments = {
        "call -> first arrival": ([], 720.0), "travel (en route -> on scene)": ([], 600.0),
        "turnout (dispatched -> en route)": ([], 120.0)}
    first_arrival: dict[str, float] = {}
    for g in p.engagements.values():
        if g.dispatched is not None and lo <= g.dispatched <= hi:
            if g.turnout() is not None:
                segments["turnout (dispatched -> en route)"][0].append(g.turnout())
            if g.travel() is not None:
                segments["travel (en route -> on scene)"][0].append(g.travel())
        if g.on_scene is not None and g.dispatched is not None and g.dispatched >= lo - 86400:
            first_arrival[g.intervention] = min(g.on_scene, first_arrival.get(g.intervention, g.on_scene))
    for iid, i in p.interventions.items():
        if i["opened"] is not None and lo <= i["opened"] <= hi and iid in first_arrival:
            segments["call -> first arrival"][0].append(first_arrival[iid] - i["opened"])
    got = rows(eng, "response times", expand(query_of(SIT, "Délais d'intervention vs objectifs"), state(area=[ALL]), t))
    assert [r[0] for r in got] == sorted(segments)
    for r in got:
        values, target = segments[r[0]]
        assert int(r[1]) == len(values) > 10
        assert float(r[2]) == pytest.approx(quantile_exact(values, 0.5))
        assert float(r[3]) == pytest.approx(quantile_exact(values, 0.9))
        assert float(r[4]) == target
        assert float(r[5]) == pytest.approx(100 * sum(x <= target for x in values) / len(values), abs=0.051)


QUALS = (("crew_leader", "chefs_agres"), ("driver", "conducteurs"), ("team_leader", "chefs_equipe"),
         ("team_member", "equipiers"))


@pytest.mark.parametrize("areas", AREA_STATES)
def test_wall_screen_staffed_capacity_and_staff(run, areas: list[str]) -> None:  # type: ignore[no-untyped-def]
    ref, eng, p = run.ref, run.eng, run.p
    cap = expected.capacity_now(ref, run.events)  # (station, type) -> (vehicles, available, staffed, uncrewed, tracked)
    staff = expected.staff_now(ref, run.events)  # (station, qualification) -> (on duty, assigned, available, unavail.)
    mine = {k: v for k, v in cap.items() if v[4] and (areas == [ALL] or ref.stations[k[0]].area in areas)}
    want: dict[str, int] = defaultdict(int)
    for (_, vtype), v in mine.items():
        want[vtype] += v[2]
    got = {r[0]: int(r[1]) for r in rows(eng, "staffed by type", expand(query_of(SIT, "Armables par type"),
                                                                         state(area=areas), tr(p)))}
    assert got == dict(want) and sum(got.values()) > 0
    avail_now = {r[0]: int(r[1]) for r in rows(eng, "available by type", expand(
        query_of(SIT, "Disponibles par type"), state(area=areas), tr(p)))}
    assert all(got[t] <= avail_now[t] for t in got)
    per_area: dict[str, list[int]] = defaultdict(lambda: [0] * 5)
    for (sid, q), v in staff.items():
        area = ref.stations[sid].area
        if areas == [ALL] or area in areas:
            per_area[area][[x for x, _ in QUALS].index(q)] += v[2]
    for (sid, _), v in mine.items():
        per_area[ref.stations[sid].area][4] += v[3]
    got_staff = {r[0]: [int(x) for x in r[1:]] for r in rows(eng, "staff per area", expand(
        query_of(SIT, "Personnel disponible par qualification"), state(area=areas), tr(p)))}
    assert got_staff == dict(per_area) and got_staff


DETAIL_STATES = [
    {"area": [ALL], "station": [ALL], "vehicle_type": [ALL]},
    {"area": ["G1"], "station": ["S01", "S05"], "vehicle_type": ["VSAV", "FPT"]},
]


def in_scope(sel: dict[str, list[str]], area: str, station: str, vtype: str) -> bool:
    return all(sel[k] == [ALL] or v in sel[k] for k, v in (("area", area), ("station", station),
                                                            ("vehicle_type", vtype)))


@pytest.mark.parametrize("sel", DETAIL_STATES)
def test_station_detail_panels(run, sel: dict[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    p, ref, windows, eng = run.p, run.ref, run.windows, run.eng
    t = tr(p)
    lo, hi = t.start.timestamp(), t.end.timestamp()
    vars_ = state(**sel)
    # capacity now
    cap: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for v in p.vehicles.values():
        if in_scope(sel, v.area, v.station, v.vehicle_type):
            c = cap[(v.station, v.area, v.vehicle_type)]
            for i, cat in enumerate(("available", "engaged", "out_of_service")):
                c[i] += v.category == cat
    got = {(r[0], r[1], r[2]): [int(x) for x in r[3:6]] for r in rows(
        eng, "capacity now", expand(query_of(DET, "Capacité actuelle par centre et type"), vars_, t))}
    assert got == dict(cap) and got
    # available trend and engaged vehicle-hours per hour, from the 1-minute windows
    avail: dict[tuple[float, str], int] = defaultdict(int)
    minutes: dict[tuple[float, str], float] = defaultdict(float)
    for (w, station, vtype), vals in windows.items():
        if lo <= w <= hi and in_scope(sel, ref.stations[station].area, station, vtype):
            avail[(w, vtype)] += vals[0]
            minutes[(w - w % 3600, vtype)] += vals[5]
    got_avail = {(ts(r[0]), r[1]): int(r[2]) for r in rows(eng, "detail trend", expand(
        query_of(DET, "Disponibles — tendance"), vars_, t))}
    assert got_avail == dict(avail)
    got_hours = {(ts(r[0]), r[1]): float(r[2]) for r in rows(eng, "engaged hours", expand(
        query_of(DET, "Heures-véhicules engagées par heure"), vars_, t))}
    assert got_hours.keys() == minutes.keys()
    for k, m in minutes.items():
        assert got_hours[k] == pytest.approx(m / 60, abs=0.0051), k
    # engagements of the selection dispatched in the range
    mine = [g for g in p.engagements.values()
            if g.dispatched is not None and lo <= g.dispatched <= hi
            and in_scope(sel, g.area, g.station, g.vehicle_type)]
    served: dict[float, set[str]] = defaultdict(set)
    for g in mine:
        served[g.dispatched - g.dispatched % 3600].add(g.intervention)
    got_served = {ts(r[0]): int(r[1]) for r in rows(eng, "served per hour", expand(
        query_of(DET, "Interventions servies par heure"), vars_, t))}
    assert got_served == {h: len(i) for h, i in served.items()} and got_served
    per_station: dict[str, list] = defaultdict(list)
    for g in mine:
        per_station[g.station].append(g)
    got_rt = rows(eng, "response per station", expand(query_of(DET, "Délais par centre"), vars_, t))
    assert [r[0] for r in got_rt] == sorted(per_station)
    for r in got_rt:
        gs = per_station[r[0]]
        assert int(r[1]) == len(gs)
        for col, values, level in ((2, [g.turnout() for g in gs], 0.5), (3, [g.turnout() for g in gs], 0.9),
                                   (4, [g.travel() for g in gs], 0.5), (5, [g.travel() for g in gs], 0.9)):
            vals = [x for x in values if x is not None]
            if vals:
                assert float(r[col]) == pytest.approx(quantile_exact(vals, level)), (r[0], col)
            else:
                assert r[col] in ("0", "nan"), (r[0], col)
    recent = rows(eng, "recent engagements", expand(query_of(DET, "Engagements récents"), vars_, t))
    want_recent = sorted(mine, key=lambda g: (-g.dispatched, g.vehicle))[:200]
    assert [(ts(r[0]), r[1], r[4]) for r in recent] == [(g.dispatched, g.vehicle, g.intervention)
                                                         for g in want_recent]


@pytest.mark.parametrize("sel", DETAIL_STATES)
def test_station_detail_staffing_panels(run, sel: dict[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    p, ref, eng = run.p, run.ref, run.eng
    t = tr(p)
    lo, hi = t.start.timestamp(), t.end.timestamp()
    vars_ = state(**sel)
    cap = expected.capacity_now(ref, run.events)
    want_now = sorted((sid, ref.stations[sid].area, vtype, v[1], v[2], v[3]) for (sid, vtype), v in cap.items()
                      if v[4] and in_scope(sel, ref.stations[sid].area, sid, vtype))
    got_now = [(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows(eng, "staffed now", expand(
        query_of(DET, "Capacité armée par centre et type"), vars_, t))]
    assert got_now == want_now and got_now
    windows, _ = expected.crew_windows(ref, run.events, 60, hi + 1)
    trend: dict[tuple[float, str], int] = defaultdict(int)
    for (w, sid, vtype), (_, min_staffed, tracked) in windows.items():
        if tracked and lo <= w <= hi and in_scope(sel, ref.stations[sid].area, sid, vtype):
            trend[(w, vtype)] += min_staffed
    got_trend = {(ts(r[0]), r[1]): int(r[2]) for r in rows(eng, "staffed trend", expand(
        query_of(DET, "Armables — tendance"), vars_, t))}
    assert got_trend == dict(trend) and got_trend
    staff = expected.staff_now(ref, run.events)
    per_station: dict[str, list[int]] = defaultdict(lambda: [0] * 4)
    for (sid, q), v in staff.items():
        if in_scope({**sel, "vehicle_type": [ALL]}, ref.stations[sid].area, sid, ""):
            per_station[sid][[x for x, _ in QUALS].index(q)] += v[2]
    got_staff = {r[0]: [int(x) for x in r[2:]] for r in rows(eng, "staff per station", expand(
        query_of(DET, "Personnel disponible par centre"), vars_, t))}
    assert got_staff == dict(per_station) and got_staff


@pytest.mark.parametrize("dash", [SIT, DET], ids=["situation", "station-detail"])
def test_variable_queries(run, dash: dict) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    for name, sql in generate.variable_queries(dash).items():
        if name == "run":  # every database holding Vigie's tables: on the shared server, all the tests' too
            assert RUN_DB[0] in eng.old(expand(sql, state(), tr(p))).splitlines()
            continue
        got = [line for line in eng.both(expand(sql, state(area=["G1"]), tr(p)), f"variable {name}").splitlines()]
        values = {"area": {v.area for v in p.vehicles.values()},
                  "station": {v.station for v in p.vehicles.values() if v.area == "G1"},
                  "vehicle_type": {v.vehicle_type for v in p.vehicles.values()},
                  "availability": {""}}[name]  # a simulated run tracks every vehicle: no note in the titles
        assert got == sorted(values), name


FC = generate.load(forecasts.UID)


def opened_per_hour(p: Picture) -> dict[tuple[str, float], int]:
    """(sector, hour start) -> interventions opened, with every sector together as ``*``."""
    out: dict[tuple[str, float], int] = defaultdict(int)
    for i in p.interventions.values():
        if i["opened"] is not None:
            hour = i["opened"] - i["opened"] % 3600
            out[(i["sector"], hour)] += 1
            out[("*", hour)] += 1
    return out


def counted_clock(p: Picture) -> float:
    """The forecasts' situation clock: the newest minute with an intervention opened."""
    newest = max(i["opened"] for i in p.interventions.values() if i["opened"] is not None)
    return newest - newest % 60


def fc_state(sector: str, bin_hours: str) -> dict[str, Variable]:
    return {"run": Variable("run", RUN_DB[0]), "sector": Variable("sector", sector),
            "bin": Variable("bin", bin_hours)}


@pytest.mark.parametrize(("sector", "bin_hours"), [("*", 1), ("*", 24), ("first", 3)])
def test_forecast_panels_expected_against_observed(run, sector: str, bin_hours: int) -> None:  # type: ignore[no-untyped-def]
    """Per bin: the forecast made, and the interventions opened in its hours — exact for bins over before the
    last 10 minutes of events (those windows are surely sealed), between the two counts for the bin in progress,
    none for bins not begun."""
    p, eng = run.p, run.eng
    made = hand_made_forecasts(p)
    if sector == "first":
        sector = sorted({r.sector for r in made} - {"*"})[0]
    opened, clock = opened_per_hour(p), counted_clock(p)
    sealed = tr(p).end.timestamp()
    rng = TimeRange(START, START + timedelta(hours=HOURS + 6))
    want = [r for r in made if r.bin_hours == bin_hours and r.sector == sector
            and rng.start.timestamp() <= r.bin_start <= rng.end.timestamp()]
    queries = [(f"fc {sector} {bin_hours}", expand(query_of(FC, "Attendu / observé"),
                                                   fc_state(sector, str(bin_hours)), rng))]
    if (sector, bin_hours) == ("*", 1):  # the wall screen's panel is the same query for all sectors, per hour
        queries.append(("wall fc", expand(query_of(SIT, "Interventions : attendu / observé"), state(area=[ALL]),
                                          rng)))
    for name, sql in queries:
        got = rows(eng, name, sql)
        assert [(ts(g[0]), float(g[1]), int(g[2]), int(g[3])) for g in got] == [
            (r.bin_start, round(r.mean, 2), r.q10, r.q90) for r in want], name
        phases = set()
        for g, r in zip(got, want, strict=True):
            in_bin = sum(opened.get((sector, h), 0) for h in range(int(r.bin_start), int(r.bin_end), 3600))
            if r.bin_start > clock:
                phases.add("not begun")
                assert g[4] == "\\N", (name, r)
            elif r.bin_end <= sealed:
                phases.add("over")
                assert int(g[4]) == in_bin, (name, r)
            else:
                phases.add("in progress")
                before = sum(1 for i in p.interventions.values() if i["opened"] is not None
                             and (sector == "*" or i["sector"] == sector) and r.bin_start <= i["opened"] < sealed)
                assert before <= int(g[4]) <= in_bin, (name, r)
        assert phases == {"not begun", "over", "in progress"} if bin_hours < 24 else phases >= {"not begun"}


def test_forecast_reliability_and_days_ahead(run) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    made = hand_made_forecasts(p)
    opened, clock = opened_per_hour(p), counted_clock(p)
    rng = tr(p)
    per_sector: dict[str, list[tuple[float, int, int, int]]] = defaultdict(list)
    for r in made:
        if r.bin_hours == 1 and rng.start.timestamp() <= r.bin_start <= rng.end.timestamp() and r.bin_end <= clock:
            per_sector[r.sector].append((r.mean, r.q10, r.q90, opened.get((r.sector, r.bin_start), 0)))
    want = {sector: (len(b), round(sum(abs(y - m) for m, _, _, y in b) / len(b), 2),
                     round(100 * sum(lo <= y <= hi for _, lo, hi, y in b) / len(b), 1),
                     round(100 * sum(y > hi for _, _, hi, y in b) / len(b), 1)) for sector, b in per_sector.items()}
    got = {r[0]: (int(r[1]), float(r[2]), float(r[3]), float(r[4]))
           for r in rows(eng, "fc reliability", expand(query_of(FC, "Fiabilité des prévisions"), fc_state("*", "1"),
                                                       rng))}
    assert got.keys() == want.keys() and len(got) > 10
    for sector, figures in want.items():
        assert got[sector][0] == figures[0] and got[sector][1:] == pytest.approx(figures[1:], abs=0.051), sector
    days = sorted(((r.bin_start, round(r.mean, 1), r.sector, r.q10, r.q90) for r in made
                   if r.bin_hours == 24 and r.bin_end > clock), key=lambda d: (d[0], -d[1], d[2]))[:500]
    got_days = [(ts(r[0]), float(r[2]), r[1], int(r[3]), int(r[4]))
                for r in rows(eng, "fc days", expand(query_of(FC, "Jours à venir par secteur"), fc_state("*", "1"),
                                                     rng))]
    assert got_days == days and days


def test_every_panel_query_was_checked_and_its_time_reported(run) -> None:  # type: ignore[no-untyped-def]
    p, eng = run.p, run.eng
    n = 0
    for dash in (SIT, DET, FC):
        for q in generate.panel_queries(dash):
            assert q.datasource == CLICKHOUSE_PLUGIN
            sql = expand(q.text, {**state(area=[ALL], station=[ALL], vehicle_type=[ALL]), **fc_state("*", "1")},
                         tr(p, 300))
            for _ in range(5):
                eng.old(sql + "\nFORMAT Null", f"{dash['uid']}: {q.panel}")
            n += 1
    print(f"\npanel query times on ClickHouse 18.16, {HOURS} h of simulated history (5 runs each):")
    for name, times in sorted(eng.timings.items()):
        if len(times) >= 5:
            print(f"  {1000 * max(times):7.1f} ms max  {1000 * sorted(times)[len(times) // 2]:7.1f} ms median  {name}")
    assert n == len([q for d in (SIT, DET, FC) for q in generate.panel_queries(d)])


def test_the_dashboards_user_reads_but_cannot_write(run) -> None:  # type: ignore[no-untyped-def]
    eng = run.eng
    assert int(eng.old("SELECT count() FROM vehicle_state")) > 0
    for stmt in ("INSERT INTO vehicle_state (vehicle_id) VALUES ('X')", "DROP TABLE vehicle_state",
                 "CREATE TABLE evil (x UInt8) ENGINE = Memory"):
        with pytest.raises(urllib.error.HTTPError) as err:
            eng.old(stmt)
        assert "readonly" in err.value.read().decode().lower(), stmt
    assert int(eng.old("SELECT count() FROM vehicle_state SETTINGS max_execution_time = 30")) > 0
