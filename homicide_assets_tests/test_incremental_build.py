"""A build after one new delivery refreshes only what the delivery changes, and its outputs
equal a build from scratch on the same landing contents (given the same held linkage model
and series search):
after a corrected record, then after the next day's extract carrying a new death."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from homicide_assets.bench import next_police_extract, next_police_extract_new_death
from homicide_assets.cli import run_build
from homicide_assets.lib.settings import SEEDS_DIR

pytestmark = pytest.mark.slow

SAMPLE = Path(SEEDS_DIR) / "sample_deliveries" / "landing"

#: Stamped with the wall clock at each build, so never equal between two builds.
CLOCK_COLUMNS = {"generated_at", "validated_at", "built_at", "computed_at"}


def _use(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("HOMICIDE_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(home))


def _warehouse(root: Path) -> dict[Path, pl.DataFrame]:
    base = root / "warehouse"
    return {p.relative_to(base): pl.read_parquet(p) for p in sorted(base.rglob("*.parquet"))}


def _ledger(root: Path) -> tuple[list, list]:
    """Per delivery its status and row counts; every quarantine entry (no ids, no clock)."""
    from sqlmodel import select

    from homicide_assets.lib.settings import DataDir
    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry

    with session_scope(DataDir(root).database_url()) as s:
        deliveries = sorted((d.delivery_id, d.status, d.rows_read, d.rows_staged, d.rows_quarantined,
                             d.rows_superseded) for d in s.exec(select(Delivery)))
        quarantine = sorted((q.kind, q.delivery_id, q.feed, q.line, q.column, q.rule, q.value, q.reason)
                            for q in s.exec(select(QuarantineEntry)))
    return deliveries, quarantine


def test_incremental_build_refreshes_only_the_changed_feed_and_equals_a_full_build(tmp_path, monkeypatch):
    incremental, scratch = tmp_path / "incremental", tmp_path / "scratch"
    shutil.copytree(SAMPLE, incremental / "landing")
    _use(incremental, monkeypatch)
    full = run_build(quiet=True)
    assert full["failed_jobs"] == []
    me_deaths = incremental / "warehouse" / "staged" / "me_deaths.parquet"
    untouched = me_deaths.stat().st_mtime_ns

    new_file = next_police_extract(SAMPLE, incremental / "landing")
    new_bytes = new_file.read_bytes()  # the build moves it out of landing
    again = run_build(quiet=True)
    assert again["failed_jobs"] == [] and again["accepted"] == 1
    # staged/<feed> of the five feeds the police extract does not feed, and their checks, are left alone
    assert again["refreshed_assets"] == full["refreshed_assets"] - 5
    assert me_deaths.stat().st_mtime_ns == untouched
    staged = pl.read_parquet(incremental / "warehouse" / "staged" / "death_reports.parquet")
    assert staged.filter(pl.col("_source_file") == new_file.name).height == 1

    # linkage reused its held model and scored again only the pairs of the corrected record
    from dagster import AssetKey, DagsterInstance

    instance = DagsterInstance.get()
    meta = {k: v.value for k, v in instance.get_latest_materialization_event(
        AssetKey(["linkage", "person_matches"])).asset_materialization.metadata.items()}
    assert meta["model"] == "reused" and meta["records_rescored"] == 1 == meta["records_changed"]
    assert meta["rescored_record_keys"]["first"][0].startswith("death_reports:")
    for asset, field in ((("linkage", "person_clusters"), "clustered"), (("linkage", "death_register"), "rebuilt")):
        meta = instance.get_latest_materialization_event(AssetKey(list(asset))).asset_materialization.metadata
        assert meta[field].value != "whole", asset

    # staging carried the held rows forward: only the new delivery's rows (and held rejects) were staged
    for feed in ("death_reports", "death_report_persons"):
        meta = instance.get_latest_materialization_event(AssetKey(["staged", feed])).asset_materialization.metadata
        assert meta["staging"].value.startswith("held: "), (feed, meta["staging"].value)

    # the correction changes no death and nothing deaths share: the held series search is reused
    meta = instance.get_latest_materialization_event(AssetKey(["series", "case_links"])).asset_materialization.metadata
    assert meta["search"].value.startswith("held search reused"), meta["search"].value

    # nothing new: only the assets that read the SQL store run again
    idle = run_build(quiet=True)
    assert idle["failed_jobs"] == [] and idle["accepted"] == 0 and 0 < idle["refreshed_assets"] < again["refreshed_assets"]

    # the next day's extract: one new death, staged on the held rows, linked incrementally,
    # searched for series incrementally against the held search's basis
    series_before = tmp_path / "series_before"
    shutil.copytree(incremental / "models" / "series", series_before)
    sent = tmp_path / "sent"
    (sent / "wmp").mkdir(parents=True)
    (sent / "wmp" / new_file.name).write_bytes(new_bytes)
    death_file = next_police_extract_new_death([SAMPLE, sent], incremental / "landing")
    death_bytes = death_file.read_bytes()
    new_death = run_build(quiet=True)
    assert new_death["failed_jobs"] == [] and new_death["accepted"] == 1
    assert new_death["refreshed_assets"] == again["refreshed_assets"]
    staged = pl.read_parquet(incremental / "warehouse" / "staged" / "death_reports.parquet")
    assert staged.filter(pl.col("_source_file") == death_file.name).height == 1
    meta = instance.get_latest_materialization_event(
        AssetKey(["staged", "death_reports"])).asset_materialization.metadata
    assert meta["staging"].value == "held: 1 new deliveries and 0 held rejected rows staged"
    meta = instance.get_latest_materialization_event(
        AssetKey(["linkage", "person_matches"])).asset_materialization.metadata
    assert meta["model"].value == "reused" and meta["records_new"].value == 1 and meta["records_changed"].value == 0
    meta = instance.get_latest_materialization_event(AssetKey(["series", "case_links"])).asset_materialization.metadata
    assert meta["search"].value.startswith("incremental: 1 deaths new or changed"), meta["search"].value

    shutil.copytree(SAMPLE, scratch / "landing")
    (scratch / "landing" / "wmp" / new_file.name).write_bytes(new_bytes)
    (scratch / "landing" / "wmp" / death_file.name).write_bytes(death_bytes)
    # The incremental build scored with the model held since the first build; a model
    # estimated on today's records would differ a little. So the build from scratch is
    # given the same held model (and no pairs to merge with): it scores every pair with it.
    held, given = incremental / "models" / "person_linkage", scratch / "models" / "person_linkage"
    shutil.copytree(held / "model", given / "model")
    for name in ("state.json", "records.parquet"):
        shutil.copy(held / name, given / name)
    # Likewise the series search: given the state held before the new death, it weighs the
    # deaths against that search's basis, as the incremental build did (that this equals a
    # whole search against the same basis is test_series_held.py's).
    shutil.copytree(series_before, scratch / "models" / "series")
    _use(scratch, monkeypatch)
    assert run_build(quiet=True)["failed_jobs"] == []
    meta = DagsterInstance.get().get_latest_materialization_event(
        AssetKey(["staged", "death_reports"])).asset_materialization.metadata
    assert meta["staging"].value == "whole: nothing held"

    assert _ledger(incremental) == _ledger(scratch)
    for rows in sorted((scratch / "quarantine" / "rows").glob("*.parquet")):
        assert_frame_equal(pl.read_parquet(incremental / "quarantine" / "rows" / rows.name), pl.read_parquet(rows))
    after, fresh = _warehouse(incremental), _warehouse(scratch)
    assert after.keys() == fresh.keys()
    for name, frame in fresh.items():
        keep = [c for c in frame.columns if c not in CLOCK_COLUMNS]
        try:
            assert_frame_equal(after[name].select(keep), frame.select(keep))
        except AssertionError as exc:
            raise AssertionError(f"{name} differs from a build from scratch: {exc}") from None
