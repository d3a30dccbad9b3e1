"""Scoring series detection against the synthetic generator's planted series.

Only benchmarks and tests call this; the platform never reads ground truth. The register's
deaths are mapped to the generator's true deaths through their source records
(``ground_truth/source_records.parquet``: record key -> true death id), so a detected series
is scored on the deaths it really contains, however linkage named them.

Definitions (per run):

- a planted series is **found** when one detected series holds at least two of its deaths;
- a detected series is **true** when at least two of its deaths belong to one planted
  series, else **false** (precision = true / detected);
- **false series per 1,000 deaths**: false detected series over the register's deaths;
- **flagged_at_member** of a planted series: replaying the detected series' links in date
  order (each link visible on its later death's date, scored with what was known then), the
  number of the planted series' deaths dead by the first date its deaths were joined: 2 =
  seen at the second death;
- **decoys linked**: negative controls (busy hospital, busy clinician, city-centre
  coincidences, namesakes, a frequent finder, a sudden-death officer) with two or more
  deaths in one detected series.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.series import _UnionFind

SERIES_FEEDS = ("death_reports", "death_report_persons", "me_deaths", "safeguarding_contacts")


def baseline_from_data_dir(data: str | Path, gap_days: int | None = None) -> pl.DataFrame:
    """The naive baseline (same postcode district and method within 30 days,
    :func:`homicide_assets.lib.series.naive_baseline`) on a build's own staged feeds and
    linkage outputs: what a desk check would have flagged from the same data."""
    from homicide_assets.lib.series import SeriesParams, death_profiles, naive_baseline
    from homicide_assets.lib.settings import DataDir

    d = DataDir(data)
    staged = {}
    for feed in SERIES_FEEDS:
        path = d.warehouse_file(["staged", feed])
        staged[feed] = pl.read_parquet(path) if path.exists() else None
    register = pl.read_parquet(d.warehouse_file(["linkage", "death_register"]))
    clusters_path = d.warehouse_file(["linkage", "person_clusters"])
    clusters = (
        pl.read_parquet(clusters_path)
        if clusters_path.exists()
        else pl.DataFrame(schema={"record_key": pl.String, "person_key": pl.String})
    )
    profiles = death_profiles(register, clusters, staged)
    return naive_baseline(profiles, gap_days if gap_days is not None else SeriesParams().baseline_gap_days)


def load_truth(synth_dir: str | Path) -> dict[str, pl.DataFrame]:
    """The generator's ``ground_truth`` tables the scoring needs."""
    g = Path(synth_dir) / "ground_truth"
    out = {
        "series": pl.read_parquet(g / "series.parquet"),
        "deaths": pl.read_parquet(g / "deaths.parquet").select("death_id", "date_of_death"),
        "source_records": pl.read_parquet(g / "source_records.parquet").select("record_key", "death_id"),
    }
    controls = g / "negative_controls.parquet"
    out["controls"] = (
        pl.read_parquet(controls)
        if controls.exists()
        else pl.DataFrame(
            schema={"control_id": pl.String, "kind": pl.String, "death_ids": pl.List(pl.String)}
        )
    )
    return out


def true_death_of(register: pl.DataFrame, source_records: pl.DataFrame) -> dict[str, str]:
    """Register death id -> the true death most of its source records are about."""
    pairs = (
        register.select("death_id", pl.col("source_records").alias("record_key"))
        .explode("record_key")
        .join(source_records.rename({"death_id": "true_death_id"}), on="record_key", how="inner")
        .drop_nulls("true_death_id")
        .group_by("death_id", "true_death_id")
        .len()
        .sort(["death_id", "len", "true_death_id"], descending=[False, True, False])
        .unique("death_id", keep="first")
    )
    return dict(zip(pairs["death_id"].to_list(), pairs["true_death_id"].to_list()))


def _flag_date_for(
    planted: set[str],
    detected_ids: list[str],
    links: pl.DataFrame,
    to_true: dict[str, str],
    dates: dict[str, date],
    threshold: float,
    score_col: str,
) -> date | None:
    """First date on which two of ``planted``'s deaths were joined by the detected series' links."""
    members = set(detected_ids)
    inner = links.filter(
        pl.col("death_id_a").is_in(members)
        & pl.col("death_id_b").is_in(members)
        & (pl.col(score_col) >= threshold)
    )
    events = []
    for a, b, visible in inner.select("death_id_a", "death_id_b", "visible_on").iter_rows():
        da, db = dates.get(to_true.get(a, "")), dates.get(to_true.get(b, ""))
        if da is None or db is None:
            continue
        # the platform's own visibility date, on the true calendar (never before the later death)
        events.append((max(da, db, visible) if visible is not None else max(da, db), a, b))
    uf = _UnionFind()
    index = {d: i for i, d in enumerate(sorted(members))}
    in_planted = {index[d] for d in members if to_true.get(d) in planted}
    for when, a, b in sorted(events):
        uf.union(index[a], index[b])
        roots = defaultdict(int)
        for m in in_planted:
            roots[uf.find(m)] += 1
        if roots and max(roots.values()) >= 2:
            return when
    return None


