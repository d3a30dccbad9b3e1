"""The embedded instance's event log (``homicide_assets.dagster_storage``): a step's per-delivery
materialisations written in one transaction per SQLite shard, read back by Dagster's own APIs
exactly as Dagster's default storage would show them, and surviving ``kill -9``.

- ``test_batched_materialisations_read_back_as_with_dagster_default_storage``: the same
  deliveries ingested on Dagster's ``SqliteEventLogStorage`` and on ours: the same materialised
  partitions, one materialisation per delivery, the same latest event per asset, the same tags,
  each run's log complete; and the batches really were written as batches.
- ``test_kill_9_at_the_batch_write_then_rerun_records_every_delivery_once``: a build killed with
  SIGKILL just before (or just after) a batch reaches the disk, then rerun: every delivery's
  partition materialised exactly once, the killed run's log readable, outputs identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from homicide_assets.dagster_storage import BatchingSqliteEventLogStorage
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery
from homicide_assets_tests.test_faults import (
    EMBEDDED_DAGSTER_YAML,
    child_env,
    fresh_data_dir,
    ingest_build,
    put_in_landing,
    sample_files,
    warehouse_frames,
)

pytestmark = pytest.mark.slow

#: A dagster.yaml naming nothing: Dagster's own SQLite storages (``build`` keeps it as it is).
DAGSTER_DEFAULT_YAML = "# Dagster's own SQLite storages (the baseline)\ntelemetry:\n  enabled: false\n"


def delivery_set() -> list[Path]:
    return (sample_files("wmp", "death_reports", 12) + sample_files("wmp", "death_report_persons", 6)
            + sample_files("wht", "me_deaths", 5))


def _use(data_dir: DataDir, monkeypatch, batch_size: str) -> None:
    for name, value in child_env(data_dir).items():
        if name.startswith(("HOMICIDE_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("HOMICIDE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    # one planned event per partition (what `build` turns off), whatever an earlier test set
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)


def ledger_ids(data_dir: DataDir) -> dict[str, set[str]]:
    with session_scope(data_dir.database_url()) as s:
        out: dict[str, set[str]] = {}
        for d in s.exec(select(Delivery)):
            out.setdefault(d.feed, set()).add(d.delivery_id)
    return out


def instance_view(instance, feeds) -> dict:
    """What Dagster's public instance APIs say about each ``raw/<feed>`` and its runs."""
    from dagster import AssetKey, DagsterEventType

    view = {}
    for feed in sorted(feeds):
        key = AssetKey(["raw", feed])
        records = instance.fetch_materializations(key, limit=10_000).records
        entry = instance.get_asset_records([key])[0].asset_entry
        latest = entry.last_materialization_record
        runs = {r.run_id for r in records}
        view[feed] = {
            "materialised": instance.get_materialized_partitions(key),
            "per_partition": Counter(r.partition_key for r in records),
            "latest_partition": latest.partition_key,
            "latest_is_newest": latest.storage_id == max(r.storage_id for r in records),
            "latest_event": instance.get_latest_materialization_event(key).dagster_event.partition,
            "tags": sorted((t.get("dagster/data_version") is not None, len(t))
                           for t in instance.get_event_tags_for_asset(key)),
            "metadata": sorted(sorted((k, str(v.value)) for k, v in r.asset_materialization.metadata.items()
                                      if k != "warehouse_path") for r in records),
            "run_logs": sorted(len(instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION))
                               for run_id in runs),
        }
    return view


