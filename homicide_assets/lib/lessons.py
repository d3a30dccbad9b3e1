"""Lessons that lead to change: review recommendations tracked to the end, and lessons in days.

Pure functions over frames (no Dagster, no I/O); ``defs/lessons`` reads the inputs and
writes the outputs.

``lessons/recommendations`` (:func:`build_recommendations`): one row per recommendation
(``review_id``, ``recommendation_id``), whoever delivered it. Its ``status_history`` holds
the status of **every** delivery that carried it (staged tables keep only the newest
extract, so the history is built from the raw rows of every delivery by
:func:`recommendation_history`) and every operator update recorded with
``recommendation-status set``; nothing is overwritten. The current status is the entry
with the latest effective date (``status_updated_on``, else the extract date of the
delivery), ties going to the later delivery and then to the operator. Everything else
(text, owner, board, due date) comes from the newest delivery.

- ``due_on``: as delivered; for a coroner's Prevention of Future Deaths report with no date,
  ``published_on`` + 56 days (the statutory response time, ``PFD_RESPONSE_DAYS``).
- ``overdue``: ``due_on`` is before the as-of date and the status is neither
  ``implemented`` nor ``verified`` (so ``closed_not_implemented`` past its due date counts:
  the lesson was not carried through).
- ``days_open``: from publication to the day the recommendation entered its current
  closed status (``implemented``, ``verified`` or ``closed_not_implemented``), or to the
  as-of date while open.
- ``partners_involved``: the partners that delivered the recommendation, the owner when it
  is a registered partner (by id or organisation name), and every partner holding a record
  of a death the review covers (from the death register's ``source_records``).
- ``death_ids``: deaths whose ``police_report_id`` is among ``linked_report_ids``.
- ``repeated_theme``: a theme of this recommendation already appeared in a review
  published earlier (the same lesson learned twice); ``repeated_themes`` names them, and
  ``repeated_for_owner`` those the same owner was already given in an earlier review (the
  sharper finding: the same organisation told the same thing twice).

``lessons/lessons_in_days`` (:func:`build_lessons_in_days`): every homicide or serious
violence death (police classification ``homicide``/``suspected_homicide`` or inquest
conclusion ``unlawful_killing``), the first lesson recorded against it (a debrief or review
recommendation linked to its police report), the days from death to that lesson, and a
flag when ``flag_after_days`` (default 28) have passed without a lesson in that time.

**As-of date.** Every "now" in here is an explicit ``as_of`` argument. The assets default
it to the newest extract date in the deliveries ledger (so replaying an archive gives the
same answer on any day) and take an override from run config (``as_of: "YYYY-MM-DD"``).
Deliveries with a later extract date, and operator updates effective after it, are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl

from homicide_assets.lib.feeds import FEEDS, PFD_RESPONSE_DAYS
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.staging import stage_feed
from homicide_assets.lib.themes import ThemeRules, load_theme_rules, theme_expressions

FEED = "review_recommendations"
KEY = ["review_id", "recommendation_id"]
#: statuses that mean the lesson was carried through
DONE_STATUSES = ("implemented", "verified")
#: statuses after which nothing more is expected
CLOSED_STATUSES = ("implemented", "verified", "closed_not_implemented")
#: deaths whose lessons are timed
HOMICIDE_CLASSIFICATIONS = ("homicide", "suspected_homicide")
HOMICIDE_CONCLUSIONS = ("unlawful_killing",)
DEFAULT_FLAG_AFTER_DAYS = 28

HISTORY_ENTRY = pl.Struct({
    "status": pl.String,
    "status_updated_on": pl.Date,
    "extract_date": pl.Date,
    "delivery_id": pl.String,
    "changed_by": pl.String,
    "source": pl.String,  # delivery | operator
    "evidence": pl.String,
})

#: typed rows of every delivery (what :func:`recommendation_history` returns)
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "review_id": pl.String, "recommendation_id": pl.String, "review_type": pl.String,
    "review_title": pl.String, "linked_report_ids": pl.List(pl.String), "published_on": pl.Date,
    "recommendation_text": pl.String, "owner_organisation": pl.String, "governance_board": pl.String,
    "accepted": pl.Boolean, "due_on": pl.Date, "status": pl.String, "status_updated_on": pl.Date,
    "evidence": pl.String, "_partner_id": pl.String, "_delivery_id": pl.String,
    "_extract_date": pl.Date, "_seq": pl.Int64,
}

OPERATOR_UPDATE_SCHEMA: dict[str, pl.DataType] = {
    "review_id": pl.String, "recommendation_id": pl.String, "status": pl.String,
    "status_updated_on": pl.Date, "changed_by": pl.String, "evidence": pl.String,
    "recorded_at": pl.Datetime("us", "UTC"), "update_id": pl.Int64,
}

RECOMMENDATIONS_SCHEMA: dict[str, pl.DataType] = {
    "review_id": pl.String, "recommendation_id": pl.String, "review_type": pl.String,
    "review_title": pl.String, "published_on": pl.Date, "recommendation_text": pl.String,
    "owner_organisation": pl.String, "governance_board": pl.String, "accepted": pl.Boolean,
    "status": pl.String, "status_updated_on": pl.Date, "due_on": pl.Date, "days_open": pl.Int64,
    "overdue": pl.Boolean, "themes": pl.List(pl.String), "partners_involved": pl.List(pl.String),
    "death_ids": pl.List(pl.String), "status_history": pl.List(HISTORY_ENTRY),
    "repeated_theme": pl.Boolean,
    # beyond the contract columns: the evidence behind them
    "repeated_themes": pl.List(pl.String),
    "repeated_for_owner": pl.List(pl.String),
    "theme_evidence": pl.List(pl.String),
    "days_overdue": pl.Int64,
    "closed_on": pl.Date,
    "owner_partner_id": pl.String,
    "reported_by": pl.List(pl.String),
    "linked_report_ids": pl.List(pl.String),
    "evidence": pl.String,
    "as_of": pl.Date,
}

LESSONS_IN_DAYS_SCHEMA: dict[str, pl.DataType] = {
    "death_id": pl.String, "police_report_id": pl.String, "date_of_death": pl.Date,
    "first_lesson_on": pl.Date, "days_to_first_lesson": pl.Int64, "flagged": pl.Boolean,
    "police_classification": pl.String, "inquest_conclusion": pl.String, "days_since_death": pl.Int64,
    "lessons": pl.Int64, "first_lesson": pl.String, "flag_reason": pl.String, "as_of": pl.Date,
}

#: pseudonym key for typing the history: this feed has no pseudonymised or personal
#: columns, so the key is never applied to any value
_TYPING_ONLY_KEY = b"review-recommendations-history-typing-only"


@dataclass(frozen=True)
class LessonsSettings:
    """What the lessons assets take from run config."""

    as_of: date
    flag_after_days: int = DEFAULT_FLAG_AFTER_DAYS


def recommendation_history(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed rows of every delivery of ``review_recommendations`` (not only the newest).

    ``raw`` is what ``lib.ingest.read_raw`` returns: text rows of every parsed delivery.
    Rows are typed by the same ``stage_feed`` that builds ``staged/review_recommendations``,
    so a row quarantined there is left out here too. Staging keeps the newest extract per
    record key; staging with each delivery standing in for the partner keeps every delivery.
    """
    if raw.is_empty():
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    partner_of = raw.select("_delivery_id", "_partner_id").unique("_delivery_id")
    per_delivery = raw.with_columns(pl.col("_delivery_id").alias("_partner_id"))
    result = stage_feed(FEED, per_delivery, _TYPING_ONLY_KEY, registry=None)
    typed = result.staged.drop("_partner_id").join(partner_of, on="_delivery_id", how="left")
    return typed.select([pl.col(c).cast(t) for c, t in HISTORY_SCHEMA.items()])


