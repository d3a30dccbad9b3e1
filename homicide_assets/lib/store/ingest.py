"""Ledger tables: every file received, every receipt of it, every refusal."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Delivery(SQLModel, table=True):
    """One distinct delivered file (by content): the unit of a raw partition."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(index=True, unique=True)  # also the Dagster partition key
    #: the same bytes may arrive as two extracts (e.g. two header-only files): not unique
    sha256: str = Field(index=True)
    partner_id: str = Field(index=True)
    feed: str = Field(index=True)
    file_name: str
    extension: str
    extract_date: date
    seq: int = 0
    size_bytes: int
    archive_path: str
    received_at: datetime = Field(default_factory=utcnow)
    #: received -> parsed -> staged; or quarantined (whole file refused)
    status: str = Field(default="received", index=True)
    reason: str | None = None
    rows_read: int | None = None
    rows_staged: int | None = None
    rows_quarantined: int | None = None
    rows_superseded: int | None = None
    columns_dropped: str | None = None  # ';' separated names dropped under the agreement
    parsed_at: datetime | None = None
    staged_at: datetime | None = None


class Receipt(SQLModel, table=True):
    """Every time a file was taken from landing, including identical re-deliveries."""

    __tablename__ = "receipts"

    id: int | None = Field(default=None, primary_key=True)
    file_name: str
    partner_folder: str
    sha256: str | None = Field(default=None, index=True)
    size_bytes: int | None = None
    received_at: datetime = Field(default_factory=utcnow)
    #: accepted | duplicate | quarantined
    outcome: str
    delivery_id: str | None = Field(default=None, index=True)
    reason: str | None = None


class QuarantineEntry(SQLModel, table=True):
    """A refused file (``line`` null) or row, with the rule it broke."""

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # file | row
    delivery_id: str | None = Field(default=None, index=True)
    partner_id: str | None = Field(default=None, index=True)
    feed: str | None = None
    file_name: str
    line: int | None = None
    column: str | None = None
    rule: str
    value: str | None = None  # personal values are pseudonymised before they get here
    reason: str
    quarantine_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
