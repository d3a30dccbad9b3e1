"""The delivery sensor against a real temporary landing folder."""

from __future__ import annotations

import json
import os

import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context
from sqlmodel import select

from homicide_assets.defs.ingest.sensors import partner_delivery_sensor
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt
from homicide_assets.resources import PlatformResource
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.deliveries import csv_bytes, death_report, drop

NAME = "wmp__death_reports__20260105.csv"


@pytest.fixture
def sensor(data_dir):
    instance = DagsterInstance.ephemeral()
    platform = PlatformResource(data_dir=str(data_dir.root), pseudonym_key=TEST_KEY)
    state = {"cursor": None}

    def evaluate():
        ctx = build_sensor_context(cursor=state["cursor"], instance=instance, resources={"platform": platform})
        result = partner_delivery_sensor(ctx)
        state["cursor"] = result.cursor if isinstance(result, SensorResult) else ctx.cursor
        return result

    return evaluate


def ledger(data_dir):
    with session_scope(data_dir.database_url()) as s:
        return (list(s.exec(select(Delivery))), list(s.exec(select(Receipt))), list(s.exec(select(QuarantineEntry))))


def test_new_file_is_taken_at_the_second_look(sensor, data_dir):
    data = csv_bytes("death_reports", [death_report(1)])
    drop(data_dir.landing, "wmp", NAME, data)
    first = sensor()
    assert isinstance(first, SkipReason) and "1 waiting" in first.skip_message
    second = sensor()
    assert isinstance(second, SensorResult)
    [req] = second.run_requests
    deliveries, receipts, _ = ledger(data_dir)
    [d] = deliveries
    assert req.partition_key == d.delivery_id and d.delivery_id.startswith("wmp__death_reports__20260105__")
    assert [str(k) for k in req.asset_selection] == ['AssetKey([\'raw\', \'death_reports\'])']
    assert second.dynamic_partitions_requests[0].partition_keys == [d.delivery_id]
    archived = data_dir.root / d.archive_path
    assert archived.read_bytes() == data and archived.name == d.sha256
    assert not os.access(archived, os.W_OK) or os.geteuid() == 0
    assert oct(archived.stat().st_mode & 0o222) == "0o0"  # read-only
    assert not (data_dir.landing / "wmp" / NAME).exists()
    assert [r.outcome for r in receipts] == ["accepted"]


def test_same_bytes_again_is_a_recorded_no_op(sensor, data_dir):
    data = csv_bytes("death_reports", [death_report(1)])
    drop(data_dir.landing, "wmp", NAME, data)
    sensor(), sensor()
    drop(data_dir.landing, "wmp", NAME, data)  # the partner's transfer ran twice
    sensor()
    result = sensor()
    assert isinstance(result, SensorResult) and result.run_requests == []
    deliveries, receipts, _ = ledger(data_dir)
    assert len(deliveries) == 1
    assert [r.outcome for r in receipts] == ["accepted", "duplicate"]
    assert receipts[1].delivery_id == deliveries[0].delivery_id
    assert len(list((data_dir.archive / "wmp").iterdir())) == 1


def test_same_bytes_as_a_new_extract_is_a_new_delivery(sensor, data_dir):
    header_only = csv_bytes("death_reports", [])  # "nothing new today", two days running
    drop(data_dir.landing, "wmp", NAME, header_only)
    drop(data_dir.landing, "wmp", "wmp__death_reports__20260106.csv", header_only)
    sensor()
    result = sensor()
    assert len(result.run_requests) == 2
    deliveries, _, _ = ledger(data_dir)
    assert sorted(d.extract_date.day for d in deliveries) == [5, 6]
    assert len(list((data_dir.archive / "wmp").iterdir())) == 1  # content-addressed archive


def test_same_name_with_other_bytes_is_quarantined(sensor, data_dir):
    drop(data_dir.landing, "wmp", NAME, csv_bytes("death_reports", [death_report(1)]))
    sensor(), sensor()
    drop(data_dir.landing, "wmp", NAME, csv_bytes("death_reports", [death_report(2)]))
    sensor()
    result = sensor()
    assert result.run_requests == []
    _, _, quarantine = ledger(data_dir)
    assert [q.rule for q in quarantine] == ["name_reused"]


