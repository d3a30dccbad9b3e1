"""The ``alerts`` table: every alert raised to analysts, whether or not a channel took it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Alert(SQLModel, table=True):
    """One alert, de-duplicated on ``dedup_key``; repeats count ``occurrences``."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(index=True, unique=True)
    #: check_failed | file_quarantined | rows_quarantined | columns_dropped | feed_overdue | ...
    kind: str = Field(index=True)
    severity: str = Field(index=True)  # ERROR | WARN | INFO
    subject: str
    body: str
    next_step: str
    partner_id: str | None = Field(default=None, index=True)
    feed: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    occurrences: int = 1
    #: per channel: sent | failed | not_configured
    email_status: str = "not_configured"
    webhook_status: str = "not_configured"
    delivery_error: str | None = None
    sent_at: datetime | None = None
