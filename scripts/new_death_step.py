"""One more new-death build on a copy of a kept bench directory, with its stage seconds.

    python scripts/new_death_step.py .bench/bench_force-decade_XXXX [--seed 2] [--profile out.prof]

``make bench`` measures its incremental steps once each. This repeats the new-death step on a
copy of the directory a ``python -m homicide_assets.bench --keep`` run left (its ``dagster``
data directory, already built with both of the bench's incremental deliveries): the police's
next extract with one new death (``bench.next_police_extract_new_death``, donors drawn with
``--seed``) is dropped into the copy's landing folder and ``homicide-assets build`` runs in this
process. Prints the bench's JSON for the step; ``--profile`` also writes a cProfile of it. The
kept directory itself is not changed, so the step can be repeated on the same state;
``--in-place`` builds in it instead, so one step follows another (a first step after a change
to the series code searches whole; the next is the incremental one).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kept", type=Path, help="a .bench/bench_<scale>_* directory kept by the bench")
    parser.add_argument("--seed", type=int, default=2, help="draws the new death's donors (the bench uses 1)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the build here")
    parser.add_argument("--work", type=Path, help="copy into this folder (default: a temporary one, removed)")
    parser.add_argument("--in-place", action="store_true",
                        help="build in the kept directory itself (no copy), so steps follow one another: "
                             "the extracts it adds are kept in its sent_more/ to number the next")
    args = parser.parse_args(argv)

    from homicide_assets import bench

    kept = args.kept.resolve()
    if args.in_place:
        more = kept / "sent_more"
        landings = [kept / "synth" / "landing", kept / "sent"]
        if not more.exists():
            more.mkdir()
            bench.next_police_extract_new_death(landings, more, 1)  # the bench's own new death
        path = bench.next_police_extract_new_death([*landings, more], kept / "dagster" / "landing", args.seed)
        (more / path.parent.name).mkdir(exist_ok=True)
        shutil.copy2(path, more / path.parent.name / path.name)
        result = bench.step_incremental(kept / "dagster")
        result["delivery"] = path.name
        print(json.dumps(result))
        return 0
    work = Path(tempfile.mkdtemp(prefix="new_death_", dir=args.work)) if args.work else Path(tempfile.mkdtemp(prefix="new_death_"))
    try:
        data = work / "data"
        shutil.copytree(kept / "dagster", data, symlinks=True)
        # the extracts sent so far: the generator's, the bench's correction, its new death
        sent = work / "sent"
        landings = [kept / "synth" / "landing", kept / "sent"]
        bench.next_police_extract_new_death(landings, sent, 1)
        if (kept / "sent_more").exists():  # the extracts --in-place steps added after it
            landings.append(kept / "sent_more")
        path = bench.next_police_extract_new_death([*landings, sent], data / "landing", args.seed)
        if args.profile:
            profiler = cProfile.Profile()
            result = profiler.runcall(bench.step_incremental, data)
            profiler.dump_stats(args.profile)
        else:
            result = bench.step_incremental(data)
        result["delivery"] = path.name
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
