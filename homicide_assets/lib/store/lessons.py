"""Operator status updates of review recommendations (who changed what, when, and why).

A row is never updated or deleted: ``lessons/recommendations`` merges every row into the
recommendation's ``status_history`` beside the statuses partners delivered, and the newest
effective status wins. Written by ``recommendation-status set`` (``homicide_assets/lessons_cli.py``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RecommendationStatusUpdate(SQLModel, table=True):
    """One status change recorded by an operator (a governance board decision, say)."""

    __tablename__ = "recommendation_status_updates"

    id: int | None = Field(default=None, primary_key=True)
    review_id: str = Field(index=True)
    recommendation_id: str = Field(index=True)
    #: one of ``RECOMMENDATION_STATUS`` in ``lib/feeds.py``
    status: str
    #: the day the status took effect (the board's decision date); defaults to the day recorded
    status_updated_on: date
    #: who made the change: a name or role, as the operator typed it
    changed_by: str
    evidence: str | None = None
    recorded_at: datetime = Field(default_factory=utcnow)
