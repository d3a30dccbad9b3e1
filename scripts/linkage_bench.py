"""Linkage benchmark: generate, stage, link, score against ground truth; one JSON line.

    python scripts/linkage_bench.py --scale force-year --seed 1

Steps, each in its own process so wall time and peak memory belong to it alone:

1. ``prepare``: the synthetic generator writes deliveries and ground truth; the platform's
   own ingest functions (receive, parse, stage: the first stages of
   ``lib.pipeline.run_plain``) turn them into the staged feeds, as the graph does.
2. ``link``: :func:`homicide_assets.lib.linkage_register.link_platform` on the staged feeds
   (person records, Splink matches, person clusters, death register). This is the timed
   linkage: ``link_seconds`` and ``link_peak_rss_mb``.
3. scoring in this process (:func:`homicide_assets.lib.linkage_eval.evaluate_linkage`):
   pairwise precision, recall and F1 of person matches, person clusters and death
   clusters, and the ten worst death errors with their causes.

The data goes under ``.bench/linkage_<scale>_<seed>_*`` and is removed unless ``--keep``.
With ``--data DIR`` an existing prepared directory is reused (skips step 1).
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

LINK_OUTPUTS = ("records", "matches", "clusters", "death_register")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(step: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--step", step, *args], capture_output=True, text=True, cwd=REPO
    )
    if proc.returncode != 0:
        raise SystemExit(f"linkage bench step {step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_prepare(scale: str, seed: int, work: Path) -> dict:
    """Generate, then receive, parse and stage with the platform's own ingest functions
    (the first stages of ``lib.pipeline.run_plain``; nothing downstream of staging)."""
    from sqlmodel import select

    from homicide_assets.lib.feeds import FEED_NAMES
    from homicide_assets.lib.ingest import parse_archived_delivery, stage_and_record
    from homicide_assets.lib.landing import look, receive
    from homicide_assets.lib.pseudonym import load_key
    from homicide_assets.lib.registry import default_registry
    from homicide_assets.lib.settings import DataDir
    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery
    from homicide_assets.synth import main as synth_main

    t0 = time.perf_counter()
    code = synth_main(["--scale", scale, "--seed", str(seed), "--out", str(work / "synth")])
    if code:
        raise SystemExit(f"generator exited {code}")
    synth_seconds = time.perf_counter() - t0
    data_dir = DataDir(work / "data").ensure()
    shutil.copytree(work / "synth" / "landing", data_dir.landing, dirs_exist_ok=True)
    os.environ["HOMICIDE_DATA_DIR"] = str(data_dir.root)
    registry, key = default_registry(), load_key()
    t0 = time.perf_counter()
    first = look(data_dir, {})
    receive(data_dir, registry, look(data_dir, first.cursor).ready)
    with session_scope(data_dir.database_url()) as s:
        received = list(s.exec(select(Delivery).where(Delivery.status == "received")))
    for delivery in received:
        outcome = parse_archived_delivery(data_dir, delivery.delivery_id)
        _write(data_dir.warehouse_file(["raw", delivery.feed], delivery.delivery_id), outcome.frame)
    staged: dict = {}
    for feed in FEED_NAMES:
        known = staged["death_reports"]["report_id"] if feed == "death_report_persons" else None
        result, _, _ = stage_and_record(data_dir, feed, key, registry, known_report_ids=known)
        staged[feed] = result.staged
        _write(data_dir.warehouse_file(["staged", feed]), result.staged)
    return {"synth_seconds": round(synth_seconds, 2), "stage_seconds": round(time.perf_counter() - t0, 2)}


def _write(path: Path, frame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def _staged(data: Path) -> dict:
    import polars as pl

    from homicide_assets.lib.linkage_register import PERSON_FEEDS
    from homicide_assets.lib.settings import DataDir

    out = {}
    for feed in PERSON_FEEDS:
        path = DataDir(data).warehouse_file(["staged", feed])
        out[feed] = pl.read_parquet(path) if path.exists() else None
    return out


def step_link(work: Path, backend: str, threshold: float) -> dict:
    from homicide_assets.lib.linkage_register import link_platform
    from homicide_assets.lib.pseudonym import load_key

    staged = _staged(work / "data")
    rows = {feed: (0 if frame is None else frame.height) for feed, frame in staged.items()}
    t0 = time.perf_counter()
    result = link_platform(staged, load_key(), threshold=threshold, backend=backend)
    seconds = time.perf_counter() - t0
    out = work / "linkage"
    out.mkdir(exist_ok=True)
    result.records.write_parquet(out / "records.parquet")
    result.matches.write_parquet(out / "matches.parquet")
    result.clusters.write_parquet(out / "clusters.parquet")
    result.death_register.write_parquet(out / "death_register.parquet")
    return {
        "link_seconds": round(seconds, 2),
        "link_peak_rss_mb": round(_peak_rss_mb(), 1),
        "person_records": result.records.height,
        "staged_rows": rows,
        "linked_pairs": int(result.matches["linked"].sum()),
        "training_notes": result.training_notes,
        "prior": result.model.get("probability_two_random_records_match"),
    }


def score(work: Path, threshold: float) -> dict:
    import polars as pl

    from homicide_assets.lib.linkage_eval import evaluate_linkage, load_ground_truth

    out = work / "linkage"
    frames = {name: pl.read_parquet(out / f"{name}.parquet") for name in LINK_OUTPUTS}
    truth = load_ground_truth(work / "synth")
    return evaluate_linkage(
        frames["records"],
        frames["matches"],
        frames["clusters"],
        frames["death_register"],
        truth,
        threshold=threshold,
    )


def run(scale: str, seed: int, backend: str, threshold: float, keep: bool, data: str | None) -> dict:
    if not os.environ.get("HOMICIDE_PSEUDONYM_KEY") and not os.environ.get("HOMICIDE_PSEUDONYM_KEY_FILE"):
        os.environ["HOMICIDE_PSEUDONYM_KEY"] = secrets.token_hex(24)  # synthetic data: a throwaway key
    (REPO / ".bench").mkdir(exist_ok=True)
    work = (
        Path(data).resolve()
        if data
        else Path(tempfile.mkdtemp(prefix=f"linkage_{scale}_{seed}_", dir=REPO / ".bench")).resolve()
    )
    try:
        prepared = (
            {} if data else _child("prepare", "--scale", scale, "--seed", str(seed), "--work", str(work))
        )
        linked = _child("link", "--work", str(work), "--backend", backend, "--threshold", str(threshold))
        scores = score(work, threshold)
        return {
            "bench": "linkage",
            "scale": scale,
            "seed": seed,
            "backend": backend,
            "threshold": threshold,
            **prepared,
            **linked,
            **scores,
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
    parser.add_argument("--backend", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument(
        "--threshold", type=float, default=None, help="clustering threshold (default: the platform's)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory under .bench/")
    parser.add_argument("--data", help="reuse a prepared work directory (from --keep)")
    parser.add_argument("--step", choices=["prepare", "link"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threshold is None:
        from homicide_assets.lib.linkage_register import CLUSTER_THRESHOLD

        args.threshold = CLUSTER_THRESHOLD
    if args.step == "prepare":
        result = step_prepare(args.scale, args.seed, Path(args.work))
    elif args.step == "link":
        result = step_link(Path(args.work), args.backend, args.threshold)
    else:
        result = run(args.scale, args.seed, args.backend, args.threshold, args.keep, args.data)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
