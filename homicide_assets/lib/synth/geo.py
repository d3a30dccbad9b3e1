"""Synthetic places: points inside the real boundaries, postcodes, hospitals and care homes.

Points are drawn around postcode district centroids (``seeds/synth/postcode_district_profile.csv``)
with a district-specific spread and kept only when they fall inside the district's local
authority (``lib.geography.la_of_points``), so every coordinate is inside the force area and its
authority is the one the ground truth states. Where incidents happen is weighted by residents,
deprivation and the night-time economy (:func:`district_weights`), so deaths and assaults
concentrate in city centres and deprived areas as they do in life.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from homicide_assets.lib.geography import la_of_points
from homicide_assets.lib.registry import local_authorities
from homicide_assets.lib.settings import SEEDS_DIR

SYNTH_SEEDS = SEEDS_DIR / "synth"
METRES_PER_DEGREE_LAT = 111_320.0
#: Letters allowed in the inward code of a UK postcode (Royal Mail PAF rules exclude C I K M O V).
INWARD_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))


@lru_cache(maxsize=1)
def districts() -> pl.DataFrame:
    """Postcode districts with centroid, spread, deprivation, night-time economy and resident weight."""
    profile = pl.read_csv(SYNTH_SEEDS / "postcode_district_profile.csv")
    la = pl.DataFrame(
        [(a.la_code, a.population) for a in local_authorities()],
        schema=["la_code", "la_population"],
        orient="row",
    )
    out = profile.join(la, on="la_code", how="left", maintain_order="left").with_columns(
        district_count=pl.len().over("la_code"),
    )
    # Residents per district: the authority's population shared across its districts.
    out = out.with_columns(
        residents=pl.col("la_population") / pl.col("district_count") * pl.col("residents_weight")
    )
    return out.with_row_index("district_idx")


@lru_cache(maxsize=1)
def hospital_sites() -> pl.DataFrame:
    """Acute hospital sites: site code, trust partner id, location, relative share of deaths."""
    return pl.read_csv(SYNTH_SEEDS / "hospital_sites.csv")


#: Gradient of each kind of event across deprivation quintiles (5 = most deprived), as the
#: ratio between adjacent quintiles. Most-to-least deprived ratios: drug poisoning ~5.8
#: (ONS, Deaths related to drug poisoning 2022, deprivation analysis: ~5-6x); suicide ~2
#: (ONS, Suicides in England and Wales 2022: about twice as high); all-cause mortality ~1.4
#: (ONS, Health state life expectancies by IMD); violence ~5 (Home Office Serious Violence
#: Strategy 2018: knife crime concentrated in deprived urban areas).
DEPRIVATION_GRADIENT: dict[str, float] = {
    "natural": 1.09,
    "suicide": 1.19,
    "drug": 1.55,
    "violence": 1.50,
    "road": 1.05,
    "residents": 1.0,
}
#: How strongly the night-time economy pulls events (per step of the 1-5 weight).
NIGHT_TIME_PULL: dict[str, float] = {
    "natural": 0.0,
    "suicide": 0.05,
    "drug": 0.25,
    "violence": 0.9,
    "road": 0.1,
    "residents": 0.0,
}


def district_weights(kind: str) -> np.ndarray:
    """Relative chance that an event of ``kind`` happens in each district (row order of :func:`districts`)."""
    d = districts()
    residents = d["residents"].to_numpy()
    dep = d["deprivation"].to_numpy().astype(float)
    nte = d["night_time_economy"].to_numpy().astype(float)
    w = residents * DEPRIVATION_GRADIENT[kind] ** (dep - 3) * (1 + NIGHT_TIME_PULL[kind] * (nte - 1))
    return w / w.sum()


def sample_districts(rng: np.random.Generator, kind: str, n: int, la_code: str | None = None) -> np.ndarray:
    """District indices for ``n`` events of ``kind`` (optionally within one authority)."""
    w = district_weights(kind).copy()
    if la_code is not None:
        w *= (districts()["la_code"] == la_code).to_numpy()
    return rng.choice(len(w), size=n, p=w / w.sum())


def offset_points(lat0, lon0, dx_m, dy_m) -> tuple[np.ndarray, np.ndarray]:
    """Points displaced east by ``dx_m`` and north by ``dy_m`` metres."""
    lat0 = np.asarray(lat0, dtype=float)
    lat = lat0 + np.asarray(dy_m) / METRES_PER_DEGREE_LAT
    lon = np.asarray(lon0, dtype=float) + np.asarray(dx_m) / (
        METRES_PER_DEGREE_LAT * np.cos(np.radians(lat0))
    )
    return lat, lon


def points_in_districts(
    rng: np.random.Generator, district_idx: np.ndarray, spread_factor: float = 1.0, max_rounds: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """A point for each district index: Gaussian around the centroid, kept inside the district's authority.

    Points that fall outside after ``max_rounds`` redraws are placed at the centroid with a
    10 m jitter (every centroid is inside its authority).
    """
    d = districts()
    clat = d["lat"].to_numpy()[district_idx]
    clon = d["lon"].to_numpy()[district_idx]
    sd = d["spread_m"].to_numpy()[district_idx] * spread_factor
    la = d["la_code"].to_numpy()[district_idx]
    lat = np.empty(len(district_idx))
    lon = np.empty(len(district_idx))
    todo = np.arange(len(district_idx))
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        cand_lat, cand_lon = offset_points(
            clat[todo],
            clon[todo],
            rng.normal(0, 1, len(todo)) * sd[todo],
            rng.normal(0, 1, len(todo)) * sd[todo],
        )
        ok = la_of_points(cand_lat, cand_lon) == la[todo]
        lat[todo[ok]], lon[todo[ok]] = cand_lat[ok], cand_lon[ok]
        todo = todo[~ok]
    if len(todo):
        lat[todo], lon[todo] = offset_points(
            clat[todo], clon[todo], rng.normal(0, 10, len(todo)), rng.normal(0, 10, len(todo))
        )
    return lat, lon


def points_near(
    rng: np.random.Generator, lat0: float, lon0: float, radius_m: float, n: int, max_rounds: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly within ``radius_m`` of a point, each inside one of the seven authorities."""
    lat = np.full(n, lat0)
    lon = np.full(n, lon0)
    todo = np.arange(n)
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        r = radius_m * np.sqrt(rng.random(len(todo)))
        theta = rng.random(len(todo)) * 2 * np.pi
        cand_lat, cand_lon = offset_points(
            np.full(len(todo), lat0), np.full(len(todo), lon0), r * np.cos(theta), r * np.sin(theta)
        )
        ok = la_of_points(cand_lat, cand_lon) != None  # noqa: E711
        lat[todo[ok]], lon[todo[ok]] = cand_lat[ok], cand_lon[ok]
        todo = todo[~ok]
    return lat, lon


