"""The quality asset checks and alert sensors in Dagster: blocking, metadata, reports, alerts."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    asset,
    build_sensor_context,
    materialize,
)

from homicide_assets.defs.quality import (
    AlertChannelResource,
    feed_overdue_sensor,
    quality_alert_sensor,
    quality_checks,
    raise_pending_alerts,
)
from homicide_assets.defs.quality.checks import row_conservation
from homicide_assets.lib import alerts as al
from homicide_assets.lib.alerts import AlertChannel
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.staging import stage_feed
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry
from homicide_assets.resources import PlatformResource
from homicide_assets_tests.bad_inputs.rows import good_rows, raw_frame

KEY = "test-pseudonym-key-0123456789abcdef"
CHECKS = {c.node_def.name.removeprefix("quality_"): c for c in quality_checks}


@pytest.fixture
def platform(tmp_path) -> PlatformResource:
    return PlatformResource(data_dir=str(tmp_path / "data"), pseudonym_key=KEY)


def _staged(feed: str, n: int = 12) -> pl.DataFrame:
    known = pl.Series([f"DR-2025-{i:06d}" for i in range(1, 100)]) if feed == "death_report_persons" else None
    return stage_feed(feed, raw_frame(feed, good_rows(feed, n)), KEY.encode(), default_registry(),
                      known_report_ids=known).staged


def _record_ledger(url: str, feed: str, frame: pl.DataFrame, delivery_id: str = "d1", quarantined_lines=(),
                   superseded: int = 0) -> None:
    with session_scope(url) as s:
        s.add(Delivery(delivery_id=delivery_id, sha256=delivery_id * 8, partner_id="wmp", feed=feed,
                       file_name=f"wmp__{feed}__20250401.csv", extension="csv", extract_date=date(2025, 4, 1),
                       size_bytes=1, archive_path="archive/x", status="staged",
                       rows_read=frame.height + len(quarantined_lines) + superseded, rows_staged=frame.height,
                       rows_quarantined=len(quarantined_lines), rows_superseded=superseded))
        for line in quarantined_lines:
            s.add(QuarantineEntry(kind="row", delivery_id=delivery_id, partner_id="wmp", feed=feed,
                                  file_name=f"wmp__{feed}__20250401.csv", line=line, column="sex", rule="enum",
                                  reason="sex must be one of m, f, x, u"))


def _graph(feed: str, frame: pl.DataFrame, downstream_ran: list):
    @asset(key=AssetKey(["staged", feed]))
    def staged_stub():
        return frame

    @asset(key=AssetKey(["linkage", f"uses_{feed}"]), deps=[AssetKey(["staged", feed])])
    def downstream():
        downstream_ran.append(True)

    return [staged_stub, downstream, CHECKS[feed]]


def _results(result) -> dict[str, object]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_one_check_op_per_feed_with_blocking_contract():
    assert sorted(CHECKS) == sorted(FEED_NAMES)
    for feed, checks in CHECKS.items():
        specs = {s.name: s for s in checks.check_specs}
        assert set(specs) == {"contract", "advisory", "row_conservation"}
        assert specs["contract"].blocking and specs["row_conservation"].blocking
        assert not specs["advisory"].blocking
        assert all(s.asset_key == AssetKey(["staged", feed]) for s in specs.values())


def test_good_frame_passes_and_writes_the_report(platform):
    frame = _staged("ed_assaults")
    _record_ledger(platform.database_url(), "ed_assaults", frame)
    ran: list = []
    result = materialize(_graph("ed_assaults", frame, ran), resources={"platform": platform})
    assert result.success and ran == [True]
    evals = _results(result)
    assert set(evals) == {"contract", "advisory", "row_conservation"}
    assert all(e.passed for e in evals.values())
    md = evals["contract"].metadata
    assert md["rows"].value == frame.height and md["rules"].value > 30
    html = md["report_html"].value
    assert html.startswith(str(platform.paths().root / "reports" / "quality" / "ed_assaults"))
    assert "contract holds" in open(html, encoding="utf-8").read()
    assert md["gx_result"].value["results"]
    cons = evals["row_conservation"].metadata
    assert cons["rows_read"].value == frame.height and cons["deliveries"].value == 1


def test_broken_contract_blocks_downstream_and_alerts(platform, tmp_path):
    frame = _staged("inquests")
    _record_ledger(platform.database_url(), "inquests", frame)
    bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("zz_bogus"))
                             .otherwise(pl.col("conclusion")).alias("conclusion"))
    ran: list = []
    instance = DagsterInstance.ephemeral()
    result = materialize(_graph("inquests", bad, ran), resources={"platform": platform}, instance=instance,
                         raise_on_error=False)
    assert not result.success and ran == []  # the blocking check stopped the downstream asset
    evals = _results(result)
    assert not evals["contract"].passed and evals["advisory"].passed
    failed = evals["contract"].metadata["failed_rules"].value
    assert [f["rule_id"] for f in failed] == ["inquests.conclusion.enum"]
    assert failed[0]["unexpected_sample"] == ["zz_bogus"] and failed[0]["unexpected_count"] == 1

    url = platform.database_url()
    channel = AlertChannel()
    cursor, raised = raise_pending_alerts(instance, url, channel)
    assert [o.alert.kind for o in raised] == ["check_failed"]
    alert = raised[0].alert
    assert alert.severity == "ERROR" and alert.feed == "inquests"
    assert "inquests.conclusion.enum" in alert.body and "zz_bogus" not in alert.body
    assert "reports/quality/inquests" in alert.body
    # the same evaluation is not alerted twice
    assert raise_pending_alerts(instance, url, channel, cursor)[1] == []
    assert raise_pending_alerts(instance, url, channel, {})[1] == []  # de-duplicated even without a cursor


def test_warn_failure_does_not_block_but_alerts(platform):
    frame = _staged("me_deaths")
    _record_ledger(platform.database_url(), "me_deaths", frame)
    bad = frame.with_columns(pl.lit(date.today() + timedelta(days=30)).alias("_extract_date"))
    ran: list = []
    instance = DagsterInstance.ephemeral()
    result = materialize(_graph("me_deaths", bad, ran), resources={"platform": platform}, instance=instance)
    assert result.success and ran == [True]
    evals = _results(result)
    assert evals["contract"].passed and not evals["advisory"].passed
    context = build_sensor_context(instance=instance, resources={
        "platform": platform, "alert_channel": AlertChannelResource()})
    out = quality_alert_sensor(context)
    assert "1 new alert" in out.skip_message
    stored = al.alerts(platform.database_url(), "check_failed")
    assert len(stored) == 1 and stored[0].severity == "WARN" and "_extract_date.not_in_future" in stored[0].body


def test_persons_are_checked_against_staged_death_reports(platform):
    reports = _staged("death_reports", 3)  # DR-2025-000001..3
    persons = _staged("death_report_persons", 10)  # refer to DR-2025-000001..5
    _record_ledger(platform.database_url(), "death_report_persons", persons)

    @asset(key=AssetKey(["staged", "death_reports"]))
    def reports_stub():
        return reports

    @asset(key=AssetKey(["staged", "death_report_persons"]), deps=[AssetKey(["staged", "death_reports"])])
    def persons_stub():
        return persons

    result = materialize([reports_stub, persons_stub, CHECKS["death_report_persons"]],
                         resources={"platform": platform}, raise_on_error=False)
    evals = _results(result)
    failed = {f["rule_id"]: f for f in evals["contract"].metadata["failed_rules"].value}
    assert list(failed) == ["death_report_persons.report_id.exists"]
    assert failed["death_report_persons.report_id.exists"]["unexpected_count"] == 4  # persons of reports 4 and 5


def test_row_conservation_finds_lost_and_phantom_rows(platform):
    url = platform.database_url()
    frame = _staged("safeguarding_contacts", 6)
    _record_ledger(url, "safeguarding_contacts", frame, quarantined_lines=(9, 11), superseded=1)
    problems, totals = row_conservation(url, "safeguarding_contacts", frame)
    assert problems == [] and totals["rows_read"] == 9 and totals["rows_quarantined"] == 2
    # a row vanishes from the staged table
    problems, _ = row_conservation(url, "safeguarding_contacts", frame.head(5))
    assert [p["problem"] for p in problems] == ["ledger says 6 rows staged, the staged table holds 5"]
    # the ledger loses count
    with session_scope(url) as s:
        d = s.get(Delivery, 1)
        d.rows_read += 2
        s.add(d)
    problems, _ = row_conservation(url, "safeguarding_contacts", frame)
    assert "2 rows unaccounted for" in problems[0]["problem"].replace("+", "")
    # rows from a delivery nobody recorded
    ghost = frame.with_columns(pl.lit("ghost").alias("_delivery_id"))
    problems, _ = row_conservation(url, "safeguarding_contacts", pl.concat([frame, ghost]))
    assert any(p["delivery_id"] == "ghost" for p in problems)


def test_overdue_sensor_alerts_late_partners(platform):
    url = platform.database_url()
    today = date.today()
    with session_scope(url) as s:
        for i, (partner, feed, days_ago) in enumerate([("wmp", "death_reports", 1), ("uhb", "me_deaths", 30)]):
            s.add(Delivery(delivery_id=f"d{i}", sha256=f"{i}" * 64, partner_id=partner, feed=feed,
                           file_name=f"{partner}__{feed}__x.csv", extension="csv",
                           extract_date=today - timedelta(days=days_ago), size_bytes=1, archive_path="a",
                           status="staged"))
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources={
        "platform": platform, "alert_channel": AlertChannelResource()})
    feed_overdue_sensor(context)
    overdue = {(a.partner_id, a.feed) for a in al.alerts(url, "feed_overdue")}
    assert ("uhb", "me_deaths") in overdue  # weekly feed, 30 days old
    assert ("wmp", "death_reports") not in overdue  # daily feed, yesterday's extract
    assert ("uhb", "review_recommendations") not in overdue  # delivered on publication: nothing owed
    assert ("wmp", "death_report_persons") not in overdue  # never delivered, but the platform went live today
    n = len(al.alerts(url))
    feed_overdue_sensor(context)
    assert len(al.alerts(url)) == n  # no new alert for the same lateness


def test_definitions_with_quality_are_loadable(platform):
    from homicide_assets.defs.ingest import partner_delivery_sensor, raw_assets, staged_assets
    from homicide_assets.defs.quality import quality_sensors
    from homicide_assets.resources import WarehouseIOManager

    defs = Definitions(
        assets=[*raw_assets, *staged_assets], asset_checks=quality_checks,
        sensors=[partner_delivery_sensor, *quality_sensors],
        resources={"platform": platform, "alert_channel": AlertChannelResource(),
                   "warehouse_io_manager": WarehouseIOManager(platform=platform)},
    )
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert len(graph.asset_check_keys) == 3 * len(FEED_NAMES)
