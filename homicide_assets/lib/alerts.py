"""Alerts to analysts: stored in the ``alerts`` table, sent by SMTP email and/or a webhook.

:func:`raise_alert` de-duplicates on a key (a repeat only counts ``occurrences``), stores the
alert, and sends it through every configured channel; a channel that fails is recorded
against the alert (never silent) and retried the next time the same alert is raised or by
:func:`retry_unsent`. The channel comes from the environment (:meth:`AlertChannel.from_env`):

- ``HOMICIDE_ALERT_SMTP_HOST``, ``HOMICIDE_ALERT_SMTP_PORT`` (25), ``HOMICIDE_ALERT_SMTP_FROM``,
  ``HOMICIDE_ALERT_SMTP_TO`` (comma separated), optionally ``HOMICIDE_ALERT_SMTP_STARTTLS``
  (``1``), ``HOMICIDE_ALERT_SMTP_USER`` and ``HOMICIDE_ALERT_SMTP_PASSWORD``;
- ``HOMICIDE_ALERT_WEBHOOK_URL``: a JSON POST (``text`` for chat tools, and the fields).

Alerts carry no personal data: the composers below build subjects and bodies from feed,
partner, rule and count alone, and :func:`scrub` redacts anything shaped like an NHS number,
a postcode, a phone number or an e-mail address that reaches a body anyway.

No Dagster import here; ``defs/quality`` holds the sensors and the resource.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import smtplib
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from homicide_assets.lib.feeds import FILE_NAME_PATTERN
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.alerts import Alert

log = logging.getLogger(__name__)

SEVERITIES = ("ERROR", "WARN", "INFO")
SUBJECT_PREFIX = "[homicide-assets]"
ENV_PREFIX = "HOMICIDE_ALERT_"


@dataclass(frozen=True)
class AlertChannel:
    """Where alerts go. Unset parts are simply not used; with none set, alerts are only stored."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "homicide-assets@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertChannel:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        return cls(
            smtp_host=get("SMTP_HOST"),
            smtp_port=int(get("SMTP_PORT") or 25),
            smtp_from=get("SMTP_FROM") or cls.smtp_from,
            smtp_to=tuple(a.strip() for a in (get("SMTP_TO") or "").split(",") if a.strip()),
            smtp_starttls=(get("SMTP_STARTTLS") or "").lower() in ("1", "true", "yes"),
            smtp_user=get("SMTP_USER"),
            smtp_password=get("SMTP_PASSWORD"),
            webhook_url=get("WEBHOOK_URL"),
        )

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)

    def describe(self) -> str:
        parts = []
        if self.email_configured:
            parts.append(f"email via {self.smtp_host}:{self.smtp_port} to {len(self.smtp_to)} recipient(s)")
        if self.webhook_configured:
            parts.append("webhook")
        return ", ".join(parts) or "no channel configured (alerts table only)"


# ---------------------------------------------------------------------------------------
# No personal data
# ---------------------------------------------------------------------------------------

_REDACTIONS = (
    (re.compile(r"(?<![\w-])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\w-])"), "[number removed]"),  # NHS numbers
    (re.compile(r"(?<![\w-])(?:\+44\s?|0)7\d{3}\s?\d{3}\s?\d{3}(?![\w-])"), "[phone removed]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[e-mail removed]"),
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"), "[postcode removed]"),
)


