"""Where violence happens: ED assault and death locations, and hotspots over time.

Pure functions (no Dagster); :func:`violence_hotspots` is the body of the
``patterns/violence_hotspots`` asset.

Locations
    Emergency department assault records are anonymous by design and carry no
    coordinates: the assault postcode gives its *postcode district* (``B12 9AB`` ->
    ``B12``), which ``seeds/postcode_districts.csv`` places in one of the seven
    authorities; without a postcode, a district written in the free-text location
    ("outside the shop, B12") is used; failing that the record counts for the force only.
    Deaths carry the police report's incident coordinates, counted on a 1 km grid
    (a local equirectangular projection centred on the force area, accurate to metres
    at this size).

Hotspots over time: space-time permutation expectation with an exact Poisson test
    For every area (postcode district or grid cell) and calendar quarter, the expected
    count given where and when violence happens overall is
    ``e = (area total x quarter total) / grand total`` (the space-time permutation
    model of Kulldorff et al., 2005): no population is needed, and a force-wide rise or
    fall does not make every area a hotspot. An area-quarter is a hotspot when
    P(X >= observed | e) < :data:`HOTSPOT_P` and at least :data:`MIN_EVENTS` events
    happened there. ``false_alarm_rate`` is that test's exact size for the cell (the
    probability of reaching the smallest flagged count by chance), so the expected
    number of false hotspots in a table is the sum of that column.
"""

from __future__ import annotations

import math
import re
from datetime import date

import numpy as np
import polars as pl

from homicide_assets.lib.patterns import investigations, poisson_upper_p
from homicide_assets.lib.registry import postcode_districts

#: Per-cell significance of a hotspot, and the least events a hotspot needs.
HOTSPOT_P = 0.001
MIN_EVENTS = 3
GRID_METRES = 1_000
#: Origin of the local projection (roughly the centre of the West Midlands force area).
ORIGIN_LAT, ORIGIN_LON = 52.48, -1.89
METRES_PER_DEGREE_LAT = 111_132.0

HOTSPOT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,  # ed_assault | death
    "area_type": pl.String,  # postcode_district | grid_1km
    "area_id": pl.String,
    "la_code": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "events": pl.Int64,
    "expected": pl.Float64,
    "ratio": pl.Float64,
    "p_value": pl.Float64,
    "hotspot": pl.Boolean,
    "false_alarm_rate": pl.Float64,
    "centre_lat": pl.Float64,
    "centre_lon": pl.Float64,
}
HOTSPOT_COLUMNS = tuple(HOTSPOT_SCHEMA)

_DISTRICT_TOKEN = re.compile(r"\b([A-Z]{1,2}[0-9][0-9A-Z]?)\b")


def district_to_la() -> dict[str, str]:
    """Postcode district -> GSS code of its local authority (``seeds/postcode_districts.csv``)."""
    return {d: la for la, districts in postcode_districts().items() for d in districts}


def postcode_district_expr(postcode: pl.Expr) -> pl.Expr:
    """Outward code of a normalised postcode (``B12 9AB`` -> ``B12``); null when absent."""
    return (
        postcode.str.to_uppercase()
        .str.strip_chars()
        .str.extract(r"^([A-Z]{1,2}[0-9][0-9A-Z]?)\s*[0-9][A-Z]{2}$", 1)
    )


def district_in_text(text: str | None, known: frozenset[str]) -> str | None:
    """The first known postcode district written in free text, if any."""
    if not text:
        return None
    for token in _DISTRICT_TOKEN.findall(text.upper()):
        if token in known:
            return token
    return None


