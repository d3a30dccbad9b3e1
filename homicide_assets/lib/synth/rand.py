"""Deterministic random streams and small vectorised sampling helpers.

Each component of the generator draws from its own stream, derived from the run's seed and
the component's name, so adding draws in one component never shifts another's output.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator for component ``name`` under ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))])


def choice(rng: np.random.Generator, values: Sequence, weights: Sequence[float] | None, n: int) -> np.ndarray:
    """``n`` draws from ``values`` with relative ``weights`` (normalised here)."""
    values = np.asarray(values, dtype=object if isinstance(values[0], str) else None)
    if weights is None:
        return values[rng.integers(0, len(values), n)]
    p = np.asarray(weights, dtype=float)
    return values[rng.choice(len(values), size=n, p=p / p.sum())]


def choice_from_dict(rng: np.random.Generator, dist: dict[str, float], n: int) -> np.ndarray:
    """``n`` draws from the keys of ``dist`` weighted by its values."""
    return choice(rng, list(dist), list(dist.values()), n)


def age_from_bands(rng: np.random.Generator, bands: dict[tuple[int, int], float], n: int) -> np.ndarray:
    """Ages drawn from (low, high) inclusive bands with relative weights, uniform within a band."""
    keys = list(bands)
    idx = rng.choice(len(keys), size=n, p=np.asarray(list(bands.values())) / sum(bands.values()))
    lo = np.array([k[0] for k in keys])[idx]
    hi = np.array([k[1] for k in keys])[idx]
    return lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)


def days_since_epoch(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def dates_in_period(
    rng: np.random.Generator,
    start: date,
    end: date,
    n: int,
    month_weights: Sequence[float] | None = None,
    weekday_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """``n`` dates (numpy ``datetime64[D]``) in [start, end] following seasonal and weekly rhythms.

    ``month_weights``: 12 relative weights, January first. ``weekday_weights``: 7, Monday first.
    """
    days = np.arange(np.datetime64(start), np.datetime64(end) + np.timedelta64(1, "D"))
    w = np.ones(len(days))
    if month_weights is not None:
        months = days.astype("datetime64[M]").astype(int) % 12
        w *= np.asarray(month_weights, dtype=float)[months]
    if weekday_weights is not None:
        weekday = (days.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        w *= np.asarray(weekday_weights, dtype=float)[weekday]
    return days[rng.choice(len(days), size=n, p=w / w.sum())]


def minutes_of_day(rng: np.random.Generator, hour_weights: Sequence[float], n: int) -> np.ndarray:
    """Minute of the day (0-1439) with 24 relative hourly weights."""
    hours = rng.choice(24, size=n, p=np.asarray(hour_weights, dtype=float) / sum(hour_weights))
    return hours * 60 + rng.integers(0, 60, n)


def poisson_count(rng: np.random.Generator, expected: float, minimum: int = 0) -> int:
    """A Poisson count with the given expectation, at least ``minimum``."""
    return max(int(rng.poisson(max(expected, 0.0))), minimum)


def to_series(name: str, values: np.ndarray, dtype: pl.DataType | None = None) -> pl.Series:
    """A polars series from a numpy array (object arrays of str become ``pl.String``)."""
    if values.dtype == object:
        return pl.Series(name, values.tolist(), dtype=dtype or pl.String)
    return pl.Series(name, values, dtype=dtype) if dtype is not None else pl.Series(name, values)
