"""Keyed pseudonyms: HMAC-SHA256 of a normalised identifier under ``HOMICIDE_PSEUDONYM_KEY``.

The key never lives in the repository. ``make demo`` creates a local key file outside git
(``.pseudonym_key``) when the variable is unset; production sets the variable from the
force's secret store. The same identifier under the same key always gives the same
pseudonym, so records join across partners without the identifier being stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import polars as pl

KEY_ENV = "HOMICIDE_PSEUDONYM_KEY"
KEY_FILE_ENV = "HOMICIDE_PSEUDONYM_KEY_FILE"
#: Pseudonyms are truncated to this many hex characters (128 bits).
PSEUDONYM_HEX = 32


class PseudonymKeyMissing(RuntimeError):
    pass


def load_key() -> bytes:
    """The pseudonym key from ``HOMICIDE_PSEUDONYM_KEY`` or the file ``HOMICIDE_PSEUDONYM_KEY_FILE``."""
    value = os.environ.get(KEY_ENV)
    if not value and os.environ.get(KEY_FILE_ENV):
        value = Path(os.environ[KEY_FILE_ENV]).read_text(encoding="utf-8").strip()
    if not value:
        raise PseudonymKeyMissing(
            f"{KEY_ENV} is not set: set it (or {KEY_FILE_ENV}) to the force's pseudonym key; "
            "`make demo` creates a local key file for demonstrations"
        )
    if len(value) < 16:
        raise PseudonymKeyMissing(f"{KEY_ENV} is shorter than 16 characters")
    return value.encode("utf-8")


def pseudonym(value: str | None, key: bytes, domain: str = "") -> str | None:
    """HMAC-SHA256 of ``domain:value`` (hex, truncated); ``None`` for null or blank input."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    mac = hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:PSEUDONYM_HEX]


def pseudonymise_expr(expr: pl.Expr, key: bytes, domain: str = "") -> pl.Expr:
    """A polars expression applying :func:`pseudonym` element-wise (nulls stay null)."""
    return expr.map_elements(lambda v: pseudonym(v, key, domain), return_dtype=pl.String)


def pseudonymise_series(values: pl.Series, key: bytes, domain: str = "") -> pl.Series:
    """Pseudonymise a series, hashing each distinct value once."""
    uniq = values.drop_nulls().unique()
    mapping = {v: pseudonym(v, key, domain) for v in uniq.to_list()}
    return values.replace_strict(mapping, default=None, return_dtype=pl.String)
