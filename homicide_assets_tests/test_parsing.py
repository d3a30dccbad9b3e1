"""Reading deliveries: names, CSV edge cases, XLSX and Parquet, whole-file refusals."""

from __future__ import annotations

import io
from datetime import date

import polars as pl
import pytest

from homicide_assets.lib.parsing import (
    DeliveryRefused,
    is_temporary_name,
    parse_delivery,
    parse_delivery_name,
    sniff_format,
)
from homicide_assets_tests.deliveries import csv_bytes, death_report


def test_delivery_name_parts():
    n = parse_delivery_name("wmp__death_reports__20260105__2.csv")
    assert (n.partner_id, n.feed, n.extract_date, n.seq, n.extension) == ("wmp", "death_reports", date(2026, 1, 5), 2, "csv")
    assert parse_delivery_name("coroner_bs__inquests__20260131.xlsx").partner_id == "coroner_bs"


@pytest.mark.parametrize(
    "name, rule",
    [
        ("wmp_death_reports_20260105.csv", "file_name"),
        ("wmp__death_reports__2026015.csv", "file_name"),
        ("wmp__death_reports__20261305.csv", "file_name"),
        ("wmp__death_reports__20260105.txt", "file_name"),
        ("wmp__deaths__20260105.csv", "unknown_feed"),
        ("wmp__death_reports__20260105..csv", "file_name"),
        ("..__death_reports__20260105.csv", "file_name"),
    ],
)
def test_bad_names_are_refused_with_rule(name, rule):
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery_name(name)
    assert exc.value.rule == rule
    assert name in exc.value.reason


@pytest.mark.parametrize("name", ["x.csv.part", "~$report.xlsx", ".hidden.csv", "a.tmp", "b.crdownload"])
def test_temporary_names(name):
    assert is_temporary_name(name)


def test_real_names_are_not_temporary():
    assert not is_temporary_name("wmp__death_reports__20260105.csv")


def _name(ext="csv"):
    return parse_delivery_name(f"wmp__death_reports__20260105.{ext}")


def test_csv_with_bom_quotes_commas_and_newlines_keeps_line_numbers():
    data = csv_bytes("death_reports", [death_report(1), death_report(2, narrative="plain")], bom=True)
    parsed = parse_delivery(data, _name(), "f.csv")
    assert parsed.frame.height == 2
    assert parsed.frame["narrative"][0] == 'Found by "J", near the canal,\nno note.'
    # first record spans lines 2-3 because of the newline inside its narrative
    assert parsed.frame["_source_line"].to_list() == [2, 4]
    assert parsed.frame.columns[0] == "report_id"  # BOM stripped from the first header


def test_empty_cells_are_null():
    parsed = parse_delivery(csv_bytes("death_reports", [death_report(1, ethnicity="")]), _name(), "f.csv")
    assert parsed.frame["ethnicity"][0] is None


def test_columns_outside_the_contract_are_dropped_and_named():
    data = csv_bytes("death_reports", [death_report(1) | {"religion": "x"}], extra_columns=("religion",))
    parsed = parse_delivery(data, _name(), "f.csv")
    assert parsed.dropped_columns == ["religion"]
    assert "religion" not in parsed.frame.columns


@pytest.mark.parametrize(
    "data, rule",
    [
        (b"", "empty_file"),
        (b"\xff\xfe\x00r\x00e\x00p", "encoding"),
        (b"report_id,reported_at\nDR-2026-000001,2026-01-05\n", "header_mismatch"),
    ],
)
def test_whole_file_refusals(data, rule):
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery(data, _name(), "f.csv")
    assert exc.value.rule == rule


def test_header_only_file_is_a_valid_empty_extract():
    parsed = parse_delivery(csv_bytes("death_reports", []), _name(), "f.csv")
    assert parsed.frame.height == 0 and "report_id" in parsed.frame.columns


def test_truncated_file_names_the_line():
    data = csv_bytes("death_reports", [death_report(1), death_report(2)])
    cut = data[: data.rindex(b"Found by") + 5]  # ends inside the quoted narrative
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery(cut, _name(), "f.csv")
    assert exc.value.rule == "truncated"
    assert "line 4" in exc.value.reason


def test_short_last_row_is_truncation():
    data = csv_bytes("death_reports", [death_report(1, narrative="x")]) + b"DR-2026-000002,2026-01-05\r\n"
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery(data, _name(), "f.csv")
    assert exc.value.rule == "truncated"
    assert exc.value.line == 3


def test_undecodable_names_the_line():
    data = csv_bytes("death_reports", [death_report(1, narrative="x"), death_report(2, forename="Zo\xeb")])
    data = data.replace("Zo\xeb".encode(), b"Zo\xeb")  # latin-1 byte in a UTF-8 file
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery(data, _name(), "f.csv")
    assert exc.value.rule == "encoding"
    assert "line 3" in exc.value.reason


def test_wrong_extension_for_content():
    frame = pl.DataFrame({"a": ["1"]})
    buf = io.BytesIO()
    frame.write_parquet(buf)
    assert sniff_format(buf.getvalue()) == "parquet"
    with pytest.raises(DeliveryRefused) as exc:
        parse_delivery(buf.getvalue(), _name("csv"), "f.csv")
    assert exc.value.rule == "wrong_extension"


def test_xlsx_and_parquet_read_as_text():
    rows = [death_report(1, narrative="x"), death_report(2, narrative="y")]
    frame = pl.DataFrame(rows)
    xbuf, pbuf = io.BytesIO(), io.BytesIO()
    frame.write_excel(xbuf)
    frame.write_parquet(pbuf)
    x = parse_delivery(xbuf.getvalue(), _name("xlsx"), "f.xlsx")
    p = parse_delivery(pbuf.getvalue(), _name("parquet"), "f.parquet")
    for parsed in (x, p):
        assert parsed.frame["report_id"].to_list() == ["DR-2026-000001", "DR-2026-000002"]
        assert parsed.frame.schema["incident_lat"] == pl.String
    assert x.frame["_source_line"].to_list() == [2, 3]
