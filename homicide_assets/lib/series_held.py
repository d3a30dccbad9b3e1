"""What the series search holds between builds (``models/series/`` in the data directory).

The search (:func:`homicide_assets.lib.series.search_links`) is a function of two frames it
derives from its inputs, the death profiles and the entities deaths share (people,
officers, clinicians, institutions, substances), and of its parameters and code. A build
whose profiles and entities are the same as the held search's, row for row, with the same
parameters and code, gets the held links and group evidence back instead of weighing every
pair and rerunning the Monte Carlo scans: the same result, because nothing it is computed
from has changed. A police extract that only corrects a narrative leaves them alone; a new
or changed death, person key or shared entity does not, and the search runs whole.

The held links carry the evidence in words, which may name people: the folder is as
sensitive as ``warehouse/series/`` (SECURITY.md) and goes with it when data is deleted.
Deleting it makes the next build search whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.series_stats import KnoxResult

#: Bump when the held files change shape.
STATE_FORMAT = 1
#: The modules whose code defines the search's result.
_CODE_MODULES = ("series", "series_scan", "series_stats", "geography")


def series_code_version() -> str:
    """sha256 of the modules that define the search and the versions of the libraries whose
    numbers it relies on (a held search from other code is not reused)."""
    import importlib
    from importlib.metadata import version

    digest = hashlib.sha256()
    for name in _CODE_MODULES:
        module = importlib.import_module(f"homicide_assets.lib.{name}")
        digest.update(name.encode())
        digest.update(Path(module.__file__).read_bytes())
    for package in ("polars", "numpy", "scipy"):
        digest.update(f"{package}=={version(package)}".encode())
    return digest.hexdigest()


def _frame_digest(digest, name: str, frame: pl.DataFrame) -> None:
    digest.update(f"{name}:{frame.height}:{frame.schema}".encode())
    if frame.height:
        # two seeded 64-bit hashes per row, sorted: the frame's rows as a set, whatever order
        # they were built in (entities come out of unordered group-bys; both frames carry each
        # death's ``idx``). The same rows give the same bytes in any process of one polars
        # version, which the code version names.
        for seed in (11, 1_000_003):
            digest.update(np.sort(frame.hash_rows(seed=seed).to_numpy()).tobytes())


def search_digest(profiles: pl.DataFrame, entities: pl.DataFrame, params) -> str:
    """What a search's result is a function of: its profiles and entities row for row, its
    parameters and its code."""
    digest = hashlib.sha256()
    digest.update(series_code_version().encode())
    digest.update(repr(params).encode())
    _frame_digest(digest, "profiles", profiles)
    _frame_digest(digest, "entities", entities)
    return digest.hexdigest()


@dataclass
class HeldSearch:
    """A search's links and group evidence, with the digest of what it was computed from."""

    digest: str
    links: pl.DataFrame
    groups: pl.DataFrame
    candidate_pairs: int
    knox: KnoxResult | None

    def save(self, folder: Path) -> None:
        from homicide_assets.lib.held import save_frames

        meta = {"format": STATE_FORMAT, "digest": self.digest, "candidate_pairs": self.candidate_pairs}
        meta["knox"] = None if self.knox is None else asdict(self.knox)
        save_frames(folder, {"links": self.links, "groups": self.groups}, meta)

    @classmethod
    def load(cls, folder: Path) -> HeldSearch | None:
        """The held search, or None when there is none (or it is unreadable or of another
        format: the search then runs whole)."""
        from homicide_assets.lib.held import load_frames

        got = load_frames(folder, ("links", "groups"), STATE_FORMAT)
        if got is None:
            return None
        frames, meta = got
        try:
            knox = None if meta["knox"] is None else KnoxResult(**meta["knox"])
            return cls(str(meta["digest"]), frames["links"], frames["groups"], int(meta["candidate_pairs"]), knox)
        except (KeyError, TypeError, ValueError):
            return None
