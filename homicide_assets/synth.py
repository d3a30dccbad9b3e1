"""Command line for the synthetic generator.

``python -m homicide_assets.synth --scale tiny --seed 3 --out DIR [--faults]`` (and
``homicide-assets synth ...``, which calls :func:`main`). Writes ``DIR/landing/`` and
``DIR/ground_truth/`` (see :func:`homicide_assets.lib.synth.generate`) and prints a summary;
``--json`` prints the full :class:`~homicide_assets.lib.synth.SynthSummary` as JSON instead.
Noise rates can be overridden with ``--noise name=value`` (repeatable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from homicide_assets.lib.synth import SCALES, NoiseParams, generate


def _parse_noise(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--noise expects name=value, got {item!r}")
        out[name.strip()] = float(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homicide-assets synth", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default="tiny", help="how much to generate (default tiny)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="random seed; same seed and scale give identical bytes"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (landing/ and ground_truth/ are replaced)"
    )
    parser.add_argument(
        "--faults", action="store_true", help="also write malformed deliveries (ground_truth/faults.parquet)"
    )
    parser.add_argument(
        "--noise",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override a noise rate; names: {', '.join(NoiseParams().as_dict())}",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the generator; returns a process exit code (0 on success, 2 on bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        noise = _parse_noise(args.noise)
        summary = generate(args.scale, args.seed, args.out, faults=args.faults, **noise)
    except (TypeError, argparse.ArgumentTypeError) as exc:
        print(f"homicide-assets synth: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
        return 0
    print(
        f"synth {summary.scale} seed {summary.seed} -> {summary.out}: {summary.deaths:,} deaths, "
        f"{summary.persons:,} persons, {summary.files:,} files ({summary.bytes / 1e6:.1f} MB) in "
        f"{summary.seconds:.1f} s, peak RSS {summary.peak_rss_mb:.0f} MB"
    )
    for feed, rows in summary.records_by_feed.items():
        print(f"  {feed:<24} {rows:>9,} records in {summary.files_by_feed[feed]:>5,} files")
    print("  series: " + ", ".join(f"{k} {v}" for k, v in summary.series_by_kind.items()))
    if summary.faults:
        print(f"  faults: {summary.faults} malformed files (ground_truth/faults.parquet)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