#: Bump when the held history changes shape.
HISTORY_STATE_FORMAT = 1


def held_recommendation_history(data_dir, folder) -> tuple[pl.DataFrame, list[str]]:
    """:func:`recommendation_history` of every parsed delivery of the feed, and the delivery
    ids whose raw partition is missing (as ``lib.ingest.read_raw`` gives them), held in
    ``folder`` (``models/review_history/``) between builds: while the same deliveries' raw
    partitions are there with the same size and modification time, and the code is the same,
    the held history is the one they give, and a build for another feed's delivery reads it
    instead of every raw partition of this one."""
    from homicide_assets.lib.held import load_frames, save_frames
    from homicide_assets.lib.ingest import raw_partitions, read_raw
    from homicide_assets.lib.settings import code_fingerprint

    partitions = raw_partitions(data_dir, FEED)
    meta = {"format": HISTORY_STATE_FORMAT, "code": code_fingerprint(), "partitions": partitions}
    missing = [i for i, stamp in partitions.items() if stamp is None]
    held = load_frames(folder, ["history"], HISTORY_STATE_FORMAT)
    if held is not None and held[1] == meta:
        return held[0]["history"], missing
    raw, missing = read_raw(data_dir, FEED)
    history = recommendation_history(raw)
    if raw_partitions(data_dir, FEED) == partitions:  # nothing arrived while it was read
        save_frames(folder, {"history": history}, meta)
    return history, missing


