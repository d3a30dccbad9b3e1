"""The weekly digest: one message listing overdue recommendations and non-responding partners.

:func:`build_digest` turns ``lessons/recommendations`` and ``partners/compliance`` into
one plain-text message (never one message per item); the Dagster sensor in
``defs/lessons/digest.py`` sends it once per ISO week. Recommendations are grouped by
owner, most overdue first, so each board member finds their own organisation's list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from homicide_assets.lib.compliance import non_responders
from homicide_assets.lib.lessons import overdue_list


@dataclass(frozen=True)
class Digest:
    """The message and what it counted."""

    subject: str
    body: str
    week: str  # ISO week the digest is for, e.g. 2026-W40
    as_of: date | None
    overdue: int
    non_responders: int
    expiring_agreements: int
    dedup_key: str = field(default="")


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def build_digest(
    recommendations: pl.DataFrame,
    compliance: pl.DataFrame,
    week_of: date,
    max_items: int = 200,
) -> Digest:
    """The digest for the week containing ``week_of``; lists are cut at ``max_items`` with a count of the rest."""
    overdue = overdue_list(recommendations) if recommendations.height else recommendations
    absent = non_responders(compliance) if compliance.height else compliance
    expiring = (
        compliance.filter(pl.col("days_to_expiry") <= 90).unique("agreement_id").sort("days_to_expiry")
        if compliance.height else compliance
    )
    as_of = None
    for frame in (recommendations, compliance):
        if frame.height and "as_of" in frame.columns:
            as_of = frame.get_column("as_of").max()
    week = iso_week(week_of)
    lines = [
        f"Weekly lessons and partner compliance digest, {week}"
        + (f" (data as of {as_of.isoformat()})" if as_of else ""),
        "",
        f"{overdue.height} overdue recommendation{'s' if overdue.height != 1 else ''}, "
        f"{absent.height} non-responding partner feed{'s' if absent.height != 1 else ''}, "
        f"{expiring.height} data sharing agreement{'s' if expiring.height != 1 else ''} expired or expiring within 90 days.",
        "",
        "OVERDUE RECOMMENDATIONS (due date passed, not implemented or verified), by owner",
    ]
    if overdue.height == 0:
        lines.append("  none")
    shown = 0
    for owner, group in overdue.group_by("owner_organisation", maintain_order=True):
        if shown >= max_items:
            break
        owner_name = owner[0] if isinstance(owner, tuple) else owner
        lines.append(f"- {owner_name} ({group.height})")
        for r in group.iter_rows(named=True):
            if shown >= max_items:
                break
            board = f"; board: {r['governance_board']}" if r["governance_board"] else ""
            lines.append(
                f"    {r['review_id']} rec {r['recommendation_id']} ({r['review_type']}): {r['status']}, "
                f"due {r['due_on']}, {r['days_overdue']} days overdue{board}"
            )
            shown += 1
    if overdue.height > shown:
        lines.append(f"  ... and {overdue.height - shown} more (see lessons/recommendations)")
    lines += ["", "NON-RESPONDING PARTNERS (to escalate)"]
    if absent.height == 0:
        lines.append("  none")
    for r in absent.head(max_items).iter_rows(named=True):
        lines.append(f"- {r['organisation']} ({r['partner_id']}), {r['feed']}: {r['escalation_reason']}")
    lines += ["", "DATA SHARING AGREEMENTS EXPIRED OR EXPIRING WITHIN 90 DAYS"]
    if expiring.height == 0:
        lines.append("  none")
    for r in expiring.iter_rows(named=True):
        when = "expired" if r["days_to_expiry"] < 0 else f"expires in {r['days_to_expiry']} days"
        lines.append(f"- {r['agreement_id']} {r['organisation']} ({r['partner_id']}): {when}, on {r['agreement_expires_on']}")
    lines += ["", "To record a status change: homicide-assets recommendation-status set --review R --rec N "
              "--status S --by NAME [--evidence TEXT]"]
    subject = (f"weekly digest {week}: {overdue.height} overdue recommendations, "
               f"{absent.height} non-responding partner feeds")
    return Digest(subject=subject, body="\n".join(lines) + "\n", week=week, as_of=as_of,
                  overdue=overdue.height, non_responders=absent.height, expiring_agreements=expiring.height,
                  dedup_key=f"lessons_weekly_digest:{week}")
