"""Typing, normalising, rule checks, pseudonyms and newest-extract-wins in the stager."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from homicide_assets.lib.parsing import parse_delivery, parse_delivery_name
from homicide_assets.lib.registry import load_registry
from homicide_assets.lib.staging import (
    nhs_number_is_valid,
    normalise_phone_expr,
    normalise_postcode_expr,
    parse_date_expr,
    parse_timestamp_expr,
    stage_feed,
)
from homicide_assets_tests.deliveries import csv_bytes, death_report, person

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


def raw_frame(feed: str, rows: list[dict], delivery_id="d1", extract=date(2026, 1, 5), seq=0, partner="wmp"):
    name = parse_delivery_name(f"{partner}__{feed}__{extract:%Y%m%d}.csv")
    parsed = parse_delivery(csv_bytes(feed, rows), name, f"{delivery_id}.csv")
    return parsed.frame.with_columns(
        pl.lit(delivery_id).alias("_delivery_id"), pl.lit(partner).alias("_partner_id"),
        pl.lit(f"{delivery_id}.csv").alias("_source_file"), pl.lit(extract).alias("_extract_date"),
        pl.lit(seq, dtype=pl.Int64).alias("_seq"),
    )


def stage(feed, rows, key, **kw):
    return stage_feed(feed, raw_frame(feed, rows), key, load_registry(), now=NOW, **kw)


def test_types_and_normalisation(key):
    out = stage("death_reports", [death_report(1)], key).staged
    row = out.row(0, named=True)
    assert row["date_of_death"] == date(2026, 1, 4)  # UK day-first
    assert row["date_of_birth"] == date(1990, 2, 3)
    assert row["classification"] == "suspected_suicide"  # case-insensitive enum
    assert row["sex"] == "m"
    assert row["home_postcode"] == "B23 6TJ"
    assert row["substances"] == ["alcohol", "cocaine"]
    assert row["attending_officers"] == ["4821", "5530"]
    assert row["domestic_abuse_related"] is False and row["gang_related"] is False
    assert row["suspects_count"] == 0
    assert out.schema["reported_at"] == pl.Datetime("us", "Europe/London")
    assert row["record_key"] == "death_reports:wmp:DR-2026-000001"


def test_identifiers_are_pseudonymised_and_absent(key):
    staged = stage("death_reports", [death_report(1)], key).staged
    persons = stage("death_report_persons", [person(1, 1)], key).staged
    assert "nhs_number" not in staged.columns and len(staged["nhs_number_key"][0]) == 32
    assert {"nominal_id", "phone"}.isdisjoint(persons.columns)
    text = " ".join(str(v) for frame in (staged, persons) for v in frame.row(0))
    for raw in ("9434765919", "943 476 5919", "NOM0001X1Q", "7700 900123", "07700900123"):
        assert raw not in text


def test_same_phone_in_other_formats_gets_same_key(key):
    a = stage("death_report_persons", [person(1, 1, phone="+44 7700 900123"), person(1, 2, phone="07700-900123")], key)
    keys = a.staged["phone_key"].to_list()
    assert keys[0] == keys[1] and keys[0] is not None


@pytest.mark.parametrize(
    "override, column, rule",
    [
        ({"classification": "murder"}, "classification", "enum"),
        ({"report_id": "DR-26-1"}, "report_id", "pattern"),
        ({"forename": ""}, "forename", "required"),
        ({"nhs_number": "9434765918"}, "nhs_number", "nhs_check_digit"),
        ({"home_postcode": "B23"}, "home_postcode", "postcode_format"),
        ({"date_of_death": "01/25/2026"}, "date_of_death", "date_format"),  # month-first refused
        ({"reported_at": "yesterday"}, "reported_at", "timestamp_format"),
        ({"domestic_abuse_related": "maybe"}, "domestic_abuse_related", "bool_format"),
        ({"suspects_count": "-1"}, "suspects_count", "range"),
        ({"suspects_count": "two"}, "suspects_count", "int_format"),
        ({"incident_lat": "51.5074", "incident_lon": "-0.1278"}, "incident_lat", "force_area"),
        ({"substances": "ghb;glue"}, "substances", "enum"),
        ({"date_of_birth": "2027-01-01"}, "date_of_death", "date_order"),
        ({"reported_at": "2027-01-01T10:00"}, "reported_at", "not_in_future"),
        ({"narrative": "x" * 4001}, "narrative", "max_length"),
    ],
)
def test_rule_breaks_are_quarantined_with_reason(key, override, column, rule):
    result = stage("death_reports", [death_report(1), death_report(2, **override)], key)
    assert result.staged["report_id"].to_list() == ["DR-2026-000001"]
    hits = result.rejects.filter((pl.col("column") == column) & (pl.col("rule") == rule))
    assert hits.height == 1, result.rejects
    assert hits["_source_line"][0] == 4 and "d1.csv: line 4" in hits["reason"][0]


def test_quarantined_values_never_show_personal_data(key):
    bad = death_report(2, forename="", surname="Zebedee", nhs_number="9434765918", date_of_birth="31/31/1990")
    rejects = stage("death_reports", [bad], key).rejects
    text = " ".join(str(v) for row in rejects.iter_rows() for v in row)
    assert "9434765918" not in text and "31/31/1990" not in text


def test_persons_must_refer_to_a_known_report(key):
    result = stage("death_report_persons", [person(1, 1), person(9, 1)], key,
                   known_report_ids=pl.Series(["DR-2026-000001"]))
    assert result.staged["report_id"].to_list() == ["DR-2026-000001"]
    assert result.rejects["rule"].to_list() == ["report_exists"]


def test_newest_extract_wins_and_superseded_are_counted(key):
    old = raw_frame("death_reports", [death_report(1, investigation_status="open"), death_report(2)],
                    delivery_id="d1", extract=date(2026, 1, 5))
    new = raw_frame("death_reports", [death_report(1, investigation_status="charged")],
                    delivery_id="d2", extract=date(2026, 1, 6))
    raw = pl.concat([new, old])  # order of arrival must not matter
    result = stage_feed("death_reports", raw, key, load_registry(), now=NOW)
    by_id = {r["report_id"]: r for r in result.staged.iter_rows(named=True)}
    assert by_id["DR-2026-000001"]["investigation_status"] == "charged"
    counts = {r["_delivery_id"]: r for r in result.counts_by_delivery(raw).iter_rows(named=True)}
    assert counts["d1"] == {"_delivery_id": "d1", "rows_read": 2, "rows_staged": 1, "rows_quarantined": 0, "rows_superseded": 1}
    for c in counts.values():  # conservation
        assert c["rows_read"] == c["rows_staged"] + c["rows_quarantined"] + c["rows_superseded"]


def test_trust_and_authority_codes_must_be_the_partners_own(key):
    row = {"me_case_id": "ME1", "trust_code": "RRK", "nhs_number": "", "forename": "A", "surname": "B",
           "date_of_birth": "1940-01-01", "sex": "f", "date_of_death": "2026-01-01", "place_of_death_type": "hospital",
           "referred_to_coroner": "N", "me_concern": "N"}
    raw = raw_frame("me_deaths", [row, row | {"me_case_id": "ME2", "trust_code": "RXK"}], partner="uhb")
    result = stage_feed("me_deaths", raw, key, load_registry(), now=NOW)
    assert result.staged["me_case_id"].to_list() == ["ME1"]
    assert result.rejects["rule"].to_list() == ["own_code"]


def test_pfd_due_date_defaults_to_56_days(key):
    row = {"review_id": "PFD-1", "recommendation_id": "1", "review_type": "pfd", "review_title": "t",
           "published_on": "2026-01-01", "recommendation_text": "x", "owner_organisation": "wmp", "status": "not_started"}
    raw = raw_frame("review_recommendations", [row])
    out = stage_feed("review_recommendations", raw, key, load_registry(), now=NOW).staged
    assert out["due_on"][0] == date(2026, 2, 26)


def test_value_parsers():
    s = pl.DataFrame({"v": ["2026-01-05", "05/01/2026", "5/1/2026", "2026-01-05 00:00:00", "01/13/2026", None]})
    assert s.select(parse_date_expr(pl.col("v")).alias("v"))["v"].to_list() == [
        date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 5), None, None]
    ts = pl.DataFrame({"v": ["2026-07-01T12:00", "2026-07-01T12:00:00+00:00", "01/07/2026 12:00", "2026-07-01 12:00:00Z"]})
    out = ts.select(parse_timestamp_expr(pl.col("v")).dt.convert_time_zone("UTC").alias("v"))["v"].to_list()
    assert [t.hour for t in out] == [11, 12, 11, 12]  # BST local time is UTC+1
    pc = pl.DataFrame({"v": ["b236tj", " B1 1aa ", "EC1A 1BB", "B23", "123 456"]})
    assert pc.select(normalise_postcode_expr(pl.col("v")).alias("v"))["v"].to_list() == ["B23 6TJ", "B1 1AA", "EC1A 1BB", None, None]
    nhs = pl.DataFrame({"v": ["9434765919", "9434765918", "123", "4010232137"]})
    assert nhs.select(nhs_number_is_valid(pl.col("v")).alias("v"))["v"].to_list() == [True, False, False, True]
    ph = pl.DataFrame({"v": ["+44 (0)121 496 0000", "0121-496-0000", "12345"]})
    assert ph.select(normalise_phone_expr(pl.col("v")).alias("v"))["v"].to_list() == ["01214960000", "01214960000", None]