def ed_assault_locations(ed_assaults: pl.DataFrame) -> pl.DataFrame:
    """One row per ED assault attendance: its day, postcode district, authority and how placed."""
    lookup = district_to_la()
    known = frozenset(lookup)
    when = pl.coalesce(
        pl.col("assault_at").dt.date() if "assault_at" in ed_assaults.columns else pl.lit(None, pl.Date),
        pl.col("arrived_at").dt.date(),
    )
    postcode = (
        pl.col("assault_postcode") if "assault_postcode" in ed_assaults.columns else pl.lit(None, pl.String)
    )
    text = (
        pl.col("assault_location_text")
        if "assault_location_text" in ed_assaults.columns
        else pl.lit(None, pl.String)
    )
    frame = ed_assaults.select(
        pl.col("attendance_id"),
        when.alias("day"),
        postcode_district_expr(postcode).alias("from_postcode"),
        text.map_elements(lambda t: district_in_text(t, known), return_dtype=pl.String).alias("from_text")
        if ed_assaults.height
        else pl.lit(None, pl.String).alias("from_text"),
    )
    district = (
        pl.when(pl.col("from_postcode").is_in(list(known)))
        .then(pl.col("from_postcode"))
        .otherwise(pl.col("from_text"))
    )
    return (
        frame.with_columns(
            district.alias("district"),
            pl.when(pl.col("from_postcode").is_in(list(known)))
            .then(pl.lit("postcode"))
            .when(pl.col("from_text").is_not_null())
            .then(pl.lit("location text"))
            .otherwise(pl.lit("not placed"))
            .alias("placed_by"),
        )
        .with_columns(
            pl.col("district").replace_strict(lookup, default=None, return_dtype=pl.String).alias("la_code"),
        )
        .drop("from_postcode", "from_text")
    )