def _with_pfd_due(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("due_on").is_null() & (pl.col("review_type") == "pfd"))
        .then(pl.col("published_on") + pl.duration(days=PFD_RESPONSE_DAYS))
        .otherwise(pl.col("due_on")).alias("due_on")
    )


def _owner_partner_expr(registry: Registry | None) -> pl.Expr:
    """The owner as a registered partner id (matched by id or organisation name), else null."""
    if registry is None:
        return pl.lit(None, dtype=pl.String)
    lookup = {}
    for p in registry.partners.values():
        lookup[p.partner_id.lower()] = p.partner_id
        lookup[p.organisation.strip().lower()] = p.partner_id
    owner = pl.col("owner_organisation").str.strip_chars().str.to_lowercase()
    return owner.replace_strict(lookup, default=None, return_dtype=pl.String)


def _history_entries(history: pl.DataFrame, updates: pl.DataFrame) -> pl.DataFrame:
    """One row per status entry (delivery or operator) with its ordering keys."""
    delivered = history.select(
        *KEY,
        "status",
        pl.col("status_updated_on"),
        pl.col("_extract_date").alias("extract_date"),
        pl.col("_delivery_id").alias("delivery_id"),
        pl.col("_partner_id").alias("changed_by"),
        pl.lit("delivery").alias("source"),
        "evidence",
        pl.coalesce("status_updated_on", "_extract_date").alias("_effective_on"),
        pl.col("_extract_date").alias("_entered_on"),
        pl.lit(0).alias("_source_rank"),
        pl.col("_seq").alias("_order"),
    )
    operator = updates.select(
        *KEY,
        "status",
        "status_updated_on",
        pl.lit(None, dtype=pl.Date).alias("extract_date"),
        pl.lit(None, dtype=pl.String).alias("delivery_id"),
        "changed_by",
        pl.lit("operator").alias("source"),
        "evidence",
        pl.col("status_updated_on").alias("_effective_on"),
        pl.col("recorded_at").dt.date().alias("_entered_on"),
        pl.lit(1).alias("_source_rank"),
        pl.col("update_id").cast(pl.Int64).alias("_order"),
    )
    entries = pl.concat([delivered, operator], how="vertical_relaxed")
    return entries.sort([*KEY, "_effective_on", "_entered_on", "_source_rank", "_order"], nulls_last=False)