def test_file_still_being_written_is_not_taken(sensor, data_dir):
    path = drop(data_dir.landing, "wmp", NAME, b"report_id,")
    sensor()
    with path.open("ab") as fh:  # the partner's copy is still growing
        fh.write(b"reported_at\n")
    assert isinstance(sensor(), SkipReason)
    assert path.exists() and ledger(data_dir)[0] == []
    drop(data_dir.landing, "wmp", "wmp__death_reports__20260105.csv.part", b"partial")
    drop(data_dir.landing, "wmp", "~$wmp__death_reports__20260105.xlsx", b"lock")
    drop(data_dir.landing, "wmp", ".wmp__death_reports__20260105.csv", b"hidden")
    sensor(), sensor()
    names = sorted(p.name for p in (data_dir.landing / "wmp").iterdir())
    assert names == [".wmp__death_reports__20260105.csv", "wmp__death_reports__20260105.csv.part",
                     "~$wmp__death_reports__20260105.xlsx"]  # the complete file was taken, the rest left alone


@pytest.mark.parametrize(
    "folder, name, rule",
    [
        ("wmp", "death reports jan.csv", "file_name"),
        ("wmp", "wmp__death_reports__20260105..csv", "file_name"),
        ("uhb", "wmp__death_reports__20260105.csv", "wrong_partner_folder"),
        ("uhb", "uhb__death_reports__20260105.csv", "feed_not_permitted"),
        ("nobody", "nobody__death_reports__20260105.csv", "unknown_partner"),
    ],
)
def test_bad_names_are_quarantined_with_reason(sensor, data_dir, folder, name, rule):
    drop(data_dir.landing, folder, name, b"anything")
    sensor()
    result = sensor()
    assert isinstance(result, SensorResult) and result.run_requests == []
    _, receipts, quarantine = ledger(data_dir)
    [entry] = quarantine
    assert entry.rule == rule and entry.kind == "file"
    moved = data_dir.root / entry.quarantine_path
    assert moved.read_bytes() == b"anything"
    reason = json.loads(moved.with_name(moved.name + ".reason.json").read_text())
    assert reason["rule"] == rule and reason["file_name"] == name
    assert receipts[0].outcome == "quarantined"


def test_no_path_from_a_name_leaves_the_data_directory(sensor, data_dir, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"secret")
    (data_dir.landing / "wmp").mkdir()
    os.symlink(outside, data_dir.landing / "wmp" / NAME)
    os.symlink(tmp_path, data_dir.landing / "..escape")  # a dot-name folder link is ignored
    sensor(), sensor()
    _, _, quarantine = ledger(data_dir)
    assert [q.rule for q in quarantine] == ["symlink"]
    assert outside.read_bytes() == b"secret"  # the link's target was neither moved nor read
    for path in data_dir.root.rglob("*"):
        assert data_dir.contains(path) or path.is_symlink()


def test_one_delivery_runs_from_raw_to_the_report_in_one_run(data_dir):
    """With its code location, the sensor's request for a lone delivery covers the raw
    partition and everything downstream of its feed (one run from file to report), tagged
    so the run queue lets one refresh through at a time; in a tick with several deliveries
    only the last request refreshes downstream."""
    from homicide_assets.definitions import automation_sensor, defs
    from homicide_assets.defs.ingest.sensors import REFRESH_TAG

    repo = defs.get_repository_def()
    instance = DagsterInstance.ephemeral()
    platform = PlatformResource(data_dir=str(data_dir.root), pseudonym_key=TEST_KEY)
    state = {"cursor": None}

    def evaluate():
        ctx = build_sensor_context(
            cursor=state["cursor"], instance=instance, resources={"platform": platform}, repository_def=repo
        )
        result = partner_delivery_sensor(ctx)
        state["cursor"] = result.cursor if isinstance(result, SensorResult) else ctx.cursor
        return result

    drop(data_dir.landing, "wmp", NAME, csv_bytes("death_reports", [death_report(1)]))
    evaluate()
    [req] = evaluate().run_requests
    keys = {k.to_user_string() for k in req.asset_selection}
    assert {"raw/death_reports", "staged/death_reports", "linkage/death_register", "series/linked_series",
            "report/death_investigations_report", "report/partner_edition"} <= keys
    assert not any(k.startswith("raw/") and k != "raw/death_reports" for k in keys)
    assert "staged/me_deaths" not in keys  # not downstream of this feed
    assert req.tags[REFRESH_TAG] == "delivery" and req.tags["homicide_assets/feed"] == "death_reports"
    assert automation_sensor.run_tags[REFRESH_TAG] == "automation"

    drop(data_dir.landing, "wmp", "wmp__death_reports__20260106.csv", csv_bytes("death_reports", [death_report(2)]))
    drop(data_dir.landing, "wmp", "wmp__death_report_persons__20260106.csv", csv_bytes("death_report_persons", []))
    evaluate()
    first, last = evaluate().run_requests
    assert [k.to_user_string() for k in first.asset_selection] == [f"raw/{first.tags['homicide_assets/feed']}"]
    assert REFRESH_TAG not in first.tags
    assert len(last.asset_selection) > 1 and last.tags[REFRESH_TAG] == "delivery"
