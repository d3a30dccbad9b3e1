"""Dagster resources: the data directory and SQL store, and the Parquet IO manager.

Configuration comes from the environment through ``EnvVar`` in ``definitions.py``; these
classes never read the environment themselves.
"""


import os
import uuid
from pathlib import Path

import polars as pl
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    InputContext,
    OutputContext,
    ResourceDependency,
)

from homicide_assets.lib.registry import Registry, load_registry
from homicide_assets.lib.settings import SEEDS_DIR, DataDir, warehouse_file


class PlatformResource(ConfigurableResource):
    """Where the platform's data lives, which SQL store it uses, and the pseudonym key."""

    data_dir: str = "data"
    database_url_override: str | None = None
    pseudonym_key: str | None = None
    pseudonym_key_file: str | None = None
    seeds_dir: str = str(SEEDS_DIR)

    def paths(self) -> DataDir:
        return DataDir(Path(self.data_dir).resolve()).ensure()

    def database_url(self) -> str:
        """``HOMICIDE_DATABASE_URL`` (via config or the environment at run time) else SQLite in the data dir."""
        return self.database_url_override or self.paths().database_url()

    def registry(self) -> Registry:
        return load_registry(Path(self.seeds_dir))

    def key(self) -> bytes:
        """The pseudonym key; raises with a plain message when none is configured."""
        from homicide_assets.lib.pseudonym import PseudonymKeyMissing

        value = self.pseudonym_key
        if not value and self.pseudonym_key_file:
            value = Path(self.pseudonym_key_file).read_text(encoding="utf-8").strip()
        if not value or len(value) < 16:
            raise PseudonymKeyMissing(
                "no pseudonym key: set HOMICIDE_PSEUDONYM_KEY (16+ characters) or HOMICIDE_PSEUDONYM_KEY_FILE"
            )
        return value.encode("utf-8")


class WarehouseIOManager(ConfigurableIOManager):
    """Polars DataFrames as Parquet under ``warehouse/<asset key path>[/<partition>].parquet``.

    Writes go to a temporary file then ``os.replace``, so a failed write never leaves a
    partial file behind a materialisation. A multi-partition output is a dict keyed by
    partition key. Loading several partitions concatenates them.
    """

    platform: ResourceDependency[PlatformResource]

    @property
    def base_dir(self) -> Path:
        return self.platform.paths().warehouse

    @staticmethod
    def asset_path(base_dir: str | Path, key_path: list[str], partition: str | None = None) -> Path:
        return warehouse_file(base_dir, key_path, partition)

    def _write(self, path: Path, frame: pl.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            frame.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def handle_output(self, context: OutputContext, obj) -> None:
        if obj is None:
            return
        key_path = list(context.asset_key.path)
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            frames = obj if isinstance(obj, dict) else {keys[0]: obj}
            for partition, frame in frames.items():
                self._write(self.asset_path(self.base_dir, key_path, partition), frame)
            rows = sum(f.height for f in frames.values())
        else:
            self._write(self.asset_path(self.base_dir, key_path), obj)
            rows = obj.height
        context.add_output_metadata({"warehouse_path": str(Path(self.base_dir).joinpath(*key_path)), "rows_written": rows})

    def load_input(self, context: InputContext) -> pl.DataFrame:
        key_path = list(context.asset_key.path)
        if context.has_asset_partitions:
            paths = [self.asset_path(self.base_dir, key_path, k) for k in context.asset_partition_keys]
            paths = [p for p in paths if p.exists()]
            if not paths:
                return pl.DataFrame()
            return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
        path = self.asset_path(self.base_dir, key_path)
        if not path.exists():
            raise FileNotFoundError(f"{'/'.join(key_path)} has not been materialised yet ({path})")
        return pl.read_parquet(path)