def build_recommendations(
    history: pl.DataFrame,
    as_of: date,
    operator_updates: pl.DataFrame | None = None,
    death_register: pl.DataFrame | None = None,
    registry: Registry | None = None,
    rules: ThemeRules | None = None,
) -> pl.DataFrame:
    """``lessons/recommendations`` as of ``as_of`` (see the module docstring for each column).

    ``history``: :func:`recommendation_history` rows. ``operator_updates``: rows of the
    ``recommendation_status_updates`` table (:data:`OPERATOR_UPDATE_SCHEMA`).
    ``death_register``: ``linkage/death_register`` (``death_id``, ``police_report_id`` and,
    when present, ``source_records``); without it ``death_ids`` are empty.
    """
    rules = rules or load_theme_rules()
    history = history.filter(pl.col("_extract_date") <= as_of)
    if history.is_empty():
        return pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)
    updates = (operator_updates if operator_updates is not None else pl.DataFrame(schema=OPERATOR_UPDATE_SCHEMA))
    updates = updates.select([pl.col(c).cast(t) for c, t in OPERATOR_UPDATE_SCHEMA.items()])
    known = history.select(KEY).unique()
    updates = updates.filter(pl.col("status_updated_on") <= as_of).join(known, on=KEY, how="semi")

    # The newest delivery of each recommendation describes it.
    newest = (
        history.sort([*KEY, "_extract_date", "_seq", "_delivery_id"])
        .group_by(KEY, maintain_order=True).last()
    )
    reported_by = history.group_by(KEY).agg(pl.col("_partner_id").unique().sort().alias("reported_by"))
    newest = _with_pfd_due(newest).join(reported_by, on=KEY, how="left")

    entries = _history_entries(history, updates)
    is_closed = pl.col("status").is_in(CLOSED_STATUSES)
    entries = entries.with_columns(
        _run=(is_closed != is_closed.shift(1)).fill_null(True).cum_sum().over(KEY),
    )
    struct_fields = list(HISTORY_ENTRY.to_schema())
    current = entries.group_by(KEY, maintain_order=True).agg(
        pl.struct(struct_fields).alias("status_history"),
        pl.col("status").last().alias("_current_status"),
        pl.col("_effective_on").last().alias("_current_on"),
        pl.col("evidence").drop_nulls().last().alias("_latest_evidence"),
        pl.col("_effective_on").filter(pl.col("_run") == pl.col("_run").max()).min().alias("_last_run_on"),
    )
    recs = newest.join(current, on=KEY, how="left").with_columns(
        pl.col("_current_status").alias("status"),
        pl.col("_current_on").alias("status_updated_on"),
        pl.coalesce("_latest_evidence", "evidence").alias("evidence"),
    )
    recs = recs.with_columns(
        closed_on=pl.when(pl.col("status").is_in(CLOSED_STATUSES)).then(pl.col("_last_run_on")),
    )
    as_of_lit = pl.lit(as_of, dtype=pl.Date)
    recs = recs.with_columns(
        days_open=(pl.coalesce("closed_on", as_of_lit) - pl.col("published_on")).dt.total_days(),
        overdue=(pl.col("due_on").is_not_null() & (pl.col("due_on") < as_of_lit)
                 & ~pl.col("status").is_in(DONE_STATUSES)).fill_null(False),
    ).with_columns(
        days_overdue=pl.when(pl.col("overdue")).then((as_of_lit - pl.col("due_on")).dt.total_days()),
    )

    recs = recs.with_columns(owner_partner_id=_owner_partner_expr(registry))
    themes, evidence = theme_expressions(rules, pl.col("recommendation_text"))
    recs = recs.with_columns(themes.alias("themes"), evidence.alias("theme_evidence"))
    no_themes = pl.lit([], dtype=pl.List(pl.String))
    recs = (
        recs.join(_repeated_themes(recs), on=KEY, how="left")
        .with_columns(
            pl.col("repeated_themes", "repeated_for_owner").fill_null(no_themes),
        )
        .with_columns(repeated_theme=pl.col("repeated_themes").list.len() > 0)
    )
    recs = recs.join(_deaths_covered(recs, death_register), on=KEY, how="left")
    empty = pl.lit([], dtype=pl.List(pl.String))
    recs = recs.with_columns(
        pl.col("death_ids").fill_null(empty),
        pl.concat_list([
            pl.col("reported_by"),
            pl.concat_list([pl.col("owner_partner_id")]).list.drop_nulls(),
            pl.col("_death_partners").fill_null(empty),
        ]).list.unique().list.sort().alias("partners_involved"),
        as_of=as_of_lit,
    )
    out = recs.select([pl.col(c).cast(t) for c, t in RECOMMENDATIONS_SCHEMA.items()])
    return out.sort(["published_on", "review_id", "recommendation_id"])


