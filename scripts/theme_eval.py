"""Print the theme classifier's precision and recall on the labelled sample.

    .venv/bin/python scripts/theme_eval.py [--split dev|holdout|all] [--errors]

The rules are ``seeds/recommendation_themes.csv``; the sample, labelled by reading each
recommendation against the theme definitions in the rules file, is
``homicide_assets_tests/data/labelled_recommendations.csv``. Rules were written and tuned
looking only at the ``dev`` split. ``holdout`` was written by the same hand as ``dev`` (so
it flatters the rules); ``generator`` holds the synthetic generator's recommendation
templates, written by another engineer, labelled by reading: the least flattering figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from homicide_assets.lib.themes import evaluate_themes, load_labelled, load_theme_rules, misclassified

#: dev: rules were tuned looking at these; holdout: written with dev, never looked at while tuning;
#: generator: the synthetic generator's recommendation templates (another author), labelled by reading
SPLITS = ("dev", "holdout", "generator")
SAMPLE = Path(__file__).resolve().parents[1] / "homicide_assets_tests" / "data" / "labelled_recommendations.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    parser.add_argument("--errors", action="store_true", help="list the misclassified samples of the split")
    parser.add_argument("--sample", default=str(SAMPLE))
    args = parser.parse_args(argv)
    rules = load_theme_rules()
    labelled = load_labelled(args.sample)
    splits = (*SPLITS, "all") if args.split == "all" else (args.split,)
    pl.Config.set_tbl_rows(100)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    pl.Config.set_float_precision(2)
    pl.Config.set_tbl_hide_column_data_types(True)
    for split in splits:
        part = labelled if split == "all" else labelled.filter(pl.col("split") == split)
        print(f"\n== {split}: {part.height} recommendations, rules {Path(rules.source).name} ==")
        print(evaluate_themes(part, rules))
    if args.errors:
        part = labelled if args.split == "all" else labelled.filter(pl.col("split") == args.split)
        pl.Config.set_fmt_str_lengths(200)
        for r in misclassified(part, rules).iter_rows(named=True):
            print(f"{r['sample_id']}: missed {r['missed']} extra {r['extra']} | {r['theme_evidence']}\n    {r['recommendation_text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
