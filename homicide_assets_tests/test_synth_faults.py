"""``--faults`` writes a catalogue of malformed deliveries, each listed with the rule it breaks."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from homicide_assets.lib.feeds import FEEDS, FILE_NAME_PATTERN
from homicide_assets.lib.registry import load_registry
from homicide_assets.lib.synth import generate
from homicide_assets.lib.synth.faults import FAULT_CATALOGUE
from homicide_assets.lib.synth.people import is_valid_nhs_number
from homicide_assets.synth import main


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faulty")
    assert main(["--scale", "tiny", "--seed", "5", "--out", str(out), "--faults"]) == 0
    return out


def test_every_catalogued_fault_is_written_and_listed(faulty: Path) -> None:
    faults = pl.read_parquet(faulty / "ground_truth" / "faults.parquet")
    assert set(faults["kind"].to_list()) == {s.kind for s in FAULT_CATALOGUE}
    for row in faults.iter_rows(named=True):
        assert (faulty / row["file"]).exists(), row["file"]
        assert row["expected_outcome"] in {"quarantine_file", "quarantine_rows", "drop_columns", "no_op"}
    assert faults["file"].n_unique() == faults.height


def _fault(faulty: Path, kind: str) -> dict:
    return (
        pl.read_parquet(faulty / "ground_truth" / "faults.parquet")
        .filter(pl.col("kind") == kind)
        .row(0, named=True)
    )


def test_file_level_faults_really_break_their_rule(faulty: Path) -> None:
    registry = load_registry()
    assert not FILE_NAME_PATTERN.match(Path(_fault(faulty, "bad_file_name")["file"]).name)
    assert FILE_NAME_PATTERN.match(Path(_fault(faulty, "unknown_feed")["file"]).name)["feed"] not in FEEDS
    assert (faulty / _fault(faulty, "empty_file")["file"]).stat().st_size == 0
    with pytest.raises(UnicodeDecodeError):
        (faulty / _fault(faulty, "undecodable_bytes")["file"]).read_bytes().decode("utf-8")
    not_permitted = Path(_fault(faulty, "feed_not_permitted")["file"])
    parts = FILE_NAME_PATTERN.match(not_permitted.name)
    assert parts["feed"] not in registry.agreement(parts["partner_id"]).permitted_feeds
    assert registry.partner(Path(_fault(faulty, "unknown_partner")["file"]).parent.name) is None
    header = (faulty / _fault(faulty, "header_renamed")["file"]).read_bytes().split(b"\n")[0].decode()
    assert "last_name" in header and ",surname," not in header
    assert (faulty / _fault(faulty, "wrong_extension")["file"]).read_bytes()[:2] != b"PK"


def test_row_level_faults_really_break_their_rule(faulty: Path) -> None:
    bad_nhs = _fault(faulty, "bad_nhs_check_digit")
    frame = pl.read_csv(faulty / bad_nhs["file"], infer_schema=False)
    assert not is_valid_nhs_number(frame["nhs_number"][bad_nhs["line"] - 1])
    dup = _fault(faulty, "duplicate_key")
    frame = pl.read_csv(faulty / dup["file"], infer_schema=False)
    assert frame["report_id"].is_duplicated().any()
    enum = _fault(faulty, "bad_enum")
    frame = pl.read_csv(faulty / enum["file"], infer_schema=False)
    assert (
        frame["classification"][enum["line"] - 1]
        not in FEEDS["death_reports"].column("classification").values
    )


def test_faults_leave_the_valid_deliveries_and_truth_alone(faulty: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    generate("tiny", 5, clean)
    faults = set(pl.read_parquet(faulty / "ground_truth" / "faults.parquet")["file"].to_list())
    faulty_files = {str(p.relative_to(faulty)) for p in (faulty / "landing").rglob("*") if p.is_file()}
    clean_files = {str(p.relative_to(clean)) for p in (clean / "landing").rglob("*") if p.is_file()}
    assert faulty_files - faults == clean_files
    for name in ("source_records", "series", "deaths"):
        assert pl.read_parquet(faulty / "ground_truth" / f"{name}.parquet").equals(
            pl.read_parquet(clean / "ground_truth" / f"{name}.parquet")
        )
