"""The ingest steps as plain functions: parse one archived delivery, stage one feed.

The Dagster assets in ``defs/ingest`` call these; so does the benchmark's plain-Python
baseline. Both keep the ledger (``deliveries``) and the quarantine table current, and both
are idempotent: running a step again replaces what it recorded before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
from sqlmodel import col, delete, select

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.landing import quarantine_file, read_archived
from homicide_assets.lib.parsing import DeliveryRefused, empty_raw_frame, parse_delivery, parse_delivery_name
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.staging import StageResult, duplicate_keys_in_file, stage_feed
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, utcnow

#: Ledger statuses of deliveries whose rows take part in staging.
STAGEABLE = ("parsed", "staged")


@dataclass
class ParseOutcome:
    delivery_id: str
    frame: pl.DataFrame
    status: str  # parsed | quarantined
    rule: str | None = None
    reason: str | None = None
    dropped_columns: list[str] = field(default_factory=list)


def parse_archived_delivery(data_dir: DataDir, delivery_id: str) -> ParseOutcome:
    """Read a received delivery from the archive into text rows; refuse it whole if it must be."""
    url = data_dir.database_url()
    with session_scope(url) as s:
        delivery = s.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).one()
        s.exec(delete(QuarantineEntry).where(QuarantineEntry.delivery_id == delivery_id,
                                             QuarantineEntry.kind == "file"))
    name = parse_delivery_name(delivery.file_name)
    feed = name.feed
    data = read_archived(data_dir, delivery)
    try:
        parsed = parse_delivery(data, name, delivery.file_name)
        dupes = duplicate_keys_in_file(feed, parsed.frame)
        if dupes.height:
            lines = ", ".join(str(x) for x in dupes.get_column("_source_line").head(10).to_list())
            raise DeliveryRefused(
                "duplicate_keys",
                f"{delivery.file_name}: key ({', '.join(FEEDS[feed].key)}) repeats within the file at lines {lines}",
                line=int(dupes.get_column("_source_line")[0]),
            )
    except DeliveryRefused as refused:
        entry = quarantine_file(
            data_dir, data_dir.root / delivery.archive_path, delivery.partner_id, delivery.file_name,
            refused.rule, refused.reason, delivery.sha256, delivery_id=delivery_id,
            partner_id=delivery.partner_id, feed=feed, move=False, line=refused.line,
        )
        with session_scope(url) as s:
            row = s.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).one()
            row.status, row.reason, row.parsed_at = "quarantined", refused.reason, utcnow()
            row.rows_read = row.rows_staged = row.rows_superseded = 0
            row.rows_quarantined = 0
            s.add(row)
            s.add(entry)
        return ParseOutcome(delivery_id, empty_raw_frame(feed), "quarantined", refused.rule, refused.reason)
    frame = parsed.frame.with_columns(
        pl.lit(delivery_id).alias("_delivery_id"),
        pl.lit(delivery.partner_id).alias("_partner_id"),
        pl.lit(delivery.file_name).alias("_source_file"),
        pl.lit(delivery.extract_date, dtype=pl.Date).alias("_extract_date"),
        pl.lit(delivery.seq, dtype=pl.Int64).alias("_seq"),
    ).select(empty_raw_frame(feed).columns)
    with session_scope(url) as s:
        row = s.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).one()
        row.status = "parsed" if row.status not in STAGEABLE else row.status
        row.reason = None
        row.rows_read = frame.height
        row.columns_dropped = ";".join(parsed.dropped_columns) or None
        row.parsed_at = utcnow()
        s.add(row)
    return ParseOutcome(delivery_id, frame, "parsed", dropped_columns=parsed.dropped_columns)


def stageable_deliveries(data_dir: DataDir, feed: str) -> list[Delivery]:
    with session_scope(data_dir.database_url()) as s:
        return list(
            s.exec(select(Delivery).where(Delivery.feed == feed, col(Delivery.status).in_(STAGEABLE))
                   .order_by(Delivery.extract_date, Delivery.seq, Delivery.delivery_id))
        )


def read_raw(data_dir: DataDir, feed: str) -> tuple[pl.DataFrame, list[str]]:
    """All parsed raw rows of a feed, and the delivery ids whose raw partition is missing."""
    frames, missing = [], []
    for d in stageable_deliveries(data_dir, feed):
        path = data_dir.warehouse_file(["raw", feed], d.delivery_id)
        if path.exists():
            frames.append(pl.read_parquet(path))
        else:
            missing.append(d.delivery_id)
    raw = pl.concat(frames, how="vertical_relaxed") if frames else empty_raw_frame(feed)
    return raw, missing


def stage_and_record(
    data_dir: DataDir, feed: str, key: bytes, registry: Registry,
    known_report_ids: pl.Series | None = None, now: datetime | None = None,
) -> tuple[StageResult, pl.DataFrame, list[str]]:
    """Stage every parsed delivery of ``feed``; record row quarantine and ledger counts.

    Returns the stage result, the per-delivery counts and any deliveries whose raw
    partition is missing (received but not yet parsed).
    """
    raw, missing = read_raw(data_dir, feed)
    result = stage_feed(feed, raw, key, registry, known_report_ids=known_report_ids,
                        now=now or datetime.now(UTC))
    counts = result.counts_by_delivery(raw)
    rejects = result.rejects
    rows_folder = data_dir.quarantine / "rows"
    rows_folder.mkdir(parents=True, exist_ok=True)
    rejects.write_parquet(rows_folder / f"{feed}.parquet")
    url = data_dir.database_url()
    with session_scope(url) as s:
        s.exec(delete(QuarantineEntry).where(QuarantineEntry.kind == "row", QuarantineEntry.feed == feed))
        for r in rejects.iter_rows(named=True):
            s.add(QuarantineEntry(
                kind="row", delivery_id=r["_delivery_id"], partner_id=r["_partner_id"], feed=feed,
                file_name=r["_source_file"], line=r["_source_line"], column=r["column"], rule=r["rule"],
                value=r["value"], reason=r["reason"], quarantine_path=f"quarantine/rows/{feed}.parquet",
            ))
        by_id = {r["_delivery_id"]: r for r in counts.iter_rows(named=True)}
        for d in s.exec(select(Delivery).where(Delivery.feed == feed, col(Delivery.status).in_(STAGEABLE))):
            # a delivery with no rows (a header-only "nothing new" extract) is staged with zeros
            c = by_id.get(d.delivery_id) or {"rows_staged": 0, "rows_quarantined": 0, "rows_superseded": 0}
            d.rows_staged, d.rows_quarantined, d.rows_superseded = (
                c["rows_staged"], c["rows_quarantined"], c["rows_superseded"])
            d.status, d.staged_at = "staged", utcnow()
            s.add(d)
    return result, counts, missing
