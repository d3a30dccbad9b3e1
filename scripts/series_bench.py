"""Series benchmark: generate, stage, link, search for series, score against the planted ones.

    python scripts/series_bench.py --scale force-year --seed 1

Prints one JSON line: series recall, precision of flagged series, false series per 1,000
deaths, ``flagged_at_member`` per kind and the issue's targets met or not, for the method
(:func:`homicide_assets.lib.series.find_series`) and for the naive baseline (same postcode
district and method within 30 days), side by side; with the seconds and peak memory of the
series search alone.

Steps, each in its own process so wall time and peak memory belong to it alone:

1. ``prepare``: the synthetic generator writes deliveries and ground truth; the platform's
   own ingest (``lib.pipeline.run_plain``) stages them, exactly as the graph does.
2. ``link``: :func:`homicide_assets.lib.linkage_register.link_platform` (person keys and
   the death register).
3. ``series``: :func:`homicide_assets.lib.series.find_series` and the naive baseline on the
   staged feeds and linkage outputs (timed: ``series_seconds``, ``series_peak_rss_mb``).
4. scoring in this process (:mod:`homicide_assets.lib.series_eval`): the only step that
   reads the ground truth.

Work goes under ``.bench/series_<scale>_<seed>_*`` and is removed unless ``--keep``; with
``--data DIR`` a prepared directory (``synth/``, ``data/``, ``linkage/``, e.g. one kept by
``scripts/linkage_bench.py --keep``) is reused and steps 1-2 are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERIES_FEEDS = ("death_reports", "death_report_persons", "me_deaths", "safeguarding_contacts")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(step: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--step", step, *args], capture_output=True, text=True, cwd=REPO
    )
    if proc.returncode != 0:
        raise SystemExit(f"series bench step {step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_prepare(scale: str, seed: int, work: Path) -> dict:
    from homicide_assets.lib.pipeline import run_plain
    from homicide_assets.synth import main as synth_main

    t0 = time.perf_counter()
    if synth_main(["--scale", scale, "--seed", str(seed), "--out", str(work / "synth")]):
        raise SystemExit("the generator failed")
    synth_seconds = time.perf_counter() - t0
    data = work / "data"
    shutil.copytree(work / "synth" / "landing", data / "landing")
    os.environ["HOMICIDE_DATA_DIR"] = str(data)
    t0 = time.perf_counter()
    run_plain(data)
    return {"synth_seconds": round(synth_seconds, 2), "stage_seconds": round(time.perf_counter() - t0, 2)}


def _staged(data: Path, feeds) -> dict:
    import polars as pl

    from homicide_assets.lib.settings import DataDir

    out = {}
    for feed in feeds:
        path = DataDir(data).warehouse_file(["staged", feed])
        out[feed] = pl.read_parquet(path) if path.exists() else None
    return out


def step_link(work: Path) -> dict:
    from homicide_assets.lib.linkage_register import PERSON_FEEDS, link_platform
    from homicide_assets.lib.pseudonym import load_key

    t0 = time.perf_counter()
    result = link_platform(_staged(work / "data", PERSON_FEEDS), load_key())
    out = work / "linkage"
    out.mkdir(exist_ok=True)
    result.clusters.write_parquet(out / "clusters.parquet")
    result.death_register.write_parquet(out / "death_register.parquet")
    return {"link_seconds": round(time.perf_counter() - t0, 2)}


def step_series(work: Path) -> dict:
    import polars as pl

    from homicide_assets.lib.series import SeriesParams, find_series, naive_baseline

    register = pl.read_parquet(work / "linkage" / "death_register.parquet")
    clusters = pl.read_parquet(work / "linkage" / "clusters.parquet")
    staged = _staged(work / "data", SERIES_FEEDS)
    params = SeriesParams()
    t0 = time.perf_counter()
    result = find_series(register, clusters, staged, params)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = naive_baseline(result.profiles, params.baseline_gap_days)
    baseline_seconds = time.perf_counter() - t0
    out = work / "series"
    out.mkdir(exist_ok=True)
    result.case_links.write_parquet(out / "case_links.parquet")
    result.linked_series.write_parquet(out / "linked_series.parquet")
    baseline.write_parquet(out / "baseline_series.parquet")
    return {
        "series_seconds": round(seconds, 2),
        "series_peak_rss_mb": round(_peak_rss_mb(), 1),
        "baseline_seconds": round(baseline_seconds, 2),
        "deaths": register.height,
        "police_reported_deaths": int(result.profiles["has_police_report"].sum()),
        "candidate_pairs": result.candidate_pairs,
        "case_links": result.case_links.height,
        "links_at_threshold": int(result.case_links["linked"].sum()),
        "group_alarms": result.groups.height,
        "params": {
            "link_threshold": params.link_threshold,
            "partners_per_death": params.partners_per_death,
            "scan_false_alarms_per_year": params.scan_false_alarms_per_year,
            "excess_false_alarms_per_year": params.excess_false_alarms_per_year,
        },
    }


def score(work: Path) -> dict:
    import polars as pl

    from homicide_assets.lib.series import SeriesParams
    from homicide_assets.lib.series_eval import evaluate_series, load_truth, targets_met

    truth = load_truth(work / "synth")
    register = pl.read_parquet(work / "linkage" / "death_register.parquet")
    out = work / "series"
    threshold = SeriesParams().link_threshold
    method = evaluate_series(
        pl.read_parquet(out / "linked_series.parquet"),
        pl.read_parquet(out / "case_links.parquet"),
        register,
        truth,
        threshold,
    )
    baseline = evaluate_series(pl.read_parquet(out / "baseline_series.parquet"), None, register, truth)
    summary_keys = (
        "planted",
        "found",
        "series_recall",
        "member_recall",
        "detected",
        "true_series",
        "false_series",
        "precision",
        "false_series_per_1000_deaths",
    )

    def per_kind(result: dict) -> dict:
        return {
            k: {"found": f"{v['found']}/{v['planted']}", "flagged_at_member": v["flagged_at_member"]}
            for k, v in sorted(result["by_kind"].items())
        }

    return {
        "method": {
            **{k: method[k] for k in summary_keys},
            "by_kind": per_kind(method),
            "decoys_linked": method["decoys_linked"],
            "targets": targets_met(method),
            "series": method["series"],
        },
        "baseline": {
            **{k: baseline[k] for k in summary_keys},
            "by_kind": per_kind(baseline),
            "targets": targets_met(baseline),
        },
    }


def run(scale: str, seed: int, keep: bool, data: str | None) -> dict:
    if not os.environ.get("HOMICIDE_PSEUDONYM_KEY") and not os.environ.get("HOMICIDE_PSEUDONYM_KEY_FILE"):
        os.environ["HOMICIDE_PSEUDONYM_KEY"] = secrets.token_hex(24)  # synthetic data: a throwaway key
    (REPO / ".bench").mkdir(exist_ok=True)
    work = (
        Path(data).resolve()
        if data
        else Path(tempfile.mkdtemp(prefix=f"series_{scale}_{seed}_", dir=REPO / ".bench")).resolve()
    )
    try:
        prepared = (
            {}
            if data
            else {
                **_child("prepare", "--scale", scale, "--seed", str(seed), "--work", str(work)),
                **_child("link", "--work", str(work)),
            }
        )
        searched = _child("series", "--work", str(work))
        return {
            "bench": "series",
            "scale": scale,
            "seed": seed,
            **prepared,
            **searched,
            **score(work),
            "cpus": os.cpu_count(),
        }
    finally:
        if not keep and not data:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory under .bench/")
    parser.add_argument("--data", help="reuse a prepared work directory (synth/, data/, linkage/)")
    parser.add_argument("--step", choices=["prepare", "link", "series"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        result = step_prepare(args.scale, args.seed, Path(args.work))
    elif args.step == "link":
        result = step_link(Path(args.work))
    elif args.step == "series":
        result = step_series(Path(args.work))
    else:
        result = run(args.scale, args.seed, args.keep, args.data)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