def scrub(text: str) -> str:
    """``text`` with NHS-number, phone, e-mail and postcode shapes redacted."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def safe_file_name(file_name: str | None) -> str:
    """A delivery's file name when it follows the naming rule (no personal data by design),
    otherwise a neutral description: a badly named file may carry anything in its name."""
    if file_name and FILE_NAME_PATTERN.match(file_name):
        return file_name
    return "a file whose name breaks the naming rule (name withheld; see the quarantine entry)"


# ---------------------------------------------------------------------------------------
# Raising and sending
# ---------------------------------------------------------------------------------------

@dataclass
class AlertOutcome:
    """What :func:`raise_alert` did: the stored alert, whether it was new, what was sent now."""

    alert: Alert
    new: bool
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def raise_alert(
    url: str,
    kind: str,
    subject: str,
    body: str,
    dedup_key: str,
    severity: str = "WARN",
    next_step: str = "",
    channel: AlertChannel | None = None,
    partner_id: str | None = None,
    feed: str | None = None,
    count_repeat: bool = True,
) -> AlertOutcome:
    """Store and send an alert once per ``dedup_key``.

    A repeat of a stored alert increments its ``occurrences`` (unless ``count_repeat`` is
    false: a scan seeing the same fact again) and sends nothing, unless a channel failed
    last time: then that channel is tried again. ``channel`` defaults to
    :meth:`AlertChannel.from_env`.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    channel = channel if channel is not None else AlertChannel.from_env()
    subject, body, next_step = scrub(subject).replace("\n", " ")[:300], scrub(body), scrub(next_step)
    now = datetime.now(UTC)
    with session_scope(url) as s:
        existing = s.exec(select(Alert).where(Alert.dedup_key == dedup_key)).first()
        if existing is not None:
            if count_repeat:
                existing.occurrences += 1
                existing.last_seen_at = now
                s.add(existing)
            alert, new = existing, False
        else:
            alert = Alert(dedup_key=dedup_key, kind=kind, severity=severity, subject=subject, body=body,
                          next_step=next_step, partner_id=partner_id, feed=feed, created_at=now, last_seen_at=now)
            s.add(alert)
            try:
                s.flush()
                new = True
            except IntegrityError:  # raised concurrently by another process: count it there
                s.rollback()
                alert = s.exec(select(Alert).where(Alert.dedup_key == dedup_key)).one()
                alert.occurrences += 1
                alert.last_seen_at = now
                s.add(alert)
                new = False
        alert_id = alert.id
    outcome = AlertOutcome(alert=alert, new=new)
    if new or alert.email_status == "failed" or alert.webhook_status == "failed":
        _deliver(url, alert_id, channel, outcome, only_failed=not new)
    return outcome


def _deliver(url: str, alert_id: int, channel: AlertChannel, outcome: AlertOutcome, only_failed: bool) -> None:
    with session_scope(url) as s:
        alert = s.get(Alert, alert_id)
        errors = []
        for name, configured, status_attr, send in (
            ("email", channel.email_configured, "email_status", send_email),
            ("webhook", channel.webhook_configured, "webhook_status", send_webhook),
        ):
            status = getattr(alert, status_attr)
            if only_failed and status != "failed":
                continue
            if not configured:
                setattr(alert, status_attr, "not_configured")
                continue
            try:
                send(alert, channel)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised into a run
                setattr(alert, status_attr, "failed")
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                outcome.failed.append(name)
                log.warning("alert %s not sent by %s: %s", alert.dedup_key, name, exc)
            else:
                setattr(alert, status_attr, "sent")
                alert.sent_at = datetime.now(UTC)
                outcome.sent.append(name)
        alert.delivery_error = "; ".join(errors)[:2000] or None
        if not channel.email_configured and not channel.webhook_configured:
            log.warning("alert %s stored only: %s", alert.dedup_key, channel.describe())
        s.add(alert)
        outcome.alert = alert


def retry_unsent(url: str, channel: AlertChannel | None = None) -> list[AlertOutcome]:
    """Send again every stored alert whose email or webhook failed."""
    channel = channel if channel is not None else AlertChannel.from_env()
    with session_scope(url) as s:
        ids = [a.id for a in s.exec(select(Alert).where(
            (Alert.email_status == "failed") | (Alert.webhook_status == "failed")))]
    outcomes = []
    for alert_id in ids:
        with session_scope(url) as s:
            alert = s.get(Alert, alert_id)
        outcome = AlertOutcome(alert=alert, new=False)
        _deliver(url, alert_id, channel, outcome, only_failed=True)
        outcomes.append(outcome)
    return outcomes


