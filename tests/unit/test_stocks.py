"""Stocks near a place, without Kafka: distances (Python and SQL on the current engine) against an independent
formula, sectors from polygons against shapely, the newest snapshot per (site, item) whatever the arrival order
(property), and the engine's dead letters. The 18.16 server and the broker: tests/integration/test_stocks.py."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from core.geo import EARTH_RADIUS_M, Sectors, haversine_m, voronoi_sectors
from core.settings import Settings
from schemas.reference import Reference
from sinks.near import Around, NearError, haversine_sql, stocks_near_query
from streams.processor import Record
from streams.processors.stocks import LEVELS_TABLE, STATES, Site, StockEngine


def chord_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance from the chord between the two unit vectors (another formula than the haversine)."""
    def vec(lat: float, lon: float) -> tuple[float, float, float]:
        p, q = math.radians(lat), math.radians(lon)
        return math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p)
    a, b = vec(lat1, lon1), vec(lat2, lon2)
    chord = math.dist(a, b)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, chord / 2))


def random_pairs(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        lat, lon = rng.uniform(-85, 85), rng.uniform(-180, 180)
        if rng.random() < 0.5:  # near each other (a town), else anywhere
            pairs.append((lat, lon, lat + rng.uniform(-0.2, 0.2), lon + rng.uniform(-0.2, 0.2)))
        else:
            pairs.append((lat, lon, rng.uniform(-85, 85), rng.uniform(-180, 180)))
    return pairs


def test_haversine_equals_the_chord_formula_and_known_distances() -> None:
    for lat1, lon1, lat2, lon2 in random_pairs(2000, 1):
        assert abs(haversine_m(lat1, lon1, lat2, lon2) - chord_m(lat1, lon1, lat2, lon2)) < 0.01
    # one degree of a meridian on this sphere; a quarter of the equator
    assert haversine_m(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180, abs=1e-6)
    assert haversine_m(0, 0, 0, 90) == pytest.approx(EARTH_RADIUS_M * math.pi / 2, abs=1e-6)


def test_the_sql_distance_equals_the_python_haversine_within_a_metre(chdb) -> None:  # type: ignore[no-untyped-def]
    pairs = random_pairs(500, 2)
    rows = " UNION ALL ".join(
        f"SELECT {i} AS i, {haversine_sql(repr(a), repr(b), repr(c), repr(d))} AS m"
        for i, (a, b, c, d) in enumerate(pairs))
    got = dict(json.loads(line) for line in chdb.query(f"SELECT i, m FROM ({rows}) ORDER BY i",
                                                       "JSONCompactEachRow").data().split("\n") if line)
    for i, (a, b, c, d) in enumerate(pairs):
        assert abs(got[i] - chord_m(a, b, c, d)) < 1.0


@pytest.fixture(scope="module")
def chdb():  # type: ignore[no-untyped-def]
    chdb_session = pytest.importorskip("chdb.session")
    s = chdb_session.Session()
    yield s
    s.close()


SQUARE_WITH_HOLE = {"type": "Feature", "properties": {"sector_id": "HOLE"}, "geometry": {
    "type": "Polygon",
    "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]}}
TWO_ISLANDS = {"type": "Feature", "properties": {"sector_id": "ISLANDS"}, "geometry": {
    "type": "MultiPolygon",
    "coordinates": [[[[5, 0], [7, 0], [6, 3], [5, 0]]], [[[5, 4], [9, 4], [9, 5], [7, 8], [5, 4]]]]}}
CONCAVE = {"type": "Feature", "properties": {"sector_id": "C"}, "geometry": {
    "type": "Polygon", "coordinates": [[[0, 5], [4, 5], [4, 9], [2, 6], [0, 9], [0, 5]]]}}


def test_sectors_equal_shapelys_on_random_points() -> None:
    doc = {"type": "FeatureCollection", "features": [SQUARE_WITH_HOLE, TWO_ISLANDS, CONCAVE]}
    sectors = Sectors.from_geojson(doc)
    shapes = [(f["properties"]["sector_id"], shape(f["geometry"])) for f in doc["features"]]
    rng = random.Random(3)
    met = set()
    for _ in range(5000):
        lon, lat = rng.uniform(-1, 10), rng.uniform(-1, 10)
        want = next((sid for sid, g in shapes if g.contains(Point(lon, lat))), "")
        assert sectors.locate(lat, lon) == want, (lat, lon)
        met.add(want)
    assert met == {"", "HOLE", "ISLANDS", "C"}
    assert sectors.locate(2, 2) == ""  # in the hole


def test_the_simulated_brigades_sectors_equal_shapelys_and_the_nearest_station() -> None:
    ref = Reference.load(Settings().reference_dir)
    doc = json.loads((Settings().reference_dir / "sectors.geojson").read_text())
    shapes = [(f["properties"]["sector_id"], shape(f["geometry"])) for f in doc["features"]]
    stations = list(ref.stations.values())
    lat0 = math.radians(sum(s.lat for s in stations) / len(stations))
    rng = random.Random(4)
    lats, lons = [s.lat for s in stations], [s.lon for s in stations]
    for _ in range(2000):  # within the stations' box: the sectors cover it (and 0.02° around)
        lat, lon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
        got = ref.sectors.locate(lat, lon)
        assert got == next((sid for sid, g in shapes if g.contains(Point(lon, lat))), ""), (lat, lon)
        nearest = min(stations, key=lambda s: math.hypot(s.lat - lat, (s.lon - lon) * math.cos(lat0)))
        assert got == f"Z{nearest.station_id[1:]}"
    assert voronoi_sectors([("A", 48.8, 2.3), ("B", 48.8, 2.4)]).locate(48.8, 2.34) == "A"


def test_a_bad_sectors_file_is_refused_with_a_reason() -> None:
    from core.geo import SectorError

    with pytest.raises(SectorError, match="sector_id"):
        Sectors.from_geojson({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                                          "geometry": SQUARE_WITH_HOLE["geometry"]}]})
    with pytest.raises(SectorError, match="Polygon"):
        Sectors.from_geojson({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"sector_id": "P"},
             "geometry": {"type": "Point", "coordinates": [0, 0]}}]})


