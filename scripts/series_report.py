"""Render a build's ``series/linked_series`` rows and the backtest of one series as Markdown.

    python scripts/series_report.py DIR [--backtest SERIES_ID | --backtest-kind port_like]

``DIR`` is either a data directory (``warehouse/series/linked_series.parquet``, per
outputs.md) or a work directory kept by ``scripts/series_bench.py --keep``
(``series/linked_series.parquet``). Reads only the platform's outputs; with
``--backtest-kind`` the series is chosen through the generator's ground truth in
``DIR/synth`` (benchmarks only: which detected series holds the planted one).

The backtest replays the series' deaths in date order: for each member, its date, the
strongest link to an earlier member as scored with what was known on that date
(``score_then``), and whether the series had crossed the link threshold by then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _tables(root: Path) -> tuple[pl.DataFrame, pl.DataFrame, Path | None]:
    from homicide_assets.lib.settings import DataDir

    for series_dir, register in (
        (root / "series", root / "linkage" / "death_register.parquet"),
        (root / "warehouse" / "series", root / "warehouse" / "linkage" / "death_register.parquet"),
    ):
        if (series_dir / "linked_series.parquet").exists():
            return (
                pl.read_parquet(series_dir / "linked_series.parquet"),
                pl.read_parquet(series_dir / "case_links.parquet"),
                register if register.exists() else None,
            )
    d = DataDir(root)
    return (
        pl.read_parquet(d.warehouse_file(["series", "linked_series"])),
        pl.read_parquet(d.warehouse_file(["series", "case_links"])),
        d.warehouse_file(["linkage", "death_register"]),
    )


def render_series(linked: pl.DataFrame) -> str:
    lines = [
        "| series_id | size | score | kinds | first_flagged_on | flagged_at_member | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in linked.iter_rows(named=True):
        reason = (r["reason"] or "").replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {r['series_id']} | {r['size']} | {r['score']:.2f} | {', '.join(r['kinds'])} | "
            f"{r['first_flagged_on']} | {r['flagged_at_member']} | {reason} |"
        )
    return "\n".join(lines)


def render_backtest(row: dict, links: pl.DataFrame, register: pl.DataFrame, threshold: float) -> str:
    ids = row["death_ids"]
    dates = dict(
        register.filter(pl.col("death_id").is_in(ids)).select("death_id", "date_of_death").iter_rows()
    )
    inner = links.filter(pl.col("death_id_a").is_in(ids) & pl.col("death_id_b").is_in(ids))
    order = sorted(ids, key=lambda d: (dates.get(d) is None, dates.get(d), d))
    lines = [
        f"Series {row['series_id']} ({row['size']} deaths, score {row['score']:.2f}); link threshold "
        f"{threshold}; first flagged on {row['first_flagged_on']} at member {row['flagged_at_member']}.",
        "",
        "| member | death_id | date of death | strongest link to an earlier member (score then) | "
        "links visible by then at or above threshold | flagged by then |",
        "|---|---|---|---|---|---|",
    ]
    flagged_on = row["first_flagged_on"]
    for n, d in enumerate(order, start=1):
        day = dates.get(d)
        earlier = set(order[: n - 1])
        mine = inner.filter(
            ((pl.col("death_id_a") == d) & pl.col("death_id_b").is_in(earlier))
            | ((pl.col("death_id_b") == d) & pl.col("death_id_a").is_in(earlier))
        )
        best = mine.sort("score_then", descending=True).head(1)
        best_text = (
            f"{best['score_then'][0]:.3f}: " + "; ".join(best["evidence"][0][:3]) if best.height else "none"
        )
        visible = inner.filter(
            pl.col("death_id_a").is_in(set(order[:n]))
            & pl.col("death_id_b").is_in(set(order[:n]))
            & (pl.col("score_then") >= threshold)
            & (pl.col("visible_on") <= day)
        ).height if day is not None else 0
        flagged = flagged_on is not None and day is not None and flagged_on <= day
        lines.append(
            f"| {n} | {d} | {day} | {best_text.replace('|', '/')} | {visible} | {'yes' if flagged else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--backtest", help="series_id to replay")
    parser.add_argument("--backtest-kind", help="replay the detected series holding the first planted series of this kind")
    args = parser.parse_args(argv)
    from homicide_assets.lib.series import SeriesParams

    root = Path(args.dir)
    linked, links, register_path = _tables(root)
    print(render_series(linked))
    target = args.backtest
    if args.backtest_kind:
        from homicide_assets.lib.series_eval import load_truth, true_death_of

        truth = load_truth(root / "synth")
        register = pl.read_parquet(register_path)
        to_true = true_death_of(register, truth["source_records"])
        planted = truth["series"].filter(pl.col("kind") == args.backtest_kind).sort("series_id")
        for p in planted.iter_rows(named=True):
            members = set(p["death_ids"])
            best = max(
                linked.iter_rows(named=True),
                key=lambda r: len({to_true.get(d) for d in r["death_ids"]} & members),
                default=None,
            )
            if best is not None and len({to_true.get(d) for d in best["death_ids"]} & members) >= 2:
                target = best["series_id"]
                print(f"\nPlanted {p['series_id']} ({p['strength']}, {p['size']} deaths): {p['description']}")
                break
    if target:
        row = linked.filter(pl.col("series_id") == target).row(0, named=True)
        print()
        print(render_backtest(row, links, pl.read_parquet(register_path), SeriesParams().link_threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
