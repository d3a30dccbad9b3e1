"""The lessons assets through Dagster on real deliveries, the operator CLI, and the weekly digest
received by a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import io
import json
import socket
from datetime import date, datetime
from email import message_from_bytes
from email.policy import default as default_policy

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from dagster import AssetKey, AssetSpec, DagsterInstance, build_sensor_context, materialize
from polars.testing import assert_frame_equal

from homicide_assets.defs.lessons import lessons_assets, lessons_weekly_digest_sensor
from homicide_assets.defs.lessons.digest import LOCAL_TZ, due_week, send_weekly_digest
from homicide_assets.defs.partners import partners_assets
from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.lessons_cli import main as lessons_cli
from homicide_assets.lib.alerts import AlertChannel, alerts
from homicide_assets.lib.ingest import parse_archived_delivery, stage_and_record
from homicide_assets.lib.landing import look, receive
from homicide_assets.lib.lessons_digest import iso_week
from homicide_assets.lib.registry import load_registry
from homicide_assets.resources import PlatformResource, WarehouseIOManager
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.deliveries import csv_bytes, drop

REGISTRY = load_registry()
FEED = "review_recommendations"


def _rec(review_id: str, rec_id: str, **kw) -> dict:
    row = {
        "review_id": review_id, "recommendation_id": rec_id, "review_type": "dardr",
        "review_title": "Domestic Abuse Related Death Review: 'A' (2026)", "published_on": "2026-01-05",
        "recommendation_text": "Agencies should share information about domestic abuse with the MARAC.",
        "owner_organisation": "bham", "governance_board": "Birmingham Community Safety Partnership",
        "linked_report_ids": "DR-2025-000101", "due_on": "2026-04-30", "status": "not_started",
    }
    row.update(kw)
    return row


def _ingest(data_dir) -> None:
    """landing -> archive and ledger -> raw partitions -> staged, as the ingest assets do."""
    first = look(data_dir, {})
    outcome = receive(data_dir, REGISTRY, look(data_dir, first.cursor).ready)
    for d in outcome.accepted:
        parsed = parse_archived_delivery(data_dir, d.delivery_id)
        path = data_dir.warehouse_file(["raw", d.feed], d.delivery_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed.frame.write_parquet(path)
    stage_and_record(data_dir, FEED, TEST_KEY.encode(), REGISTRY)


@pytest.fixture
def lessons_data(platform_env):
    data_dir = platform_env
    drop(data_dir.landing, "bham", "bham__review_recommendations__20260110.csv", csv_bytes(FEED, [
        _rec("DARDR-BHAM-2026-01", "R01"),
        _rec("DARDR-BHAM-2026-01", "R02", recommendation_text="GPs should be trained on coercive control."),
    ]))
    drop(data_dir.landing, "bham", "bham__review_recommendations__20260601.csv", csv_bytes(FEED, [
        _rec("DARDR-BHAM-2026-01", "R01", status="in_progress", status_updated_on="2026-03-01"),
        _rec("DARDR-BHAM-2026-01", "R02", status="implemented", status_updated_on="2026-04-15",
             evidence="Training records: 92% of staff completed"),
    ]))
    _ingest(data_dir)
    register = pl.DataFrame({
        "death_id": ["DEATH-1", "DEATH-2"], "police_report_id": ["DR-2025-000101", "DR-2025-000102"],
        "source_records": [["death_reports:wmp:DR-2025-000101"], ["death_reports:wmp:DR-2025-000102"]],
        "date_of_death": [date(2025, 12, 1), date(2026, 3, 1)],
        "police_classification": ["homicide", "homicide"], "inquest_conclusion": [None, None],
    })
    path = data_dir.warehouse_file(["linkage", "death_register"])
    path.parent.mkdir(parents=True, exist_ok=True)
    register.write_parquet(path)
    return data_dir


def _materialize(data_dir, assets, run_config=None):
    platform = PlatformResource(data_dir=str(data_dir.root), pseudonym_key=TEST_KEY)
    return materialize(
        [AssetSpec(AssetKey(["linkage", "death_register"])).with_io_manager_key("warehouse_io_manager"), *assets],
        resources={"platform": platform, "warehouse_io_manager": WarehouseIOManager(platform=platform)},
        run_config=run_config,
    ), platform


def _recs(data_dir) -> pl.DataFrame:
    return pl.read_parquet(data_dir.warehouse_file(["lessons", "recommendations"]))


def test_lessons_assets_keep_history_across_deliveries_and_time_lessons(lessons_data):
    result, _ = _materialize(lessons_data, lessons_assets)
    assert result.success
    meta = result.asset_materializations_for_node("lessons__recommendations")[0].metadata
    assert meta["as_of"].value == "2026-06-01" and meta["as_of_source"].value == "newest extract date in the ledger"
    assert meta["overdue"].value == 1 and meta["status_history_entries"].value == 4
    recs = _recs(lessons_data)
    r01 = recs.filter(pl.col("recommendation_id") == "R01").row(0, named=True)
    assert [h["status"] for h in r01["status_history"]] == ["not_started", "in_progress"]
    assert r01["overdue"] is True and r01["death_ids"] == ["DEATH-1"]
    assert r01["partners_involved"] == ["bham", "wmp"]
    days = pl.read_parquet(lessons_data.warehouse_file(["lessons", "lessons_in_days"]))
    death1 = days.filter(pl.col("death_id") == "DEATH-1").row(0, named=True)
    assert death1["first_lesson_on"] == date(2026, 1, 5) and death1["days_to_first_lesson"] == 35
    assert death1["flagged"] is True  # 35 days > 28
    assert days.filter(pl.col("death_id") == "DEATH-2")["flagged"].item() is True  # no lesson at all
    relaxed, _ = _materialize(lessons_data, lessons_assets, {"ops": {
        "lessons__lessons_in_days": {"config": {"flag_after_days": 40}}}})
    days = pl.read_parquet(lessons_data.warehouse_file(["lessons", "lessons_in_days"]))
    assert days.filter(pl.col("death_id") == "DEATH-1")["flagged"].item() is False


def test_operator_sets_a_status_and_the_next_build_keeps_both(lessons_data):
    _materialize(lessons_data, lessons_assets)
    out = io.StringIO()
    code = lessons_cli(["recommendation-status", "set", "--review", "DARDR-BHAM-2026-01", "--rec", "R01",
                        "--status", "verified", "--by", "A. Chair, Birmingham CSP", "--evidence", "audit minute 12",
                        "--on", "2026-05-20"], out=out)
    assert code == 0 and "recorded update #1" in out.getvalue()
    assert lessons_cli(["set", "--review", "DARDR-BHAM-2026-01", "--rec", "R99", "--status", "verified",
                        "--by", "x"], out=io.StringIO()) == 2
    with pytest.raises(SystemExit):
        lessons_cli(["set", "--review", "DARDR-BHAM-2026-01", "--rec", "R01", "--status", "done", "--by", "x"])
    _materialize(lessons_data, lessons_assets)
    r01 = _recs(lessons_data).filter(pl.col("recommendation_id") == "R01").row(0, named=True)
    assert r01["status"] == "verified" and r01["overdue"] is False
    assert [(h["status"], h["source"], h["changed_by"]) for h in r01["status_history"]] == [
        ("not_started", "delivery", "bham"), ("in_progress", "delivery", "bham"),
        ("verified", "operator", "A. Chair, Birmingham CSP")]
    shown = io.StringIO()
    assert lessons_cli(["show", "--review", "DARDR-BHAM-2026-01", "--rec", "R01"], out=shown) == 0
    assert "verified" in shown.getvalue() and "by A. Chair, Birmingham CSP via operator" in shown.getvalue()
    assert "#1 DARDR-BHAM-2026-01 rec R01: verified effective 2026-05-20" in shown.getvalue()


# --- the digest on a real SMTP server ----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content,
                                                                          policy=default_policy)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_one_weekly_digest_of_overdue_recommendations_and_non_responders_reaches_smtp(lessons_data, smtp_server):
    port, inbox = smtp_server
    _materialize(lessons_data, [*lessons_assets, *partners_assets])
    platform = PlatformResource(data_dir=str(lessons_data.root), pseudonym_key=TEST_KEY)
    channel = AlertChannel(smtp_host="127.0.0.1", smtp_port=port, smtp_to=("analysts@force.example",))
    monday = datetime(2026, 6, 8, 7, 30, tzinfo=LOCAL_TZ)
    digest, outcome = send_weekly_digest(platform, monday, channel=channel)
    assert outcome.sent == ["email"] and digest.week == "2026-W24"
    assert len(inbox.messages) == 1  # one message for everything, not one per item
    rcpt, msg = inbox.messages[0]
    assert rcpt == ["analysts@force.example"]
    assert "weekly digest 2026-W24: 1 overdue recommendations" in msg["Subject"]
    body = msg.get_content()
    assert "DARDR-BHAM-2026-01 rec R01 (dardr): in_progress, due 2026-04-30, 32 days overdue" in body
    assert "R02" not in body  # implemented: not overdue
    assert "NON-RESPONDING PARTNERS" in body
    assert "West Midlands Police (wmp), death_reports: no death_reports extract received since" in body
    assert "EXPIRING WITHIN 90 DAYS\n  none" in body.replace("\r\n", "\n")  # as of 2026-06-01 none is near
    # the same week again (a sensor restart, a second tick): nothing more is sent
    send_weekly_digest(platform, datetime(2026, 6, 9, 12, 0, tzinfo=LOCAL_TZ), channel=channel)
    assert len(inbox.messages) == 1
    stored = alerts(platform.database_url(), kind="weekly_digest")
    assert len(stored) == 1 and stored[0].email_status == "sent" and stored[0].occurrences == 2


def test_digest_sensor_sends_once_a_week_through_the_configured_channel(lessons_data, smtp_server):
    port, inbox = smtp_server
    _materialize(lessons_data, [*lessons_assets, *partners_assets])
    platform = PlatformResource(data_dir=str(lessons_data.root), pseudonym_key=TEST_KEY)
    resources = {"platform": platform, "alert_channel": AlertChannelResource(
        smtp_host="127.0.0.1", smtp_port=port, smtp_to="duty-analyst@force.example")}
    now = datetime.now(LOCAL_TZ)
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=json.dumps({"last_sent_week": "2000-W01"}),
                                       resources=resources)
        lessons_weekly_digest_sensor(context)
        expected = 1 if due_week(now, "2000-W01") else 0  # nothing before Monday 07:00
        assert len(inbox.messages) == expected
        if expected:
            assert inbox.messages[0][0] == ["duty-analyst@force.example"]
        if expected:
            assert json.loads(context.cursor) == {"last_sent_week": iso_week(now.date())}
            again = build_sensor_context(instance=instance, cursor=context.cursor, resources=resources)
            lessons_weekly_digest_sensor(again)
            assert len(inbox.messages) == 1


def test_due_week_is_the_first_look_from_monday_seven():
    assert due_week(datetime(2026, 6, 8, 6, 59, tzinfo=LOCAL_TZ), "2026-W23") is None
    assert due_week(datetime(2026, 6, 8, 7, 0, tzinfo=LOCAL_TZ), "2026-W23") == "2026-W24"
    assert due_week(datetime(2026, 6, 11, 15, 0, tzinfo=LOCAL_TZ), "2026-W23") == "2026-W24"  # daemon was down
    assert due_week(datetime(2026, 6, 11, 15, 0, tzinfo=LOCAL_TZ), "2026-W24") is None


def test_the_history_is_held_until_a_raw_partition_changes(lessons_data):
    """The recommendation history (every delivery's statuses) is held in models/review_history/
    and reused while the same deliveries' raw partitions stand; a new delivery, or a raw
    partition written again, makes it read every partition again, and it always equals the
    history read afresh."""
    import os

    from homicide_assets.lib.held import load_frames, save_frames
    from homicide_assets.lib.ingest import read_raw
    from homicide_assets.lib.lessons import (
        HISTORY_STATE_FORMAT,
        held_recommendation_history,
        recommendation_history,
    )

    folder = lessons_data.models / "review_history"
    fresh = lambda: recommendation_history(read_raw(lessons_data, FEED)[0])  # noqa: E731
    first, missing = held_recommendation_history(lessons_data, folder)
    assert missing == [] and (folder / "history.parquet").exists()
    assert first["status"].sort().to_list() == ["implemented", "in_progress", "not_started", "not_started"]
    assert_frame_equal(first, fresh())
    # reused: what the folder holds comes back (a marked copy here), not a new reading
    frames, meta = load_frames(folder, ["history"], HISTORY_STATE_FORMAT)
    save_frames(folder, {"history": first.head(1)}, meta)
    assert held_recommendation_history(lessons_data, folder)[0].height == 1
    # a raw partition written again (another modification time) is read again
    path = lessons_data.warehouse_file(["raw", FEED], next(iter(meta["partitions"])))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert_frame_equal(held_recommendation_history(lessons_data, folder)[0], fresh())

    drop(lessons_data.landing, "bham", "bham__review_recommendations__20260901.csv", csv_bytes(FEED, [
        _rec("DARDR-BHAM-2026-01", "R01", status="implemented", status_updated_on="2026-08-20",
             evidence="MARAC referral audit"),
    ]))
    _ingest(lessons_data)
    grown, _ = held_recommendation_history(lessons_data, folder)
    assert grown.height == first.height + 1
    assert_frame_equal(grown, fresh())
