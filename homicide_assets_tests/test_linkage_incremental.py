"""Incremental person matching with a held model (``match_people(previous=...)``).

On the person records of the generator's tiny sample (through the platform's own parser
and stager): a first run estimates the model; a later run with records added, changed
and removed reuses it and scores only the pairs touching new or changed records. Its
matches must equal scoring every pair again with the same held model, and the
re-estimation rule must fire when it should.
"""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from homicide_assets.lib.linkage import standardise_people
from homicide_assets.lib.linkage_register import (
    PERSON_FEEDS,
    PLATFORM_IDENTIFIERS,
    LinkageState,
    RegisterState,
    build_death_register,
    cluster_people,
    match_people,
    person_records,
    update_death_register,
    update_person_clusters,
)
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.staging import stage_feed
from homicide_assets.synth import main as synth_main
from homicide_assets_tests.test_linkage_truth import KEY, _raw


@pytest.fixture(scope="module")
def staged_and_records(tmp_path_factory) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    out = tmp_path_factory.mktemp("synth_tiny_incremental")
    assert synth_main(["--scale", "tiny", "--seed", "3", "--out", str(out)]) == 0
    registry = default_registry()
    staged: dict[str, pl.DataFrame] = {}
    for feed in PERSON_FEEDS:
        known = staged["death_reports"]["report_id"] if feed == "death_report_persons" else None
        staged[feed] = stage_feed(feed, _raw(out / "landing", feed), KEY, registry, known_report_ids=known).staged
    return staged, person_records(staged)


@pytest.fixture(scope="module")
def records(staged_and_records) -> pl.DataFrame:
    return staged_and_records[1]


def _split(records: pl.DataFrame):
    """(before, after, new keys, changed keys, removed keys): ``after`` is every record but
    the removed ones; ``before`` lacks the new ones and holds an older version (surname
    keyed differently) of the changed ones."""
    keys = records["record_key"]
    # records that link to something, so the test cannot pass on pairs nobody scores
    first = match_people(records).matches.filter(pl.col("linked"))
    linked_keys = pl.concat([first["record_key_l"], first["record_key_r"]]).unique().sort()
    new = linked_keys.gather_every(7)  # ~1 in 7 of the linked records arrive late
    rest = linked_keys.filter(~linked_keys.is_in(new.implode()))
    changed = rest.gather_every(11)
    removed = keys.filter(~keys.is_in(linked_keys.implode())).gather_every(40)
    after = records.filter(~pl.col("record_key").is_in(removed.implode()))
    before = records.filter(~pl.col("record_key").is_in(new.implode())).with_columns(
        surname=pl.when(pl.col("record_key").is_in(changed.implode()))
        .then(pl.concat_str([pl.col("surname"), pl.lit("x")]))
        .otherwise(pl.col("surname"))
    )
    return before, after, new, changed, removed


def test_incremental_matches_equal_a_full_rescoring_with_the_same_held_model(records, tmp_path):
    before, after, new, changed, removed = _split(records)
    assert new.len() >= 10 and changed.len() >= 3 and removed.len() >= 3
    first = match_people(before)
    assert first.estimated and first.state is not None
    first.state.save(tmp_path / "state")
    held = LinkageState.load(tmp_path / "state")
    assert held is not None and held.model.trained_records == before.height
    # only the NHS number decides; phone and police nominal id are evidence, as without a held model
    assert held.model.deterministic == ["nhs_number"]
    assert set(held.model.identifiers) >= {"nhs_number", "phone"}
    assert not first.matches["evidence"].str.contains("decided by (phone|nominal)").any()

    # the rule allows reuse: (new + changed + removed) < 50% of the records estimated on
    incremental = match_people(after, previous=held, reestimate_fraction=0.5)
    assert not incremental.estimated and incremental.model_reason.startswith("reused")
    assert incremental.changes == {
        "new": new.len(), "changed": changed.len(), "removed": removed.len(),
        "unchanged": after.height - new.len() - changed.len(),
    }
    assert incremental.rescored.sort().to_list() == pl.concat([new, changed]).sort().to_list()

    # the same held model, nothing held to merge with: every pair scored again
    full = match_people(after, previous=LinkageState(held.model, held.records, None, held.meta),
                        reestimate_fraction=0.5)
    assert not full.estimated and full.rescored.len() == after.height
    assert_frame_equal(incremental.matches, full.matches)
    # the held features were reused for unchanged records, and equal standardising them all
    assert held.features is not None and held.features.height == before.height
    assert_frame_equal(incremental.state.features, full.state.features)
    assert_frame_equal(
        incremental.state.features.drop("record_key"), standardise_people(after, PLATFORM_IDENTIFIERS)
    )
    assert incremental.state.features["record_key"].to_list() == after["record_key"].to_list()

    got = incremental.matches
    touching = lambda keys: pl.col("record_key_l").is_in(keys.implode()) | pl.col("record_key_r").is_in(keys.implode())  # noqa: E731
    assert got.filter(touching(new) & pl.col("linked")).height >= new.len() // 2  # new records were linked
    assert got.filter(touching(removed)).height == 0  # nothing left of removed records
    # the changed records' held pairs (scored on the old surname) were replaced
    old_evidence = first.matches.filter(touching(changed)).select("record_key_l", "record_key_r", "evidence")
    now = got.filter(touching(changed)).select("record_key_l", "record_key_r", "evidence")
    assert old_evidence.join(now, on=["record_key_l", "record_key_r", "evidence"]).height < old_evidence.height

    # the state held after the incremental run carries the change count towards re-estimation
    state = incremental.state
    assert state.meta["changes_since_estimate"] == new.len() + changed.len() + removed.len()
    assert state.model.trained_records == before.height

    # a second run with nothing changed rescored nothing and returns the same matches
    again = match_people(after, previous=state, reestimate_fraction=0.5)
    assert not again.estimated and again.rescored.len() == 0
    assert_frame_equal(again.matches, incremental.matches)


