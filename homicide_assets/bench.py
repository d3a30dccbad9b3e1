"""``make bench``: one JSON line of measured figures per run.

Each measured step runs in its own Python process so its wall time and peak resident
memory (``ru_maxrss``) belong to it alone:

1. ``synth``: generate the synthetic deliveries at ``--scale`` (sizes, seconds, peak RSS);
2. ``dagster``: ``homicide-assets build`` on a fresh data directory (the full graph through
   a real Dagster instance), with per-stage seconds from the run's step events;
3. ``plain``: the same ``lib`` functions called from plain Python, no Dagster, on another
   fresh copy of the same deliveries. The ratio of 2 to 3 is Dagster's overhead;
4. ``incremental``: the police's next daily extract dropped into 2's data directory and
   ``homicide-assets build`` run again; its wall time over 2's is the incremental ratio. Two
   deliveries, one after the other: a corrected record (``incremental_*``), then the next day's
   extract carrying one new death (``incremental_new_death_*``), as most daily extracts do.

Every step records the 1-minute load average at its start and end (``load_average``) and
whether the environment's imports read compiled bytecode (``imports_from_bytecode``: without
it every build process compiles its modules from source, seconds of each build).

Later stages add their own figures to the line (see :data:`EXTRA_FIGURES`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(".bench")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_step(step: str, *args: str, env: dict | None = None) -> dict:
    """Run one measured step in a child process; it prints one JSON object last."""
    load_before = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-m", "homicide_assets.bench", "--step", step, *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench step {step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def imports_from_bytecode() -> bool:
    """Whether this environment's packages have current compiled bytecode (``make install``
    compiles it); a process without it compiles every module it imports from source."""
    import importlib.util

    import dagster
    import polars

    for module in (dagster, polars):
        source = Path(module.__file__)
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            return False
    return True


# ----------------------------------------------------------------------------- steps


def step_synth(scale: str, seed: int, out: Path) -> dict:
    from homicide_assets.synth import main as synth_main

    t0 = time.perf_counter()
    code = synth_main(["--scale", scale, "--seed", str(seed), "--out", str(out)])
    wall = time.perf_counter() - t0
    files = [p for p in (out / "landing").rglob("*") if p.is_file()]
    return {"exit": code, "seconds": round(wall, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def step_dagster(data: Path) -> dict:
    os.environ["HOMICIDE_DATA_DIR"] = str(data)
    os.environ.pop("DAGSTER_HOME", None)
    from homicide_assets.cli import run_build

    t0 = time.perf_counter()
    summary = run_build(quiet=True)
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "stages": _stage_seconds(data), **{k: summary[k] for k in ("failed_jobs", "accepted")},
            "receive_seconds": round(summary["receive_seconds"], 2),
            "ingest_seconds": round(summary["ingest_seconds"], 2),
            "refresh_seconds": round(summary["refresh_seconds"], 2)}


def step_incremental(data: Path) -> dict:
    """``homicide-assets build`` again on a data directory already built, after one new delivery."""
    os.environ["HOMICIDE_DATA_DIR"] = str(data)
    os.environ.pop("DAGSTER_HOME", None)
    from homicide_assets.cli import run_build

    since = time.time()
    t0 = time.perf_counter()
    summary = run_build(quiet=True)
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "stages": _stage_seconds(data, since=since),
            **{k: summary[k] for k in ("failed_jobs", "accepted", "refreshed_assets")},
            "receive_seconds": round(summary["receive_seconds"], 2),
            "ingest_seconds": round(summary["ingest_seconds"], 2),
            "refresh_seconds": round(summary["refresh_seconds"], 2)}


def _police_extracts(landings: Path | list[Path]) -> list[Path]:
    """The police's ``death_reports`` extracts in ``landings`` (landing folders), oldest first."""
    from homicide_assets.lib.parsing import parse_delivery_name

    def order(path: Path) -> tuple:
        name = parse_delivery_name(path.name)
        return name.extract_date, name.seq, path.name

    folders = [landings] if isinstance(landings, Path) else list(landings)
    files = sorted((p for f in folders for p in (f / "wmp").glob("wmp__death_reports__*.csv")), key=order)
    if not files:
        raise RuntimeError("no police death_reports extract to follow")
    return files


def _read_extract(path: Path) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def _write_next_extract(files: list[Path], into: Path, header: list[str], rows: list[list[str]]) -> Path:
    """``into/wmp/wmp__death_reports__<day after the newest extract>.csv`` holding ``rows``."""
    import csv
    import io
    from datetime import timedelta

    from homicide_assets.lib.parsing import parse_delivery_name

    newest = parse_delivery_name(files[-1].name).extract_date
    (into / "wmp").mkdir(parents=True, exist_ok=True)
    out = into / "wmp" / f"wmp__death_reports__{newest + timedelta(days=1):%Y%m%d}.csv"
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    out.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return out


