"""Series diagnostics on a prepared bench directory (reads ground truth: a benchmark tool only).

    python scripts/series_diag.py DIR [--set key=value ...] [--save out.pkl]

Runs :func:`homicide_assets.lib.series.find_series` on ``DIR`` (as ``scripts/series_bench.py
--data DIR`` does, without writing into it), scores it, and prints every *false* detected
series with its links' scores and evidence, and for every planted series its members' best
link scores (to see what separates it from the background, or that nothing does).
"""

from __future__ import annotations

import argparse
import ast
import json
import pickle
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    import polars as pl

    from homicide_assets.lib.series import SeriesParams, finish_series, search_links
    from homicide_assets.lib.series_eval import evaluate_series, load_truth, true_death_of

    sys.path.insert(0, str(REPO / "scripts"))
    from series_bench import SERIES_FEEDS, _staged

    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--save")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--thresholds", help="comma-separated link thresholds to score (one search)")
    args = ap.parse_args(argv)
    work = Path(args.data)
    kw = {}
    for s in args.set:
        k, v = s.split("=", 1)
        kw[k] = ast.literal_eval(v)
    params = SeriesParams().with_(**kw)
    register = pl.read_parquet(work / "linkage" / "death_register.parquet")
    clusters = pl.read_parquet(work / "linkage" / "clusters.parquet")
    staged = _staged(work / "data", SERIES_FEEDS)
    t0 = time.perf_counter()
    search = search_links(register, clusters, staged, params)
    res = finish_series(search, params)
    secs = time.perf_counter() - t0
    truth = load_truth(work / "synth")
    if args.thresholds:
        for t in [float(x) for x in args.thresholds.split(",")]:
            r_ = finish_series(search, params.with_(link_threshold=t))
            e_ = evaluate_series(r_.linked_series, r_.case_links, register, truth, t)
            print(
                json.dumps(
                    {
                        "threshold": t,
                        **{k: e_[k] for k in ("found", "detected", "false_series", "precision")},
                        "by_kind": {
                            k: f"{v['found']}/{v['planted']} @"
                            + ",".join("-" if x is None else str(x) for x in v["flagged_at_member"])
                            for k, v in sorted(e_["by_kind"].items())
                        },
                    }
                )
            )
    ev = evaluate_series(res.linked_series, res.case_links, register, truth, params.link_threshold)
    to_true = true_death_of(register, truth["source_records"])
    member_of = {}
    for p in truth["series"].iter_rows(named=True):
        for d in p["death_ids"]:
            member_of[d] = p["series_id"]
    summary = {k: ev[k] for k in ("found", "planted", "detected", "false_series", "precision")}
    summary["by_kind"] = {
        k: f"{v['found']}/{v['planted']} @"
        + ",".join("-" if x is None else str(x) for x in v["flagged_at_member"])
        for k, v in sorted(ev["by_kind"].items())
    }
    summary["seconds"] = round(secs, 1)
    print(json.dumps(summary))
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump(
                {
                    "case_links": res.case_links,
                    "linked_series": res.linked_series,
                    "groups": res.groups,
                    "eval": ev,
                    "member_of": member_of,
                    "to_true": to_true,
                },
                fh,
            )
    if args.quiet:
        return 0
    cl = res.case_links
    for row in res.linked_series.iter_rows(named=True):
        tags = [member_of.get(to_true.get(d, ""), ".") for d in row["death_ids"]]
        counts = {}
        for t in tags:
            if t != ".":
                counts[t] = counts.get(t, 0) + 1
        is_true = any(c >= 2 for c in counts.values())
        if is_true:
            continue
        print(
            f"\nFALSE {row['series_id']} size {row['size']} score {row['score']} kinds {row['kinds']} at {row['flagged_at_member']}"
        )
        ids = set(row["death_ids"])
        inner = cl.filter(
            pl.col("death_id_a").is_in(ids) & pl.col("death_id_b").is_in(ids) & pl.col("linked")
        )
        for r in inner.iter_rows(named=True):
            print(
                f"   {r['score']:.3f} then {r['score_then']:.3f} {r['days_apart']}d {r['metres_apart']}m | "
                + " | ".join(r["evidence"][:6])
            )
    print("\nPLANTED")
    by_pl = {}
    for d_reg, d_true in to_true.items():
        if d_true in member_of:
            by_pl.setdefault(member_of[d_true], set()).add(d_reg)
    for s in ev["series"]:
        ids = by_pl.get(s["series_id"], set())
        inner = cl.filter(pl.col("death_id_a").is_in(ids) & pl.col("death_id_b").is_in(ids)).sort(
            "score", descending=True
        )
        best = [f"{x:.2f}" for x in inner["score"].head(6).to_list()]
        print(
            f"{s['series_id']:22s} {s['strength']:8s} n={s['size']} found={s['found']} @{s['flagged_at_member']} in_register={len(ids)} links={inner.height} best={best}"
        )
        if not s["found"] or (s["flagged_at_member"] or 9) > (2 if s["kind"] == "port_like" else 3):
            for r in inner.head(3).iter_rows(named=True):
                print(
                    f"      {r['score']:.3f} then {r['score_then']:.3f} {r['days_apart']}d {r['metres_apart']}m | "
                    + " | ".join(r["evidence"][:6])
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