def evaluate_series(
    linked_series: pl.DataFrame,
    case_links: pl.DataFrame | None,
    register: pl.DataFrame,
    truth: dict[str, pl.DataFrame],
    threshold: float = 0.5,
    score_col: str = "score_then",
) -> dict:
    """Series recall, precision, false series per 1,000 deaths and flagged_at_member per kind."""
    to_true = true_death_of(register, truth["source_records"])
    dates = dict(zip(truth["deaths"]["death_id"].to_list(), truth["deaths"]["date_of_death"].to_list()))
    planted = truth["series"]
    detected = [
        (row["series_id"], row["death_ids"], row.get("first_flagged_on"))
        for row in linked_series.iter_rows(named=True)
    ]
    detected_true = [{to_true[d] for d in ids if d in to_true} for _, ids, _ in detected]

    per_series = []
    matched_detected: set[int] = set()
    for p in planted.iter_rows(named=True):
        members = set(p["death_ids"])
        overlaps = [len(members & t) for t in detected_true]
        best = int(np.argmax(overlaps)) if overlaps else -1
        found = bool(overlaps) and overlaps[best] >= 2
        flagged_at = None
        flag_on = None
        if found:
            if case_links is not None and score_col in case_links.columns:
                flag_on = _flag_date_for(
                    members, detected[best][1], case_links, to_true, dates, threshold, score_col
                )
            else:
                flag_on = detected[best][2]
            if flag_on is not None:
                flagged_at = sum(1 for d in members if dates.get(d) is not None and dates[d] <= flag_on)
        per_series.append(
            {
                "series_id": p["series_id"],
                "kind": p["kind"],
                "strength": p.get("strength"),
                "size": p["size"],
                "found": found,
                "members_found": overlaps[best] if found else 0,
                "detected_size": len(detected[best][1]) if found else 0,
                "flagged_at_member": flagged_at,
                "first_flagged_on": str(flag_on) if flag_on else None,
            }
        )
    for i, t in enumerate(detected_true):
        for p in planted.iter_rows(named=True):
            if len(set(p["death_ids"]) & t) >= 2:
                matched_detected.add(i)
                break
    n_detected = len(detected)
    n_false = n_detected - len(matched_detected)
    decoys = []
    for c in truth["controls"].iter_rows(named=True):
        members = set(c["death_ids"])
        hit = max((len(members & t) for t in detected_true), default=0)
        if hit >= 2:
            decoys.append(f"{c['control_id']} ({hit} deaths)")
    by_kind: dict[str, dict] = {}
    for s in per_series:
        k = by_kind.setdefault(s["kind"], {"planted": 0, "found": 0, "flagged_at_member": []})
        k["planted"] += 1
        k["found"] += int(s["found"])
        k["flagged_at_member"].append(s["flagged_at_member"])
    deaths = register.height
    return {
        "planted": planted.height,
        "found": sum(int(s["found"]) for s in per_series),
        "series_recall": round(sum(int(s["found"]) for s in per_series) / max(planted.height, 1), 4),
        "member_recall": round(
            sum(s["members_found"] for s in per_series) / max(int(planted["size"].sum()), 1), 4
        ),
        "detected": n_detected,
        "true_series": len(matched_detected),
        "false_series": n_false,
        "precision": round(len(matched_detected) / n_detected, 4) if n_detected else None,
        "deaths": deaths,
        "false_series_per_1000_deaths": round(n_false / max(deaths, 1) * 1000, 4),
        "by_kind": by_kind,
        "decoys_linked": decoys,
        "series": per_series,
    }


def targets_met(result: dict) -> dict[str, bool]:
    """The issue's targets, each true or false for one evaluated run."""
    port = [x for x in result["by_kind"].get("port_like", {}).get("flagged_at_member", [])]
    others = [x for k, v in result["by_kind"].items() if k != "port_like" for x in v["flagged_at_member"]]
    return {
        "every_series_found": result["found"] == result["planted"],
        "precision_at_least_0.9": (result["precision"] or 0) >= 0.9,
        "port_like_at_2nd": all(x is not None and x <= 2 for x in port),
        "others_by_3rd": all(x is not None and x <= 3 for x in others),
        "false_series_per_1000_at_most_1": result["false_series_per_1000_deaths"] <= 1.0,
    }