def nearest_district(lat: np.ndarray, lon: np.ndarray, la_codes: np.ndarray | None = None) -> np.ndarray:
    """Index of the nearest district centroid to each point (within the point's authority when given)."""
    d = districts()
    clat = d["lat"].to_numpy()
    clon = d["lon"].to_numpy()
    cla = d["la_code"].to_numpy()
    out = np.empty(len(lat), dtype=np.int64)
    for start in range(0, len(lat), 20_000):
        sl = slice(start, start + 20_000)
        dy = (lat[sl, None] - clat[None, :]) * METRES_PER_DEGREE_LAT
        dx = (lon[sl, None] - clon[None, :]) * METRES_PER_DEGREE_LAT * np.cos(np.radians(lat[sl, None]))
        dist = dx * dx + dy * dy
        if la_codes is not None:
            dist = np.where(la_codes[sl, None] == cla[None, :], dist, np.inf)
        out[sl] = dist.argmin(axis=1)
    return out


def postcodes(rng: np.random.Generator, district_idx: np.ndarray) -> np.ndarray:
    """A synthetic full postcode (``B12 9QT``) in each district: real outward code, random inward code."""
    names = districts()["district"].to_numpy()[district_idx]
    digit = rng.integers(0, 10, len(district_idx)).astype(str)
    letters = INWARD_LETTERS[rng.integers(0, len(INWARD_LETTERS), (len(district_idx), 2))]
    return (
        pl.DataFrame({"o": names.astype(str), "d": digit, "a": letters[:, 0], "b": letters[:, 1]})
        .select(pl.concat_str([pl.col("o"), pl.lit(" "), pl.col("d"), pl.col("a"), pl.col("b")]))
        .to_series()
        .to_numpy()
        .astype(object)
    )