def next_police_extract(landing: Path | list[Path], into: Path) -> Path:
    """Drop the police's next daily ``death_reports`` extract after those in ``landing`` (the
    generator's deliveries; or several landing folders) into ``into/wmp/`` (a data directory's
    landing folder).

    Per the naming contract (``<partner>__<feed>__<YYYYMMDD>.csv``) it is dated the day after
    the newest extract. It re-sends the last report of the newest extract that has rows, with
    an update appended to its narrative: a corrected record, so the newest extract wins for that
    report, and the file's bytes are new (an identical file would be a no-op re-delivery).
    """
    files = _police_extracts(landing)
    for source in reversed(files):
        rows = _read_extract(source)
        if len(rows) > 1:
            break
    else:
        raise RuntimeError("no police death_reports extract with rows to follow")
    header, row = rows[0], list(rows[-1])
    row[header.index("narrative")] = (row[header.index("narrative")] + " Update: the family liaison officer "
                                      "has spoken to the next of kin.").strip()
    return _write_next_extract(files, into, header, [row])


def next_police_extract_new_death(landing: Path | list[Path], into: Path, seed: int = 1) -> Path:
    """Drop the police's next daily ``death_reports`` extract carrying one new death into ``into/wmp/``.

    The new report is the last report of the newest extract with rows, made a different death
    within the contract (partner-feeds.md): a report id no extract has used (``DR-<year>-<next
    number>``), died the day before the extract and reported that evening, a person no report
    names (forename, sex, date of birth and ethnicity of another report's deceased, surname and
    home postcode of two others, no NHS number: often missing), the place (postcode, coordinates,
    location type) of a fourth report, and a narrative of its own. The donors are drawn with ``seed`` from every earlier report.
    """
    import random
    from datetime import date, timedelta

    from homicide_assets.lib.parsing import parse_delivery_name

    files = _police_extracts(landing)
    header, reports = None, []
    for path in files:
        rows = _read_extract(path)
        if rows:
            header = header or rows[0]
            reports.extend(rows[1:])
    if not reports:
        raise RuntimeError("no police death_reports extract with rows to follow")
    at = {name: i for i, name in enumerate(header)}
    field = lambda row, name: row[at[name]]  # noqa: E731
    day = parse_delivery_name(files[-1].name).extract_date + timedelta(days=1)
    died = day - timedelta(days=1)

    def birth(row: list[str]) -> date | None:
        text = field(row, "date_of_birth")
        try:
            return date.fromisoformat(text) if "-" in text else date(*map(int, reversed(text.split("/"))))
        except ValueError:
            return None

    rng = random.Random(seed)
    people = {(field(r, "forename"), field(r, "surname"), field(r, "date_of_birth")) for r in reports}
    source = list(reports[-1])
    for _ in range(1000):
        first, last, home, place = (rng.choice(reports) for _ in range(4))
        born = birth(first)
        if (field(first, "sex") in ("M", "F", "m", "f") and born is not None and born < died
                and field(last, "surname").lower() != "unknown" and field(home, "home_postcode")
                and field(place, "incident_postcode")
                and (field(first, "forename"), field(last, "surname"), field(first, "date_of_birth")) not in people):
            break
    else:
        raise RuntimeError("no donors for a new death in the police extracts")
    year = f"DR-{died.year}-"
    used = [int(field(r, "report_id")[len(year):]) for r in reports if field(r, "report_id").startswith(year)]
    row = source
    row[at["report_id"]] = f"{year}{max(used, default=0) + 1:06d}"
    row[at["date_of_death"]] = died.isoformat()
    row[at["reported_at"]] = f"{died.isoformat()}T21:40:00"
    for name in ("forename", "sex", "date_of_birth", "ethnicity"):
        row[at[name]] = field(first, name)
    row[at["surname"]] = field(last, "surname")
    row[at["home_postcode"]] = field(home, "home_postcode")
    row[at["nhs_number"]] = ""
    for name in ("incident_postcode", "incident_lat", "incident_lon", "location_type"):
        row[at[name]] = field(place, name)
    age = died.year - born.year - ((died.month, died.day) < (born.month, born.day))
    sex = "male" if field(first, "sex").lower() == "m" else "female"
    row[at["narrative"]] = (f"{age} year old {sex} found deceased. Officers attended with the ambulance "
                            "service; enquiries are ongoing and the next of kin have been informed.")
    return _write_next_extract(files, into, header, [row])


