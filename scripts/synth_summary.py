"""Print the planted series in the generator's ground truth for seeds 1, 2 and 3.

    python scripts/synth_summary.py                   # tiny scale, seeds 1 2 3
    python scripts/synth_summary.py --scale force-year --seeds 1 2 3

Generates each seed into a temporary folder (or reads ``--from DIR/seed<N>`` if given) and
prints, per seed, one line per planted series (kind, strength, size, span in days, police
reports delivered, description) and the negative controls.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from homicide_assets.lib.synth import SCALES, generate


def summarise(ground_truth: Path) -> str:
    series = pl.read_parquet(ground_truth / "series.parquet").sort("kind", "series_id")
    controls = pl.read_parquet(ground_truth / "negative_controls.parquet")
    deaths = pl.read_parquet(ground_truth / "deaths.parquet")
    lines = [
        f"  {deaths.height:,} deaths, {series.height} planted series, {controls.height} negative controls"
    ]
    for row in series.iter_rows(named=True):
        span = (row["last_date"] - row["first_date"]).days
        lines.append(
            f"  {row['series_id']:<22} {row['strength']:<8} size {row['size']}  {span:>4} days  "
            f"{len(row['police_report_ids'])} police reports  {row['description']}"
        )
    for row in controls.sort("control_id").iter_rows(named=True):
        lines.append(
            f"  decoy {row['control_id']:<20} {len(row['death_ids']):>4} deaths  {row['description']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--from", dest="source", type=Path, help="read DIR/seed<N>/ground_truth instead of generating"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            if args.source:
                gt = args.source / f"seed{seed}" / "ground_truth"
            else:
                out = Path(tmp) / f"seed{seed}"
                summary = generate(args.scale, seed, out)
                gt = out / "ground_truth"
                print(f"seed {seed} ({args.scale}, generated in {summary.seconds:.1f} s):")
            print(summarise(gt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
