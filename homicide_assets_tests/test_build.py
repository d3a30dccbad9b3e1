"""End to end: deliveries in landing -> `homicide-assets build` -> staged tables and the ledger."""

from __future__ import annotations

import polars as pl
import pytest
from sqlmodel import select

from homicide_assets.cli import run_build
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt
from homicide_assets_tests.deliveries import csv_bytes, death_report, drop, person

pytestmark = pytest.mark.slow


def _deliveries(landing):
    drop(landing, "wmp", "wmp__death_reports__20260105.csv",
         csv_bytes("death_reports", [death_report(1), death_report(2), death_report(3, classification="murder")]))
    drop(landing, "wmp", "wmp__death_reports__20260106.csv",
         csv_bytes("death_reports", [death_report(1, investigation_status="charged"), death_report(4)], bom=True))
    drop(landing, "wmp", "wmp__death_report_persons__20260106.csv",
         csv_bytes("death_report_persons", [person(1, 1), person(2, 1, role="Reporting_Person"), person(77, 1)]))
    drop(landing, "wmp", "wmp__death_reports__20260107.csv", b"")  # empty: quarantined whole
    drop(landing, "wmp", "notes.txt", b"not a delivery")


def test_build_takes_landing_stages_and_records_everything(platform_env):
    data_dir = platform_env
    _deliveries(data_dir.landing)
    summary = run_build(quiet=True)
    assert summary["failed_jobs"] == []
    assert summary["accepted"] == 4 and summary["quarantined_files"] == 1

    staged = pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"]))
    assert sorted(staged["report_id"]) == ["DR-2026-000001", "DR-2026-000002", "DR-2026-000004"]
    assert staged.filter(pl.col("report_id") == "DR-2026-000001")["investigation_status"][0] == "charged"
    persons = pl.read_parquet(data_dir.warehouse_file(["staged", "death_report_persons"]))
    assert sorted(persons["report_id"]) == ["DR-2026-000001", "DR-2026-000002"]

    with session_scope(data_dir.database_url()) as s:
        deliveries = {d.file_name: d for d in s.exec(select(Delivery))}
        quarantine = list(s.exec(select(QuarantineEntry)))
    assert set(deliveries) == {"wmp__death_reports__20260105.csv", "wmp__death_reports__20260106.csv",
                               "wmp__death_report_persons__20260106.csv", "wmp__death_reports__20260107.csv"}
    first = deliveries["wmp__death_reports__20260105.csv"]
    assert (first.rows_read, first.rows_staged, first.rows_quarantined, first.rows_superseded) == (3, 1, 1, 1)
    assert deliveries["wmp__death_reports__20260107.csv"].status == "quarantined"
    for d in deliveries.values():  # nothing lost
        assert d.rows_read == d.rows_staged + d.rows_quarantined + d.rows_superseded
    rules = sorted((q.kind, q.rule) for q in quarantine)
    assert rules == [("file", "empty_file"), ("file", "file_name"), ("row", "enum"), ("row", "report_exists")]


def test_delivering_again_changes_nothing(platform_env):
    data_dir = platform_env
    _deliveries(data_dir.landing)
    run_build(quiet=True)
    before = {p.relative_to(data_dir.warehouse): p.read_bytes() for p in data_dir.warehouse.rglob("*.parquet")}
    drop(data_dir.landing, "wmp", "wmp__death_reports__20260105.csv",
         csv_bytes("death_reports", [death_report(1), death_report(2), death_report(3, classification="murder")]))
    summary = run_build(quiet=True)
    assert summary["accepted"] == 0 and summary["duplicates"] == 1
    after = {p.relative_to(data_dir.warehouse): p.read_bytes() for p in data_dir.warehouse.rglob("*.parquet")}
    assert before.keys() == after.keys()
    staged_paths = [n for n in before if n.parts[0] == "staged"]
    for name in staged_paths:
        assert before[name] == after[name], f"{name} changed after an identical re-delivery"
    staged_before = pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"]))
    assert staged_before.height == 3
    with session_scope(data_dir.database_url()) as s:
        assert len(list(s.exec(select(Delivery)))) == 4
        outcomes = sorted(r.outcome for r in s.exec(select(Receipt)))
    assert outcomes.count("duplicate") == 1


def _sqlite_text(path) -> str:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        tables = [t for (t,) in con.execute("select name from sqlite_master where type='table'")]
        return "\n".join(str(row) for t in tables for row in con.execute(f'select * from "{t}"'))
    finally:
        con.close()


def test_no_raw_identifier_in_staged_outputs_or_logs(platform_env, capsys):
    data_dir = platform_env
    _deliveries(data_dir.landing)
    run_build(quiet=False)
    out = capsys.readouterr()
    identifiers = ["9434765919", "943 476 5919", "7700 900123", "07700900123", "NOM0001X1Q", "Testperson1"]
    texts = [out.out, out.err]
    for frame_path in data_dir.warehouse.glob("staged/*.parquet"):
        frame = pl.read_parquet(frame_path)
        kept = frame.drop([c for c in ("forename", "surname") if c in frame.columns])
        texts.append(str(kept.rows()))
    for log in (data_dir.root / "dagster_home").rglob("*"):
        if log.is_file() and log.suffix == ".db":
            texts.append(_sqlite_text(log))  # run and event logs, metadata, check results
        elif log.is_file() and log.suffix in ("", ".log", ".out", ".err", ".json"):
            texts.append(log.read_bytes().decode("utf-8", "ignore"))
    texts.append(_sqlite_text(data_dir.database_path))  # ledger, quarantine, alerts
    blob = "\n".join(texts)
    for raw in identifiers:
        assert raw not in blob, f"raw identifier {raw!r} found"
