"""Recording and reading operator status updates of review recommendations.

The operator path (``recommendation-status set``, :mod:`homicide_assets.lessons_cli`) calls
:func:`record_status_update`; ``lessons/recommendations`` reads every row back with
:func:`read_operator_updates` and merges it into the recommendation's status history.
Rows are only ever added.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlmodel import select

from homicide_assets.lib.feeds import RECOMMENDATION_STATUS
from homicide_assets.lib.lessons import OPERATOR_UPDATE_SCHEMA, operator_updates_frame
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.lessons import RecommendationStatusUpdate, utcnow


class StatusUpdateRefused(ValueError):
    """An update that would not make sense; the message says which value and why."""


def record_status_update(
    database_url: str,
    review_id: str,
    recommendation_id: str,
    status: str,
    changed_by: str,
    evidence: str | None = None,
    status_updated_on: date | None = None,
    known_recommendations: pl.DataFrame | None = None,
) -> RecommendationStatusUpdate:
    """Add one status change; refuse unknown statuses, blank names, future dates and unknown recommendations.

    ``known_recommendations`` (``review_id``, ``recommendation_id``) guards against typing
    a recommendation that no partner delivered; pass ``None`` to skip that check.
    """
    status_norm = status.strip().lower().replace(" ", "_").replace("-", "_")
    if status_norm not in RECOMMENDATION_STATUS:
        raise StatusUpdateRefused(f"status {status!r} is not one of {', '.join(RECOMMENDATION_STATUS)}")
    if not changed_by or not changed_by.strip():
        raise StatusUpdateRefused("--by is required: the name or role of whoever made the change")
    review_id, recommendation_id = review_id.strip(), recommendation_id.strip()
    if not review_id or not recommendation_id:
        raise StatusUpdateRefused("--review and --rec are required")
    now = utcnow()
    effective = status_updated_on or now.date()
    if effective > now.date():
        raise StatusUpdateRefused(f"--on {effective.isoformat()} is in the future")
    if known_recommendations is not None:
        match = known_recommendations.filter(
            (pl.col("review_id") == review_id) & (pl.col("recommendation_id") == recommendation_id)
        )
        if match.is_empty():
            same_review = known_recommendations.filter(pl.col("review_id") == review_id)
            hint = (f"review {review_id} has recommendations "
                    f"{', '.join(sorted(same_review['recommendation_id'].to_list())[:20])}"
                    if same_review.height else f"no review {review_id} has been delivered")
            raise StatusUpdateRefused(f"recommendation {review_id} / {recommendation_id} is not known ({hint})")
    row = RecommendationStatusUpdate(
        review_id=review_id, recommendation_id=recommendation_id, status=status_norm,
        status_updated_on=effective, changed_by=changed_by.strip(),
        evidence=(evidence.strip() or None) if evidence else None, recorded_at=now,
    )
    with session_scope(database_url) as s:
        s.add(row)
        s.flush()
        s.refresh(row)
    return row


def read_operator_updates(database_url: str) -> pl.DataFrame:
    """Every recorded operator update (:data:`lib.lessons.OPERATOR_UPDATE_SCHEMA`), oldest first."""
    with session_scope(database_url) as s:
        rows = [r.model_dump() for r in s.exec(select(RecommendationStatusUpdate).order_by(RecommendationStatusUpdate.id))]
    if not rows:
        return pl.DataFrame(schema=OPERATOR_UPDATE_SCHEMA)
    return operator_updates_frame(rows)
