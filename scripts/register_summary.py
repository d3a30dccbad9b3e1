"""Summarise a built death register: deaths, sources, disagreements by kind, known to services.

    python scripts/register_summary.py DATA_DIR     # a data directory where `homicide-assets build` ran

Prints counts only (no names, ids or dates), so the output can go into an issue note.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from homicide_assets.lib.settings import DataDir


def summary(data_dir: Path) -> dict:
    register = pl.read_parquet(DataDir(data_dir).warehouse_file(["linkage", "death_register"]))
    kinds = (
        register.select(pl.col("disagreements").explode()).drop_nulls()
        # the kind of disagreement: the sentence with partner ids and numbers generalised
        .with_columns(pl.col("disagreements").str.replace_all(r"\([a-z_]+\)", "(partner)")
                      .str.replace_all(r"\d+", "N").alias("kind"))
        .group_by("kind").len().sort("len", descending=True)
    )
    sources = (
        register.with_columns(
            pl.col("source_records").list.eval(pl.element().str.split(":").list.first()).list.unique().list.sort()
            .list.join(" + ").alias("sources"))
        .group_by("sources").len().sort("len", descending=True)
    )
    return {
        "deaths": register.height,
        "with_police_report": register.filter(pl.col("police_report_id").is_not_null()).height,
        "with_disagreements": register.filter(pl.col("disagreements").list.len() > 0).height,
        "known_to_services": register.filter(pl.col("known_to_services").list.len() > 0).height,
        "disagreement_kinds": dict(zip(kinds["kind"].to_list(), kinds["len"].to_list())),
        "deaths_by_sources": dict(zip(sources["sources"].to_list(), sources["len"].to_list())),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(summary(Path(sys.argv[1])), indent=2))
