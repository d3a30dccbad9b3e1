"""lessons/recommendations and lessons/lessons_in_days: overdue, history, deaths covered, timing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from homicide_assets.lib.feeds import PFD_RESPONSE_DAYS
from homicide_assets.lib.lessons import (
    RECOMMENDATIONS_SCHEMA,
    build_lessons_in_days,
    build_recommendations,
    feed_columns,
    operator_updates_frame,
    overdue_list,
    recommendation_history,
)
from homicide_assets.lib.registry import load_registry

REGISTRY = load_registry()


def raw_delivery(rows: list[dict], delivery_id: str, partner: str, extract_date: str, seq: int = 0) -> pl.DataFrame:
    """Text rows of one delivery as ``lib.ingest.read_raw`` returns them."""
    cols = feed_columns()
    return pl.DataFrame(
        [{c: (r.get(c) or None) for c in cols} for r in rows], schema={c: pl.String for c in cols}
    ).with_columns(
        pl.lit(delivery_id).alias("_delivery_id"),
        pl.lit(partner).alias("_partner_id"),
        pl.lit(f"{partner}__review_recommendations__{extract_date.replace('-', '')}.csv").alias("_source_file"),
        pl.int_range(2, len(rows) + 2, dtype=pl.Int64).alias("_source_line"),
        pl.lit(extract_date).str.to_date().alias("_extract_date"),
        pl.lit(seq, dtype=pl.Int64).alias("_seq"),
    )


def rec(review_id="PFD-2026-001", recommendation_id="1", **kw) -> dict:
    row = {
        "review_id": review_id, "recommendation_id": recommendation_id, "review_type": "pfd",
        "review_title": "Regulation 28: prevention of future deaths", "published_on": "2026-01-10",
        "recommendation_text": "The trust should ensure that staff are trained in suicide risk assessment.",
        "owner_organisation": "University Hospitals Birmingham NHS Foundation Trust",
        "governance_board": "Birmingham Community Safety Partnership board", "accepted": "Y",
        "status": "not_started",
    }
    row.update(kw)
    return row


def history_of(*deliveries: pl.DataFrame) -> pl.DataFrame:
    return recommendation_history(pl.concat(deliveries, how="vertical_relaxed"))


def one(frame: pl.DataFrame, review_id: str = "PFD-2026-001", recommendation_id: str = "1") -> dict:
    rows = frame.filter((pl.col("review_id") == review_id) & (pl.col("recommendation_id") == recommendation_id))
    assert rows.height == 1, rows
    return rows.row(0, named=True)


# --- overdue ---------------------------------------------------------------------------

def test_pfd_without_due_date_is_due_56_days_after_publication_and_overdue_after():
    history = history_of(raw_delivery([rec()], "d1", "coroner_bs", "2026-01-12"))
    due = date(2026, 1, 10) + timedelta(days=PFD_RESPONSE_DAYS)
    assert due == date(2026, 3, 7)
    on_due_day = one(build_recommendations(history, due, registry=REGISTRY))
    assert on_due_day["due_on"] == due and on_due_day["overdue"] is False
    day_after = one(build_recommendations(history, due + timedelta(days=1), registry=REGISTRY))
    assert day_after["overdue"] is True and day_after["days_overdue"] == 1


def test_given_due_date_wins_over_the_pfd_default_and_non_pfd_without_date_is_never_overdue():
    history = history_of(raw_delivery([
        rec(due_on="30/06/2026"),
        rec(review_id="SAR-2026-01", review_type="sar", recommendation_text="Review the self-neglect protocol."),
    ], "d1", "bham", "2026-01-12"))
    recs = build_recommendations(history, date(2026, 5, 1), registry=REGISTRY)
    assert one(recs)["due_on"] == date(2026, 6, 30) and one(recs)["overdue"] is False
    sar = one(recs, "SAR-2026-01")
    assert sar["due_on"] is None and sar["overdue"] is False


@pytest.mark.parametrize("status, overdue", [
    ("not_started", True), ("in_progress", True), ("closed_not_implemented", True),
    ("implemented", False), ("verified", False),
])
def test_overdue_unless_implemented_or_verified(status, overdue):
    history = history_of(raw_delivery([rec(status=status, status_updated_on="2026-02-01")], "d1", "coroner_bs", "2026-02-02"))
    got = one(build_recommendations(history, date(2026, 6, 1), registry=REGISTRY))
    assert got["status"] == status and got["overdue"] is overdue


# --- history ---------------------------------------------------------------------------

def test_every_deliverys_status_is_kept_in_order_and_the_newest_is_current():
    history = history_of(
        raw_delivery([rec()], "d1", "coroner_bs", "2026-01-12"),
        raw_delivery([rec(status="in_progress", status_updated_on="2026-02-01")], "d2", "coroner_bs", "2026-02-03"),
        raw_delivery([rec(status="in_progress", status_updated_on="2026-02-01")], "d3", "coroner_bs", "2026-03-03"),
        raw_delivery([rec(status="implemented", status_updated_on="14/03/2026", evidence="training log")],
                     "d4", "coroner_bs", "2026-04-03"),
    )
    got = one(build_recommendations(history, date(2026, 6, 1), registry=REGISTRY))
    assert [h["delivery_id"] for h in got["status_history"]] == ["d1", "d2", "d3", "d4"]
    assert [h["status"] for h in got["status_history"]] == ["not_started", "in_progress", "in_progress", "implemented"]
    assert {h["changed_by"] for h in got["status_history"]} == {"coroner_bs"}
    assert got["status"] == "implemented" and got["status_updated_on"] == date(2026, 3, 14)
    assert got["closed_on"] == date(2026, 3, 14)
    assert got["days_open"] == (date(2026, 3, 14) - date(2026, 1, 10)).days
    assert got["overdue"] is False and got["evidence"] == "training log"


def test_a_row_quarantined_by_staging_is_not_in_the_history():
    history = history_of(
        raw_delivery([rec()], "d1", "coroner_bs", "2026-01-12"),
        raw_delivery([rec(status="done-ish")], "d2", "coroner_bs", "2026-02-03"),
    )
    assert history.height == 1
    got = one(build_recommendations(history, date(2026, 2, 3), registry=REGISTRY))
    assert [h["delivery_id"] for h in got["status_history"]] == ["d1"]


def test_operator_update_is_merged_with_who_and_when_and_wins_when_newer():
    history = history_of(
        raw_delivery([rec()], "d1", "coroner_bs", "2026-01-12"),
        raw_delivery([rec(status="in_progress", status_updated_on="2026-02-01")], "d2", "coroner_bs", "2026-02-03"),
    )
    updates = operator_updates_frame([{
        "id": 7, "review_id": "PFD-2026-001", "recommendation_id": "1", "status": "verified",
        "status_updated_on": date(2026, 2, 20), "changed_by": "A. Chair (VRP board)", "evidence": "audit minute 12",
        "recorded_at": datetime(2026, 2, 21, 9, 0),
    }])
    got = one(build_recommendations(history, date(2026, 6, 1), updates, registry=REGISTRY))
    assert got["status"] == "verified" and got["overdue"] is False
    last = got["status_history"][-1]
    assert (last["source"], last["changed_by"], last["status_updated_on"], last["delivery_id"]) == (
        "operator", "A. Chair (VRP board)", date(2026, 2, 20), None)
    assert len(got["status_history"]) == 3  # both deliveries still there
    # before the update took effect, the delivered status stands
    earlier = one(build_recommendations(history, date(2026, 2, 10), updates, registry=REGISTRY))
    assert earlier["status"] == "in_progress" and len(earlier["status_history"]) == 2


def test_a_later_delivery_that_is_stale_does_not_undo_a_newer_board_decision():
    history = history_of(
        raw_delivery([rec(status="in_progress", status_updated_on="2026-02-01")], "d1", "coroner_bs", "2026-02-03"),
        raw_delivery([rec(status="in_progress", status_updated_on="2026-02-01")], "d2", "coroner_bs", "2026-04-03"),
    )
    updates = operator_updates_frame([{
        "id": 1, "review_id": "PFD-2026-001", "recommendation_id": "1", "status": "implemented",
        "status_updated_on": date(2026, 3, 1), "changed_by": "board", "evidence": None,
        "recorded_at": datetime(2026, 3, 1, tzinfo=UTC),
    }])
    got = one(build_recommendations(history, date(2026, 6, 1), updates, registry=REGISTRY))
    assert got["status"] == "implemented"
    # the history is in order of when each status took effect; the stale delivery is kept, not applied
    assert [(h["source"], h["delivery_id"]) for h in got["status_history"]] == [
        ("delivery", "d1"), ("delivery", "d2"), ("operator", None)]


def test_as_of_leaves_out_later_deliveries_so_a_replay_gives_the_same_answer():
    history = history_of(
        raw_delivery([rec()], "d1", "coroner_bs", "2026-01-12"),
        raw_delivery([rec(status="implemented", status_updated_on="2026-03-01")], "d2", "coroner_bs", "2026-03-02"),
    )
    then = one(build_recommendations(history, date(2026, 3, 1), registry=REGISTRY))
    assert then["status"] == "not_started" and len(then["status_history"]) == 1
    assert then["days_open"] == (date(2026, 3, 1) - date(2026, 1, 10)).days


# --- deaths, partners, themes ----------------------------------------------------------

def register() -> pl.DataFrame:
    return pl.DataFrame({
        "death_id": ["D-1", "D-2", "D-3", "D-4"],
        "police_report_id": ["DR-2026-000001", "DR-2026-000002", None, "DR-2026-000004"],
        "date_of_death": [date(2026, 1, 1), date(2026, 1, 20), date(2026, 1, 5), date(2026, 2, 1)],
        "police_classification": ["homicide", "suspected_suicide", None, "suspected_homicide"],
        "inquest_conclusion": [None, None, "unlawful_killing", None],
        "source_records": [["death_reports:wmp:DR-2026-000001", "me_deaths:swbh:ME9"],
                           ["death_reports:wmp:DR-2026-000002"], ["inquests:coroner_bc:INQ7"],
                           ["death_reports:wmp:DR-2026-000004"]],
    })


def test_deaths_covered_and_partners_involved():
    history = history_of(raw_delivery([rec(linked_report_ids="DR-2026-000001;DR-2026-000002;DR-2026-000099")],
                                      "d1", "coroner_bs", "2026-01-12"))
    got = one(build_recommendations(history, date(2026, 2, 1), death_register=register(), registry=REGISTRY))
    assert got["death_ids"] == ["D-1", "D-2"]
    assert got["owner_partner_id"] == "uhb"  # matched by organisation name
    # delivered by the coroner, owned by uhb, deaths known to wmp and swbh
    assert got["partners_involved"] == ["coroner_bs", "swbh", "uhb", "wmp"]


def test_repeated_theme_is_a_theme_seen_in_an_earlier_review():
    first = rec(review_id="DARDR-2025-01", review_type="dardr", published_on="2025-06-01",
                recommendation_text="Agencies should share information about domestic abuse with the MARAC.")
    same_review = rec(review_id="DARDR-2025-01", recommendation_id="2", review_type="dardr", published_on="2025-06-01",
                      recommendation_text="GPs should be trained to recognise coercive control.")
    later = rec(review_id="DARDR-2026-04", review_type="dardr", published_on="2026-01-15", owner_organisation="wmp",
                recommendation_text="The police should share information with housing about domestic abuse victims.")
    same_owner = rec(review_id="SAR-2026-09", review_type="sar", published_on="2026-01-18", owner_organisation="UHB",
                     recommendation_text="The trust should share information about carers with the GP.")
    unrelated = rec(review_id="OWHR-2026-02", review_type="owhr", published_on="2026-01-20",
                    recommendation_text="Retailers should store knives in locked cabinets.")
    history = history_of(raw_delivery([first, same_review, later, same_owner, unrelated], "d1", "vrp", "2026-02-01"))
    recs = build_recommendations(history, date(2026, 2, 1), registry=REGISTRY)
    assert one(recs, "DARDR-2025-01")["repeated_theme"] is False
    assert one(recs, "DARDR-2025-01", "2")["repeated_theme"] is False  # same review, not an earlier one
    got = one(recs, "DARDR-2026-04")
    assert got["repeated_theme"] is True
    assert got["repeated_themes"] == ["domestic_abuse", "information_sharing"]
    assert got["repeated_for_owner"] == []  # the police were not told this before; the trust was
    told_twice = one(recs, "SAR-2026-09")
    assert told_twice["repeated_for_owner"] == ["information_sharing"]
    assert "family_engagement" in told_twice["themes"] and "family_engagement" not in told_twice["repeated_themes"]
    assert one(recs, "OWHR-2026-02")["repeated_theme"] is False
    assert "weapons" in one(recs, "OWHR-2026-02")["themes"]


def test_output_has_the_contract_columns_and_an_overdue_list():
    history = history_of(raw_delivery([rec(), rec(recommendation_id="2", status="verified")], "d1", "coroner_bs", "2026-01-12"))
    recs = build_recommendations(history, date(2026, 6, 1), registry=REGISTRY)
    assert recs.schema == pl.Schema(RECOMMENDATIONS_SCHEMA)
    assert overdue_list(recs)["recommendation_id"].to_list() == ["1"]
    empty = build_recommendations(history.clear(), date(2026, 6, 1))
    assert empty.is_empty() and empty.schema == pl.Schema(RECOMMENDATIONS_SCHEMA)


# --- lessons in days -------------------------------------------------------------------

def _lessons(as_of: date, flag_after_days: int = 28, linked: dict[str, str] | None = None) -> pl.DataFrame:
    linked = linked or {}
    rows = [rec(review_id=f"MIR-{i}", review_type="mir_debrief", published_on=published, linked_report_ids=report)
            for i, (report, published) in enumerate(linked.items())]
    history = history_of(raw_delivery(rows, "d1", "wmp", "2026-01-02")) if rows else history_of(
        raw_delivery([rec()], "d1", "wmp", "2026-01-02"))
    recs = build_recommendations(history, as_of, registry=REGISTRY)
    return build_lessons_in_days(register(), recs, as_of, flag_after_days)


def test_lessons_in_days_covers_homicides_and_unlawful_killings_only():
    out = _lessons(date(2026, 3, 1))
    assert sorted(out["death_id"]) == ["D-1", "D-3", "D-4"]  # D-2 is a suspected suicide


def test_lessons_in_days_flags_a_homicide_with_no_lesson_after_28_days():
    out = _lessons(date(2026, 3, 1), linked={"DR-2026-000001": "2026-01-22"})
    d1 = one_death(out, "D-1")
    assert d1["first_lesson_on"] == date(2026, 1, 22) and d1["days_to_first_lesson"] == 21 and d1["flagged"] is False
    d4 = one_death(out, "D-4")  # died 1 Feb, 28 days by 1 Mar: not yet
    assert d4["days_since_death"] == 28 and d4["flagged"] is False
    d4_later = one_death(_lessons(date(2026, 3, 2), linked={"DR-2026-000001": "2026-01-22"}), "D-4")
    assert d4_later["flagged"] is True and "no lesson recorded 29 days after the death" in d4_later["flag_reason"]
    d3 = one_death(out, "D-3")  # no police report: no lesson can be linked
    assert d3["flagged"] is True


def test_a_late_first_lesson_is_flagged_and_the_period_is_configurable():
    out = _lessons(date(2026, 4, 1), linked={"DR-2026-000001": "2026-02-15"})
    d1 = one_death(out, "D-1")
    assert d1["days_to_first_lesson"] == 45 and d1["flagged"] is True
    assert d1["flag_reason"] == "first lesson 45 days after the death (limit 28)"
    relaxed = one_death(_lessons(date(2026, 4, 1), 60, linked={"DR-2026-000001": "2026-02-15"}), "D-1")
    assert relaxed["flagged"] is False


def test_a_lesson_published_after_the_as_of_date_does_not_count():
    out = _lessons(date(2026, 1, 25), linked={"DR-2026-000001": "2026-02-15"})
    d1 = one_death(out, "D-1")
    assert d1["first_lesson_on"] is None and d1["lessons"] == 0


def one_death(frame: pl.DataFrame, death_id: str) -> dict:
    rows = frame.filter(pl.col("death_id") == death_id)
    assert rows.height == 1
    return rows.row(0, named=True)