def _stage_seconds(data: Path, since: float | None = None) -> dict:
    """Seconds per asset step, from the runs' step events in the Dagster instance (those at or
    after ``since``, a Unix time, when given)."""
    from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

    instance = DagsterInstance.get()
    starts, out = {}, {}
    for event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
        for rec in instance.get_event_records(EventRecordsFilter(event_type=event_type), limit=100000):
            entry = rec.event_log_entry
            if since is not None and entry.timestamp < since:
                continue
            key = (entry.run_id, entry.step_key)
            if event_type == DagsterEventType.STEP_START:
                starts[key] = entry.timestamp
            else:
                out.setdefault(entry.step_key, 0.0)
                out[entry.step_key] += entry.timestamp - starts.get(key, entry.timestamp)
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def step_plain(data: Path) -> dict:
    """The same lib functions as the graph, in order, with no Dagster."""
    os.environ["HOMICIDE_DATA_DIR"] = str(data)
    import homicide_assets.defs.quality.checks  # noqa: F401  (imports dagster: not part of the plain run)
    from homicide_assets.lib.pipeline import run_plain

    t0 = time.perf_counter()
    stages = run_plain(data)
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "stages": {k: round(v, 2) for k, v in stages.items()}}


# ----------------------------------------------------------------------------- driver


def _rows_in(data: Path) -> int:
    from sqlmodel import func, select

    from homicide_assets.lib.settings import DataDir
    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery

    with session_scope(DataDir(data).database_url()) as s:
        return int(s.exec(select(func.coalesce(func.sum(Delivery.rows_read), 0))).one())


def evaluate_against_truth(data: Path, synth_dir: Path) -> dict:
    """Score the build's own linkage and series outputs against the generator's ground truth
    (the platform never reads it; only this scoring does)."""
    import polars as pl

    from homicide_assets.lib.linkage_eval import evaluate_data_dir
    from homicide_assets.lib.series import SeriesParams
    from homicide_assets.lib.series_eval import (
        baseline_from_data_dir,
        evaluate_series,
        load_truth,
        targets_met,
    )
    from homicide_assets.lib.settings import DataDir

    out: dict = {}
    linkage = evaluate_data_dir(data, synth_dir / "ground_truth")
    out["linkage_death_clusters"] = linkage["death_clusters"]
    out["linkage_person_matches"] = linkage["person_matches"]
    out["linkage_person_clusters"] = linkage["person_clusters"]
    out["linkage_worst_errors"] = [
        {k: e.get(k) for k in ("kind", "record_key_l", "record_key_r", "match_probability", "cause")}
        for e in linkage["worst_errors"][:10]
    ]
    d = DataDir(data)
    series = evaluate_series(
        pl.read_parquet(d.warehouse_file(["series", "linked_series"])),
        pl.read_parquet(d.warehouse_file(["series", "case_links"])),
        pl.read_parquet(d.warehouse_file(["linkage", "death_register"])),
        load_truth(synth_dir),
        SeriesParams().link_threshold,
    )
    # the naive baseline (same postcode district and method within 30 days) on the same
    # build's staged feeds and linkage outputs, scored the same way, side by side
    baseline = evaluate_series(
        baseline_from_data_dir(data),
        None,
        pl.read_parquet(d.warehouse_file(["linkage", "death_register"])),
        load_truth(synth_dir),
    )
    keep = ("planted", "found", "series_recall", "detected", "false_series", "precision",
            "false_series_per_1000_deaths")

    def by_kind(result: dict) -> dict:
        return {
            k: {"found": f"{v['found']}/{v['planted']}", "flagged_at_member": v["flagged_at_member"]}
            for k, v in sorted(result["by_kind"].items())
        }

    out["series"] = {k: series[k] for k in keep if k in series}
    out["series_by_kind"] = by_kind(series)
    out["series_targets_met"] = targets_met(series)
    out["series_baseline"] = {k: baseline[k] for k in keep if k in baseline}
    out["series_baseline_by_kind"] = by_kind(baseline)
    out["series_baseline_targets_met"] = targets_met(baseline)
    return out