def test_the_model_is_estimated_again_when_the_rule_fires(records, tmp_path):
    before, after, new, changed, removed = _split(records)
    held = match_people(before).state
    n = new.len() + changed.len() + removed.len()

    # the changes reach the configured share of the records it was estimated on
    fraction = n / before.height
    fires = match_people(after, previous=held, reestimate_fraction=fraction)
    assert fires.estimated and "records added, changed or removed" in fires.model_reason
    assert fires.rescored.len() == after.height and fires.state.meta["changes_since_estimate"] == 0
    assert fires.state.model.trained_records == after.height
    # ... and just under it, it does not
    assert not match_people(after, previous=held, reestimate_fraction=fraction * 1.01).estimated

    # changes add up over runs: half the new records first (under the share), then the rest
    # of the changes (under it alone, at it counted with the first step)
    half = new.gather_every(2)
    halfway = pl.concat([before, after.filter(pl.col("record_key").is_in(half.implode()))]).sort("record_key")
    step = match_people(halfway, previous=held, reestimate_fraction=fraction)
    assert not step.estimated and step.changes["new"] == half.len()
    second = match_people(after, previous=step.state, reestimate_fraction=fraction)
    assert sum(v for k, v in second.changes.items() if k != "unchanged") < n
    assert second.estimated, "changes since the estimate are counted across runs"

    # asked for; no state held; the state from other code
    assert match_people(after, previous=held, reestimate=True).estimated
    assert match_people(after, previous=None).estimated
    other_code = LinkageState(held.model, held.records, held.matches, {**held.meta, "code_version": "other"})
    decided = match_people(after, previous=other_code, reestimate_fraction=0.5)
    assert decided.estimated and "code changed" in decided.model_reason
    other_backend = LinkageState(held.model, held.records, held.matches, {**held.meta, "backend": "spark"})
    assert "backend changed" in match_people(after, previous=other_backend, reestimate_fraction=0.5).model_reason
    # an unreadable state is no state
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{not json")
    assert LinkageState.load(tmp_path / "broken") is None
    assert LinkageState.load(tmp_path / "missing") is None


def test_incremental_clusters_and_death_register_equal_the_whole_ones(staged_and_records, tmp_path):
    staged, records = staged_and_records
    before, after, new, changed, removed = _split(records)
    first = match_people(before)
    incremental = match_people(after, previous=first.state, reestimate_fraction=0.5)

    def inputs(recs, matches):
        linked = matches.filter(pl.col("linked"))
        return recs, cluster_people(recs, matches, KEY), linked

    held = update_death_register(staged, *inputs(before, first.matches), KEY)
    assert held.persons_rebuilt is None and held.reason == "no register held"
    held.state.save(tmp_path / "register")
    state = RegisterState.load(tmp_path / "register")
    assert state is not None
    recs, clusters, linked = inputs(after, incremental.matches)
    # person clusters: only the clusters touched are made again, and they equal clustering everything
    made = update_person_clusters(before, first.matches, KEY)
    assert made.records_reclustered is None
    again = update_person_clusters(recs, incremental.matches, KEY, previous=made.state)
    assert again.records_reclustered is not None and 0 < again.records_reclustered < recs.height // 2
    assert_frame_equal(again.clusters, clusters)
    assert update_person_clusters(recs, incremental.matches, KEY, previous=again.state).records_reclustered == 0

    update = update_death_register(staged, recs, clusters, linked, KEY, previous=state)
    whole = build_death_register(staged, recs, clusters, linked, KEY)
    assert update.persons_rebuilt is not None and 0 < update.persons_rebuilt < whole["person_key"].n_unique() // 2
    assert_frame_equal(update.register, whole)
    # the rows of the new records' deaths are there; nothing changed: nothing rebuilt
    assert whole.filter(pl.col("source_records").list.eval(pl.element().is_in(new.implode())).list.any()).height
    idle = update_death_register(staged, recs, clusters, linked, KEY, previous=update.state)
    assert idle.persons_rebuilt == 0
    assert_frame_equal(idle.register, whole)
    # other code: rebuilt whole
    other = RegisterState(state.inputs, state.links, state.register, {**state.meta, "code_version": "other"})
    assert update_death_register(staged, recs, clusters, linked, KEY, previous=other).persons_rebuilt is None