def render_text(alert: Alert) -> str:
    """The plain-text message (e-mail body; webhook ``text``)."""
    lines = [f"{alert.severity}: {alert.subject}", "", alert.body.rstrip()]
    if alert.next_step:
        lines += ["", f"What to do next: {alert.next_step}"]
    where = ", ".join(p for p in (f"feed {alert.feed}" if alert.feed else "",
                                  f"partner {alert.partner_id}" if alert.partner_id else "") if p)
    lines += ["", f"Alert #{alert.id} ({alert.kind}, {where or 'platform'}), first raised "
                  f"{alert.created_at:%Y-%m-%d %H:%M} UTC; see the alerts table."]
    return "\n".join(lines) + "\n"


def send_email(alert: Alert, channel: AlertChannel) -> None:
    """One plain-text e-mail to every recipient in ``channel.smtp_to``."""
    msg = EmailMessage()
    msg["Subject"] = f"{SUBJECT_PREFIX} {alert.severity}: {alert.subject}"
    msg["From"] = channel.smtp_from
    msg["To"] = ", ".join(channel.smtp_to)
    msg["Message-ID"] = make_msgid(domain="homicide-assets.local")
    msg["X-Homicide-Alert-Kind"] = alert.kind
    msg["X-Homicide-Alert-Key"] = hashlib.sha256(alert.dedup_key.encode()).hexdigest()[:16]
    msg.set_content(render_text(alert))
    with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout_seconds) as smtp:
        if channel.smtp_starttls:
            smtp.starttls()
        if channel.smtp_user:
            smtp.login(channel.smtp_user, channel.smtp_password or "")
        smtp.send_message(msg)


def webhook_payload(alert: Alert) -> dict:
    return {
        "text": render_text(alert),
        "kind": alert.kind,
        "severity": alert.severity,
        "subject": alert.subject,
        "body": alert.body,
        "next_step": alert.next_step,
        "partner_id": alert.partner_id,
        "feed": alert.feed,
        "alert_id": alert.id,
        "created_at": alert.created_at.isoformat(timespec="seconds"),
    }


def send_webhook(alert: Alert, channel: AlertChannel) -> None:
    """POST the alert as JSON; any non-2xx answer is a failure."""
    data = json.dumps(webhook_payload(alert)).encode("utf-8")
    request = urllib.request.Request(channel.webhook_url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "homicide-assets-alerts/1"})
    with urllib.request.urlopen(request, timeout=channel.timeout_seconds) as response:  # noqa: S310 - configured URL
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def alerts(url: str, kind: str | None = None) -> list[Alert]:
    """Stored alerts, newest first (optionally of one kind)."""
    with session_scope(url) as s:
        query = select(Alert)
        if kind:
            query = query.where(Alert.kind == kind)
        return list(s.exec(query.order_by(Alert.id.desc())))


# ---------------------------------------------------------------------------------------
# The alerts the platform raises: subject, body, next step and de-duplication key
# ---------------------------------------------------------------------------------------

def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:12]


