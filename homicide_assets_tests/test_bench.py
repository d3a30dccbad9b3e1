"""The bench's next police extracts: a corrected record, and a new death within the contract."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from homicide_assets.bench import next_police_extract, next_police_extract_new_death
from homicide_assets.lib.parsing import parse_delivery, parse_delivery_name
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.settings import SEEDS_DIR
from homicide_assets.lib.staging import stage_feed

SAMPLE = Path(SEEDS_DIR) / "sample_deliveries" / "landing"


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def _staged(path: Path, key: bytes):
    name = parse_delivery_name(path.name)
    parsed = parse_delivery(path.read_bytes(), name, path.name)
    raw = parsed.frame.with_columns(
        pl.lit("bench").alias("_delivery_id"), pl.lit("wmp").alias("_partner_id"),
        pl.lit(path.name).alias("_source_file"), pl.lit(name.extract_date, dtype=pl.Date).alias("_extract_date"),
        pl.lit(name.seq, dtype=pl.Int64).alias("_seq"))
    return stage_feed("death_reports", raw, key, default_registry())


def test_new_death_extract_follows_the_correction_with_a_death_no_extract_holds(tmp_path, key):
    sent = tmp_path / "sent"
    correction = next_police_extract(SAMPLE, sent)
    death_file = next_police_extract_new_death([SAMPLE, sent], tmp_path / "landing")
    assert death_file.name > correction.name  # the day after the correction
    earlier = [r for p in sorted((SAMPLE / "wmp").glob("wmp__death_reports__*.csv")) for r in _rows(p)]
    earlier += _rows(correction)
    (death,) = _rows(death_file)
    assert death["report_id"] not in {r["report_id"] for r in earlier}
    assert (death["forename"], death["surname"], death["date_of_birth"]) not in {
        (r["forename"], r["surname"], r["date_of_birth"]) for r in earlier}
    assert death["nhs_number"] == ""
    source = earlier[-1]  # the report it was made from keeps nothing that names the person
    assert death["narrative"] != source["narrative"]
    # within the contract: staged whole, nothing quarantined, dated the day before the extract
    result = _staged(death_file, key)
    assert result.rejects.height == 0 and result.staged.height == 1
    staged = result.staged.row(0, named=True)
    assert staged["date_of_death"] < parse_delivery_name(death_file.name).extract_date
    assert staged["reported_at"].date() == staged["date_of_death"]
    # the same seed gives the same extract
    again = next_police_extract_new_death([SAMPLE, sent], tmp_path / "again")
    assert again.read_bytes() == death_file.read_bytes()
