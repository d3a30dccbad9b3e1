"""Staging held between builds (``lib.ingest.stage_feed_held``): a new delivery stages its own
rows and the held rejected rows, and the result equals staging every delivery again."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlmodel import select

from homicide_assets.lib.ingest import (
    StagingState,
    parse_archived_delivery,
    read_raw,
    record_staged,
    stage_and_quarantine,
    stage_and_record,
    staging_state_folder,
)
from homicide_assets.lib.landing import look, receive
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.staging import stage_feed
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry
from homicide_assets_tests.deliveries import csv_bytes, death_report, drop, person

REGISTRY = default_registry()
DAY_1 = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def deliver(data_dir: DataDir, files: dict[str, tuple[str, list[dict]]]) -> None:
    """Drop police files (name: (feed, rows)), receive and parse them as the sensor and raw/<feed> do."""
    for name, (feed, rows) in files.items():
        drop(data_dir.landing, "wmp", name, csv_bytes(feed, rows))
    first = look(data_dir, {})
    outcome = receive(data_dir, REGISTRY, look(data_dir, first.cursor).ready, today=DAY_1.date())
    assert len(outcome.accepted) == len(files)
    for d in outcome.accepted:
        parsed = parse_archived_delivery(data_dir, d.delivery_id)
        path = data_dir.warehouse_file(["raw", d.feed], d.delivery_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed.frame.write_parquet(path)


def stage_both(data_dir: DataDir, key: bytes, now: datetime):
    """Stage death_reports, then the persons against its report ids (as staged/<feed> do)."""
    reports, _, _ = stage_and_record(data_dir, "death_reports", key, REGISTRY, now=now)
    persons, _, _ = stage_and_record(data_dir, "death_report_persons", key, REGISTRY,
                                     known_report_ids=reports.staged.get_column("report_id"), now=now)
    return reports, persons


def ledger(data_dir: DataDir) -> tuple[dict, list]:
    with session_scope(data_dir.database_url()) as s:
        counts = {d.delivery_id: (d.status, d.rows_read, d.rows_staged, d.rows_quarantined, d.rows_superseded)
                  for d in s.exec(select(Delivery))}
        rows = sorted((q.delivery_id, q.line, q.column, q.rule, q.value, q.reason)
                      for q in s.exec(select(QuarantineEntry).where(QuarantineEntry.kind == "row")))
    return counts, rows


def assert_equals_whole(data_dir: DataDir, key: bytes, now: datetime, reports, persons) -> None:
    """Each held staging equals ``stage_feed`` over every delivery's raw rows at ``now``."""
    for feed, result, known in (("death_reports", reports, None),
                                ("death_report_persons", persons, reports.staged.get_column("report_id"))):
        raw, missing = read_raw(data_dir, feed)
        whole = stage_feed(feed, raw, key, REGISTRY, known_report_ids=known, now=now)
        assert not missing
        assert_frame_equal(result.staged, whole.staged)
        assert_frame_equal(result.rejects, whole.rejects)
        assert_frame_equal(result.superseded.sort(["_delivery_id", "_source_line"]),
                           whole.superseded.sort(["_delivery_id", "_source_line"]))
        assert_frame_equal(result.counts(raw.group_by("_delivery_id").len("rows_read")).sort("_delivery_id"),
                           whole.counts_by_delivery(raw).sort("_delivery_id"))


@pytest.fixture
def day_1(data_dir: DataDir, key: bytes) -> DataDir:
    """Reports 1-4 (report 3 reported "tomorrow": not yet valid, report 4 broken); persons of
    reports 1, 2 and 9 (report 9 not yet delivered); staged at ``DAY_1``."""
    deliver(data_dir, {
        "wmp__death_reports__20260105.csv": ("death_reports", [
            death_report(1), death_report(2),
            death_report(3, reported_at="2026-01-07T08:00", date_of_death="2026-01-07"),
            death_report(4, sex="unknown-value")]),
        "wmp__death_report_persons__20260105.csv": ("death_report_persons", [
            person(1, 1), person(2, 1), person(9, 1), person(9, 2, role="not-a-role")]),
    })
    reports, persons = stage_both(data_dir, key, DAY_1)
    assert reports.how == persons.how == "whole: nothing held"
    assert set(reports.rejects.get_column("rule")) == {"not_in_future", "enum"}
    assert set(persons.rejects.get_column("rule")) == {"report_exists", "enum"}
    return data_dir


