"""Sizes, generation seconds and peak memory per scale, each measured in a fresh process.

``measure_scale("force-year", seed=1, out=Path("/tmp/fy"))`` runs
``python -m homicide_assets.synth --scale force-year --seed 1 --out /tmp/fy --json`` in a
subprocess (so the peak RSS is that scale's alone) and returns the run's
:class:`~homicide_assets.lib.synth.SynthSummary` as a dict plus ``wall_seconds``. In-process
callers can use :func:`~homicide_assets.lib.synth.generate` directly: its summary carries
``seconds`` and ``peak_rss_mb`` (the process's peak so far).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def measure_scale(scale: str, seed: int, out: Path, faults: bool = False, timeout: float = 3600) -> dict:
    """Generate ``scale`` in a fresh Python process and return its summary (sizes, seconds, peak RSS)."""
    cmd = [
        sys.executable,
        "-m",
        "homicide_assets.synth",
        "--scale",
        scale,
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--json",
    ]
    if faults:
        cmd.append("--faults")
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"synth {scale} seed {seed} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout)
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def table(results: list[dict]) -> str:
    """A plain-text table of measured scales."""
    head = f"{'scale':<14} {'seed':>4} {'deaths':>9} {'reports':>8} {'files':>6} {'MB':>7} {'seconds':>8} {'peak MB':>8}"
    rows = [head]
    for r in results:
        rows.append(
            f"{r['scale']:<14} {r['seed']:>4} {r['deaths']:>9,} {r['police_reports']:>8,} {r['files']:>6,} "
            f"{r['bytes'] / 1e6:>7.1f} {r['seconds']:>8.1f} {r['peak_rss_mb']:>8.0f}"
        )
    return "\n".join(rows)
