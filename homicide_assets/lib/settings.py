"""Where the platform keeps its data, read from the environment once.

``HOMICIDE_DATA_DIR`` (default ``./data``) holds everything the platform reads and writes
(``shared/design/outputs.md``). ``HOMICIDE_DATABASE_URL`` selects the SQL store (SQLite at
``platform.db`` by default). ``DAGSTER_HOME`` defaults to ``<data dir>/dagster_home``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO_ROOT / "seeds"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

DATA_SUBDIRS = ("landing", "archive", "quarantine", "warehouse", "reports")


@dataclass(frozen=True)
class DataDir:
    """The folders of one data directory. Every path the platform writes is under ``root``."""

    root: Path

    @classmethod
    def from_env(cls) -> DataDir:
        return cls(Path(os.environ.get("HOMICIDE_DATA_DIR", "data")).resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def models(self) -> Path:
        """Models held between builds (``models/person_linkage/``: the Splink model and the
        person matches it last produced, see ``lib/linkage_register.LinkageState``)."""
        return self.root / "models"

    @property
    def database_path(self) -> Path:
        return self.root / "platform.db"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def database_url(self) -> str:
        """``HOMICIDE_DATABASE_URL`` when set, else SQLite at ``platform.db``."""
        return os.environ.get("HOMICIDE_DATABASE_URL") or f"sqlite:///{self.database_path}"

    def warehouse_file(self, key_path: list[str] | tuple[str, ...], partition: str | None = None) -> Path:
        """Parquet file of an asset (or one partition of it) under ``warehouse/``."""
        return warehouse_file(self.warehouse, key_path, partition)

    def ensure(self) -> DataDir:
        """Create the data directory layout (idempotent)."""
        for name in DATA_SUBDIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        return self

    def contains(self, path: Path) -> bool:
        """True when ``path`` resolves inside the data directory (no ``..`` escapes)."""
        try:
            path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True


def warehouse_file(base: Path | str, key_path: list[str] | tuple[str, ...], partition: str | None = None) -> Path:
    """``<base>/<key path>.parquet``, or ``<base>/<key path>/<partition>.parquet``."""
    folder = Path(base).joinpath(*key_path)
    return folder / f"{partition}.parquet" if partition is not None else folder.with_suffix(".parquet")


#: What :func:`code_fingerprint` reads: sources, suites, reference data (the force boundaries too).
FINGERPRINTED_SUFFIXES = (".py", ".json", ".csv", ".yaml", ".yml", ".toml", ".geojson")


def code_fingerprint() -> str:
    """sha256 over the package's Python sources, the expectation suites and the seeds (the registry,
    the theme rules, the force boundaries): what ``build`` and the held staging compare, so a change
    to any of them refreshes everything."""
    import hashlib

    package = Path(__file__).resolve().parents[1]
    roots = [package, EXPECTATIONS_DIR, SEEDS_DIR]
    digest = hashlib.sha256()
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if (path.is_file() and path.suffix in FINGERPRINTED_SUFFIXES
                    and "sample_deliveries" not in path.parts and "__pycache__" not in path.parts):
                digest.update(str(path.relative_to(root.parent)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