def alert_check_failed(
    url: str, feed: str, check_name: str, severity: str, failures: list[Mapping], rows: int,
    report_path: str | None, channel: AlertChannel | None = None, on: date | None = None,
) -> AlertOutcome:
    """A data quality check failed on ``staged/<feed>``. One alert per failing rule set per day.

    ``failures`` are :meth:`QualityReport.summary` ``failed`` entries: only rule ids, rule
    text, columns and counts are used, never the sample values.
    """
    on = on or datetime.now(UTC).date()
    blocking = severity == "ERROR"
    lines = [f"The {'blocking ' if blocking else ''}check {check_name} on staged/{feed} ({rows:,} rows) found "
             f"{len(failures)} rule{'s' if len(failures) != 1 else ''} broken:"]
    for f in failures[:25]:
        count = f.get("unexpected_count")
        what = f"{count:,} rows" if isinstance(count, int) else "could not be evaluated"
        lines.append(f"- {f['rule_id']}: {f['rule']} ({what})")
    if len(failures) > 25:
        lines.append(f"- ... and {len(failures) - 25} more (see the report)")
    if report_path:
        lines += ["", f"Validation report: {report_path}"]
    next_step = (
        "Everything downstream of this feed (linkage, series, report) is held until the contract holds. "
        "Open the validation report, find the rows by rule, then either correct the staging rule or ask the "
        "partner for a corrected extract; re-run refresh_all once fixed."
        if blocking else
        "Nothing is blocked. Review the report; if the pattern persists, raise it with the partner at the "
        "next data quality review."
    )
    return raise_alert(
        url, "check_failed",
        f"staged/{feed}: {len(failures)} {'contract' if blocking else 'advisory'} rule(s) broken",
        "\n".join(lines),
        f"check_failed:{feed}:{check_name}:{_digest(f['rule_id'] for f in failures)}:{on.isoformat()}",
        severity="ERROR" if blocking else "WARN", next_step=next_step, channel=channel, feed=feed,
    )


def alert_file_quarantined(
    url: str, file_name: str, rule: str, reason: str, partner_id: str | None, feed: str | None,
    quarantine_path: str | None, channel: AlertChannel | None = None, count_repeat: bool = True,
) -> AlertOutcome:
    """A delivered file was refused whole."""
    shown = safe_file_name(file_name)
    named_safely = shown == file_name
    # a reason quotes the file name; for a badly named file say only which rule it broke
    reason_text = reason if named_safely else f"the file name breaks rule {rule}"
    body = (f"The delivery {shown} from partner {partner_id or 'unknown'} was quarantined whole "
            f"(rule: {rule}).\nReason: {reason_text}\n")
    if quarantine_path:
        kept = quarantine_path if named_safely else quarantine_path.rsplit("/", 1)[0] + "/"
        body += f"Kept at: {kept} (with a .reason.json beside it)\n"
    body += "None of its rows were loaded; nothing else changed."
    return raise_alert(
        url, "file_quarantined", f"{partner_id or 'landing'}: delivery refused ({rule})", body,
        f"file_quarantined:{partner_id or '-'}:{_digest([quarantine_path or file_name])}:{rule}", severity="ERROR",
        next_step=("Ask the partner for a corrected file (new extract date or __<seq>); re-delivering the same "
                   "bytes changes nothing. If the refusal is wrong, fix the rule and re-run the delivery."),
        channel=channel, partner_id=partner_id, feed=feed, count_repeat=count_repeat,
    )


def alert_rows_quarantined(
    url: str, delivery_id: str, file_name: str, partner_id: str, feed: str, rows_read: int | None,
    counts: Mapping[tuple[str, str], int], channel: AlertChannel | None = None, count_repeat: bool = True,
) -> AlertOutcome:
    """Some rows of a delivery broke the contract and were kept out of the staged table."""
    total_rules = sum(counts.values())
    lines = [f"{safe_file_name(file_name)} from {partner_id}: rows refused by rule (column: rule = rows):"]
    for (column, rule), n in sorted(counts.items(), key=lambda kv: -kv[1])[:20]:
        lines.append(f"- {column}: {rule} = {n}")
    if rows_read is not None:
        lines.append(f"Rows read: {rows_read}.")
    lines.append("Each refused row is in the quarantine table with its file, line, column and rule "
                 "(values pseudonymised).")
    return raise_alert(
        url, "rows_quarantined", f"{partner_id}/{feed}: rows refused ({total_rules} rule breaks)",
        "\n".join(lines), f"rows_quarantined:{delivery_id}:{_digest(f'{c}:{r}:{n}' for (c, r), n in counts.items())}",
        severity="WARN",
        next_step="Send the partner the lines and rules from the quarantine table and ask for a corrected extract.",
        channel=channel, partner_id=partner_id, feed=feed, count_repeat=count_repeat,
    )


