"""The ingest steps as plain functions: parse one archived delivery, stage one feed.

The Dagster assets in ``defs/ingest`` call these; so does the benchmark's plain-Python
baseline. Both keep the ledger (``deliveries``) and the quarantine table current, and both
are idempotent: running a step again replaces what it recorded before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlmodel import col, delete, select

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.landing import quarantine_file, read_archived
from homicide_assets.lib.parsing import DeliveryRefused, empty_raw_frame, parse_delivery, parse_delivery_name
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.settings import DataDir, code_fingerprint
from homicide_assets.lib.staging import (
    ROW_ID,
    StageResult,
    duplicate_keys_in_file,
    newest_per_record,
    rows_read,
    sort_rejects,
    stage_feed,
    stage_rows,
)
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
    ids = [d.delivery_id for d in stageable_deliveries(data_dir, feed)]
    missing = [i for i in ids if not data_dir.warehouse_file(["raw", feed], i).exists()]
    return _read_partitions(data_dir, feed, [i for i in ids if i not in set(missing)]), missing


def _read_partitions(data_dir: DataDir, feed: str, delivery_ids: list[str]) -> pl.DataFrame:
    frames = [pl.read_parquet(data_dir.warehouse_file(["raw", feed], i)) for i in delivery_ids]
    return pl.concat(frames, how="vertical_relaxed") if frames else empty_raw_frame(feed)


# ---------------------------------------------------------------------------------------
# Staging held between builds: a new delivery stages its own rows, not the feed's history.
# ---------------------------------------------------------------------------------------

#: Bump when the held staging files change shape.
STAGING_STATE_FORMAT = 1


@dataclass
class StagingState:
    """What staging holds per feed between builds (``models/staging/<feed>/``).

    The frames of the last staging: ``staged`` (the table), every reject, the superseded rows
    and the rows read per delivery; ``meta``: what they were staged with (the code fingerprint,
    digests of the pseudonym key and of the partners' own codes, whether report ids were
    given), when (``now``), and each staged delivery's raw partition (size and modification
    time; null when it was missing).
    """

    staged: pl.DataFrame
    rejects: pl.DataFrame
    superseded: pl.DataFrame
    rows_read: pl.DataFrame
    meta: dict[str, Any]

    FRAMES = ("staged", "rejects", "superseded", "rows_read")

    def save(self, folder: Path) -> None:
        """Replace ``folder`` with this state: written beside it, then renamed into place, so a
        crash leaves the old state or the new one (or none: the next staging is whole)."""
        from homicide_assets.lib.held import save_frames

        save_frames(folder, {name: getattr(self, name) for name in self.FRAMES}, self.meta)

    @classmethod
    def load(cls, folder: Path) -> StagingState | None:
        """The state in ``folder``; None when there is none, it cannot be read or is of another format."""
        from homicide_assets.lib.held import load_frames

        got = load_frames(folder, cls.FRAMES, STAGING_STATE_FORMAT)
        return None if got is None else cls(**got[0], meta=got[1])


def staging_state_folder(data_dir: DataDir, feed: str) -> Path:
    return data_dir.models / "staging" / feed


def _staged_with(feed: str, key: bytes, registry: Registry | None, known_given: bool) -> dict[str, Any]:
    """What a staging depends on besides its rows, the time and the report ids (digests: the
    key itself is never written)."""
    import hashlib
    import hmac
    import json

    own_codes = sorted([p.partner_id, p.org_code or ""] for p in registry.partners.values()) if registry else None
    return {
        "format": STAGING_STATE_FORMAT, "feed": feed, "code": code_fingerprint(),
        "key": hmac.new(key, b"homicide_assets staging state", hashlib.sha256).hexdigest(),
        "own_codes": hashlib.sha256(json.dumps(own_codes).encode()).hexdigest(),
        "known_report_ids": known_given,
    }


def raw_partitions(data_dir: DataDir, feed: str) -> dict[str, list[int] | None]:
    """Per stageable delivery (in staging order): its raw partition's size and modification
    time, or None when it has none yet."""
    out: dict[str, list[int] | None] = {}
    for d in stageable_deliveries(data_dir, feed):
        try:
            st = data_dir.warehouse_file(["raw", feed], d.delivery_id).stat()
            out[d.delivery_id] = [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            out[d.delivery_id] = None
    return out


def _whole_because(held: StagingState | None, staged_with: dict, now: datetime,
                   partitions: dict[str, list[int] | None], known_report_ids: pl.Series | None) -> str | None:
    """Why the feed must be staged whole (None when the held staging can be carried forward).

    Carried forward, every held row keeps its outcome: a row that broke no rule depends on
    itself, the key, the partners' codes and the code (held unchanged), on the clock only
    through "not in the future" (which a later time cannot break) and on the report ids of
    death_reports (each held one must still be staged). Held rejected rows are staged again.
    """
    if held is None:
        return "nothing held"
    for name, value in staged_with.items():
        if held.meta.get(name) != value:
            return f"{name.replace('_', ' ')} changed since the held staging"
    if _utc(now) < _utc(datetime.fromisoformat(held.meta["now"])):
        return "the clock is earlier than the held staging's"
    for delivery_id, stat in held.meta["deliveries"].items():
        if delivery_id not in partitions:
            return f"delivery {delivery_id} is no longer staged"
        if stat is not None and partitions[delivery_id] != stat:
            return f"the raw rows of delivery {delivery_id} were written again"
    if known_report_ids is not None and held.staged.height and not (
            held.staged.get_column("report_id").is_in(known_report_ids.implode()).all()):
        return "a report id the held rows refer to is no longer staged in death_reports"
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def stage_feed_held(
    data_dir: DataDir, feed: str, key: bytes, registry: Registry | None,
    known_report_ids: pl.Series | None = None, now: datetime | None = None,
) -> tuple[StageResult, pl.DataFrame, list[str]]:
    """:func:`lib.staging.stage_feed` over every stageable delivery of ``feed``, carried forward
    from the held staging when it can be (:func:`_whole_because`): the rows of deliveries new
    since (or whose raw partition appeared since) and the held rejected rows are staged, and
    the newest extract wins per record key over them and the held table. The result equals a
    whole staging. Returns it, the rows read per delivery and the deliveries without a raw
    partition; holds the new state."""
    now = now or datetime.now(UTC)
    known = None if known_report_ids is None else pl.Series("report_id", known_report_ids, dtype=pl.String)
    folder = staging_state_folder(data_dir, feed)
    partitions = raw_partitions(data_dir, feed)
    missing = [i for i, stat in partitions.items() if stat is None]
    staged_with = _staged_with(feed, key, registry, known is not None)
    held = StagingState.load(folder)
    why = _whole_because(held, staged_with, now, partitions, known)
    if why is None:
        new_ids = [i for i, stat in partitions.items() if stat is not None and held.meta["deliveries"].get(i) is None]
        again = held.rejects.select(ROW_ID).unique()
        again_ids = sorted(set(again.get_column("_delivery_id").to_list()))
        new_raw = _read_partitions(data_dir, feed, new_ids)
        fresh = pl.concat([new_raw, _read_partitions(data_dir, feed, again_ids).join(again, on=ROW_ID, how="semi")],
                          how="vertical_relaxed")
        good, rejects = stage_rows(feed, fresh, key, registry, known, now)
        if good.schema != held.staged.schema:
            why = "the staged table changed shape"
    if why is None:
        staged, superseded = newest_per_record(pl.concat([held.staged, good]))
        result = StageResult(
            staged=staged,
            rejects=sort_rejects(pl.concat([held.rejects.join(again, on=ROW_ID, how="anti"), rejects])),
            superseded=pl.concat([held.superseded, superseded]),
            how=f"held: {len(new_ids)} new deliveries and {again.height} held rejected rows staged",
        )
        read = pl.concat([held.rows_read, rows_read(new_raw)])
    else:
        raw = _read_partitions(data_dir, feed, [i for i, stat in partitions.items() if stat is not None])
        result = stage_feed(feed, raw, key, registry, known_report_ids=known, now=now)
        result.how = f"whole: {why}"
        read = rows_read(raw)
    result.deliveries = tuple(i for i, stat in partitions.items() if stat is not None)
    StagingState(result.staged, result.rejects, result.superseded, read,
                 {**staged_with, "now": now.isoformat(), "deliveries": partitions}).save(folder)
    return result, read, missing


def stage_and_record(
    data_dir: DataDir, feed: str, key: bytes, registry: Registry,
    known_report_ids: pl.Series | None = None, now: datetime | None = None,
) -> tuple[StageResult, pl.DataFrame, list[str]]:
    """Stage every parsed delivery of ``feed``; record row quarantine and ledger counts.

    Returns the stage result, the per-delivery counts and any deliveries whose raw
    partition is missing (received but not yet parsed). For a caller that writes the staged
    table itself afterwards (the ``staged`` assets), :func:`stage_and_quarantine` then, once
    the table is written, :func:`record_staged`: the ledger never says a delivery is staged
    in a table that was not written.
    """
    result, counts, missing = stage_and_quarantine(data_dir, feed, key, registry, known_report_ids, now)
    record_staged(data_dir, feed, counts, result.deliveries)
    return result, counts, missing


def stage_and_quarantine(
    data_dir: DataDir, feed: str, key: bytes, registry: Registry,
    known_report_ids: pl.Series | None = None, now: datetime | None = None,
) -> tuple[StageResult, pl.DataFrame, list[str]]:
    """Stage every parsed delivery of ``feed`` and record its row quarantine (the file under
    ``quarantine/rows/`` and one ``QuarantineEntry`` per rejected row); the ledger is left to
    :func:`record_staged`. Returns as :func:`stage_and_record`."""
    result, read, missing = stage_feed_held(data_dir, feed, key, registry, known_report_ids, now)
    counts = result.counts(read)
    rejects = result.rejects
    rows_folder = data_dir.quarantine / "rows"
    rows_folder.mkdir(parents=True, exist_ok=True)
    rejects.write_parquet(rows_folder / f"{feed}.parquet")
    with session_scope(data_dir.database_url()) as s:
        s.exec(delete(QuarantineEntry).where(QuarantineEntry.kind == "row", QuarantineEntry.feed == feed))
        for r in rejects.iter_rows(named=True):
            s.add(QuarantineEntry(
                kind="row", delivery_id=r["_delivery_id"], partner_id=r["_partner_id"], feed=feed,
                file_name=r["_source_file"], line=r["_source_line"], column=r["column"], rule=r["rule"],
                value=r["value"], reason=r["reason"], quarantine_path=f"quarantine/rows/{feed}.parquet",
            ))
    return result, counts, missing


def record_staged(data_dir: DataDir, feed: str, counts: pl.DataFrame, deliveries: Sequence[str]) -> None:
    """Mark ``deliveries`` (those staged: ``StageResult.deliveries``) staged in the ledger, with
    their row counts (``counts`` from :func:`stage_and_quarantine`): call once the staged table
    is written. A delivery parsed since the staging read the raw partitions stays ``parsed``
    for the next run to stage."""
    by_id = {r["_delivery_id"]: r for r in counts.iter_rows(named=True)}
    staged = set(deliveries)  # matched here, not as SQL parameters: a feed can have thousands
    with session_scope(data_dir.database_url()) as s:
        for d in s.exec(select(Delivery).where(Delivery.feed == feed, col(Delivery.status).in_(STAGEABLE))):
            if d.delivery_id not in staged:
                continue
            # a delivery with no rows (a header-only "nothing new" extract) is staged with zeros
            c = by_id.get(d.delivery_id) or {"rows_staged": 0, "rows_quarantined": 0, "rows_superseded": 0}
            d.rows_staged, d.rows_quarantined, d.rows_superseded = (
                c["rows_staged"], c["rows_quarantined"], c["rows_superseded"])
            d.status, d.staged_at = "staged", utcnow()
            s.add(d)