def _repeated_themes(recs: pl.DataFrame) -> pl.DataFrame:
    """Per recommendation, its themes already seen in a review published earlier
    (``repeated_themes``), and those already given to the same owner (``repeated_for_owner``)."""
    owner = pl.coalesce("owner_partner_id", pl.col("owner_organisation").str.strip_chars().str.to_lowercase())
    pairs = (
        recs.select(*KEY, "published_on", owner.alias("_owner"), pl.col("themes").alias("theme"))
        .explode("theme")
        .drop_nulls("theme")
    )
    first_seen = pairs.group_by("theme").agg(pl.col("published_on").min().alias("_first_seen_on"))
    first_for_owner = pairs.group_by("_owner", "theme").agg(
        pl.col("published_on").min().alias("_owner_first_on")
    )
    marked = pairs.join(first_seen, on="theme").join(first_for_owner, on=["_owner", "theme"])
    return marked.group_by(KEY).agg(
        pl.col("theme")
        .filter(pl.col("_first_seen_on") < pl.col("published_on"))
        .unique()
        .sort()
        .alias("repeated_themes"),
        pl.col("theme")
        .filter(pl.col("_owner_first_on") < pl.col("published_on"))
        .unique()
        .sort()
        .alias("repeated_for_owner"),
    )


def _deaths_covered(recs: pl.DataFrame, death_register: pl.DataFrame | None) -> pl.DataFrame:
    """death_ids and the partners holding records of those deaths, per recommendation."""
    schema = {"review_id": pl.String, "recommendation_id": pl.String,
              "death_ids": pl.List(pl.String), "_death_partners": pl.List(pl.String)}
    if death_register is None or death_register.is_empty():
        return pl.DataFrame(schema=schema)
    register = death_register.select(
        "death_id", "police_report_id",
        (pl.col("source_records") if "source_records" in death_register.columns
         else pl.lit([], dtype=pl.List(pl.String))).alias("source_records"),
    ).filter(pl.col("police_report_id").is_not_null())
    links = (
        recs.select(*KEY, pl.col("linked_report_ids").alias("police_report_id"))
        .explode("police_report_id").drop_nulls("police_report_id")
        .join(register, on="police_report_id", how="inner")
    )
    partners = (
        links.select(*KEY, pl.col("source_records").alias("record")).explode("record").drop_nulls("record")
        .with_columns(pl.col("record").str.split(":").list.get(1, null_on_oob=True).alias("partner"))
        .group_by(KEY).agg(pl.col("partner").drop_nulls().unique().sort().alias("_death_partners"))
    )
    deaths = links.group_by(KEY).agg(pl.col("death_id").unique().sort().alias("death_ids"))
    return deaths.join(partners, on=KEY, how="left").select(list(schema)).cast(schema)


def is_homicide_expr() -> pl.Expr:
    """Deaths whose lessons are timed: police homicide or suspected homicide, or unlawful killing."""
    return (
        pl.col("police_classification").is_in(HOMICIDE_CLASSIFICATIONS).fill_null(False)
        | pl.col("inquest_conclusion").is_in(HOMICIDE_CONCLUSIONS).fill_null(False)
    )


