"""Distances and sectors on the ground, in plain Python (the SQL side is ``sinks/near.py``).

- ``haversine_m``: great-circle distance on a sphere of radius ``EARTH_RADIUS_M`` (the one ClickHouse queries use:
  18.16 has no ``geoDistance``; both write the same formula).
- ``Sectors``: named polygons (GeoJSON ``Polygon`` / ``MultiPolygon`` features, property ``sector_id``); a point
  belongs to the first sector (file order) whose polygon contains it — even-odd rule over every ring, so holes
  are holes; a point on an edge may fall either side (as in any floating-point test); outside them all: "".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: mean Earth radius (IUGG), metres
EARTH_RADIUS_M = 6_371_008.8

Ring = tuple[tuple[float, float], ...]  # (lon, lat) vertices, as GeoJSON writes them


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def haversine_m_many(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """``haversine_m`` from one point to many at once."""
    p1, p2 = math.radians(lat), np.radians(lats)
    a = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, a)))


def haversine_m_pairs(lats1: np.ndarray, lons1: np.ndarray, lats2: np.ndarray, lons2: np.ndarray) -> np.ndarray:
    """``haversine_m`` between the points of two arrays, pair by pair."""
    p1, p2 = np.radians(lats1), np.radians(lats2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lons2 - lons1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, a)))


def unit_vectors(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Points as unit vectors (n x 3): the dot product of two is the cosine of their central angle, so it orders
    distances from a point as ``haversine_m`` does (nearer: larger), for many points at once by a matrix product."""
    p, lam = np.radians(lats), np.radians(lons)
    return np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)], axis=1)


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Ray casting towards +lon: does the ray from the point cross the ring an odd number of times?"""
    inside = False
    x0, y0 = ring[-1]
    for x1, y1 in ring:
        if (y1 > lat) != (y0 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
        x0, y0 = x1, y1
    return inside


@dataclass(frozen=True, slots=True)
class Sector:
    sector_id: str
    rings: tuple[Ring, ...]  # every ring of every polygon (outer rings and holes alike: even-odd)
    box: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

    def centroid(self) -> tuple[float, float]:
        """(lat, lon) of the first ring's area centroid (its vertices' mean if it has no area)."""
        ring = self.rings[0]
        a = cx = cy = 0.0
        for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
            cross = x0 * y1 - x1 * y0
            a, cx, cy = a + cross, cx + (x0 + x1) * cross, cy + (y0 + y1) * cross
        if abs(a) < 1e-15:
            return sum(y for _, y in ring) / len(ring), sum(x for x, _ in ring) / len(ring)
        return cy / (3 * a), cx / (3 * a)

    def contains(self, lat: float, lon: float) -> bool:
        x0, y0, x1, y1 = self.box
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        return sum(_in_ring(lon, lat, r) for r in self.rings) % 2 == 1


class SectorError(ValueError):
    """A sectors file that is not a FeatureCollection of (Multi)Polygons with a ``sector_id`` each."""


class Sectors:
    def __init__(self, sectors: Iterable[Sector]) -> None:
        self.sectors = tuple(sectors)

    def centroids(self) -> dict[str, tuple[float, float]]:
        return {s.sector_id: s.centroid() for s in self.sectors}

    def locate(self, lat: float, lon: float) -> str:
        """The sector containing the point ("" if none)."""
        for s in self.sectors:
            if s.contains(lat, lon):
                return s.sector_id
        return ""

    @classmethod
    def from_geojson(cls, doc: dict) -> Sectors:  # type: ignore[type-arg]
        if doc.get("type") != "FeatureCollection":
            raise SectorError("sectors: a GeoJSON FeatureCollection is expected")
        out = []
        for n, feature in enumerate(doc.get("features", [])):
            sid = (feature.get("properties") or {}).get("sector_id")
            geometry = feature.get("geometry") or {}
            if not isinstance(sid, str) or not sid:
                raise SectorError(f"sectors: feature {n} has no properties.sector_id")
            kind, coords = geometry.get("type"), geometry.get("coordinates")
            polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else None
            if not polygons:
                raise SectorError(f"sectors: feature {n} ({sid}): a Polygon or MultiPolygon is expected")
            rings = tuple(tuple((float(x), float(y)) for x, y, *_ in ring) for poly in polygons for ring in poly)
            if any(len(r) < 3 for r in rings):
                raise SectorError(f"sectors: feature {n} ({sid}): a ring has fewer than 3 points")
            xs = [x for r in rings for x, _ in r]
            ys = [y for r in rings for _, y in r]
            out.append(Sector(sid, rings, (min(xs), min(ys), max(xs), max(ys))))
        return cls(out)

    @classmethod
    def load(cls, path: Path) -> Sectors:
        return cls.from_geojson(json.loads(Path(path).read_text()))

    def to_geojson(self) -> dict:  # type: ignore[type-arg]
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"sector_id": s.sector_id},
             "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in r] for r in s.rings]}}
            for s in self.sectors]}


def voronoi_sectors(sites: Sequence[tuple[str, float, float]], margin_deg: float = 0.02) -> Sectors:
    """One sector per site ``(sector_id, lat, lon)``: the points nearer to it than to any other (distances in a
    plane scaled by the cosine of the mean latitude, as a dispatcher's « nearest station »), inside the sites'
    bounding box widened by ``margin_deg``. Each cell is the box clipped by the half-planes of every other site."""
    lat0 = math.radians(sum(s[1] for s in sites) / len(sites))
    k = math.cos(lat0)
    pts = [(sid, lon * k, lat) for sid, lat, lon in sites]
    x0, x1 = min(p[1] for p in pts) - margin_deg * k, max(p[1] for p in pts) + margin_deg * k
    y0, y1 = min(p[2] for p in pts) - margin_deg, max(p[2] for p in pts) + margin_deg
    out = []
    for sid, x, y in pts:
        cell = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        for other, ox, oy in pts:
            if other != sid:
                cell = _clip(cell, ox - x, oy - y, ((ox * ox + oy * oy) - (x * x + y * y)) / 2)
        ring = tuple((round(cx / k, 6), round(cy, 6)) for cx, cy in cell)
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        out.append(Sector(sid, (ring,), (min(xs), min(ys), max(xs), max(ys))))
    return Sectors(out)


def _clip(poly: list[tuple[float, float]], a: float, b: float, c: float) -> list[tuple[float, float]]:
    """Sutherland–Hodgman: the part of a convex polygon where ``a*x + b*y <= c``."""
    out: list[tuple[float, float]] = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        fp, fq = a * p[0] + b * p[1] - c, a * q[0] + b * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            s = fp / (fp - fq)
            out.append((p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])))
    return out
