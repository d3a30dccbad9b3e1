"""Series tables: every linked series the platform has flagged, and analysts' decisions on them.

``series_seen`` is the platform's memory between runs: which series it has shown before and at
what size, so an alert goes out when a series first appears or when it grows, never twice
for the same state. ``series_decisions`` is where an analyst records what the series is
(``under_review``, ``linked`` when confirmed, ``not_linked`` when dismissed); a dismissed
series that grows is alerted again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


#: What an analyst can decide about a series.
SERIES_DECISIONS = ("under_review", "linked", "not_linked")


class SeenSeries(SQLModel, table=True):
    """A series the platform has flagged, as last seen (one row per series id)."""

    __tablename__ = "series_seen"

    id: int | None = Field(default=None, primary_key=True)
    series_id: str = Field(index=True, unique=True)
    #: members' death ids in date order, ``;`` separated
    death_ids: str
    size: int
    score: float
    #: ``;`` separated kinds (outputs.md list)
    kinds: str
    first_flagged_on: date | None = None
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    #: when the series last gained a member
    grown_at: datetime | None = None
    #: the size at which analysts were last alerted
    alerted_size: int = 0
    #: new | grown | unchanged | gone (not found in the latest run)
    status: str = Field(default="new", index=True)


class SeriesDecision(SQLModel, table=True):
    """An analyst's decision on a series (the newest per series is the current one)."""

    __tablename__ = "series_decisions"

    id: int | None = Field(default=None, primary_key=True)
    series_id: str = Field(index=True)
    decision: str = Field(index=True)  # one of SERIES_DECISIONS
    decided_by: str
    decided_at: datetime = Field(default_factory=utcnow)
    #: the series' size when decided: a dismissed series that grows beyond it is alerted again
    size_at_decision: int = 0
    note: str | None = None
