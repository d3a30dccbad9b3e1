"""Boundaries of the seven local authorities and vectorised point-in-polygon tests.

Boundaries: ONS Local Authority Districts (May 2020) BGC, Open Government Licence v3.0
(``seeds/geography/ATTRIBUTION.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from homicide_assets.lib.settings import SEEDS_DIR

BOUNDARIES_PATH = SEEDS_DIR / "geography" / "west_midlands_lad20.geojson"
#: Margin around the force area within which coordinates are still accepted (metres).
FORCE_AREA_MARGIN_M = 2_000.0
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Boundary:
    la_code: str
    name: str
    rings: tuple[np.ndarray, ...]  # each (n, 2) lon/lat, closed; first of each polygon is outer

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        pts = np.vstack(self.rings)
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


@lru_cache(maxsize=1)
def boundaries() -> tuple[Boundary, ...]:
    """The seven authorities' boundaries from ``seeds/geography``."""
    data = json.loads(BOUNDARIES_PATH.read_text(encoding="utf-8"))
    out = []
    for feature in data["features"]:
        geom = feature["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        rings = tuple(np.asarray(ring, dtype=float) for poly in polys for ring in poly)
        props = feature["properties"]
        out.append(Boundary(props["lad20cd"], props["lad20nm"], rings))
    return tuple(out)


def geojson_text() -> str:
    return BOUNDARIES_PATH.read_text(encoding="utf-8")


def _points_in_rings(lon: np.ndarray, lat: np.ndarray, rings: tuple[np.ndarray, ...]) -> np.ndarray:
    """Even-odd rule over all rings (holes subtract), vectorised over points."""
    inside = np.zeros(lon.shape, dtype=bool)
    for ring in rings:
        x1, y1 = ring[:-1, 0], ring[:-1, 1]
        x2, y2 = ring[1:, 0], ring[1:, 1]
        for a, b, c, d in zip(x1, y1, x2, y2):
            crosses = (b > lat) != (d > lat)
            if not crosses.any():
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = a + (lat - b) * (c - a) / (d - b)
            inside ^= crosses & (lon < x_at)
    return inside


def la_of_points(lat, lon) -> np.ndarray:
    """GSS code of the authority containing each point, or ``None`` outside all seven."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    out = np.full(lat.shape, None, dtype=object)
    for b in boundaries():
        x0, y0, x1, y1 = b.bbox
        cand = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1) & (out == None)  # noqa: E711
        if cand.any():
            idx = np.flatnonzero(cand)
            hit = _points_in_rings(lon[idx], lat[idx], b.rings)
            out[idx[hit]] = b.la_code
    return out


def _distance_to_segments_m(lat: float, lon: float, ring: np.ndarray) -> float:
    """Shortest distance from one point to a ring's edges, equirectangular (metres)."""
    k = np.cos(np.radians(lat))
    x = (ring[:, 0] - lon) * k
    y = ring[:, 1] - lat
    ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(np.where(seg2 > 0, -(ax * dx + ay * dy) / seg2, 0.0), 0.0, 1.0)
    px, py = ax + t * dx, ay + t * dy
    return float(np.sqrt((px * px + py * py).min()) * np.pi / 180 * EARTH_RADIUS_M)


def in_force_area(lat, lon, margin_m: float = FORCE_AREA_MARGIN_M) -> np.ndarray:
    """True for points inside one of the seven authorities or within ``margin_m`` of one."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    valid = np.isfinite(lat) & np.isfinite(lon)
    result = np.zeros(lat.shape, dtype=bool)
    if not valid.any():
        return result
    la = la_of_points(np.where(valid, lat, 0.0), np.where(valid, lon, 0.0))
    result = valid & (la != None)  # noqa: E711
    # Points outside but inside the padded bounding box: measure distance to the edges.
    all_pts = np.vstack([r for b in boundaries() for r in b.rings])
    pad_deg = margin_m / 111_000 * 1.8
    near = valid & ~result
    near &= (lon >= all_pts[:, 0].min() - pad_deg) & (lon <= all_pts[:, 0].max() + pad_deg)
    near &= (lat >= all_pts[:, 1].min() - pad_deg) & (lat <= all_pts[:, 1].max() + pad_deg)
    for i in np.flatnonzero(near):
        d = min(_distance_to_segments_m(lat[i], lon[i], r) for b in boundaries() for r in b.rings)
        result[i] = d <= margin_m
    return result


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))
