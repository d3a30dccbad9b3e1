"""Taking files from the landing folder: complete-file detection, archiving, the ledger.

The delivery sensor and ``homicide-assets build`` both call :func:`look` and
:func:`receive`, so a file is taken the same way whichever path runs. A file is taken only
when its size and modification time are unchanged across two looks; names a partner's
tools use while writing (``*.part``, ``~$*``, dot-files) are never taken. A taken file is
copied byte for byte to ``archive/<partner>/<sha256>`` (read-only), verified, recorded in
the ledger, and only then removed from landing. Identical bytes received again are
recorded as a duplicate receipt and change nothing else. A file whose name breaks the
rules, or that names another partner's feed, or a feed the partner's agreement does not
permit, is moved to ``quarantine/files/`` with a machine-readable reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from homicide_assets.lib.parsing import DeliveryName, DeliveryRefused, is_temporary_name, parse_delivery_name
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt

# cursor: {partner_folder: {file_name: [size, mtime_ns]}} of files seen once, not yet taken
Cursor = dict[str, dict[str, list[int]]]


@dataclass(frozen=True)
class Candidate:
    """A file in landing that was the same size and age at two looks."""

    partner_folder: str
    file_name: str
    path: Path


@dataclass
class LookResult:
    ready: list[Candidate] = field(default_factory=list)
    cursor: Cursor = field(default_factory=dict)
    pending: int = 0  # files seen for the first time or still changing


@dataclass
class ReceiveOutcome:
    accepted: list[Delivery] = field(default_factory=list)
    duplicates: list[Receipt] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)


def look(data_dir: DataDir, cursor: Cursor) -> LookResult:
    """One look at landing: files unchanged since the previous look (``cursor``) are ready."""
    result = LookResult()
    landing = data_dir.landing
    if not landing.is_dir():
        return result
    for entry in sorted(os.scandir(landing), key=lambda e: e.name):
        if entry.name.startswith(".") or is_temporary_name(entry.name):
            continue
        folder_cursor = cursor.get(entry.name, {})
        new_folder: dict[str, list[int]] = {}
        if entry.is_dir(follow_symlinks=False):
            files = sorted(os.scandir(entry.path), key=lambda e: e.name)
        else:
            # a file dropped straight into landing/ (not in a partner folder)
            files = [entry]
        for f in files:
            if f.name.startswith(".") or is_temporary_name(f.name):
                continue
            if f.is_dir(follow_symlinks=False):
                continue  # nested folders are not deliveries; left alone
            st = f.stat(follow_symlinks=False)
            sig = [st.st_size, st.st_mtime_ns]
            folder = entry.name if entry.is_dir(follow_symlinks=False) else ""
            if folder_cursor.get(f.name) == sig:
                result.ready.append(Candidate(folder, f.name, Path(f.path)))
            else:
                new_folder[f.name] = sig
                result.pending += 1
        if new_folder:
            result.cursor[entry.name] = new_folder
    return result


def sha256_of(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def delivery_id_for(name: DeliveryName, sha256: str) -> str:
    """The delivery id and Dagster partition key: file stem plus a content prefix."""
    return f"{name.stem}__{sha256[:10]}"


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:180] or "unnamed"


def quarantine_file(
    data_dir: DataDir, source: Path, partner_folder: str, file_name: str, rule: str, reason: str,
    sha256: str, delivery_id: str | None = None, partner_id: str | None = None, feed: str | None = None,
    move: bool = True, line: int | None = None,
) -> QuarantineEntry:
    """Move (or copy) a refused file to ``quarantine/files/`` beside a JSON reason."""
    folder = data_dir.quarantine / "files" / _safe_name(partner_folder or "_landing_root")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha256[:16]}__{_safe_name(file_name)}"
    if not data_dir.contains(target):  # pragma: no cover - _safe_name already prevents it
        raise RuntimeError(f"refusing to write outside the data directory: {target}")
    if not target.exists():
        if move:
            shutil.move(str(source), target)
        else:
            shutil.copyfile(source, target)
    elif move:
        source.unlink()
    reason_doc = {
        "file_name": file_name, "partner_folder": partner_folder, "sha256": sha256, "rule": rule,
        "reason": reason, "line": line, "delivery_id": delivery_id,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    target.with_name(target.name + ".reason.json").write_text(json.dumps(reason_doc, indent=2), encoding="utf-8")
    return QuarantineEntry(
        kind="file", delivery_id=delivery_id, partner_id=partner_id, feed=feed, file_name=file_name,
        line=line, rule=rule, reason=reason, quarantine_path=str(target.relative_to(data_dir.root)),
    )


def check_agreement(registry: Registry, name: DeliveryName, partner_folder: str, on: date) -> None:
    """Raise :class:`DeliveryRefused` unless this partner may send this feed now."""
    if name.partner_id != partner_folder:
        raise DeliveryRefused(
            "wrong_partner_folder",
            f"file names partner {name.partner_id!r} but was dropped in landing/{partner_folder or '.'}/",
        )
    partner = registry.partner(name.partner_id)
    if partner is None:
        raise DeliveryRefused("unknown_partner", f"partner {name.partner_id!r} is not in the registry")
    agreement = registry.agreement(name.partner_id)
    if agreement is None:
        raise DeliveryRefused("no_agreement", f"partner {name.partner_id!r} has no data sharing agreement")
    if name.feed not in agreement.permitted_feeds:
        raise DeliveryRefused(
            "feed_not_permitted",
            f"agreement {agreement.agreement_id} does not permit {name.partner_id!r} to send {name.feed}",
        )
    for label, day in (("extract date", name.extract_date), ("date received", on)):
        if not agreement.in_force_on(day):
            raise DeliveryRefused(
                "agreement_expired",
                f"agreement {agreement.agreement_id} ({agreement.signed_on}..{agreement.expires_on}) "
                f"is not in force on the {label} {day}",
            )


def receive(data_dir: DataDir, registry: Registry, candidates: list[Candidate],
            today: date | None = None) -> ReceiveOutcome:
    """Archive, verify and record each ready file; quarantine what is refused by name."""
    today = today or datetime.now(UTC).date()
    outcome = ReceiveOutcome()
    url = data_dir.database_url()
    for cand in candidates:
        path = cand.path
        if not data_dir.contains(path) or path.is_symlink():
            # never follow a link out of the data directory; leave a record and move the link aside
            entry = quarantine_file(data_dir, path, cand.partner_folder, cand.file_name, "symlink",
                                    f"{cand.file_name}: symbolic links are not accepted", sha256="0" * 64)
            with session_scope(url) as s:
                s.add(entry)
                s.add(Receipt(file_name=cand.file_name, partner_folder=cand.partner_folder,
                              outcome="quarantined", reason=entry.reason))
            outcome.quarantined.append(entry)
            continue
        try:
            sha, size = sha256_of(path)
        except FileNotFoundError:
            continue  # taken by a concurrent receiver (another sensor tick or build) since the look
        try:
            name = parse_delivery_name(cand.file_name)
            check_agreement(registry, name, cand.partner_folder, today)
        except DeliveryRefused as refused:
            entry = quarantine_file(data_dir, path, cand.partner_folder, cand.file_name, refused.rule,
                                    refused.reason, sha)
            with session_scope(url) as s:
                s.add(entry)
                s.add(Receipt(file_name=cand.file_name, partner_folder=cand.partner_folder, sha256=sha,
                              size_bytes=size, outcome="quarantined", reason=refused.reason))
            outcome.quarantined.append(entry)
            continue
        delivery_id = delivery_id_for(name, sha)
        with session_scope(url) as s:
            same_name = list(s.exec(select(Delivery).where(
                Delivery.partner_id == name.partner_id, Delivery.feed == name.feed,
                Delivery.extract_date == name.extract_date, Delivery.seq == name.seq)))
        identical = [d for d in same_name if d.sha256 == sha]
        if identical:
            existing = identical[0]
            receipt = Receipt(file_name=cand.file_name, partner_folder=cand.partner_folder, sha256=sha,
                              size_bytes=size, outcome="duplicate", delivery_id=existing.delivery_id,
                              reason=f"identical bytes to {existing.file_name} received {existing.received_at:%Y-%m-%d %H:%M}")
            with session_scope(url) as s:
                s.add(receipt)
            path.unlink(missing_ok=True)
            outcome.duplicates.append(receipt)
            continue
        if same_name:
            reason = (f"{cand.file_name}: an extract with this name was already received with other content; "
                      "a corrected extract needs a new date or __<seq>")
            entry = quarantine_file(data_dir, path, cand.partner_folder, cand.file_name, "name_reused", reason, sha,
                                    partner_id=name.partner_id, feed=name.feed)
            with session_scope(url) as s:
                s.add(entry)
                s.add(Receipt(file_name=cand.file_name, partner_folder=cand.partner_folder, sha256=sha,
                              size_bytes=size, outcome="quarantined", reason=reason))
            outcome.quarantined.append(entry)
            continue
        try:
            archive_path = _archive(data_dir, path, name.partner_id, sha)
        except FileNotFoundError:
            # gone between hashing and archiving: a concurrent receiver took it (or the partner withdrew it)
            receipt = _lost_race(url, cand, sha, size, delivery_id)
            if receipt is not None:
                outcome.duplicates.append(receipt)
            continue
        delivery = Delivery(
            delivery_id=delivery_id, sha256=sha, partner_id=name.partner_id, feed=name.feed,
            file_name=cand.file_name, extension=name.extension, extract_date=name.extract_date, seq=name.seq,
            size_bytes=size, archive_path=str(archive_path.relative_to(data_dir.root)), status="received",
        )
        try:
            with session_scope(url) as s:
                s.add(delivery)
                s.add(
                    Receipt(
                        file_name=cand.file_name,
                        partner_folder=cand.partner_folder,
                        sha256=sha,
                        size_bytes=size,
                        outcome="accepted",
                        delivery_id=delivery.delivery_id,
                    )
                )
        except IntegrityError:
            # the same extract was recorded by a concurrent receiver between our look-up and insert:
            # the unique delivery_id makes this copy a duplicate receipt, not a second delivery
            receipt = _lost_race(url, cand, sha, size, delivery_id)
            if receipt is None:
                raise
            path.unlink(missing_ok=True)
            outcome.duplicates.append(receipt)
            continue
        path.unlink(missing_ok=True)
        outcome.accepted.append(delivery)
    return outcome


def _lost_race(url: str, cand: Candidate, sha: str, size: int, delivery_id: str) -> Receipt | None:
    """Record a duplicate receipt when another receiver recorded ``delivery_id`` first; else None."""
    with session_scope(url) as s:
        winner = s.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).first()
        if winner is None:
            return None
        receipt = Receipt(
            file_name=cand.file_name,
            partner_folder=cand.partner_folder,
            sha256=sha,
            size_bytes=size,
            outcome="duplicate",
            delivery_id=winner.delivery_id,
            reason=f"identical bytes to {winner.file_name}, received at the same time by another receiver",
        )
        s.add(receipt)
    return receipt


def _archive(data_dir: DataDir, source: Path, partner_id: str, sha: str) -> Path:
    """Copy to ``archive/<partner>/<sha256>``, verify the copy, make it read-only."""
    folder = data_dir.archive / partner_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sha
    if not target.exists():
        # a name of its own, so two receivers archiving the same bytes at once never share a file
        tmp = folder / f".{sha}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            shutil.copyfile(source, tmp)
            copied, _ = sha256_of(tmp)
            if copied != sha:
                raise OSError(f"archive copy of {source.name} does not match its sha256; the file was left in landing")
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)  # a copy that failed half-way (disk full, say) leaves nothing behind
    return target


def read_archived(data_dir: DataDir, delivery: Delivery) -> bytes:
    """The archived bytes of a delivery, checked against the recorded sha256."""
    data = (data_dir.root / delivery.archive_path).read_bytes()
    if hashlib.sha256(data).hexdigest() != delivery.sha256:
        raise OSError(f"archive of {delivery.file_name} no longer matches its sha256")
    return data