def build_lessons_in_days(
    death_register: pl.DataFrame,
    recommendations: pl.DataFrame,
    as_of: date,
    flag_after_days: int = DEFAULT_FLAG_AFTER_DAYS,
) -> pl.DataFrame:
    """``lessons/lessons_in_days``: days from each homicide to its first recorded lesson.

    A lesson is a recommendation (of any review type, a major investigation debrief
    included) published on or before ``as_of`` whose ``linked_report_ids`` include the
    death's police report. ``flagged``: more than ``flag_after_days`` have passed since the
    death (or its date is unknown) and no lesson was recorded within ``flag_after_days``
    of it. ``flag_reason`` says which, in words.
    """
    if flag_after_days < 0:
        raise ValueError(f"flag_after_days must be >= 0, not {flag_after_days}")
    if death_register is None or death_register.is_empty():
        return pl.DataFrame(schema=LESSONS_IN_DAYS_SCHEMA)
    as_of_lit = pl.lit(as_of, dtype=pl.Date)
    deaths = death_register.filter(is_homicide_expr()).filter(
        pl.col("date_of_death").is_null() | (pl.col("date_of_death") <= as_of_lit)
    ).select("death_id", "police_report_id", "date_of_death", "police_classification", "inquest_conclusion")
    lessons = (
        recommendations.filter(pl.col("published_on") <= as_of_lit)
        .select(pl.col("linked_report_ids").alias("police_report_id"), "published_on", "review_id",
                "recommendation_id", "review_type")
        .explode("police_report_id").drop_nulls("police_report_id")
        .sort(["published_on", "review_id", "recommendation_id"])
        .group_by("police_report_id", maintain_order=True).agg(
            pl.col("published_on").first().alias("first_lesson_on"),
            pl.len().alias("lessons"),
            pl.concat_str([pl.col("review_type").first(), pl.lit(" "), pl.col("review_id").first(), pl.lit(" rec "),
                           pl.col("recommendation_id").first()]).alias("first_lesson"),
        )
    )
    out = deaths.join(lessons, on="police_report_id", how="left").with_columns(
        days_to_first_lesson=(pl.col("first_lesson_on") - pl.col("date_of_death")).dt.total_days(),
        days_since_death=(as_of_lit - pl.col("date_of_death")).dt.total_days(),
        lessons=pl.col("lessons").fill_null(0),
    )
    waited = pl.col("date_of_death").is_null() | (pl.col("days_since_death") > flag_after_days)
    none_in_time = pl.col("first_lesson_on").is_null() | (pl.col("days_to_first_lesson") > flag_after_days)
    out = out.with_columns(flagged=(waited & none_in_time).fill_null(False)).with_columns(
        flag_reason=pl.when(~pl.col("flagged")).then(None)
        .when(pl.col("date_of_death").is_null() & pl.col("first_lesson_on").is_null())
        .then(pl.lit("no lesson recorded and the date of death is unknown"))
        .when(pl.col("first_lesson_on").is_null())
        .then(pl.format("no lesson recorded {} days after the death (limit {})",
                        pl.col("days_since_death"), pl.lit(flag_after_days)))
        .otherwise(pl.format("first lesson {} days after the death (limit {})",
                             pl.col("days_to_first_lesson"), pl.lit(flag_after_days))),
        as_of=as_of_lit,
    )
    out = out.select([pl.col(c).cast(t) for c, t in LESSONS_IN_DAYS_SCHEMA.items()])
    return out.sort(["flagged", "date_of_death", "death_id"], descending=[True, False, False], nulls_last=True)


def overdue_list(recommendations: pl.DataFrame) -> pl.DataFrame:
    """Overdue recommendations, most overdue first: what the digest and the report list."""
    return recommendations.filter(pl.col("overdue")).select(
        "review_id", "recommendation_id", "review_type", "review_title", "owner_organisation",
        "governance_board", "status", "status_updated_on", "due_on", "days_overdue", "themes",
    ).sort(["days_overdue", "review_id", "recommendation_id"], descending=[True, False, False])


def operator_updates_frame(rows: list[dict]) -> pl.DataFrame:
    """Operator update rows (dicts with :data:`OPERATOR_UPDATE_SCHEMA` keys, ``id`` accepted for ``update_id``)."""
    norm = []
    for r in rows:
        row = {**{k: r.get(k) for k in OPERATOR_UPDATE_SCHEMA}, "update_id": r.get("update_id", r.get("id"))}
        recorded = row["recorded_at"]
        if isinstance(recorded, datetime) and recorded.tzinfo is None:  # SQLite hands back naive UTC
            row["recorded_at"] = recorded.replace(tzinfo=UTC)
        norm.append(row)
    return pl.DataFrame(norm, schema=OPERATOR_UPDATE_SCHEMA)


def feed_columns() -> list[str]:
    """The contract columns of the feed, for building test deliveries."""
    return FEEDS[FEED].column_names
