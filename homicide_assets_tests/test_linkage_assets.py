"""The linkage assets through Dagster, on the hand-built staged feeds of ``test_linkage``."""

from __future__ import annotations

import polars as pl
from dagster import AssetKey, asset, materialize

from homicide_assets.defs.linkage import linkage_assets
from homicide_assets.lib.linkage_eval import evaluate_data_dir
from homicide_assets.lib.linkage_register import DEATH_REGISTER_COLUMNS
from homicide_assets.resources import PlatformResource, WarehouseIOManager
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.test_linkage import hand_built_staged


def _staged_stub(feed: str, frame: pl.DataFrame):
    @asset(key=AssetKey(["staged", feed]), io_manager_key="warehouse_io_manager")
    def _stub() -> pl.DataFrame:
        return frame

    return _stub


def test_linkage_assets_materialise_the_register_with_metadata(tmp_path):
    staged = hand_built_staged()
    data = tmp_path / "data"
    platform = PlatformResource(data_dir=str(data), pseudonym_key=TEST_KEY)
    result = materialize(
        [*[_staged_stub(feed, frame) for feed, frame in staged.items()], *linkage_assets],
        resources={"warehouse_io_manager": WarehouseIOManager(platform=platform), "platform": platform},
        run_config={"ops": {"linkage__person_matches": {"config": {"backend": "duckdb", "threshold": 0.9}}}},
    )
    assert result.success
    register = result.asset_value(AssetKey(["linkage", "death_register"]))
    assert tuple(register.columns) == DEATH_REGISTER_COLUMNS
    deaths = {tuple(r) for r in register["source_records"].to_list()}
    assert deaths == {
        ("death_reports:wmp:DR-2025-000101", "inquests:coroner_bs:INQ1", "me_deaths:uhb:ME1"),
        ("inquests:coroner_bs:INQ2", "me_deaths:uhb:ME2"),
        ("me_deaths:rwt:ME3",),
        ("death_reports:wmp:DR-2025-000102", "me_deaths:uhcw:ME4"),
        ("death_reports:wmp:DR-2025-000103",),
    }
    clusters = result.asset_value(AssetKey(["linkage", "person_clusters"]))
    assert clusters.filter(pl.col("role") == "finder")["person_key"].n_unique() == 1
    mats = {
        m.asset_key: m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    meta = mats[AssetKey(["linkage", "death_register"])]
    assert meta["dagster/row_count"].value == 5
    assert meta["deaths_with_disagreements"].value == 2
    assert mats[AssetKey(["linkage", "person_matches"])]["linked_pairs"].value >= 8
    # the bench's entry point reads the same outputs back from the warehouse
    truth_dir = tmp_path / "ground_truth"
    truth_dir.mkdir()
    deaths = {key: f"T{i}" for i, keys in enumerate(deaths) for key in keys}
    pl.DataFrame(
        {"record_key": list(deaths), "death_id": list(deaths.values()), "person_id": list(deaths.values())}
    ).write_parquet(truth_dir / "source_records.parquet")
    scores = evaluate_data_dir(data, tmp_path, threshold=0.9)
    assert scores["death_clusters"]["f1"] == 1.0 and scores["worst_errors"] == []


def test_linkage_assets_declare_group_owners_and_upstream_staged_feeds():
    keys = {}
    for a in linkage_assets:
        for key in a.keys:
            keys[key] = a
    assert set(keys) == {
        AssetKey(["linkage", n]) for n in ("person_matches", "person_clusters", "death_register")
    }
    for key, a in keys.items():
        assert a.group_names_by_key[key] == "linkage"
        assert a.specs_by_key[key].owners and a.specs_by_key[key].kinds and a.specs_by_key[key].description
        deps = {d.asset_key for d in a.specs_by_key[key].deps}
        assert AssetKey(["staged", "safeguarding_contacts"]) in deps
