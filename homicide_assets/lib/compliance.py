"""Partner compliance: extracts owed by cadence against extracts received, named non-responders.

``partners/compliance`` (:func:`build_compliance`) has one row per partner and feed in the
registry (``seeds/partner_feeds.csv``), built from the deliveries ledger as of a date:

- ``extracts_owed``: with cadence ``c`` days over the compliance period ``[start, as_of]``,
  ``floor((as_of - start) / c) + 1`` (one at the start, then one every ``c`` days).
  ``start`` is the later of the period start and the day the partner's agreement was
  signed. The period start defaults to the earliest extract date in the ledger (when the
  platform began receiving). Feeds delivered on publication (no cadence) owe nothing.
- ``extracts_received``: distinct extract dates of deliveries in the period that were not
  quarantined whole (a corrected extract on the same day is the same extract). A header-only
  file (refused by ingest as ``no_rows``) is a nil return: it counts as received and is not
  a quality failure (``nil_returns`` counts them). A file byte-identical to one already
  received is kept by ingest only as a receipt; :func:`read_ledger` adds it back as that
  partner's extract of that day.
- ``last_extract_date`` (of those), ``days_late``: days since the next extract was due
  (last extract + cadence; the period start when none came), never negative.
- ``late_extracts``/``longest_gap_days``: how many gaps between consecutive extracts were
  longer than the cadence, and the longest gap: lateness in the past, not only today.
- ``quality_pass_rate``: the share of delivered content that was usable: (files not
  quarantined / files received) x (rows that passed the contract / rows read in them).
  Rows superseded by a newer extract passed the contract and count as passed.
- ``agreement_id``, ``agreement_expires_on``, ``days_to_expiry`` (negative once expired).
- ``non_responder``: a feed with a cadence whose next extract is more than
  ``late_grace_days`` (default 7) overdue, or that delivered fewer than
  ``min_completeness`` (default 50%) of the extracts owed, or nothing at all.
- ``escalate``/``escalation_reason``: non-response, an agreement expired or expiring within
  ``expiry_warning_days`` (default 90), or quality below ``min_quality`` (default 90%),
  stated in plain words a board can read out.

As with the lessons assets, ``as_of`` defaults to the newest extract date in the ledger
(:func:`ledger_as_of`) so a replayed archive gives the same table on any day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from homicide_assets.lib.registry import Registry

LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "delivery_id": pl.String,
    "partner_id": pl.String,
    "feed": pl.String,
    "extract_date": pl.Date,
    "seq": pl.Int64,
    "status": pl.String,
    "rows_read": pl.Int64,
    "rows_staged": pl.Int64,
    "rows_quarantined": pl.Int64,
    "rows_superseded": pl.Int64,
    "quarantine_rule": pl.String,
}

#: Whole-file refusals that still show the partner responded: a header-only extract is a
#: nil return (nothing new to report), not a failure to share.
NIL_RETURN_RULES = ("no_rows",)

COMPLIANCE_SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String, "organisation": pl.String, "sector": pl.String, "feed": pl.String,
    "cadence_days": pl.Int64, "extracts_owed": pl.Int64, "extracts_received": pl.Int64,
    "last_extract_date": pl.Date, "days_late": pl.Int64, "quality_pass_rate": pl.Float64,
    "agreement_id": pl.String, "agreement_expires_on": pl.Date, "days_to_expiry": pl.Int64,
    "non_responder": pl.Boolean, "escalation_reason": pl.String,
    # beyond the contract columns
    "escalate": pl.Boolean,
    "period_start": pl.Date,
    "next_due_on": pl.Date,
    "late_extracts": pl.Int64,
    "longest_gap_days": pl.Int64,
    "files_received": pl.Int64,
    "files_quarantined": pl.Int64,
    "rows_read": pl.Int64,
    "rows_passed": pl.Int64,
    "nil_returns": pl.Int64,
    "feed_permitted": pl.Boolean,
    "as_of": pl.Date,
}


@dataclass(frozen=True)
class ComplianceRules:
    """Thresholds for naming a partner; defaults agreed for the first year, change with the board."""

    late_grace_days: int = 7
    min_completeness: float = 0.5
    expiry_warning_days: int = 90
    min_quality: float = 0.9


def read_ledger(database_url: str) -> pl.DataFrame:
    """Every delivery in the ledger as a frame (:data:`LEDGER_SCHEMA`).

    Adds the rule of each whole-file refusal (``quarantine_rule``), and every file kept by
    ingest only as a receipt because its bytes were identical to a file already received
    (two nil returns in a row, or the same header-only extract from two trusts): it is still
    that partner's extract of that day (status ``identical_receipt``).
    """
    from sqlmodel import select

    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt

    # the ledger's own columns as plain rows (no ORM objects: a force-decade ledger has
    # thousands of deliveries, and every asset reading the as-of date reads it)
    columns = [getattr(Delivery, c) for c in LEDGER_SCHEMA if c != "quarantine_rule"]
    with session_scope(database_url) as s:
        rows = [dict(r._mapping) for r in s.exec(select(*columns))]
        files = s.exec(select(QuarantineEntry.delivery_id, QuarantineEntry.rule).where(QuarantineEntry.kind == "file"))
        rules = {delivery_id: rule for delivery_id, rule in files if delivery_id}
        duplicates = list(s.exec(select(Receipt.id, Receipt.file_name).where(Receipt.outcome == "duplicate")))
    for r in rows:
        r["quarantine_rule"] = rules.get(r["delivery_id"]) if r["status"] == "quarantined" else None
    for receipt_id, file_name in duplicates:
        name = _receipt_name(file_name)
        if name is None:
            continue
        rows.append({
            "delivery_id": f"receipt:{receipt_id}", "partner_id": name.partner_id, "feed": name.feed,
            "extract_date": name.extract_date, "seq": name.seq, "status": "identical_receipt",
        })
    return pl.DataFrame([{k: r.get(k) for k in LEDGER_SCHEMA} for r in rows], schema=LEDGER_SCHEMA)


def _receipt_name(file_name: str):
    from homicide_assets.lib.parsing import DeliveryRefused, parse_delivery_name

    try:
        return parse_delivery_name(file_name)
    except DeliveryRefused:
        return None


def newest_extract_date(database_url: str) -> date | None:
    """``ledger_as_of(read_ledger(database_url))`` without reading the ledger: the newest
    extract date of a delivery or of an identical receipt (the same rows count)."""
    from sqlmodel import func, select

    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery, Receipt

    with session_scope(database_url) as s:
        newest = s.exec(select(func.max(Delivery.extract_date))).one()
        names = list(s.exec(select(Receipt.file_name).where(Receipt.outcome == "duplicate")))
    dates = [n.extract_date for n in map(_receipt_name, names) if n is not None]
    return max([d for d in (newest, *dates) if d is not None], default=None)


def ledger_as_of(ledger: pl.DataFrame) -> date | None:
    """The newest extract date in the ledger: the default as-of date of lessons and compliance."""
    if ledger.is_empty():
        return None
    return ledger.get_column("extract_date").max()


def _days(e: pl.Expr) -> pl.Expr:
    return e.dt.total_days().cast(pl.Int64)


def build_compliance(
    ledger: pl.DataFrame,
    registry: Registry,
    as_of: date,
    period_start: date | None = None,
    rules: ComplianceRules = ComplianceRules(),
) -> pl.DataFrame:
    """``partners/compliance`` as of ``as_of`` (see the module docstring for each column)."""
    ledger = ledger.select([pl.col(c).cast(t) for c, t in LEDGER_SCHEMA.items()])
    ledger = ledger.filter(pl.col("extract_date") <= as_of)
    if period_start is None:
        period_start = ledger.get_column("extract_date").min() if ledger.height else as_of
    registry_rows = []
    for f in registry.feeds:
        partner = registry.partner(f.partner_id)
        agreement = registry.agreement(f.partner_id)
        start = max(period_start, agreement.signed_on) if agreement else period_start
        registry_rows.append(
            {
                "partner_id": f.partner_id,
                "organisation": partner.organisation if partner else f.partner_id,
                "sector": partner.sector if partner else None,
                "feed": f.feed,
                "cadence_days": f.cadence_days,
                "period_start": start,
                "agreement_id": agreement.agreement_id if agreement else None,
                "agreement_expires_on": agreement.expires_on if agreement else None,
                "feed_permitted": (f.feed in agreement.permitted_feeds) if agreement else False,
            }
        )
    owed = pl.DataFrame(
        registry_rows,
        schema={
            "partner_id": pl.String,
            "organisation": pl.String,
            "sector": pl.String,
            "feed": pl.String,
            "cadence_days": pl.Int64,
            "period_start": pl.Date,
            "agreement_id": pl.String,
            "agreement_expires_on": pl.Date,
            "feed_permitted": pl.Boolean,
        },
    )

    in_period = ledger.join(
        owed.select("partner_id", "feed", "period_start"), on=["partner_id", "feed"]
    ).filter(pl.col("extract_date") >= pl.col("period_start"))
    nil_return = (pl.col("status") == "quarantined") & pl.col("quarantine_rule").is_in(
        NIL_RETURN_RULES
    ).fill_null(False)
    refused = (pl.col("status") == "quarantined") & ~nil_return
    usable = in_period.filter(~refused)
    files = in_period.group_by("partner_id", "feed").agg(
        pl.len().alias("files_received"),
        refused.sum().alias("files_quarantined"),
        nil_return.sum().alias("nil_returns"),
    )
    assessed = usable.filter(pl.col("rows_read").is_not_null())
    rows = assessed.group_by("partner_id", "feed").agg(
        pl.col("rows_read").sum().alias("rows_read"),
        (pl.col("rows_read") - pl.col("rows_quarantined").fill_null(0)).sum().alias("rows_passed"),
    )
    dates = usable.select("partner_id", "feed", "extract_date").unique().sort("partner_id", "feed", "extract_date")
    extracts = dates.with_columns(
        _gap=_days(pl.col("extract_date") - pl.col("extract_date").shift(1)).over("partner_id", "feed"),
    ).join(owed.select("partner_id", "feed", "cadence_days"), on=["partner_id", "feed"]).group_by(
        "partner_id", "feed").agg(
        pl.len().alias("extracts_received"),
        pl.col("extract_date").max().alias("last_extract_date"),
        (pl.col("_gap") > pl.col("cadence_days")).sum().alias("late_extracts"),
        pl.col("_gap").max().alias("longest_gap_days"),
    )

    as_of_lit = pl.lit(as_of, dtype=pl.Date)
    out = (
        owed.join(extracts, on=["partner_id", "feed"], how="left")
        .join(files, on=["partner_id", "feed"], how="left")
        .join(rows, on=["partner_id", "feed"], how="left")
        .with_columns(
            pl.col("extracts_received", "files_received", "files_quarantined", "nil_returns").fill_null(0),
            pl.col("late_extracts").fill_null(0),
        )
    )
    cadence = pl.col("cadence_days")
    out = out.with_columns(
        extracts_owed=pl.when(cadence.is_not_null()).then(
            _days(as_of_lit - pl.col("period_start")) // cadence + 1),
        next_due_on=pl.when(cadence.is_not_null()).then(
            pl.when(pl.col("last_extract_date").is_null()).then(pl.col("period_start"))
            .otherwise(pl.col("last_extract_date") + pl.duration(days=cadence))),
        quality_pass_rate=pl.when(pl.col("files_received") > 0).then(
            (pl.col("files_received") - pl.col("files_quarantined")) / pl.col("files_received")
            * pl.when(pl.col("rows_read") > 0).then(pl.col("rows_passed") / pl.col("rows_read")).otherwise(1.0)),
        days_to_expiry=_days(pl.col("agreement_expires_on") - as_of_lit),
    ).with_columns(
        days_late=pl.when(cadence.is_not_null()).then(
            pl.max_horizontal(_days(as_of_lit - pl.col("next_due_on")), pl.lit(0))),
    )

    never = cadence.is_not_null() & (pl.col("extracts_received") == 0) & (pl.col("days_late") > 0)
    too_late = pl.col("days_late") > rules.late_grace_days
    too_few = (pl.col("extracts_owed") >= 2) & (
        pl.col("extracts_received") < rules.min_completeness * pl.col("extracts_owed"))
    out = out.with_columns(non_responder=(never | too_late | too_few).fill_null(False))

    reasons = [
        pl.when(never).then(pl.format(
            "no {} extract received since {} (cadence {} days; {} days late)",
            pl.col("feed"), pl.col("period_start"), cadence, pl.col("days_late"))),
        pl.when(~never & too_late).then(pl.format(
            "no {} extract since {}: the next was due {} (cadence {} days), {} days late",
            pl.col("feed"), pl.col("last_extract_date"), pl.col("next_due_on"), cadence, pl.col("days_late"))),
        pl.when(too_few).then(pl.format(
            "only {} of {} {} extracts owed since {} received",
            pl.col("extracts_received"), pl.col("extracts_owed"), pl.col("feed"), pl.col("period_start"))),
        pl.when(pl.col("days_to_expiry") < 0).then(pl.format(
            "data sharing agreement {} expired on {}", pl.col("agreement_id"), pl.col("agreement_expires_on"))),
        pl.when(pl.col("days_to_expiry").is_between(0, rules.expiry_warning_days)).then(pl.format(
            "data sharing agreement {} expires on {} (in {} days)",
            pl.col("agreement_id"), pl.col("agreement_expires_on"), pl.col("days_to_expiry"))),
        pl.when(pl.col("agreement_id").is_null()).then(pl.lit("no data sharing agreement on record")),
        pl.when(pl.col("agreement_id").is_not_null() & ~pl.col("feed_permitted")).then(pl.format(
            "feed {} is not permitted by agreement {}", pl.col("feed"), pl.col("agreement_id"))),
        pl.when(pl.col("quality_pass_rate") < rules.min_quality).then(pl.format(
            "only {}% of delivered content passed the feed contract ({} of {} files quarantined whole)",
            (pl.col("quality_pass_rate") * 100).round(1), pl.col("files_quarantined"), pl.col("files_received"))),
    ]
    out = out.with_columns(
        escalation_reason=pl.concat_list(reasons).list.drop_nulls().list.join("; "),
    ).with_columns(
        escalation_reason=pl.when(pl.col("escalation_reason") == "").then(None).otherwise(pl.col("escalation_reason")),
    ).with_columns(
        escalate=pl.col("escalation_reason").is_not_null(),
        as_of=as_of_lit,
    )
    out = out.select([pl.col(c).cast(t) for c, t in COMPLIANCE_SCHEMA.items()])
    return out.sort(["non_responder", "escalate", "days_late", "partner_id", "feed"],
                    descending=[True, True, True, False, False], nulls_last=True)


def non_responders(compliance: pl.DataFrame) -> pl.DataFrame:
    """The partners to name and escalate: one row per non-responding partner and feed."""
    return compliance.filter(pl.col("non_responder")).select(
        "partner_id", "organisation", "sector", "feed", "cadence_days", "last_extract_date", "days_late",
        "extracts_owed", "extracts_received", "escalation_reason",
    )