def test_batched_materialisations_read_back_as_with_dagster_default_storage(tmp_path, monkeypatch):
    from dagster import DagsterInstance
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    files = delivery_set()
    views = {}
    batches: list[tuple[str, int]] = []
    original = BatchingSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        batches.append((events[0].dagster_event_type.value, len(events)))
        return original(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", counted)
    for name, yaml, batch_size in (("dagster_default", DAGSTER_DEFAULT_YAML, "0"),
                                   ("batching", EMBEDDED_DAGSTER_YAML, "1000")):
        data_dir = fresh_data_dir(tmp_path / name)
        (data_dir.root / "dagster_home" / "dagster.yaml").write_text(yaml)
        put_in_landing(data_dir, files)
        _use(data_dir, monkeypatch, batch_size)
        assert ingest_build() == []
        instance = DagsterInstance.get()
        storage = instance.event_log_storage
        assert type(storage) is (SqliteEventLogStorage if name == "dagster_default" else BatchingSqliteEventLogStorage)
        ids = ledger_ids(data_dir)
        views[name] = instance_view(instance, ids)
        for feed, view in views[name].items():
            assert view["materialised"] == ids[feed], f"{name}: raw/{feed} partitions != deliveries"
            assert set(view["per_partition"].values()) == {1}, f"{name}: raw/{feed} not one event per delivery"
            assert view["latest_is_newest"] and view["latest_event"] == view["latest_partition"]
            assert sum(view["run_logs"]) == len(ids[feed])
        if name == "dagster_default":
            assert batches == [], "Dagster's default storage must not go through our batch write"
    # per feed, one batch of planned materialisations when its ingest run is created (this test
    # leaves DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS unset) and one of materialisations
    # from its step, each holding every delivery of that feed; then the staged run's plan (one
    # event per staged asset, several asset keys in one batch)
    sizes = [len(v) for v in ledger_ids(data_dir).values()]
    assert sorted(n for t, n in batches if t == "ASSET_MATERIALIZATION") == sorted(sizes)
    assert sorted(n for t, n in batches if t == "ASSET_MATERIALIZATION_PLANNED") == sorted([*sizes, len(FEED_NAMES)])
    assert {t for t, _ in batches} == {"ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED"}
    for feed, view in views["dagster_default"].items():
        for what, value in view.items():
            assert views["batching"][feed][what] == value, f"raw/{feed}: {what} differs from Dagster's storage"


@pytest.mark.parametrize("when", ["before_the_write", "after_the_write"])
def test_kill_9_at_the_batch_write_then_rerun_records_every_delivery_once(tmp_path, monkeypatch, when):
    """SIGKILL from inside the first batch write of a build (the first feed's raw partitions are
    on disk and in the ledger as parsed): before it, the batch is lost and the rerun must parse
    those deliveries again; after it, the committed batch must be readable and kept as is."""
    from dagster import DagsterInstance, DagsterRunStatus

    files = delivery_set()
    reference = fresh_data_dir(tmp_path / "reference")
    put_in_landing(reference, files)
    _use(reference, monkeypatch, "1000")
    assert ingest_build() == []

    victim = fresh_data_dir(tmp_path / "victim")
    put_in_landing(victim, files)
    code = (
        "import os, signal\n"
        "from homicide_assets.dagster_storage import BatchingSqliteEventLogStorage as S\n"
        "write = S.store_event_batch\n"
        "def die(self, events):\n"
        "    if events[0].dagster_event_type.value != 'ASSET_MATERIALIZATION':\n"
        "        return write(self, events)\n"
        f"    if {when == 'after_the_write'}:\n"
        "        write(self, events)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "S.store_event_batch = die\n"
        "from homicide_assets_tests.test_faults import ingest_build\n"
        "ingest_build()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(victim), capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    _use(victim, monkeypatch, "1000")
    instance = DagsterInstance.get()
    killed = instance.get_runs()
    assert len(killed) == 1 and killed[0].status == DagsterRunStatus.STARTED
    killed_events = instance.get_records_for_run(killed[0].run_id).records  # the shard is readable
    killed_feed = killed[0].job_name.removeprefix("ingest_")
    on_disk = {p.stem for p in (victim.warehouse / "raw" / killed_feed).glob("*.parquet")}
    assert on_disk == ledger_ids(victim)[killed_feed], "the kill came before the partitions were written"
    from dagster import AssetKey

    survived = instance.get_materialized_partitions(AssetKey(["raw", killed_feed]))
    assert survived == (on_disk if when == "after_the_write" else set())
    assert len([r for r in killed_events if r.event_log_entry.dagster_event
                and r.event_log_entry.dagster_event.is_step_materialization]) == len(survived)

    assert ingest_build() == []  # the rerun
    ids = ledger_ids(victim)
    for feed, view in instance_view(DagsterInstance.get(), ids).items():
        assert view["materialised"] == ids[feed], f"raw/{feed}: a delivery has no materialisation"
        assert set(view["per_partition"].values()) == {1}, f"raw/{feed}: a delivery materialised twice"
    expected, got = warehouse_frames(reference), warehouse_frames(victim)
    assert sorted(got) == sorted(expected)
    for name, frame in expected.items():
        assert got[name].equals(frame), f"{name} differs after kill -9 and rerun"


def test_build_and_serve_configure_the_same_event_log(tmp_path, monkeypatch):
    """``homicide-assets build`` and ``make serve`` write the same event log storage into their
    embedded dagster.yaml, and Dagster loads it from there (the webserver and daemon do too)."""
    import importlib.util

    from dagster import DagsterInstance

    from homicide_assets.cli import embedded_dagster_yaml
    from homicide_assets.dagster_storage import BUILD_EVENT_BATCH_SIZE, DAGSTER_YAML_EVENT_LOG_STORAGE

    spec = importlib.util.spec_from_file_location("serve", Path(__file__).parents[1] / "scripts" / "serve.py")
    serve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve)
    assert serve.EVENT_LOG_STORAGE_YAML == DAGSTER_YAML_EVENT_LOG_STORAGE
    assert serve.EVENT_BATCH_SIZE == str(BUILD_EVENT_BATCH_SIZE)
    for name, yaml in (("build", embedded_dagster_yaml()), ("serve", serve.EMBEDDED_DAGSTER_YAML)):
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage
            assert Path(instance.event_log_storage.path_for_shard("index")) == home / "history" / "runs" / "index.db"


def test_an_embedded_instance_opens_by_its_folder_alone(tmp_path, monkeypatch):
    """``bench_latency`` opens the served instance by its folder (no DAGSTER_HOME in its own
    environment): the batching event log must find that folder, and the process's environment
    must be left as it was."""
    from homicide_assets.bench_latency import _instance
    from homicide_assets.cli import embedded_dagster_yaml
    from homicide_assets.dagster_storage import BatchingSqliteEventLogStorage, event_logs_directory

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(embedded_dagster_yaml(), encoding="utf-8")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = _instance(home)
    try:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchingSqliteEventLogStorage)
        assert storage._base_dir == os.path.abspath(event_logs_directory(str(home)))
        assert "DAGSTER_HOME" not in os.environ
    finally:
        instance.dispose()