def run_bench(scale: str, seed: int, keep: bool = False) -> dict:
    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"bench_{scale}_", dir=BENCH_DIR)).resolve()
    try:
        synth_dir = work / "synth"
        synth = _run_step("synth", "--scale", scale, "--seed", str(seed), "--out", str(synth_dir))
        runs = {}
        for mode in ("dagster", "plain"):
            data = work / mode
            shutil.copytree(synth_dir / "landing", data / "landing")
            runs[mode] = _run_step(mode, "--data", str(data))
        # the incremental builds: one new delivery into the data directory just built (a corrected
        # record), then the next day's (one new death); the build moves each file out of landing
        sent = work / "sent"
        new_file = next_police_extract(synth_dir / "landing", work / "dagster" / "landing")
        (sent / "wmp").mkdir(parents=True)
        shutil.copy2(new_file, sent / "wmp" / new_file.name)
        incremental = _run_step("incremental", "--data", str(work / "dagster"))
        # scored against the generator's ground truth here: the correction changes no death, and
        # the bench's own new death (next) is not in the ground truth
        scores = evaluate_against_truth(work / "dagster", synth_dir)
        death_file = next_police_extract_new_death([synth_dir / "landing", sent], work / "dagster" / "landing", seed)
        new_death = _run_step("incremental", "--data", str(work / "dagster"))
        rows_in = _rows_in(work / "dagster")
        stage = runs["dagster"]["stages"]
        checks = {k.removeprefix("quality_"): v for k, v in stage.items() if k.startswith("quality_")}
        line = {
            "bench": "homicide_assets", "scale": scale, "seed": seed,
            "rows_in": rows_in, "files_in": synth["files"], "bytes_in": synth["bytes"],
            "synth_seconds": synth["seconds"], "synth_peak_rss_mb": synth["peak_rss_mb"],
            "build_seconds": runs["dagster"]["seconds"], "build_peak_rss_mb": runs["dagster"]["peak_rss_mb"],
            "plain_seconds": runs["plain"]["seconds"], "plain_peak_rss_mb": runs["plain"]["peak_rss_mb"],
            "dagster_over_plain": round(runs["dagster"]["seconds"] / max(runs["plain"]["seconds"], 1e-9), 2),
            "incremental_delivery": new_file.name,
            "incremental_seconds": incremental["seconds"],
            "incremental_over_full": round(incremental["seconds"] / max(runs["dagster"]["seconds"], 1e-9), 3),
            "incremental_peak_rss_mb": incremental["peak_rss_mb"],
            "incremental_refreshed_assets": incremental["refreshed_assets"],
            "incremental_failed_jobs": incremental["failed_jobs"],
            "incremental_stage_seconds": incremental["stages"],
            "incremental_phase_seconds": {k: incremental[k] for k in
                                          ("receive_seconds", "ingest_seconds", "refresh_seconds")},
            "incremental_new_death_delivery": death_file.name,
            "incremental_new_death_seconds": new_death["seconds"],
            "incremental_new_death_over_full": round(new_death["seconds"] / max(runs["dagster"]["seconds"], 1e-9), 3),
            "incremental_new_death_peak_rss_mb": new_death["peak_rss_mb"],
            "incremental_new_death_refreshed_assets": new_death["refreshed_assets"],
            "incremental_new_death_failed_jobs": new_death["failed_jobs"],
            "incremental_new_death_stage_seconds": new_death["stages"],
            "incremental_new_death_phase_seconds": {k: new_death[k] for k in
                                                    ("receive_seconds", "ingest_seconds", "refresh_seconds")},
            "build_phase_seconds": {k: runs["dagster"][k] for k in
                                    ("receive_seconds", "ingest_seconds", "refresh_seconds")},
            "load_average": {"synth": synth["load_average"], "build": runs["dagster"]["load_average"],
                             "plain": runs["plain"]["load_average"], "incremental": incremental["load_average"],
                             "incremental_new_death": new_death["load_average"]},
            "imports_from_bytecode": imports_from_bytecode(),
            "build_failed_jobs": runs["dagster"]["failed_jobs"],
            # the checks' steps (GX suites, conservation) per feed, and their share of the build
            "check_seconds_per_feed": checks,
            "checks_share_of_build": round(sum(checks.values()) / max(runs["dagster"]["seconds"], 1e-9), 3),
            "build_stage_seconds": runs["dagster"]["stages"],
            "plain_stage_seconds": runs["plain"]["stages"],
            "cpus": os.cpu_count(),
        }
        line.update(scores)
        return line
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homicide_assets.bench", description=__doc__)
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the bench data directories under .bench/")
    parser.add_argument("--step", choices=["synth", "dagster", "plain", "incremental"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step == "synth":
        result = step_synth(args.scale, args.seed, Path(args.out))
    elif args.step == "dagster":
        result = step_dagster(Path(args.data))
    elif args.step == "plain":
        result = step_plain(Path(args.data))
    elif args.step == "incremental":
        result = step_incremental(Path(args.data))
    else:
        result = run_bench(args.scale, args.seed, keep=args.keep)
    print(json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
