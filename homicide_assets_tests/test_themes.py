"""The theme classifier: rules load and explain themselves; measured precision and recall hold."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from homicide_assets.lib.themes import (
    ThemeRulesError,
    classify,
    evaluate_themes,
    load_labelled,
    load_theme_rules,
)

SAMPLE = Path(__file__).parent / "data" / "labelled_recommendations.csv"
#: Minimum per-theme precision and recall over the whole labelled sample, for themes with
#: at least MIN_SUPPORT labelled examples; and micro averages on the samples not used for tuning.
MIN_PRECISION = 0.85
MIN_RECALL = 0.85
MIN_SUPPORT = 5
MIN_UNSEEN_MICRO = 0.9


@pytest.fixture(scope="module")
def rules():
    return load_theme_rules()


@pytest.fixture(scope="module")
def labelled():
    return load_labelled(SAMPLE)


def test_labelled_sample_is_big_enough_and_uses_only_known_themes(rules, labelled):
    assert labelled.height >= 100
    assert labelled["sample_id"].n_unique() == labelled.height
    used = set(labelled["labels"].explode().drop_nulls())
    assert used <= set(rules.themes), used - set(rules.themes)
    counts = labelled.select(pl.col("labels").explode()).group_by("labels").len()
    thin = counts.filter(pl.col("len") < MIN_SUPPORT)
    assert thin.is_empty(), f"themes with fewer than {MIN_SUPPORT} labelled examples: {thin}"
    assert set(labelled["split"]) == {"dev", "holdout", "generator"}


def test_every_theme_has_a_definition_and_the_issue_themes_are_there(rules):
    for theme in ("information_sharing", "risk_assessment", "safeguarding_referral", "training", "supervision",
                  "substance_misuse", "mental_health", "weapons", "domestic_abuse", "multi_agency_working"):
        assert theme in rules.themes
    assert set(rules.definitions) == set(rules.themes)
    assert all(len(text) > 20 for text in rules.definitions.values())


def test_precision_and_recall_per_theme_meet_the_thresholds(rules, labelled):
    scores = evaluate_themes(labelled, rules).filter(pl.col("support") >= MIN_SUPPORT)
    low = scores.filter((pl.col("precision") < MIN_PRECISION) | (pl.col("recall") < MIN_RECALL))
    assert low.is_empty(), f"themes under precision {MIN_PRECISION} / recall {MIN_RECALL}:\n{low}"


@pytest.mark.parametrize("split", ["holdout", "generator"])
def test_micro_average_on_recommendations_not_used_for_tuning(rules, labelled, split):
    part = labelled.filter(pl.col("split") == split)
    micro = evaluate_themes(part, rules).filter(pl.col("theme") == "all (micro)").row(0, named=True)
    assert micro["precision"] >= MIN_UNSEEN_MICRO and micro["recall"] >= MIN_UNSEEN_MICRO, micro


def test_evaluation_counts_are_right_on_a_hand_checked_case(rules):
    frame = pl.DataFrame({
        "recommendation_text": ["Officers should be trained to carry out a knife sweep.", "Review the canal lighting."],
        "labels": [["training", "domestic_abuse"], []],
    })
    scores = {r["theme"]: r for r in evaluate_themes(frame, rules).iter_rows(named=True)}
    assert (scores["training"]["tp"], scores["training"]["fp"], scores["training"]["fn"]) == (1, 0, 0)
    assert (scores["weapons"]["tp"], scores["weapons"]["fp"]) == (0, 1) and scores["weapons"]["precision"] == 0.0
    assert (scores["domestic_abuse"]["fn"], scores["domestic_abuse"]["recall"]) == (1, 0.0)
    assert scores["domestic_abuse"]["precision"] is None  # never predicted


def test_unless_rule_withdraws_supervision_of_offenders_and_evidence_names_the_words(rules):
    out = classify(pl.DataFrame({"recommendation_text": [
        "Probation should review the supervision of offenders released on licence.",
        "Team managers should provide reflective supervision every month.",
    ]}), rules)
    assert "supervision" not in out["themes"][0].to_list()
    assert "supervision" in out["themes"][1].to_list()
    assert 'supervision: "supervision"' in out["theme_evidence"][1].to_list()


def test_a_broken_rules_file_is_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "themes.csv"
    bad.write_text("theme,kind,pattern,note\nweapons,definition,,Knives and guns.\nweapons,phrase,\\b(knife,oops\n")
    with pytest.raises(ThemeRulesError, match=r"themes.csv: line 3: pattern does not compile"):
        load_theme_rules(bad)
    bad.write_text("theme,kind,pattern,note\nweapons,phrase,knife,x\n")
    with pytest.raises(ThemeRulesError, match="needs exactly one definition"):
        load_theme_rules(bad)
