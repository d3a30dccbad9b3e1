"""Ground truth: the people, deaths, source records and series the feeds hide.

Written to ``<out>/ground_truth/`` (never inside ``landing/``). Column names here are a
contract with the linkage and series engineers (issue 3): change them only with a note.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from homicide_assets.lib.feeds import FEEDS

GROUND_TRUTH_DIR = "ground_truth"


def record_key_expr(feed: str) -> pl.Expr:
    """``<feed>:<partner_id>:<key columns joined by |>`` (the outputs contract's source record key)."""
    parts = [pl.col(c).cast(pl.String) for c in FEEDS[feed].key]
    key = parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")
    return pl.concat_str([pl.lit(f"{feed}:"), pl.col("_partner_id"), pl.lit(":"), key]).alias("record_key")


def source_records(delivered: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per delivered record key: who and which death it is really about, and when it arrived."""
    frames = []
    for feed, rows in delivered.items():
        if rows.height == 0:
            continue
        frames.append(
            rows.with_columns(record_key_expr(feed))
            .group_by("record_key")
            .agg(
                pl.lit(feed).alias("feed"),
                pl.col("_partner_id").first().alias("partner_id"),
                pl.col("_person_id").first().alias("person_id"),
                pl.col("_death_id").first().alias("death_id"),
                pl.col("_role").first().alias("role"),
                pl.col("_extract_date").min().alias("first_extract_date"),
                pl.col("_extract_date").n_unique().alias("extracts"),
            )
        )
    schema = {
        "record_key": pl.String,
        "feed": pl.String,
        "partner_id": pl.String,
        "person_id": pl.String,
        "death_id": pl.String,
        "role": pl.String,
        "first_extract_date": pl.Date,
        "extracts": pl.UInt32,
    }
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.cast(schema) for f in frames]).sort("record_key")


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", statistics=False)


def write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
