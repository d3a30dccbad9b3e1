"""Linkage on the synthetic generator's tiny sample, scored against its ground truth.

The generator writes deliveries and, beside them, the truth; the deliveries go through
the platform's own parser and stager, then linkage; only the scoring reads the truth.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.linkage_eval import (
    load_ground_truth,
    score_death_clusters,
    score_person_clusters,
    worst_death_errors,
)
from homicide_assets.lib.linkage_register import CLUSTER_THRESHOLD, PERSON_FEEDS, link_platform
from homicide_assets.lib.parsing import parse_delivery, parse_delivery_name
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.staging import stage_feed
from homicide_assets.synth import main as synth_main

KEY = b"test-pseudonym-key-0123456789abcdef"


def _raw(landing: Path, feed: str) -> pl.DataFrame:
    frames = []
    for path in sorted(landing.glob(f"*/*__{feed}__*")):
        name = parse_delivery_name(path.name)
        parsed = parse_delivery(path.read_bytes(), name, path.name)
        frames.append(
            parsed.frame.with_columns(
                pl.lit(path.name).alias("_delivery_id"),
                pl.lit(name.partner_id).alias("_partner_id"),
                pl.lit(path.name).alias("_source_file"),
                pl.lit(name.extract_date, dtype=pl.Date).alias("_extract_date"),
                pl.lit(name.seq, dtype=pl.Int64).alias("_seq"),
            )
        )
    assert frames, f"the generator delivered no {feed}"
    return pl.concat(frames, how="diagonal_relaxed").select(
        *FEEDS[feed].column_names,
        "_delivery_id",
        "_partner_id",
        "_source_file",
        "_source_line",
        "_extract_date",
        "_seq",
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_tiny")
    assert synth_main(["--scale", "tiny", "--seed", "3", "--out", str(out)]) == 0
    registry = default_registry()
    staged: dict[str, pl.DataFrame] = {}
    for feed in PERSON_FEEDS:
        known = staged["death_reports"]["report_id"] if feed == "death_report_persons" else None
        staged[feed] = stage_feed(
            feed, _raw(out / "landing", feed), KEY, registry, known_report_ids=known
        ).staged
    linkage = link_platform(staged, KEY)
    return linkage, load_ground_truth(out)


def test_death_register_matches_the_true_deaths_of_the_tiny_sample(tiny):
    linkage, truth = tiny
    scores = score_death_clusters(linkage.death_register, truth["source_records"])
    assert scores["records_without_truth"] == 0
    assert scores["precision"] >= 0.97, scores
    assert scores["recall"] >= 0.95, scores
    assert scores["f1"] >= 0.96, scores
    # one register row per true death among the deaths any partner reported
    assert abs(linkage.death_register.height - scores["true_clusters"]) <= 0.02 * scores["true_clusters"]


def test_person_keys_match_the_true_persons_of_the_tiny_sample(tiny):
    linkage, truth = tiny
    scores = score_person_clusters(linkage.clusters, truth["source_records"])
    assert scores["precision"] >= 0.97, scores
    assert scores["recall"] >= 0.9, scores


def test_worst_errors_explain_themselves(tiny):
    linkage, truth = tiny
    errors = worst_death_errors(
        linkage.death_register,
        truth["source_records"],
        linkage.records,
        linkage.matches,
        threshold=CLUSTER_THRESHOLD,
    )
    assert errors.height <= 10
    assert errors["cause"].str.len_chars().min() > 20 if errors.height else True
