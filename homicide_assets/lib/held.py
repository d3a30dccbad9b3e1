"""Frames a step holds between builds (``models/<name>/`` in the data directory): written
beside their folder and renamed into place, so a crash leaves the old state or the new one
(or none: the next build computes whole). Used by linkage, staging and the series search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl


def save_frames(
    folder: Path, frames: Mapping[str, pl.DataFrame], meta: Mapping[str, Any], keep: Sequence[str] = ()
) -> None:
    """Replace ``folder`` with ``<name>.parquet`` per frame and ``state.json``: written
    beside it, then renamed into place, so a crash leaves the old state or the new one (or
    none: the next run rebuilds whole). ``keep`` names frames carried over unchanged from the
    folder's current state (hard-linked where the file system allows, else copied)."""
    import json
    import os
    import shutil
    import uuid

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.mkdir()
        for name in keep:
            source = folder / f"{name}.parquet"
            try:
                os.link(source, tmp / source.name)
            except OSError:
                shutil.copy2(source, tmp / source.name)
        for name, frame in frames.items():
            frame.write_parquet(tmp / f"{name}.parquet")
        (tmp / "state.json").write_text(json.dumps(dict(meta), sort_keys=True), encoding="utf-8")
        old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_frames(
    folder: Path, names: Sequence[str], state_format: int
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]] | None:
    """The frames and meta :func:`save_frames` wrote; None when missing, unreadable or of
    another ``state_format`` (the meta's ``format``)."""
    import json

    folder = Path(folder)
    try:
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        if meta.get("format") != state_format:
            return None
        return {n: pl.read_parquet(folder / f"{n}.parquet") for n in names}, meta
    except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
        return None
