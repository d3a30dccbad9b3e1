"""The incremental series search against a search from scratch, on a kept series bench directory.

    python scripts/series_incremental_check.py .bench/series_force-decade_1_XXXX --new 20

The newest ``--new`` deaths of the register are held back; the rest are searched whole (the held
basis); then all deaths are searched incrementally from that state and, separately, whole from
scratch. Prints one JSON line: both times, series and links at the threshold in each and in
both, whether ``flagged_at_member`` agrees, the largest score difference of links in both.
The directory is one ``scripts/series_bench.py --keep`` leaves. Reads no ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import polars as pl  # noqa: E402
from series_bench import SERIES_FEEDS, _staged  # noqa: E402

from homicide_assets.lib import series as S  # noqa: E402
from homicide_assets.lib.series_held import HeldSearch, incremental_search, search_code  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("work", type=Path)
parser.add_argument("--new", type=int, default=20)
args = parser.parse_args()
register = pl.read_parquet(args.work / "linkage" / "death_register.parquet")
clusters = pl.read_parquet(args.work / "linkage" / "clusters.parquet")
staged = _staged(args.work / "data", SERIES_FEEDS)
params = S.SeriesParams()
newest = register.sort("date_of_death", "death_id").tail(args.new)["death_id"].to_list()


def world(exclude):
    reg = register.filter(~pl.col("death_id").is_in(exclude))
    profiles = S.death_profiles(reg, clusters, staged)
    return profiles, S.death_entities(profiles, clusters, staged)


p0, e0 = world(newest)
state = HeldSearch.from_whole(S._search(p0, e0, params), e0, "", search_code(params), params)
p1, e1 = world([])
t0 = time.perf_counter()
got = incremental_search(state, p1, e1, params)
if isinstance(got, str):
    raise SystemExit(f"searched whole: {got}")
inc_s = time.perf_counter() - t0
t0 = time.perf_counter()
scratch = S._search(p1, e1, params)
whole_s = time.perf_counter() - t0
a, b = S.finish_series(got[0], params), S.finish_series(scratch, params)
sa = {tuple(sorted(x)) for x in a.linked_series["death_ids"].to_list()}
sb = {tuple(sorted(x)) for x in b.linked_series["death_ids"].to_list()}
la = a.case_links.filter("linked").select("death_id_a", "death_id_b")
lb = b.case_links.filter("linked").select("death_id_a", "death_id_b")
both = a.case_links.join(b.case_links, on=["death_id_a", "death_id_b"])
order = ["death_ids"]
print(json.dumps({
    "new_deaths": args.new, "incremental_seconds": round(inc_s, 2), "whole_seconds": round(whole_s, 2),
    "series_incremental": len(sa), "series_whole": len(sb), "series_in_both": len(sa & sb),
    "links_incremental": la.height, "links_whole": lb.height,
    "links_in_both": la.join(lb, on=["death_id_a", "death_id_b"]).height,
    "flagged_at_member_same": a.linked_series.select(*order, "flagged_at_member").sort(order).equals(
        b.linked_series.select(*order, "flagged_at_member").sort(order)),
    "max_score_difference": round(float((both["score"] - both["score_right"]).abs().max() or 0.0), 4),
}))