def alert_columns_dropped(
    url: str, delivery_id: str, file_name: str, partner_id: str, feed: str, columns: list[str],
    channel: AlertChannel | None = None, count_repeat: bool = True,
) -> AlertOutcome:
    """A delivery carried columns its data sharing agreement does not permit (dropped unread)."""
    safe_columns = [c if re.fullmatch(r"[A-Za-z0-9_ .-]{1,64}", c) else "<unprintable column name>" for c in columns]
    return raise_alert(
        url, "columns_dropped", f"{partner_id}/{feed}: {len(columns)} column(s) outside the agreement dropped",
        (f"{safe_file_name(file_name)} carried columns the data sharing agreement does not permit: "
         f"{', '.join(safe_columns)}. They were dropped before anything was stored; the rest of the file loaded."),
        f"columns_dropped:{delivery_id}", severity="WARN",
        next_step=("Tell the partner's data owner that these columns must not be sent under the agreement, "
                   "and record it with the information governance lead."),
        channel=channel, partner_id=partner_id, feed=feed, count_repeat=count_repeat,
    )


def alert_feed_overdue(
    url: str, partner_id: str, organisation: str, feed: str, cadence_days: int, last_extract: date | None,
    days_since: int, channel: AlertChannel | None = None,
) -> AlertOutcome:
    """A partner is late against its cadence. One alert per missed extract."""
    missed = max(1, days_since // cadence_days)
    since = f"its last extract is dated {last_extract.isoformat()}" if last_extract else "nothing has been received"
    return raise_alert(
        url, "feed_overdue", f"{partner_id}/{feed}: overdue ({days_since} days, cadence {cadence_days})",
        (f"{organisation} owes {feed} every {cadence_days} day(s); {since} ({days_since} days ago), "
         f"so {missed} extract(s) are missing."),
        f"feed_overdue:{partner_id}:{feed}:{last_extract.isoformat() if last_extract else 'never'}:{missed}",
        severity="WARN" if missed < 3 else "ERROR",
        next_step=(f"Contact {organisation}'s data sharing lead; if it stays late, escalate as a non-responder "
                   "under the Serious Violence Duty (partners/compliance lists it)."),
        channel=channel, partner_id=partner_id, feed=feed,
    )


# ---------------------------------------------------------------------------------------
# Partners late against their cadence
# ---------------------------------------------------------------------------------------

#: Ledger statuses that count as "delivered" (a file refused whole does not)
DELIVERED_STATUSES = ("received", "parsed", "staged")


@dataclass(frozen=True)
class OverdueFeed:
    partner_id: str
    organisation: str
    feed: str
    cadence_days: int
    last_extract: date | None
    days_since: int


def ledger_extract_dates(url: str) -> tuple[dict[tuple[str, str], date], date | None]:
    """Newest extract date per (partner, feed) among delivered files, and the date the first
    delivery of any kind was received (when the platform went live)."""
    from sqlalchemy import func

    from homicide_assets.lib.store.ingest import Delivery

    with session_scope(url) as s:
        rows = s.exec(
            select(Delivery.partner_id, Delivery.feed, func.max(Delivery.extract_date))
            .where(Delivery.status.in_(DELIVERED_STATUSES))
            .group_by(Delivery.partner_id, Delivery.feed)
        ).all()
        first = s.exec(select(func.min(Delivery.received_at))).one()
    newest = {(p, f): (d if isinstance(d, date) else date.fromisoformat(str(d))) for p, f, d in rows}
    live_since = first.date() if isinstance(first, datetime) else (
        datetime.fromisoformat(str(first)).date() if first else None)
    return newest, live_since


def overdue_feeds(registry, newest: Mapping[tuple[str, str], date], today: date,
                  live_since: date | None, grace_days: int = 1) -> list[OverdueFeed]:
    """Feeds owed under an agreement in force whose newest extract is older than the cadence
    (plus ``grace_days``). A feed never delivered counts from when the platform went live
    (``live_since``) or the agreement was signed, whichever is later; before anything at all
    has been received (``live_since`` is None) nothing is overdue."""
    out = []
    for pf in registry.feeds:
        if pf.cadence_days is None:
            continue
        agreement = registry.agreement(pf.partner_id)
        if agreement is None or pf.feed not in agreement.permitted_feeds or not agreement.in_force_on(today):
            continue
        last = newest.get((pf.partner_id, pf.feed))
        if last is None and live_since is None:
            continue
        start = last or max(live_since, agreement.signed_on)
        days = (today - start).days
        if days > pf.cadence_days + grace_days:
            partner = registry.partner(pf.partner_id)
            out.append(OverdueFeed(pf.partner_id, partner.organisation if partner else pf.partner_id, pf.feed,
                                   pf.cadence_days, last, days))
    return out


def alert_overdue_feeds(url: str, registry, today: date, channel: AlertChannel | None = None,
                        grace_days: int = 1) -> list[AlertOutcome]:
    """Raise :func:`alert_feed_overdue` for every partner late against its cadence today."""
    newest, live_since = ledger_extract_dates(url)
    return [
        alert_feed_overdue(url, o.partner_id, o.organisation, o.feed, o.cadence_days, o.last_extract,
                           o.days_since, channel=channel)
        for o in overdue_feeds(registry, newest, today, live_since, grace_days)
    ]


# ---------------------------------------------------------------------------------------
# Ingest events in the ledger that analysts must hear about
# ---------------------------------------------------------------------------------------

def alert_ingest_events(url: str, cursor: Mapping | None = None, channel: AlertChannel | None = None
                        ) -> tuple[dict, list[AlertOutcome]]:
    """Alert on what the ingest recorded: files quarantined (since ``cursor``), columns dropped
    under the agreement, rows quarantined per delivery. Idempotent: an alert already raised
    is neither sent nor counted again. Returns the new cursor and the alerts raised now."""
    from sqlalchemy import func

    from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry

    cursor = dict(cursor or {})
    last_id = int(cursor.get("quarantine_id", 0))
    outcomes: list[AlertOutcome] = []
    with session_scope(url) as s:
        files = list(s.exec(select(QuarantineEntry).where(QuarantineEntry.kind == "file", QuarantineEntry.id > last_id)
                            .order_by(QuarantineEntry.id)))
        dropped = list(s.exec(select(Delivery).where(Delivery.columns_dropped.is_not(None))))
        with_rows = list(s.exec(select(Delivery).where(Delivery.rows_quarantined > 0)))
        counts: dict[str, dict[tuple[str, str], int]] = {}
        if with_rows:
            for delivery_id, column, rule, n in s.exec(
                select(QuarantineEntry.delivery_id, QuarantineEntry.column, QuarantineEntry.rule, func.count())
                .where(QuarantineEntry.kind == "row",
                       QuarantineEntry.delivery_id.in_([d.delivery_id for d in with_rows]))
                .group_by(QuarantineEntry.delivery_id, QuarantineEntry.column, QuarantineEntry.rule)
            ):
                counts.setdefault(delivery_id, {})[(column or "-", rule)] = n
    for entry in files:
        outcomes.append(alert_file_quarantined(
            url, entry.file_name, entry.rule, entry.reason, entry.partner_id, entry.feed, entry.quarantine_path,
            channel=channel, count_repeat=False))
        last_id = max(last_id, entry.id)
    for d in dropped:
        columns = [c for c in (d.columns_dropped or "").split(";") if c]
        if columns:
            outcomes.append(alert_columns_dropped(url, d.delivery_id, d.file_name, d.partner_id, d.feed, columns,
                                                  channel=channel, count_repeat=False))
    for d in with_rows:
        if counts.get(d.delivery_id):
            outcomes.append(alert_rows_quarantined(url, d.delivery_id, d.file_name, d.partner_id, d.feed,
                                                   d.rows_read, counts[d.delivery_id], channel=channel,
                                                   count_repeat=False))
    cursor["quarantine_id"] = last_id
    return cursor, [o for o in outcomes if o.new]
