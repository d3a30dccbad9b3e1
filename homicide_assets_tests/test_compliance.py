"""partners/compliance: owed against received, lateness, quality, agreements, non-responders named."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from dagster import AssetKey, Definitions, materialize

from homicide_assets.defs.partners import compliance as compliance_asset
from homicide_assets.defs.partners import partner_compliance_daily
from homicide_assets.lib.compliance import (
    COMPLIANCE_SCHEMA,
    LEDGER_SCHEMA,
    ComplianceRules,
    build_compliance,
    ledger_as_of,
    non_responders,
    read_ledger,
)
from homicide_assets.lib.registry import load_registry
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry
from homicide_assets.resources import PlatformResource, WarehouseIOManager
from homicide_assets_tests.conftest import TEST_KEY

REGISTRY = load_registry()
START = date(2026, 10, 1)
AS_OF = date(2026, 11, 30)  # 60 days after START


def _delivery(partner: str, feed: str, offset: int, seq: int = 0, status: str = "staged",
              rows_read: int = 100, rows_quarantined: int = 0, quarantine_rule: str | None = None) -> dict:
    day = START + timedelta(days=offset)
    return {
        "delivery_id": f"{partner}__{feed}__{day:%Y%m%d}__{seq}", "partner_id": partner, "feed": feed,
        "extract_date": day, "seq": seq, "status": status,
        "rows_read": 0 if status == "quarantined" else rows_read,
        "rows_staged": 0 if status == "quarantined" else rows_read - rows_quarantined,
        "rows_quarantined": 0 if status == "quarantined" else rows_quarantined, "rows_superseded": 0,
        "quarantine_rule": quarantine_rule,
    }


def force_ledger() -> pl.DataFrame:
    """Two months of deliveries: a daily police feed, a late trust, a partner that stops, a
    partner with a refused file, a skipped week, a coroner who never delivers."""
    rows = [_delivery("wmp", "death_reports", d) for d in range(61)]
    rows += [_delivery("dgft", "me_deaths", d) for d in (0, 7, 14, 25, 28, 35, 42, 49, 56)]  # one 4 days late
    rows += [_delivery("walsall", "safeguarding_contacts", d) for d in (0, 14)]  # then nothing
    rows += [_delivery("sandwell", "safeguarding_contacts", d, rows_quarantined=10 if d == 14 else 0)
             for d in (0, 14, 28, 56)]
    rows += [_delivery("sandwell", "safeguarding_contacts", 42, status="quarantined", quarantine_rule="duplicate_keys"),
             _delivery("sandwell", "safeguarding_contacts", 42, seq=1)]  # refused, then corrected same day
    rows += [_delivery("wolves", "safeguarding_contacts", d) for d in (0, 14, 42, 56)]
    rows += [_delivery("wolves", "safeguarding_contacts", 28, status="quarantined", quarantine_rule="no_rows")]
    rows += [_delivery("uhcw", "ed_assaults", d) for d in (0, 7, 21, 28, 35, 42, 49, 56)]  # skipped one week
    rows += [_delivery("coroner_cov", "inquests", d) for d in (0, 30, 60)]
    rows += [_delivery("vrp", "review_recommendations", 20)]
    return pl.DataFrame(rows, schema=LEDGER_SCHEMA)


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return build_compliance(force_ledger(), REGISTRY, AS_OF)


def row(table: pl.DataFrame, partner: str, feed: str) -> dict:
    got = table.filter((pl.col("partner_id") == partner) & (pl.col("feed") == feed))
    assert got.height == 1
    return got.row(0, named=True)


def test_one_row_per_registry_partner_feed_with_the_contract_columns(table):
    assert table.height == len(REGISTRY.feeds)
    assert table.schema == pl.Schema(COMPLIANCE_SCHEMA)
    assert row(table, "wmp", "death_reports")["period_start"] == START  # earliest extract in the ledger


def test_owed_against_received_for_a_partner_on_cadence(table):
    wmp = row(table, "wmp", "death_reports")
    assert (wmp["cadence_days"], wmp["extracts_owed"], wmp["extracts_received"]) == (1, 61, 61)
    assert wmp["days_late"] == 0 and wmp["non_responder"] is False and wmp["escalation_reason"] is None
    assert wmp["quality_pass_rate"] == 1.0 and wmp["last_extract_date"] == AS_OF


def test_a_partner_that_is_sometimes_late_is_counted_but_not_named(table):
    dgft = row(table, "dgft", "me_deaths")
    assert (dgft["extracts_owed"], dgft["extracts_received"]) == (9, 9)
    assert dgft["late_extracts"] == 1 and dgft["longest_gap_days"] == 11
    assert dgft["days_late"] == 0 and dgft["non_responder"] is False
    uhcw = row(table, "uhcw", "ed_assaults")  # skipped one week, back on cadence
    assert (uhcw["extracts_owed"], uhcw["extracts_received"], uhcw["late_extracts"]) == (9, 8, 1)
    assert uhcw["non_responder"] is False


def test_a_partner_that_stopped_is_a_non_responder_with_the_reason_in_words(table):
    walsall = row(table, "walsall", "safeguarding_contacts")
    assert (walsall["cadence_days"], walsall["extracts_owed"], walsall["extracts_received"]) == (14, 5, 2)
    assert walsall["last_extract_date"] == date(2026, 10, 15)
    assert walsall["days_late"] == (AS_OF - date(2026, 10, 29)).days == 32
    assert walsall["non_responder"] is True
    assert walsall["escalation_reason"] == (
        "no safeguarding_contacts extract since 2026-10-15: the next was due 2026-10-29 (cadence 14 days), "
        "32 days late; only 2 of 5 safeguarding_contacts extracts owed since 2026-10-01 received")


def test_a_partner_that_never_delivered_is_named(table):
    bc = row(table, "coroner_bc", "inquests")
    assert (bc["extracts_owed"], bc["extracts_received"], bc["days_late"]) == (3, 0, 60)
    assert bc["non_responder"] is True and bc["last_extract_date"] is None
    assert bc["escalation_reason"].startswith("no inquests extract received since 2026-10-01 (cadence 30 days; 60 days late)")
    named = non_responders(table)
    assert {"walsall", "coroner_bc"} <= set(named["partner_id"])
    pairs = set(zip(named["partner_id"], named["feed"]))
    assert ("wmp", "death_report_persons") in pairs  # never delivered either
    assert not pairs & {("wmp", "death_reports"), ("dgft", "me_deaths"), ("uhcw", "ed_assaults"),
                        ("sandwell", "safeguarding_contacts"), ("wolves", "safeguarding_contacts"),
                        ("coroner_cov", "inquests")}


def test_a_refused_file_is_not_an_extract_received_and_lowers_quality(table):
    sandwell = row(table, "sandwell", "safeguarding_contacts")
    assert (sandwell["extracts_received"], sandwell["files_received"], sandwell["files_quarantined"]) == (5, 6, 1)
    assert sandwell["quality_pass_rate"] == pytest.approx((5 / 6) * (490 / 500))
    assert sandwell["non_responder"] is False and sandwell["escalate"] is True
    assert "only 81.7% of delivered content passed the feed contract (1 of 6 files quarantined whole)" in (
        sandwell["escalation_reason"])


def test_a_header_only_extract_is_a_nil_return_not_a_failure(table):
    wolves = row(table, "wolves", "safeguarding_contacts")
    assert (wolves["extracts_received"], wolves["nil_returns"], wolves["files_quarantined"]) == (5, 1, 0)
    assert wolves["quality_pass_rate"] == 1.0 and wolves["late_extracts"] == 0


def test_agreements_near_expiry_are_escalated_and_the_window_is_configurable(table):
    wolves = row(table, "wolves", "safeguarding_contacts")
    assert (wolves["agreement_id"], wolves["agreement_expires_on"], wolves["days_to_expiry"]) == (
        "WM-ISA-014", date(2027, 1, 31), 62)
    assert wolves["non_responder"] is False and wolves["escalate"] is True
    assert wolves["escalation_reason"] == "data sharing agreement WM-ISA-014 expires on 2027-01-31 (in 62 days)"
    cov = row(table, "coroner_cov", "inquests")
    assert cov["days_to_expiry"] == 90 and "WM-ISA-017 expires on 2027-02-28" in cov["escalation_reason"]
    narrower = build_compliance(force_ledger(), REGISTRY, AS_OF, rules=ComplianceRules(expiry_warning_days=30))
    assert row(narrower, "wolves", "safeguarding_contacts")["escalation_reason"] is None
    expired = build_compliance(force_ledger(), REGISTRY, date(2027, 2, 5))
    assert "WM-ISA-014 expired on 2027-01-31" in row(expired, "wolves", "safeguarding_contacts")["escalation_reason"]


def test_feeds_on_publication_owe_nothing(table):
    vrp = row(table, "vrp", "review_recommendations")
    assert vrp["cadence_days"] is None and vrp["extracts_owed"] is None and vrp["days_late"] is None
    assert vrp["extracts_received"] == 1 and vrp["non_responder"] is False


def test_as_of_in_the_past_ignores_later_extracts():
    earlier = build_compliance(force_ledger(), REGISTRY, date(2026, 10, 20))
    walsall = row(earlier, "walsall", "safeguarding_contacts")
    assert (walsall["extracts_owed"], walsall["extracts_received"], walsall["days_late"]) == (2, 2, 0)
    assert walsall["non_responder"] is False
    assert ledger_as_of(force_ledger()) == AS_OF


def test_compliance_asset_reads_the_ledger_and_names_non_responders(tmp_path):
    platform = PlatformResource(data_dir=str(tmp_path / "data"), pseudonym_key=TEST_KEY)
    with session_scope(platform.database_url()) as s:
        for r in force_ledger().iter_rows(named=True):
            rule = r.pop("quarantine_rule")
            s.add(Delivery(**r, sha256=r["delivery_id"], file_name=f"{r['delivery_id']}.csv", extension="csv",
                           size_bytes=1, archive_path="archive/x"))
            if rule:
                s.add(QuarantineEntry(kind="file", delivery_id=r["delivery_id"], partner_id=r["partner_id"],
                                      feed=r["feed"], file_name=f"{r['delivery_id']}.csv", rule=rule, reason=rule))
    assert read_ledger(platform.database_url()).sort("delivery_id").equals(force_ledger().sort("delivery_id"))
    result = materialize([compliance_asset], resources={
        "platform": platform, "warehouse_io_manager": WarehouseIOManager(platform=platform)})
    assert result.success
    meta = result.asset_materializations_for_node("partners__compliance")[0].metadata
    assert meta["as_of"].value == AS_OF.isoformat()
    assert meta["as_of_source"].value == "newest extract date in the ledger"
    written = pl.read_parquet(platform.paths().warehouse_file(["partners", "compliance"]))
    assert meta["non_responders"].value == non_responders(written).height >= 2
    assert row(written, "walsall", "safeguarding_contacts")["non_responder"] is True
    assert row(written, "wolves", "safeguarding_contacts")["nil_returns"] == 1  # rule read from the quarantine table
    assert row(written, "sandwell", "safeguarding_contacts")["files_quarantined"] == 1


def test_daily_schedule_targets_compliance_at_six(tmp_path):
    assert partner_compliance_daily.cron_schedule == "0 6 * * *"
    assert partner_compliance_daily.execution_timezone == "Europe/London"
    platform = PlatformResource(data_dir=str(tmp_path / "data"), pseudonym_key=TEST_KEY)
    defs = Definitions(assets=[compliance_asset], schedules=[partner_compliance_daily], resources={
        "platform": platform, "warehouse_io_manager": WarehouseIOManager(platform=platform)})
    job = defs.resolve_job_def(partner_compliance_daily.job_name)
    assert job.asset_layer.executable_asset_keys == {AssetKey(["partners", "compliance"])}


def test_a_byte_identical_file_from_another_partner_still_counts_for_that_partner(tmp_path):
    """Ingest keeps a file identical to one already received only as a receipt (the same
    header-only extract from two trusts); compliance must still see the second trust's extract."""
    from homicide_assets.lib.store.ingest import Receipt

    url = f"sqlite:///{tmp_path / 'platform.db'}"
    first = _delivery("uhb", "me_deaths", 0, status="quarantined")
    first.pop("quarantine_rule")
    with session_scope(url) as s:
        s.add(Delivery(**first, sha256="same-bytes", file_name="uhb__me_deaths__20261001.csv", extension="csv",
                       size_bytes=1, archive_path="archive/x"))
        s.add(QuarantineEntry(kind="file", delivery_id=first["delivery_id"], partner_id="uhb", feed="me_deaths",
                              file_name="uhb__me_deaths__20261001.csv", rule="no_rows", reason="header only"))
        s.add(Receipt(file_name="wht__me_deaths__20261001.csv", partner_folder="wht", sha256="same-bytes",
                      outcome="duplicate", delivery_id=first["delivery_id"]))
        s.add(Receipt(file_name="not a delivery.txt", partner_folder="wht", outcome="duplicate"))
    ledger = read_ledger(url)
    assert ledger.filter(pl.col("partner_id") == "wht")["status"].to_list() == ["identical_receipt"]
    table = build_compliance(ledger, REGISTRY, date(2026, 10, 5))
    assert row(table, "wht", "me_deaths")["extracts_received"] == 1
    assert row(table, "uhb", "me_deaths")["extracts_received"] == 1 and row(table, "uhb", "me_deaths")["nil_returns"] == 1