def snapshot(site: str, item: str, t: int, eid: str, on_hand: float, reserved: float = 0.0, minimum: float = 5.0,
             lat: float = 48.85, lon: float = 2.35, sector: str | None = "Z01", **extra: object) -> dict:  # type: ignore[type-arg]
    doc = {"schema_version": 1, "event_id": eid, "event_time": datetime.fromtimestamp(t, UTC).isoformat(),
           "site_id": site, "site_type": "depot", "item_id": item, "item_category": f"cat-{item}", "unit": "u",
           "qty_on_hand": on_hand, "qty_reserved": reserved, "qty_min": minimum, "lat": lat, "lon": lon,
           "sector_id": sector, **extra}
    return doc


def record(doc: dict, offset: int = 0, key: str | None = None) -> Record:  # type: ignore[type-arg]
    return Record("stock-levels", 0, offset, (key or doc["site_id"]).encode(), json.dumps(doc).encode())


def run(engine: StockEngine, stores: dict, batches: list[list[Record]]) -> list:  # type: ignore[type-arg]
    """Every batch through the engine: the rows, in the order they would be inserted."""
    return [r for batch in batches for r in engine.process(batch, stores).rows.get(LEVELS_TABLE, [])]


snapshots = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["x", "y"]), st.integers(0, 5),
                               st.sampled_from(["e1", "e2", "e3", "e4"]), st.integers(0, 100)),
                     min_size=1, max_size=25, unique_by=lambda s: (s[0], s[3]))


@settings(max_examples=300, deadline=None)
@given(snapshots, st.randoms(use_true_random=False), st.integers(1, 6))
def test_the_newest_snapshot_wins_whatever_the_arrival_order(snaps, rnd, cut) -> None:  # type: ignore[no-untyped-def]
    """Any order, any batch cuts, repeats: per (site, item) the row kept is the snapshot newest in (time, id)."""
    docs = [snapshot(site, item, 1_767_225_600 + t, f"{site}-{eid}", float(q)) for site, item, t, eid, q in snaps]
    newest: dict[tuple[str, str], dict] = {}  # type: ignore[type-arg]
    for d in docs:
        k = (d["site_id"], d["item_id"])
        if k not in newest or (d["event_time"], d["event_id"]) > (newest[k]["event_time"], newest[k]["event_id"]):
            newest[k] = d
    order = docs + rnd.sample(docs, min(3, len(docs)))
    rnd.shuffle(order)
    recs = [record(d, i) for i, d in enumerate(order)]
    engine = StockEngine(Sectors(()))
    half = len(recs) // 2
    first = [recs[i:i + cut] for i in range(0, half, cut)]
    stores_then = {STATES: {}}  # type: ignore[var-annotated]
    kept = run(engine, stores_then, first)
    restored = {STATES: {k: Site.from_dict(json.loads(json.dumps(v.to_dict())))
                         for k, v in stores_then[STATES].items()}}
    # a restart from the changelog: the first half re-delivered (one by one), then the rest
    kept += run(engine, restored, [[r] for r in recs[:half]] + [recs[i:i + cut] for i in range(half, len(recs), cut)])
    final: dict[tuple[str, str], tuple] = {}  # type: ignore[type-arg]
    for r in kept:  # inserted in this order
        if (r.site_id, r.item_id) not in final or r.version >= final[r.site_id, r.item_id].version:
            final[r.site_id, r.item_id] = r
    assert {k: (r.event_id, r.qty_on_hand) for k, r in final.items()} == {
        k: (d["event_id"], d["qty_on_hand"]) for k, d in newest.items()}