def project(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres east and north of the force-area origin (local equirectangular projection)."""
    k = math.cos(math.radians(ORIGIN_LAT))
    x = (np.asarray(lon, dtype=float) - ORIGIN_LON) * METRES_PER_DEGREE_LAT * k
    y = (np.asarray(lat, dtype=float) - ORIGIN_LAT) * METRES_PER_DEGREE_LAT
    return x, y


def unproject(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = math.cos(math.radians(ORIGIN_LAT))
    lat = np.asarray(y, dtype=float) / METRES_PER_DEGREE_LAT + ORIGIN_LAT
    lon = np.asarray(x, dtype=float) / (METRES_PER_DEGREE_LAT * k) + ORIGIN_LON
    return lat, lon


def grid_cells(lat, lon, size_m: int = GRID_METRES) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Grid cell id (``E<col>N<row>`` in ``size_m`` steps from the origin) and cell centres."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    x, y = project(lat, lon)
    ok = np.isfinite(x) & np.isfinite(y)
    col = np.floor(np.where(ok, x, 0) / size_m).astype(np.int64)
    row = np.floor(np.where(ok, y, 0) / size_m).astype(np.int64)
    ids = [f"E{c:+d}N{r:+d}" if good else None for c, r, good in zip(col, row, ok)]
    c_lat, c_lon = unproject((col + 0.5) * size_m, (row + 0.5) * size_m)
    return ids, np.where(ok, c_lat, np.nan), np.where(ok, c_lon, np.nan)


def quarter_start_expr(day: pl.Expr) -> pl.Expr:
    return day.dt.truncate("3mo")


def space_time_hotspots(
    events: pl.DataFrame, p_threshold: float = HOTSPOT_P, min_events: int = MIN_EVENTS
) -> pl.DataFrame:
    """Observed against space-time permutation expectation for every area and quarter.

    ``events`` has one row per event with ``area_id`` and ``period_start``; every
    area-quarter with an event, and every quarter of an area that ever had one, is tested.
    """
    if events.is_empty():
        return pl.DataFrame(
            schema={
                "area_id": pl.String,
                "period_start": pl.Date,
                "events": pl.Int64,
                "expected": pl.Float64,
                "p_value": pl.Float64,
                "hotspot": pl.Boolean,
                "false_alarm_rate": pl.Float64,
            }
        )
    counts = events.group_by("area_id", "period_start").agg(pl.len().cast(pl.Int64).alias("events"))
    areas = counts.group_by("area_id").agg(pl.col("events").sum().alias("area_total"))
    periods = counts.group_by("period_start").agg(pl.col("events").sum().alias("period_total"))
    grand = float(counts.get_column("events").sum())
    full = (
        areas.join(periods, how="cross")
        .join(counts, on=["area_id", "period_start"], how="left")
        .with_columns(
            pl.col("events").fill_null(0),
            (pl.col("area_total") * pl.col("period_total") / grand).alias("expected"),
        )
    )
    obs = full.get_column("events").to_numpy()
    exp = full.get_column("expected").to_numpy()
    p = poisson_upper_p(obs, exp)
    critical = _critical_counts(exp, p_threshold, min_events)
    size = poisson_upper_p(critical, exp)
    return full.select("area_id", "period_start", "events", "expected").with_columns(
        pl.Series("p_value", p),
        pl.Series("hotspot", (p < p_threshold) & (obs >= min_events)),
        pl.Series("false_alarm_rate", size),
    )


def _critical_counts(expected: np.ndarray, p_threshold: float, min_events: int) -> np.ndarray:
    """Smallest count that would be flagged in each cell."""
    from scipy import stats

    # smallest c with P(X >= c) < p: P(X >= c) = sf(c - 1) < p  <=>  c - 1 >= isf(p)
    c = stats.poisson.isf(p_threshold, expected) + 1
    # isf returns the smallest k with sf(k) <= p; we need strict: step up where equal
    c = np.where(stats.poisson.sf(c - 1, expected) < p_threshold, c, c + 1)
    return np.maximum(c, min_events)


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        [pl.lit(None, t).alias(c) for c, t in HOTSPOT_SCHEMA.items() if c not in frame.columns]
    ).select([pl.col(c).cast(t) for c, t in HOTSPOT_SCHEMA.items()])


def _period_end_expr() -> pl.Expr:
    return pl.col("period_start").dt.offset_by("3mo").dt.offset_by("-1d")


def violence_hotspots(
    ed_assaults: pl.DataFrame | None,
    death_register: pl.DataFrame | None = None,
    death_reports: pl.DataFrame | None = None,
    data_as_of: date | None = None,
) -> pl.DataFrame:
    """ED assaults by postcode district and death investigations by 1 km cell, per quarter.

    Columns :data:`HOTSPOT_COLUMNS`. Events after ``data_as_of`` are left out.
    """
    parts = []
    if ed_assaults is not None and ed_assaults.height:
        ed = ed_assault_locations(ed_assaults).filter(
            pl.col("district").is_not_null() & pl.col("day").is_not_null()
        )
        if data_as_of is not None:
            ed = ed.filter(pl.col("day") <= data_as_of)
        ed = ed.with_columns(
            quarter_start_expr(pl.col("day")).alias("period_start"), pl.col("district").alias("area_id")
        )
        tested = space_time_hotspots(ed)
        la_of = dict(ed.select("area_id", "la_code").unique("area_id").iter_rows())
        parts.append(
            tested.with_columns(
                pl.lit("ed_assault").alias("source"),
                pl.lit("postcode_district").alias("area_type"),
                pl.col("area_id")
                .replace_strict(la_of, default=None, return_dtype=pl.String)
                .alias("la_code"),
            )
        )
    if death_register is not None and death_register.height:
        inv = investigations(death_register, death_reports).filter(
            pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
        )
        if data_as_of is not None:
            inv = inv.filter(pl.col("date_of_death") <= data_as_of)
        if inv.height:
            ids, c_lat, c_lon = grid_cells(inv.get_column("lat").to_numpy(), inv.get_column("lon").to_numpy())
            deaths = inv.select(
                "la_code", quarter_start_expr(pl.col("date_of_death")).alias("period_start")
            ).with_columns(
                pl.Series("area_id", ids, dtype=pl.String),
                pl.Series("centre_lat", c_lat),
                pl.Series("centre_lon", c_lon),
            )
            tested = space_time_hotspots(deaths)
            cell_info = deaths.group_by("area_id").agg(
                pl.col("la_code").drop_nulls().mode().first(),
                pl.col("centre_lat").first(),
                pl.col("centre_lon").first(),
            )
            parts.append(
                tested.join(cell_info, on="area_id", how="left").with_columns(
                    pl.lit("death").alias("source"), pl.lit("grid_1km").alias("area_type")
                )
            )
    if not parts:
        return pl.DataFrame(schema=HOTSPOT_SCHEMA)
    out = pl.concat(
        [
            _finish(
                p.with_columns(
                    _period_end_expr().alias("period_end"),
                    (pl.col("events") / pl.col("expected")).alias("ratio"),
                )
            )
            for p in parts
        ],
        how="vertical",
    )
    return out.sort("source", "area_type", "area_id", "period_start")