def test_a_new_delivery_is_staged_on_the_held_rows_and_equals_staging_everything(day_1, key):
    # day 2: a new death (report 9), a correction of report 1, an extract with a bad row
    deliver(day_1, {"wmp__death_reports__20260106.csv": ("death_reports", [
        death_report(9), death_report(1, narrative="Update: next of kin informed."),
        death_report(5, reported_at="not a time")])})
    now = DAY_1 + timedelta(days=2)  # report 3 is no longer in the future
    reports, persons = stage_both(day_1, key, now)
    assert reports.how == "held: 1 new deliveries and 2 held rejected rows staged"
    assert persons.how == "held: 0 new deliveries and 2 held rejected rows staged"
    ids = set(reports.staged.get_column("report_id"))
    assert {"DR-2026-000003", "DR-2026-000009"} <= ids and "DR-2026-000004" not in ids
    assert reports.superseded.height == 1  # report 1 of day 1
    # the finder of report 9 is now valid; its second person still breaks the role rule
    assert persons.staged.filter(pl.col("report_id") == "DR-2026-000009").height == 1
    assert set(persons.rejects.get_column("rule")) == {"enum"}
    assert_equals_whole(day_1, key, now, reports, persons)

    # the ledger and the quarantine table are those of a staging from nothing held
    held_ledger = ledger(day_1)
    for feed in ("death_reports", "death_report_persons"):
        StagingState.load(staging_state_folder(day_1, feed))  # readable
        os.rename(staging_state_folder(day_1, feed), staging_state_folder(day_1, feed).with_name(f"{feed}.gone"))
    again, again_persons = stage_both(day_1, key, now)
    assert again.how == again_persons.how == "whole: nothing held"
    assert ledger(day_1) == held_ledger
    assert_frame_equal(again.staged, reports.staged)
    assert_frame_equal(again_persons.staged, persons.staged)


@pytest.mark.parametrize("change", ["key", "clock", "raw rewritten", "report id gone"])
def test_the_held_staging_is_not_carried_forward_when_what_it_depends_on_changed(day_1, key, change):
    now = DAY_1 + timedelta(hours=1)
    if change == "key":
        key = key + b"-rotated"
    elif change == "clock":
        now = DAY_1 - timedelta(minutes=1)
    elif change == "raw rewritten":
        (raw,) = (day_1.warehouse / "raw" / "death_reports").glob("*.parquet")
        pl.read_parquet(raw).write_parquet(raw)
        st = raw.stat()
        os.utime(raw, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    if change == "report id gone":
        reports, _, _ = stage_and_record(day_1, "death_reports", key, REGISTRY, now=now)
        known = reports.staged.filter(pl.col("report_id") != "DR-2026-000002").get_column("report_id")
        persons, _, _ = stage_and_record(day_1, "death_report_persons", key, REGISTRY, known_report_ids=known, now=now)
        assert persons.how.startswith("whole: a report id")
        assert persons.staged.filter(pl.col("report_id") == "DR-2026-000002").height == 0
        return
    reports, persons = stage_both(day_1, key, now)
    assert reports.how.startswith("whole: "), reports.how
    assert_equals_whole(day_1, key, now, reports, persons)


def test_a_raw_partition_that_appears_after_staging_is_staged_as_new(data_dir, key):
    """A delivery received but without its raw partition (a crash between ledger and file)
    contributes no rows and stays ``parsed`` in the ledger; once the partition is written, the
    next held staging takes its rows."""
    deliver(data_dir, {
        "wmp__death_reports__20260105.csv": ("death_reports", [death_report(1), death_report(2)]),
        "wmp__death_reports__20260106.csv": ("death_reports", [death_report(2, narrative="Corrected."),
                                                               death_report(3)]),
    })
    (late,) = (data_dir.warehouse / "raw" / "death_reports").glob("*20260106*.parquet")
    kept = late.read_bytes()
    late.unlink()
    first, _, missing = stage_and_record(data_dir, "death_reports", key, REGISTRY, now=DAY_1)
    assert first.how == "whole: nothing held" and len(missing) == 1 and first.staged.height == 2
    assert ledger(data_dir)[0][late.stem][0] == "parsed"
    late.write_bytes(kept)
    now = DAY_1 + timedelta(hours=1)
    again, _, missing = stage_and_record(data_dir, "death_reports", key, REGISTRY, now=now)
    assert again.how == "held: 1 new deliveries and 0 held rejected rows staged" and missing == []
    raw, _ = read_raw(data_dir, "death_reports")
    whole = stage_feed("death_reports", raw, key, REGISTRY, now=now)
    assert_frame_equal(again.staged, whole.staged)
    assert again.staged.height == 3 and again.superseded.height == 1
    # the late delivery's ledger counts: both its rows staged (report 2 supersedes day 1's)
    assert ledger(data_dir)[0][late.stem][2:] == (2, 0, 0)


def test_a_delivery_parsed_while_staging_writes_is_left_for_the_next_run(data_dir, key):
    """The ledger records as staged only the deliveries the staging read: one parsed between
    the staging and its ledger record (an ingest run beside a refresh, under the daemon) stays
    ``parsed``, not "staged with no rows", and the next staging takes it."""
    deliver(data_dir, {"wmp__death_reports__20260105.csv": ("death_reports", [death_report(1)])})
    result, counts, _ = stage_and_quarantine(data_dir, "death_reports", key, REGISTRY, now=DAY_1)
    deliver(data_dir, {"wmp__death_reports__20260106.csv": ("death_reports", [death_report(2), death_report(3)])})
    record_staged(data_dir, "death_reports", counts, result.deliveries)
    statuses = {d: row[:3] for d, row in ledger(data_dir)[0].items()}
    assert sorted(statuses.values()) == [("parsed", 2, None), ("staged", 1, 1)]
    again, _, _ = stage_and_record(data_dir, "death_reports", key, REGISTRY, now=DAY_1 + timedelta(hours=1))
    assert again.staged.height == 3
    assert sorted(row[:3] for row in ledger(data_dir)[0].values()) == [("staged", 1, 1), ("staged", 2, 2)]
