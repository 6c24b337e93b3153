"""Stocks and resources near a place, on the real parts: 1,000 sites x 50 items (several snapshots each, shuffled,
with repeats) and two simulated hours of the brigade through the processors into ClickHouse 18.16, copied into the
current engine; every near query and every panel of « Stocks et moyens » gives the same rows on both engines and
the rows computed here from the events (distances by the chord formula, sectors by shapely). Then the live path:
broker -> worker -> ClickHouse with the stocks simulator's events shuffled, a repeat and bad records, and
`vigie near` on the result."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shapely.geometry import Point, shape

from core.settings import PROJECT_ROOT, Settings
from devtools.produce import make_producer
from devtools.simulator import Simulator
from devtools.stock_simulator import events as simulated_stocks
from grafana import generate, stocks
from grafana.macros import ALL, TimeRange, Variable, expand
from schemas.codec import encode
from schemas.reference import Reference
from schemas.stocks import StockLevelEvent
from sinks.clickhouse import ClickHouseSink
from sinks.near import Around, stocks_in_sector_query, stocks_near_query, vehicles_near_query
from streams import registry
from streams.batch import BatchRunner, partition_for
from streams.processor import Record
from tests.integration.conftest import (
    Stack,
    ch_client,
    new_settings,
    read_topic,
    start_worker,
    stop_worker,
    wait_until,
)
from tests.integration.engines import Engines
from tests.integration.expected_panels import Picture, picture
from tests.unit.test_stocks import chord_m

pytestmark = pytest.mark.integration
START = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
CATEGORIES = ("sandbags", "generator", "pump", "tarpaulin", "drinking_water", "medical_kit", "oxygen", "foam",
              "absorbent", "cots")
DASH = generate.load(stocks.UID)


def query_of(title: str) -> str:
    return next(q.text for q in generate.panel_queries(DASH) if q.panel == title)


def sites_and_items(ref: Reference, seed: int) -> list[StockLevelEvent]:
    """1,000 sites around the brigade (some beyond its sectors), 50 items each, 1 to 3 snapshots per item."""
    rng = random.Random(seed)
    lats = [s.lat for s in ref.stations.values()]
    lons = [s.lon for s in ref.stations.values()]
    out = []
    t0 = START.timestamp()
    for n in range(1000):
        site = f"SITE-{n:04d}"
        lat = round(rng.uniform(min(lats) - 0.05, max(lats) + 0.05), 6)
        lon = round(rng.uniform(min(lons) - 0.05, max(lons) + 0.05), 6)
        given = f"GIVEN-{n % 7}" if n % 4 == 0 else None  # a quarter name their sector
        site_type = ("depot", "station", "partner")[n % 3]
        for k in range(50):
            item, category = f"item-{k:02d}", CATEGORIES[k % len(CATEGORIES)]
            for v in range(1 + (n * 50 + k) % 3):
                on_hand = float(rng.randint(0, 400))
                out.append(StockLevelEvent(
                    schema_version=1, event_id=f"s{n}-{k}-{v}", event_time=datetime.fromtimestamp(
                        t0 + rng.randint(0, 7200), UTC), site_id=site, site_type=site_type, item_id=item,
                    item_category=category, unit="u", qty_on_hand=on_hand,
                    qty_reserved=float(rng.randint(0, int(on_hand))), qty_min=float(rng.randint(0, 150)), lat=lat,
                    lon=lon, sector_id=given))
    return out


def newest(evs: list[StockLevelEvent]) -> dict[tuple[str, str], StockLevelEvent]:
    out: dict[tuple[str, str], StockLevelEvent] = {}
    for e in evs:
        k = (e.site_id, e.item_id)
        if k not in out or (e.event_time, e.event_id) > (out[k].event_time, out[k].event_id):
            out[k] = e
    return out


def shapely_sectors(s: Settings) -> list[tuple[str, Any]]:
    doc = json.loads((s.reference_dir / "sectors.geojson").read_text())
    return [(f["properties"]["sector_id"], shape(f["geometry"])) for f in doc["features"]]


def sector_of(e: StockLevelEvent, shapes: list[tuple[str, Any]]) -> str:
    return e.sector_id or next((sid for sid, g in shapes if g.contains(Point(e.lon, e.lat))), "")


@dataclass
class NearRun:
    s: Settings
    eng: Engines
    stocks: dict[tuple[str, str], StockLevelEvent]
    sectors: dict[tuple[str, str], str]
    p: Picture


@pytest.fixture(scope="module")
def near_run(stack: Stack) -> Iterator[NearRun]:
    s = new_settings(stack)
    ref = Reference.load(s.reference_dir)
    stock_events = sites_and_items(ref, 1)
    order = stock_events + stock_events[::11]  # with repeats
    random.Random(2).shuffle(order)
    brigade = list(Simulator(ref, seed=5, start=START).events(2 * 3600))
    topics = registry.logical_topics(s)
    keyed = [(topics["stock-levels"], e.site_id, e) for e in order] + [(topics[e.topic], e.key, e.event)
                                                                     for e in brigade]
    records = [Record(t, partition_for(k.encode(), s.topic_partitions), i, k.encode(), encode(e))
               for i, (t, k, e) in enumerate(keyed)]
    asyncio.run(BatchRunner(s, registry.processors(s), ClickHouseSink(s), ref).run(records))
    eng = Engines(stack, s)
    kept = newest(stock_events)
    shapes = shapely_sectors(s)
    yield NearRun(s, eng, kept, {k: sector_of(e, shapes) for k, e in kept.items()}, picture(ref, brigade))
    eng.chdb.close()


def test_the_newest_snapshot_of_each_item_is_kept_with_its_sector(near_run: NearRun) -> None:
    got = near_run.eng.both("SELECT site_id, item_id, event_id, qty_available, below_min, sector_id "
                            "FROM stock_levels FINAL ORDER BY site_id, item_id", "levels")
    want = [(k[0], k[1], e.event_id, e.qty_on_hand - e.qty_reserved, int(e.qty_on_hand - e.qty_reserved < e.qty_min),
             near_run.sectors[k]) for k, e in sorted(near_run.stocks.items())]
    assert len(want) == 50_000
    assert [tuple(line.split("\t")) for line in got.splitlines()] == [
        (a, b, c, f"{d:g}", str(e), f) for a, b, c, d, e, f in want]
    met = {sec for sec in near_run.sectors.values()}
    assert "" in met and any(x.startswith("Z") for x in met) and any(x.startswith("GIVEN") for x in met)


def searches() -> list[tuple[Around, str | None]]:
    rng = random.Random(3)
    out: list[tuple[Around, str | None]] = [(Around(48.8566, 2.3522, 5), None), (Around(48.9, 2.2, 0.8), "pump")]
    for _ in range(10):  # (under the queries' 10,000 rows: 25 km with one category)
        radius = rng.choice((0.5, 2, 7, 25))
        category = rng.choice(CATEGORIES if radius == 25 else (None, *CATEGORIES))
        out.append((Around(rng.uniform(48.7, 49.0), rng.uniform(2.15, 2.55), radius), category))
    return out


def expected_near(run: NearRun, around: Around, category: str | None) -> list[tuple[str, str, float]]:
    out = []
    for (site, item), e in run.stocks.items():
        if category is not None and e.item_category != category:
            continue
        d = chord_m(around.lat, around.lon, e.lat, e.lon)
        if d <= around.radius_km * 1000:
            out.append((site, item, d))
    return out


def parse(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


@pytest.mark.parametrize("n", range(len(searches())))
def test_stocks_near_a_point_on_both_engines(near_run: NearRun, n: int) -> None:
    around, category = searches()[n]
    got = parse(near_run.eng.both(stocks_near_query(near_run.s.clickhouse_database, around, category, 10_000),
                                  "stocks near"))
    want = expected_near(near_run, around, category)
    assert len(want) < 10_000
    assert {(r[0], r[2]) for r in got} == {(a, b) for a, b, _ in want}
    by_key = {(a, b): d for a, b, d in want}
    distances = [float(r[-1]) for r in got]
    assert distances == sorted(distances)
    for r in got:
        assert abs(float(r[-1]) - by_key[r[0], r[2]]) < 1.0
        assert r[3] == near_run.stocks[r[0], r[2]].item_category and r[9] == near_run.sectors[r[0], r[2]]


def test_stocks_of_a_sector_on_both_engines(near_run: NearRun) -> None:
    db = near_run.s.clickhouse_database
    for sector, category, around in (("Z12", None, None), ("Z40", "generator", Around(48.86, 2.35, 50)),
                                     ("GIVEN-3", "foam", None)):
        got = parse(near_run.eng.both(stocks_in_sector_query(db, sector, category, around, 10_000), "sector"))
        want = {k for k, sec in near_run.sectors.items()
                if sec == sector and (category is None or near_run.stocks[k].item_category == category)}
        assert want and {(r[0], r[2]) for r in got} == want
        if around is not None:
            for r in got:
                e = near_run.stocks[r[0], r[2]]
                assert abs(float(r[-1]) - chord_m(around.lat, around.lon, e.lat, e.lon)) < 1.0
        else:
            assert [(r[0], r[2]) for r in got] == sorted(want)  # no point: by site, then item


def test_available_vehicles_near_a_point_on_both_engines(near_run: NearRun) -> None:
    db = near_run.s.clickhouse_database
    for around, vtype in ((Around(48.8566, 2.3522, 4), None), (Around(48.80, 2.25, 3), "VSAV"),
                          (Around(48.9, 2.4, 30), "FPT")):
        got = parse(near_run.eng.both(vehicles_near_query(db, around, vtype, 10_000), "vehicles near"))
        want = {vid: chord_m(around.lat, around.lon, v.lat, v.lon) for vid, v in near_run.p.vehicles.items()
                if v.category == "available" and (v.lat, v.lon) != (0, 0) and (vtype in (None, v.vehicle_type))}
        want = {vid: d for vid, d in want.items() if d <= around.radius_km * 1000}
        assert want and {r[0] for r in got} == set(want)
        for r in got:
            assert abs(float(r[-1]) - want[r[0]]) < 1.0


def variables(run: NearRun, lat: str, lon: str, radius: str, category: list[str], sector: list[str]
              ) -> dict[str, Variable]:
    return {"run": Variable("run", run.s.clickhouse_database), "lat": Variable("lat", lat),
            "lon": Variable("lon", lon), "radius_km": Variable("radius_km", radius),
            "category": Variable("category", category), "sector": Variable("sector", sector)}


TR = TimeRange(START, START + timedelta(hours=3))


def test_the_dashboard_panels_on_both_engines(near_run: NearRun) -> None:
    run = near_run
    v = variables(run, "48.8566", "2.3522", "3", ["sandbags", "pump"], [ALL])
    got = parse(run.eng.both(expand(query_of("Stocks dans le rayon, du plus proche au plus loin"), v, TR), "table"))
    want = {(a, b): d for a, b, d in expected_near(run, Around(48.8566, 2.3522, 3), "sandbags")}
    want.update({(a, b): d for a, b, d in expected_near(run, Around(48.8566, 2.3522, 3), "pump")})
    assert {(r[0], r[2]) for r in got} == set(want) and len(got) == len(want)
    for r in got:
        e = run.stocks[r[0], r[2]]
        assert r[7] == ("sous le minimum" if e.qty_on_hand - e.qty_reserved < e.qty_min else "ok")
        assert abs(float(r[9]) * 1000 - want[r[0], r[2]]) <= 5.0  # shown in km, 2 decimals
    sites = parse(run.eng.both(expand(query_of("Sites dans le rayon"), v, TR), "map"))
    per_site: dict[str, list[StockLevelEvent]] = {}
    for site, item in want:
        per_site.setdefault(site, []).append(run.stocks[site, item])
    assert {r[0] for r in sites} == set(per_site)
    for r in sites:
        evs = per_site[r[0]]
        assert float(r[4]) == sum(e.qty_on_hand - e.qty_reserved for e in evs)
        assert int(r[5]) == max(int(e.qty_on_hand - e.qty_reserved < e.qty_min) for e in evs)
        assert int(r[6]) == len(evs)
    vehicles = parse(run.eng.both(expand(query_of("Véhicules disponibles dans le rayon"), v, TR), "vehicles"))
    want_v = {vid for vid, x in run.p.vehicles.items() if x.category == "available" and (x.lat, x.lon) != (0, 0)
              and chord_m(48.8566, 2.3522, x.lat, x.lon) <= 3000}
    assert want_v and {r[0] for r in vehicles} == want_v
    below = parse(run.eng.both(expand(query_of("Sous le minimum, par secteur"), variables(
        run, "0", "0", "1", [ALL], ["Z12", "GIVEN-3"]), TR), "below"))
    count: dict[tuple[str, str], int] = {}
    for k, e in run.stocks.items():
        if run.sectors[k] in ("Z12", "GIVEN-3") and e.qty_on_hand - e.qty_reserved < e.qty_min:
            count[run.sectors[k], e.item_category] = count.get((run.sectors[k], e.item_category), 0) + 1
    assert {(r[0], r[1]): int(r[2]) for r in below} == count


@pytest.mark.parametrize(("lat", "lon", "radius", "valid"), [
    ("48.85", "2.35", "5", "1"), ("91", "2.35", "5", "0"), ("48.85", "2.35", "0", "0"), ("48.85", "2.35", "5000", "0"),
    ("abc", "2.35", "5", "1"),  # not a number: latitude 0, a valid point (the map shows where it searched)
    ("48.85' OR 1=1 --", "2.35", "5", "1"), ("48.85\\", "2.35", "1) OR (1=1", "0")])
def test_the_search_variables_are_checked_and_cannot_change_the_query(near_run: NearRun, lat: str, lon: str,
                                                                      radius: str, valid: str) -> None:
    v = variables(near_run, lat, lon, radius, [ALL], [ALL])
    assert near_run.eng.both(expand(query_of("Recherche"), v, TR), "search").strip() == valid
    got = parse(near_run.eng.both(expand(query_of("Stocks dans le rayon, du plus proche au plus loin"), v, TR),
                                  "table"))
    if valid == "0":
        assert got == []
    else:
        assert all(float(r[9]) <= float(radius) for r in got)


def test_live_worker_stores_the_newest_snapshots_and_vigie_near_reads_them(stack: Stack) -> None:
    s = new_settings(stack)
    ref = Reference.load(s.reference_dir)
    produced = [e for _, _, e in simulated_stocks(ref, START, 86400, seed=4)]
    order = produced + produced[:40]  # repeats
    random.Random(5).shuffle(order)  # any arrival order
    producer = make_producer(s)
    topic = s.topic("stock-levels")
    for e in order:
        producer.produce(topic, key=e.site_id.encode(), value=e.model_dump_json().encode())  # type: ignore[attr-defined]
    bad = produced[0].model_dump(mode="json") | {"qty_reserved": 1e6, "event_id": "too-much"}  # type: ignore[attr-defined]
    producer.produce(topic, key=bad["site_id"].encode(), value=json.dumps(bad).encode())
    producer.produce(topic, key=b"DEPOT-01", value=b"not json")
    assert producer.flush(30) == 0
    worker = start_worker(stack, s, "stocks-worker")
    try:
        ch = ch_client(s)
        wait_until(lambda: ch.execute("SELECT uniqExact(event_id) FROM stock_events")[0][0] == len(produced), 120,
                   "every stock snapshot stored")
        kept = newest(produced)  # type: ignore[arg-type]
        shapes = shapely_sectors(s)
        want = sorted((k[0], k[1], e.event_id, e.qty_on_hand - e.qty_reserved, sector_of(e, shapes))
                      for k, e in kept.items())
        wait_until(lambda: ch.execute("SELECT site_id, item_id, event_id, qty_available, sector_id FROM "
                                      "stock_levels FINAL ORDER BY site_id, item_id") == want, 30, "newest snapshots")
        assert "Z01" in {x[4] for x in want} and all(x[4] for x in want)  # depots too got their sector
        letters = read_topic(s, s.dead_letter_topic, lambda got: len(got) >= 2)
        reasons = sorted(x["reason"] for x in letters)
        assert len(reasons) == 2 and "exceeds qty_on_hand" in reasons[0] + reasons[1], reasons
        assert any("JSON" in r or "json" in r for r in reasons), reasons
    finally:
        stop_worker(worker)
    out = subprocess.run([sys.executable, "-m", "vigie.cli", "near", "--lat", "48.8566", "--lon", "2.3522",
                          "--radius-km", "3", "--category", "medical_kit"], cwd=PROJECT_ROOT, text=True,
                         capture_output=True, timeout=60, env=worker_env(s))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    near_kits = sorted(round(chord_m(48.8566, 2.3522, e.lat, e.lon) / 1000, 2) for e in kept.values()
                       if e.item_category == "medical_kit" and chord_m(48.8566, 2.3522, e.lat, e.lon) <= 3000)
    assert lines[0].startswith(f"{len(near_kits)} stocks")
    assert [float(line.split()[0]) for line in lines[1:1 + len(near_kits)]] == pytest.approx(near_kits, abs=0.011)
    refused = subprocess.run([sys.executable, "-m", "vigie.cli", "near", "--lat", "95", "--lon", "2", "--radius-km",
                              "3"], cwd=PROJECT_ROOT, text=True, capture_output=True, timeout=60, env=worker_env(s))
    assert refused.returncode == 2 and "lat 95.0: between -90 and 90" in refused.stderr


def worker_env(s: Settings) -> dict[str, str]:
    return {**os.environ, **s.to_env()}