def test_the_newest_extract_date_is_the_ledgers_own_without_reading_it(tmp_path):
    """Lessons read their as-of date with ``newest_extract_date``: the same date as the ledger's
    newest extract, an identical receipt's included (the receipt here is the newest)."""
    from homicide_assets.lib.compliance import newest_extract_date
    from homicide_assets.lib.store.ingest import Receipt

    url = f"sqlite:///{tmp_path / 'platform.db'}"
    assert newest_extract_date(url) is None and ledger_as_of(read_ledger(url)) is None
    older = _delivery("uhb", "me_deaths", 0)
    older.pop("quarantine_rule")
    with session_scope(url) as s:
        s.add(Delivery(**older, sha256="a", file_name="uhb__me_deaths__20261001.csv", extension="csv",
                       size_bytes=1, archive_path="archive/a"))
    assert newest_extract_date(url) == ledger_as_of(read_ledger(url)) == older["extract_date"]
    with session_scope(url) as s:
        s.add(Receipt(file_name="wht__me_deaths__20261009.csv", partner_folder="wht", sha256="a",
                      outcome="duplicate", delivery_id=older["delivery_id"]))
        s.add(Receipt(file_name="not a delivery.txt", partner_folder="wht", outcome="duplicate"))
    assert newest_extract_date(url) == ledger_as_of(read_ledger(url)) == date(2026, 10, 9)
