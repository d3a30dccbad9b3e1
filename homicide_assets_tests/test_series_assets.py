"""The series assets through Dagster, and the search on the committed tiny synthetic sample
scored against its ground truth (the platform code never reads the truth; only this test)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from dagster import AssetKey, asset, materialize

from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.defs.series import CASE_LINKS_KEY, LINKED_SERIES_KEY, series_assets, series_checks
from homicide_assets.lib.alerts import alerts
from homicide_assets.lib.series import CASE_LINKS_SCHEMA, KINDS, LINKED_SERIES_SCHEMA, find_series
from homicide_assets.lib.series_eval import evaluate_series, load_truth, targets_met
from homicide_assets.lib.settings import SEEDS_DIR
from homicide_assets.resources import PlatformResource, WarehouseIOManager
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.test_series import START, SUBURB, World, _offset

SAMPLE = SEEDS_DIR / "sample_deliveries"


def _stub(key: list[str], frame: pl.DataFrame):
    @asset(key=AssetKey(key), io_manager_key="warehouse_io_manager")
    def _frame() -> pl.DataFrame:
        return frame

    return _frame


def _port_world() -> tuple[World, str, str]:
    w = World(seed=1)
    lat1, lon1 = _offset(*SUBURB, 0, 0)
    lat2, lon2 = _offset(*SUBURB, 200, 220)
    a = w.add_police_death(100, lat1, lon1, "poisoning_drugs", ["ghb"], sex="m", age=23)
    b = w.add_police_death(140, lat2, lon2, "poisoning_drugs", ["ghb", "alcohol"], sex="m", age=25)
    w.add_person(a, "finder", "pk-finder", "Stephen", "Smith")
    w.add_person(b, "finder", "pk-finder", "Steve", "Smyth")
    w.add_contact(w.deaths[b]["person_key"], "substance_misuse", ["substance_misuse"])
    return w, w.deaths[a]["death_id"], w.deaths[b]["death_id"]


def test_series_assets_materialise_store_and_alert_once(tmp_path):
    w, first, second = _port_world()
    register, clusters, staged = w.frames()
    stubs = [
        _stub(["linkage", "death_register"], register),
        _stub(["linkage", "person_clusters"], clusters),
        *[_stub(["staged", feed], frame) for feed, frame in staged.items() if frame is not None],
    ]
    platform = PlatformResource(data_dir=str(tmp_path / "data"), pseudonym_key=TEST_KEY)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(platform=platform),
        "platform": platform,
        "alert_channel": AlertChannelResource(),
    }
    result = materialize([*stubs, *series_assets, *series_checks], resources=resources)
    assert result.success
    links = result.asset_value(CASE_LINKS_KEY)
    series = result.asset_value(LINKED_SERIES_KEY)
    assert tuple(links.columns) == tuple(CASE_LINKS_SCHEMA)
    assert tuple(series.columns) == tuple(LINKED_SERIES_SCHEMA)
    port = series.filter(pl.col("death_ids").list.contains(first)).row(0, named=True)
    assert port["death_ids"] == [first, second]
    assert port["first_flagged_on"] == START + timedelta(days=140) and port["flagged_at_member"] == 2
    assert set(port["kinds"]) <= set(KINDS)
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["linked_series_contract"] and all(c.passed for c in checks)
    meta = {
        e.event_specific_data.materialization.asset_key: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    linked_meta = meta[LINKED_SERIES_KEY]
    assert linked_meta["new_series"].value == series.height >= 1
    assert "Knox test on" in linked_meta["knox_test"].value
    assert port["series_id"] in linked_meta["top_series"].value
    assert "S. Smith" not in linked_meta["top_series"].value  # metadata names nobody
    url = platform.database_url()
    assert {a.kind for a in alerts(url)} == {"series_flagged"}
    flagged = len(alerts(url))
    # a second run over the same data: same ids, nothing new, no new alert
    again = materialize([*stubs, *series_assets], resources=resources)
    assert again.asset_value(LINKED_SERIES_KEY)["series_id"].to_list() == series["series_id"].to_list()
    meta2 = {
        e.event_specific_data.materialization.asset_key: e.event_specific_data.materialization.metadata
        for e in again.get_asset_materialization_events()
    }
    assert meta2[LINKED_SERIES_KEY]["new_series"].value == 0
    assert len(alerts(url)) == flagged


def test_series_assets_declare_group_owners_kinds_and_inputs():
    (search,) = series_assets
    assert set(search.keys) == {CASE_LINKS_KEY, LINKED_SERIES_KEY}
    for key in search.keys:
        spec = search.specs_by_key[key]
        assert spec.group_name == "series"
        assert spec.owners and spec.kinds and spec.description
    deps = {k.to_user_string() for k in search.keys_by_input_name.values()}
    assert deps == {
        "linkage/death_register",
        "linkage/person_clusters",
        "staged/death_reports",
        "staged/death_report_persons",
        "staged/me_deaths",
        "staged/safeguarding_contacts",
    }


def _search(root):
    """A generated tiny dataset staged and linked by the platform's own code, then searched."""
    from homicide_assets.lib.linkage_register import PERSON_FEEDS, link_platform
    from homicide_assets.lib.registry import default_registry
    from homicide_assets.lib.staging import stage_feed
    from homicide_assets_tests.test_linkage_truth import KEY, _raw

    staged: dict[str, pl.DataFrame] = {}
    for feed in PERSON_FEEDS:
        known = staged["death_reports"]["report_id"] if feed == "death_report_persons" else None
        staged[feed] = stage_feed(
            feed, _raw(root / "landing", feed), KEY, default_registry(), known_report_ids=known
        ).staged
    linkage = link_platform(staged, KEY)
    result = find_series(linkage.death_register, linkage.clusters, staged)
    return result, linkage.death_register, load_truth(root)


