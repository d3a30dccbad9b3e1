"""Alerts reach a real SMTP server and a real webhook on loopback, once, without personal data."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from homicide_assets.lib import alerts as al
from homicide_assets.lib.alerts import AlertChannel, raise_alert


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.original_content, policy=default_policy)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's hook name
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        type(self).received.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def webhook_server():
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/analysts", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'platform.db'}"


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_channel_from_env():
    channel = AlertChannel.from_env({
        "HOMICIDE_ALERT_SMTP_HOST": "mail.force.example", "HOMICIDE_ALERT_SMTP_PORT": "2525",
        "HOMICIDE_ALERT_SMTP_FROM": "platform@force.example",
        "HOMICIDE_ALERT_SMTP_TO": "analysts@force.example, dq@force.example",
        "HOMICIDE_ALERT_WEBHOOK_URL": "https://hooks.example/abc",
    })
    assert channel.smtp_host == "mail.force.example" and channel.smtp_port == 2525
    assert channel.smtp_to == ("analysts@force.example", "dq@force.example")
    assert channel.email_configured and channel.webhook_configured
    assert not AlertChannel.from_env({}).email_configured
    assert not AlertChannel.from_env({}).webhook_configured


def test_email_and_webhook_arrive_once(url, smtp_server, webhook_server):
    controller, inbox = smtp_server
    hook_url, hook = webhook_server
    channel = AlertChannel(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_from="platform@force.example",
                           smtp_to=("analysts@force.example",), webhook_url=hook_url)
    outcome = al.alert_file_quarantined(
        url, "wmp__death_reports__20260105.csv", "truncated",
        "wmp__death_reports__20260105.csv: line 40: unterminated quoted field (file truncated?)",
        "wmp", "death_reports", "quarantine/files/wmp/0123456789abcdef__wmp__death_reports__20260105.csv",
        channel=channel,
    )
    assert outcome.new and sorted(outcome.sent) == ["email", "webhook"] and not outcome.failed
    assert _wait_for(lambda: len(inbox.messages) == 1)
    mail_from, rcpts, msg = inbox.messages[0]
    assert mail_from == "platform@force.example" and rcpts == ["analysts@force.example"]
    assert msg["Subject"] == "[homicide-assets] ERROR: wmp: delivery refused (truncated)"
    text = msg.get_content()
    assert "wmp__death_reports__20260105.csv" in text and "line 40" in text
    assert "What to do next: Ask the partner for a corrected file" in text
    assert msg["X-Homicide-Alert-Kind"] == "file_quarantined"
    assert len(hook.received) == 1
    path, content_type, payload = hook.received[0]
    assert path == "/hooks/analysts" and content_type == "application/json"
    assert payload["kind"] == "file_quarantined" and payload["severity"] == "ERROR"
    assert payload["partner_id"] == "wmp" and payload["feed"] == "death_reports"
    assert "truncated" in payload["text"] and payload["next_step"].startswith("Ask the partner")

    # the same alert again: counted, not sent
    again = al.alert_file_quarantined(
        url, "wmp__death_reports__20260105.csv", "truncated", "same", "wmp", "death_reports",
        "quarantine/files/wmp/0123456789abcdef__wmp__death_reports__20260105.csv", channel=channel)
    assert not again.new and again.sent == []
    time.sleep(0.2)
    assert len(inbox.messages) == 1 and len(hook.received) == 1
    stored = al.alerts(url)
    assert len(stored) == 1 and stored[0].occurrences == 2
    assert stored[0].email_status == "sent" and stored[0].webhook_status == "sent"


def test_failed_channel_is_recorded_and_retried(url, smtp_server, webhook_server):
    controller, inbox = smtp_server
    hook_url, hook = webhook_server
    hook.status = 500
    dead = AlertChannel(smtp_host="127.0.0.1", smtp_port=_free_port(), smtp_to=("a@force.example",),
                        webhook_url=hook_url, timeout_seconds=2)
    first = raise_alert(url, "feed_overdue", "uhb/me_deaths: overdue", "Body.", "k1", severity="WARN",
                        next_step="Call them.", channel=dead, partner_id="uhb", feed="me_deaths")
    assert first.new and sorted(first.failed) == ["email", "webhook"]
    stored = al.alerts(url)[0]
    assert stored.email_status == "failed" and stored.webhook_status == "failed"
    assert "email: " in stored.delivery_error and "webhook: " in stored.delivery_error
    # the channels come back: a retry sends what failed, once
    hook.status = 200
    live = AlertChannel(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_to=("a@force.example",),
                        webhook_url=hook_url)
    retried = al.retry_unsent(url, live)
    assert len(retried) == 1 and sorted(retried[0].sent) == ["email", "webhook"]
    assert _wait_for(lambda: len(inbox.messages) == 1)
    assert al.retry_unsent(url, live) == []
    stored = al.alerts(url)[0]
    assert stored.email_status == "sent" and stored.webhook_status == "sent" and stored.delivery_error is None


def test_no_channel_still_stores(url):
    outcome = raise_alert(url, "check_failed", "s", "b", "k2", severity="INFO", channel=AlertChannel())
    assert outcome.new and outcome.sent == [] and outcome.failed == []
    assert al.alerts(url, "check_failed")[0].email_status == "not_configured"
    with pytest.raises(ValueError):
        raise_alert(url, "x", "s", "b", "k3", severity="CRITICAL", channel=AlertChannel())


PERSONAL = ("943 476 5919", "9434765919", "B23 6TJ", "07700 900123", "+44 7700 900123", "jane.doe@mail.example")


def test_no_personal_data_reaches_the_channel(url, smtp_server, webhook_server):
    controller, inbox = smtp_server
    hook_url, hook = webhook_server
    channel = AlertChannel(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_to=("a@force.example",),
                           webhook_url=hook_url)
    # a careless caller puts identifiers in the text: they are redacted before storing and sending
    raise_alert(url, "check_failed", f"row with NHS {PERSONAL[0]}",
                "values: " + "; ".join(PERSONAL), "k4", severity="WARN", next_step=f"ring {PERSONAL[3]}",
                channel=channel)
    # a badly named file may carry a name and date of birth in its name: withheld
    al.alert_file_quarantined(url, "John Smith 01-02-1980 B23 6TJ.csv", "file_name",
                              "file name 'John Smith 01-02-1980 B23 6TJ.csv' breaks the naming rule", None, None,
                              "quarantine/files/_landing_root/abcdef__John_Smith_01-02-1980_B23_6TJ.csv",
                              channel=channel)
    assert _wait_for(lambda: len(inbox.messages) == 2)
    sent = [m.get_content() + str(m["Subject"]) for _, _, m in inbox.messages]
    sent += [json.dumps(p) for _, _, p in hook.received]
    sent += [a.subject + a.body + a.next_step + a.dedup_key for a in al.alerts(url)]
    for text in sent:
        for value in (*PERSONAL, "John", "Smith", "1980"):
            assert value not in text, (value, text)
    assert any("[number removed]" in t for t in sent) and any("name withheld" in t for t in sent)


def test_check_failure_alert_names_rules_not_values(url):
    failures = [
        {"rule_id": "death_reports.sex.enum", "rule": "sex is one of m, f, x, u", "unexpected_count": 3,
         "unexpected_sample": ["zz"]},
        {"rule_id": "death_reports.home_postcode.postcode", "rule": "home_postcode is a UK postcode",
         "unexpected_count": 1, "unexpected_sample": ["B23 6TJ"]},
    ]
    first = al.alert_check_failed(url, "death_reports", "contract", "ERROR", failures, 1200,
                                  "reports/quality/death_reports/latest.html", channel=AlertChannel(),
                                  on=date(2026, 1, 5))
    body = first.alert.body
    assert "death_reports.sex.enum" in body and "3 rows" in body and "latest.html" in body
    assert "zz" not in body and "B23 6TJ" not in body
    assert first.alert.severity == "ERROR" and "held" in first.alert.next_step
    same = al.alert_check_failed(url, "death_reports", "contract", "ERROR", list(reversed(failures)), 1300,
                                 None, channel=AlertChannel(), on=date(2026, 1, 5))
    assert not same.new  # same broken rules, same day: one alert
    next_day = al.alert_check_failed(url, "death_reports", "contract", "ERROR", failures, 1300, None,
                                     channel=AlertChannel(), on=date(2026, 1, 6))
    assert next_day.new
    warn = al.alert_check_failed(url, "death_reports", "advisory", "WARN", failures[:1], 1300, None,
                                 channel=AlertChannel(), on=date(2026, 1, 6))
    assert warn.new and warn.alert.severity == "WARN" and "Nothing is blocked" in warn.alert.next_step


def test_overdue_alert_once_per_missed_extract(url):
    args = dict(partner_id="coroner_bc", organisation="HM Coroner for the Black Country", feed="inquests",
                cadence_days=30, last_extract=date(2026, 1, 1), channel=AlertChannel())
    a = al.alert_feed_overdue(url, days_since=35, **args)
    b = al.alert_feed_overdue(url, days_since=40, **args)
    c = al.alert_feed_overdue(url, days_since=61, **args)
    assert a.new and not b.new and c.new
    assert "2 extract(s) are missing" in c.alert.body and c.alert.severity == "WARN"
    assert al.alert_feed_overdue(url, days_since=95, **args).alert.severity == "ERROR"
