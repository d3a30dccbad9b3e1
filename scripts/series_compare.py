"""Compare the series search of two commits on the same built data directory.

    python scripts/series_compare.py --data DIR [--base f692ff7]

``DIR`` is a data directory a build wrote (``warehouse/linkage/death_register.parquet``,
``person_clusters.parquet`` and ``warehouse/staged/<feed>.parquet``). The base commit is
checked out in a temporary git worktree; :func:`homicide_assets.lib.series.find_series` runs
on the same frames with its code and with this working tree's code, each in its own process
(wall seconds of the search alone). Prints one JSON line: per table (``case_links``,
``linked_series``, ``groups``) whether the two are equal (floats to 1e-9), and for
``case_links`` how many links differ only in the order of their evidence lines.

For checking that a change to the search is a refactor (the same outputs), not for scoring:
it reads no ground truth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = ("case_links", "linked_series", "groups")
FEEDS = ("death_reports", "death_report_persons", "me_deaths", "safeguarding_contacts")

_RUN = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import polars as pl
import homicide_assets.lib.series as series
assert series.__file__.startswith(sys.argv[1]), series.__file__
w = Path(sys.argv[2]) / "warehouse"
read = lambda *k: pl.read_parquet(w.joinpath(*k).with_suffix(".parquet"))
staged = {f: read("staged", f) for f in sys.argv[4].split(",") if (w / "staged" / f"{f}.parquet").exists()}
t0 = time.perf_counter()
result = series.find_series(read("linkage", "death_register"), read("linkage", "person_clusters"), staged)
print(round(time.perf_counter() - t0, 2))
for table in sys.argv[5].split(","):
    getattr(result, table).write_parquet(Path(sys.argv[3]) / f"{table}.parquet")
"""


def _search(code: Path, data: Path, out: Path) -> float:
    out.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", _RUN, str(code), str(data), str(out), ",".join(FEEDS), ",".join(TABLES)],
                          capture_output=True, text=True, cwd=code)
    if proc.returncode != 0:
        raise SystemExit(f"series search with {code} failed:\n{proc.stderr[-4000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def compare(base_dir: Path, head_dir: Path) -> dict:
    import polars as pl
    from polars.testing import assert_frame_equal

    out: dict = {}
    for table in TABLES:
        a, b = pl.read_parquet(base_dir / f"{table}.parquet"), pl.read_parquet(head_dir / f"{table}.parquet")
        try:
            assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
            out[table] = {"equal": True, "rows": a.height}
            continue
        except AssertionError as e:
            out[table] = {"equal": False, "rows": [a.height, b.height], "first_difference": str(e)[:300]}
        if table == "case_links" and a.height == b.height:
            # links whose evidence differs only in the order of its lines
            j = a.join(b, on=["death_id_a", "death_id_b"], suffix="_head")
            differ = j.filter(pl.col("evidence") != pl.col("evidence_head"))
            out[table]["evidence_differs"] = differ.height
            out[table]["evidence_differs_only_in_order"] = differ.filter(
                pl.col("evidence").list.sort() == pl.col("evidence_head").list.sort()
            ).height
            out[table]["scores_equal"] = bool(((j["score"] - j["score_head"]).abs() < 1e-9).all())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/series_compare.py", description=__doc__)
    parser.add_argument("--data", required=True, help="a built data directory")
    parser.add_argument("--base", default="f692ff7", help="the commit to compare with (default f692ff7)")
    args = parser.parse_args(argv)
    data = Path(args.data).resolve()
    with tempfile.TemporaryDirectory(prefix="series_compare_") as tmp:
        tmp = Path(tmp)
        worktree = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), args.base], cwd=REPO, check=True)
        try:
            base_seconds = _search(worktree, data, tmp / "out_base")
            head_seconds = _search(REPO, data, tmp / "out_head")
            result = {"base": args.base, "data": str(data), "base_seconds": base_seconds,
                      "head_seconds": head_seconds, **compare(tmp / "out_base", tmp / "out_head")}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