@pytest.fixture(scope="module")
def sample_search():
    """The committed tiny sample (seed 3) staged and linked by the platform's own code, then searched."""
    if not (SAMPLE / "ground_truth" / "series.parquet").exists():
        pytest.skip("seeds/sample_deliveries has no ground truth (regenerate the sample)")
    return _search(SAMPLE)


def _assert_tiny_scores(scores: dict) -> None:
    """What the method reliably achieves at tiny scale (a few hundred police reports, so rare
    substances and places weigh little): most planted series, no false ones, no decoy.
    The issue's targets are force-year and force-decade benchmarks (benchmarks/series.md)."""
    assert scores["planted"] >= 6
    assert scores["found"] >= scores["planted"] - 2, [s for s in scores["series"] if not s["found"]]
    assert scores["precision"] >= 0.9, scores
    assert scores["by_kind"]["port_like"]["found"] >= 1
    assert scores["by_kind"]["institution"]["found"] >= 1
    assert not scores["decoys_linked"], scores["decoys_linked"]
    assert targets_met(scores)["false_series_per_1000_at_most_1"]


def test_the_tiny_sample_scores_against_its_ground_truth(sample_search):
    result, register, truth = sample_search
    _assert_tiny_scores(evaluate_series(result.linked_series, result.case_links, register, truth))


@pytest.mark.parametrize("seed", [1, 2])
def test_tiny_scores_hold_on_other_seeds(seed, tmp_path):
    """The same thresholds on freshly generated tiny data for two more seeds.

    Tiny seed 1 has 87 police reports, 5 of them the planted Port-like series' GHB deaths:
    each pair's kind of death and shared finder are weighed with the pair's own cluster left
    out of the background (``score_pairs(first=...)``), or the series' other members would
    make its own signature look common and the series would be missed."""
    from homicide_assets.lib.synth.generate import generate

    generate("tiny", seed, tmp_path / "tiny")
    result, register, truth = _search(tmp_path / "tiny")
    scores = evaluate_series(result.linked_series, result.case_links, register, truth)
    _assert_tiny_scores(scores)


def test_the_naive_baseline_finds_less_on_the_tiny_sample(sample_search):
    from homicide_assets.lib.series import naive_baseline

    result, register, truth = sample_search
    method = evaluate_series(result.linked_series, result.case_links, register, truth)
    baseline = evaluate_series(naive_baseline(result.profiles), None, register, truth)
    assert baseline["found"] < method["found"]