def test_sector_from_polygons_when_absent_and_dead_letters_with_reasons() -> None:
    sectors = Sectors.from_geojson({"type": "FeatureCollection", "features": [SQUARE_WITH_HOLE]})
    engine, stores = StockEngine(sectors), {STATES: {}}
    good = [snapshot("S1", "x", 1_767_225_600, "a", 10, 2, 9, lat=0.5, lon=0.5, sector=None),
            snapshot("S2", "x", 1_767_225_600, "b", 10, lat=2.0, lon=2.0, sector=None),  # in the hole
            snapshot("S3", "x", 1_767_225_600, "c", 10, lat=2.0, lon=2.0, sector="GIVEN")]
    bad = [(snapshot("S4", "x", 1_767_225_600, "d", 1, 2), "qty_reserved 2 exceeds qty_on_hand 1"),
           (snapshot("S5", "x", 1_767_225_600, "e", -1), "qty_on_hand"),
           (snapshot("S6", "x", 1_767_225_600, "f", 1, lat=95.0), "lat"),
           (snapshot("S7", "x", 1_767_225_600, "g", 1, colour="red"), "colour"),
           (snapshot("S8", "x", 1_767_225_600, "h", 1), "key: message key 'OTHER' must be the site_id")]
    recs = [record(d, i) for i, d in enumerate(good)] + [
        record(d, 10 + i, "OTHER" if d["site_id"] == "S8" else None) for i, (d, _) in enumerate(bad)]
    recs.append(Record("stock-levels", 0, 99, b"S9", b'{"schema_version": 1, "qty_on_hand": NaN}'))
    result = engine.process(recs, stores)
    rows = {r.site_id: r for r in result.rows[LEVELS_TABLE]}
    assert {k: r.sector_id for k, r in rows.items()} == {"S1": "HOLE", "S2": "", "S3": "GIVEN"}
    assert (rows["S1"].qty_available, rows["S1"].below_min) == (8.0, 1)
    assert (rows["S2"].qty_available, rows["S2"].below_min) == (10.0, 0)
    assert len(result.dead_letters) == len(bad) + 1
    for letter, (_, why) in zip(result.dead_letters, bad, strict=False):
        assert why in letter.reason, letter.reason


def test_near_refuses_what_it_cannot_search() -> None:
    for lat, lon, r in ((91, 0, 1), (0, 181, 1), (0, 0, 0), (0, 0, 1001), (math.nan, 0, 1), (0, 0, math.inf)):
        with pytest.raises(NearError):
            Around(lat, lon, r)
    with pytest.raises(NearError, match="category"):
        stocks_near_query("db", Around(48.8, 2.3, 5), category="x' OR 1=1 --")


def test_the_box_holds_the_whole_circle() -> None:
    """Points on the circle (and just inside) pass the box prefilter, near a pole and the antimeridian too."""
    for lat, lon, r in ((48.85, 2.35, 5), (0, 0, 1000), (80, 179.9, 300), (-60, -179, 50)):
        around = Around(lat, lon, r)
        box = around.box_sql()
        bounds = [float(x) for x in box.replace("lat BETWEEN", "").replace("AND lon BETWEEN", "AND")
                  .split(" AND ")]
        for k in range(360):
            b = math.radians(k)
            d = r * 1000 * 0.999999 / EARTH_RADIUS_M
            p1 = math.radians(lat)
            p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
            q2 = math.radians(lon) + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                                                math.cos(d) - math.sin(p1) * math.sin(p2))
            plat, plon = math.degrees(p2), (math.degrees(q2) + 540) % 360 - 180
            assert bounds[0] <= plat <= bounds[1], (lat, lon, r, plat)
            if len(bounds) == 4:
                assert bounds[2] <= plon <= bounds[3], (lat, lon, r, plon)
