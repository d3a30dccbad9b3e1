"""The expectation suites: in step with the contract, passing good staged frames, failing bad ones.

Staged frames are made by the real stager (``lib.staging.stage_feed``) from good rows, so the
suites are tested against exactly what ``staged/<feed>`` holds. Bad frames are made by breaking
one rule per row (or, for column types and the column set, the whole frame): every
expectation of every suite must fail on its own breakage and name its rule and column.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from homicide_assets.lib import quality
from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.quality import ValidationInputs, validate_staged
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.settings import EXPECTATIONS_DIR, REPO_ROOT
from homicide_assets.lib.staging import stage_feed
from homicide_assets_tests.bad_inputs.rows import good_rows, raw_frame

KEY = b"test-pseudonym-key-0123456789abcdef"
ROWS = 90  # more rows than any suite has row-level rules: one rule broken per row
FEED_NAMES = list(FEEDS)


def _load_script():
    spec = importlib.util.spec_from_file_location("write_expectations", REPO_ROOT / "scripts" / "write_expectations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def staged() -> dict[str, pl.DataFrame]:
    """Good staged frames of every feed, made by the stager itself."""
    out: dict[str, pl.DataFrame] = {}
    for feed in FEED_NAMES:
        known = out["death_reports"].get_column("report_id") if feed == "death_report_persons" else None
        result = stage_feed(feed, raw_frame(feed, good_rows(feed, ROWS)), KEY, default_registry(),
                            known_report_ids=known)
        assert result.rejects.height == 0, result.rejects.head(5).to_dicts()
        out[feed] = result.staged
    return out


def _inputs(staged: dict[str, pl.DataFrame], feed: str) -> ValidationInputs:
    known = staged["death_reports"].get_column("report_id") if feed == "death_report_persons" else None
    return ValidationInputs(known_report_ids=known)


# ---------------------------------------------------------------------------------------
# The committed JSON is what the script writes from the contract
# ---------------------------------------------------------------------------------------

def test_committed_suites_match_the_contract():
    script = _load_script()
    for feed in FEED_NAMES:
        path = EXPECTATIONS_DIR / f"{feed}.json"
        assert path.exists(), f"{path} missing: run python scripts/write_expectations.py"
        assert path.read_text(encoding="utf-8") == script.suite_text(feed), (
            f"expectations/{feed}.json is stale: run python scripts/write_expectations.py and commit it")
    assert sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json")) == sorted(FEED_NAMES)


def test_script_check_mode_detects_a_stale_suite(tmp_path):
    script = _load_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    assert script.main(["--out", str(tmp_path), "--check"]) == 0
    path = tmp_path / "inquests.json"
    doc = json.loads(path.read_text())
    doc["expectations"].pop()
    path.write_text(json.dumps(doc))
    assert script.main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("feed", FEED_NAMES)
def test_every_contract_rule_has_an_expectation(feed):
    suite = quality.load_suite(feed)
    ids = [e["meta"]["rule_id"] for e in suite["expectations"]]
    assert len(ids) == len(set(ids)), "rule ids must be unique within a suite"
    for e in suite["expectations"]:
        assert e["meta"]["severity"] in ("ERROR", "WARN")
        assert e["severity"] == quality.GX_SEVERITY[e["meta"]["severity"]]
        assert e["meta"]["rule"]
    spec = FEEDS[feed]
    have = set(ids)
    for col in spec.columns:
        name = f"{col.name}_key" if col.pseudonymise else col.name
        assert f"{feed}.{name}.type" in have
        if col.required:
            assert f"{feed}.{name}.required" in have
        if col.values:
            assert f"{feed}.{name}.enum" in have
        if col.pattern:
            assert f"{feed}.{name}.pattern" in have
        if col.min_value is not None or col.max_value is not None:
            assert f"{feed}.{name}.range" in have
        if col.max_length:
            assert f"{feed}.{name}.max_length" in have
        if col.type == "postcode":
            assert f"{feed}.{name}.postcode" in have
        if col.pseudonymise:
            assert f"{feed}.{name}.pseudonym" in have
        if col.type == "timestamp":
            assert f"{feed}.{name}.not_in_future" in have
    assert f"{feed}.key.unique" in have
    for earlier, later in spec.date_order:
        assert f"{feed}.date_order.{earlier}.{later}" in have
    by_id = {e["meta"]["rule_id"]: e for e in suite["expectations"]}
    assert by_id[f"{feed}.key.unique"]["kwargs"]["column_list"] == [*spec.key, "_partner_id"]
    if feed == "death_reports":
        assert "death_reports.incident.force_area" in have
    if feed == "death_report_persons":
        assert "death_report_persons.report_id.exists" in have
    if feed in ("me_deaths", "ed_assaults"):
        assert f"{feed}.trust_code.own" in have
    if feed == "safeguarding_contacts":
        assert "safeguarding_contacts.la_code.own" in have
    if feed == "review_recommendations":
        assert by_id["review_recommendations.due_on.pfd_default"]["kwargs"]["row_condition"]["parameter"] == "pfd"


def test_nhs_number_rule_is_stated_on_the_pseudonym():
    suite = {e["meta"]["rule_id"]: e for e in quality.load_suite("me_deaths")["expectations"]}
    e = suite["me_deaths.nhs_number_key.pseudonym"]
    assert e["kwargs"]["regex"] == "^[0-9a-f]{32}$"
    assert "check digit" in e["meta"]["rule"]
    assert suite["me_deaths.nhs_number_key.usually_present"]["meta"]["severity"] == "WARN"


# ---------------------------------------------------------------------------------------
# Good frames pass; every rule fails on its own breakage
# ---------------------------------------------------------------------------------------

def _set(frame: pl.DataFrame, column: str, row: int, value, dtype=None) -> pl.DataFrame:
    dtype = dtype or frame.schema[column]
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column)
    )


def _get(frame: pl.DataFrame, column: str, row: int):
    return frame.get_column(column)[row]


LONDON = ZoneInfo("Europe/London")
FUTURE_TS = datetime(2099, 1, 1, 12, 0, tzinfo=LONDON)


def _break(frame: pl.DataFrame, e: dict, row: int) -> pl.DataFrame:
    """Break the rule of expectation ``e`` on ``row`` of ``frame`` (row 0 is left good)."""
    t, kw, rule_id = e["type"], e["kwargs"], e["meta"]["rule_id"]
    col = kw.get("column")
    if rule_id.endswith(".force_area"):
        return _set(_set(frame, "incident_lat", row, 51.5074), "incident_lon", row, -0.1278)  # London
    if rule_id.endswith("report_id.exists"):
        return _set(frame, "report_id", row, "DR-2099-999999")
    if rule_id.endswith("trust_code.own"):
        return _set(frame, "trust_code", row, "RXK")  # another trust's code
    if rule_id.endswith("la_code.own"):
        return _set(frame, "la_code", row, "E08000026")  # Coventry's code from Birmingham
    if t == "expect_column_values_to_not_be_null":
        if "row_condition" in kw:
            return _set(_set(frame, "review_type", row, "pfd"), col, row, None)
        return _set(frame, col, row, None)
    if t == "expect_column_values_to_be_in_set":
        return _set(frame, col, row, "zz_not_allowed")
    if t == "expect_column_values_to_match_regex":
        if isinstance(frame.schema[col], pl.List):
            return _set(frame, col, row, ["zz_not_allowed"], frame.schema[col])
        return _set(frame, col, row, "zz bad!")
    if t == "expect_column_values_to_be_between":
        dtype = frame.schema[col]
        if isinstance(kw.get("max_value"), dict):
            value = FUTURE_TS if isinstance(dtype, pl.Datetime) else date(2099, 1, 1)
        elif "max_value" in kw:
            value = kw["max_value"] + 1
        else:
            value = kw["min_value"] - 1
        return _set(frame, col, row, value)
    if t == "expect_column_value_lengths_to_be_between":
        return _set(frame, col, row, "x" * (kw["max_value"] + 1))
    if t == "expect_column_values_to_be_unique":
        return _set(frame, col, row, _get(frame, col, 0))
    if t == "expect_compound_columns_to_be_unique":
        for c in kw["column_list"]:
            frame = _set(frame, c, row, _get(frame, c, 0))
        return frame
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        later, earlier = kw["column_A"], kw["column_B"]
        if later.startswith("_check_"):  # a timestamp compared by its date
            source = later.removeprefix("_check_").removesuffix("_date")
            frame = _set(frame, source, row, datetime(2025, 5, 1, 9, 0, tzinfo=LONDON))
            return _set(frame, earlier, row, date(2025, 5, 2))
        if isinstance(frame.schema[later], pl.Datetime):
            frame = _set(frame, later, row, datetime(2025, 5, 1, 9, 0, tzinfo=LONDON))
            return _set(frame, earlier, row, datetime(2025, 5, 1, 10, 0, tzinfo=LONDON))
        frame = _set(frame, later, row, date(2025, 5, 1))
        return _set(frame, earlier, row, date(2025, 5, 2))
    raise AssertionError(f"no breakage for {t}")


FRAME_LEVEL = {"expect_column_values_to_be_of_type", "expect_table_columns_to_match_set"}


def _is_mostly(e: dict) -> bool:
    return "mostly" in e["kwargs"]


def _wrong_type(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if dtype in (pl.String,) or isinstance(dtype, pl.List):
        return pl.lit(7, dtype=pl.Int64).alias(column)
    if dtype == pl.Int64:
        return pl.lit(1.5).alias(column)
    if dtype == pl.Datetime("us", "Europe/London"):
        return pl.col(column).dt.replace_time_zone(None).alias(column)  # tz lost
    return pl.col(column).cast(pl.String).alias(column)


@pytest.mark.parametrize("feed", FEED_NAMES)
def test_suite_passes_a_good_staged_frame(feed, staged):
    report = validate_staged(feed, staged[feed], _inputs(staged, feed))
    assert report.rows == ROWS
    assert report.success, [o.summary() for o in report.failures()]
    assert report.passed("ERROR") and report.passed("WARN")
    assert len(report.outcomes) == len(quality.load_suite(feed)["expectations"])


@pytest.mark.parametrize("feed", FEED_NAMES)
def test_every_rule_fails_on_its_own_breakage(feed, staged, tmp_path):
    suite = quality.load_suite(feed)
    row_rules = [e for e in suite["expectations"] if e["type"] not in FRAME_LEVEL and not _is_mostly(e)]
    assert len(row_rules) < ROWS
    bad = staged[feed]
    broken_row = {}
    for i, e in enumerate(row_rules, start=1):
        bad = _break(bad, e, i)
        broken_row[e["meta"]["rule_id"]] = i
    for e in suite["expectations"]:
        if _is_mostly(e):  # "usually present": make it mostly absent (rows broken on purpose kept)
            col = e["kwargs"]["column"]
            keep = [broken_row[r["meta"]["rule_id"]] for r in row_rules if r["kwargs"].get("column") == col]
            bad = bad.with_columns(pl.when(pl.int_range(pl.len()).is_in(keep)).then(pl.col(col))
                                   .otherwise(None).alias(col))
    report = validate_staged(feed, bad, _inputs(staged, feed))
    assert not report.success and not report.passed("ERROR")
    failed = {o.rule_id: o for o in report.failures()}
    for e in suite["expectations"]:
        if e["type"] in FRAME_LEVEL:
            continue
        rule_id = e["meta"]["rule_id"]
        assert rule_id in failed, f"{rule_id} did not fail on a frame that breaks it ({e['meta']['rule']})"
        outcome = failed[rule_id]
        assert outcome.exception is None, (rule_id, outcome.exception)
        assert outcome.severity == e["meta"]["severity"]
        assert outcome.columns == e["meta"]["columns"] and outcome.columns
        assert outcome.unexpected_count and outcome.unexpected_count >= 1
    summary = report.summary("ERROR")
    assert {f["rule_id"] for f in summary["failed"]} == {o.rule_id for o in report.failures("ERROR")}
    paths = report.write(tmp_path / feed)
    page = paths["html"].read_text()
    assert "contract broken" in page and "BROKEN" in page
    assert e["meta"]["rule"].split(" ")[0] in page
    assert json.loads(paths["json"].read_text())["summary"]["feed"] == feed


@pytest.mark.parametrize("feed", FEED_NAMES)
def test_column_types_and_column_set_fail_on_a_reshaped_frame(feed, staged):
    suite = quality.load_suite(feed)
    frame = staged[feed]
    bad = frame.with_columns([_wrong_type(frame, c) for c in frame.columns]).with_columns(
        pl.lit("not permitted").alias("ethnic_origin_free_text"))
    report = validate_staged(feed, bad, _inputs(staged, feed))
    failed = {o.rule_id for o in report.failures("ERROR")}
    for e in suite["expectations"]:
        if e["type"] in FRAME_LEVEL:
            assert e["meta"]["rule_id"] in failed, e["meta"]["rule_id"]


def test_missing_column_is_named(staged):
    report = validate_staged("inquests", staged["inquests"].drop("coroner_area"))
    failed = {o.rule_id: o for o in report.failures("ERROR")}
    assert "inquests.table.columns" in failed
    assert "inquests.coroner_area.required" in failed
    assert failed["inquests.coroner_area.required"].exception  # cannot evaluate: the column is gone


def test_personal_values_are_masked_everywhere(staged, tmp_path):
    frame = _set(staged["death_reports"], "home_postcode", 3, "ZZSECRET 9ZZ")
    frame = _set(frame, "classification", 4, "zz_visible_class")
    frame = _set(frame, "report_id", 5, _get(frame, "report_id", 6))  # duplicate key
    frame = _set(frame, "narrative", 7, "Secretname " + "y" * 4000)
    report = validate_staged("death_reports", frame)
    postcode = report.outcome("home_postcode.postcode")
    assert not postcode.success and postcode.unexpected_sample == [quality.MASK]
    assert report.outcome("classification.enum").unexpected_sample == ["zz_visible_class"]
    assert report.outcome("narrative.max_length").unexpected_sample == [quality.MASK]
    page = report.to_html()
    paths = report.write(tmp_path)
    for text in (page, paths["json"].read_text(), json.dumps(report.summary(), default=str)):
        assert "ZZSECRET" not in text and "Secretname" not in text
        assert "zz_visible_class" in text


def test_warn_rules_do_not_break_the_contract(staged):
    frame = _set(staged["inquests"], "_extract_date", 2, date.today() + timedelta(days=400))
    report = validate_staged("inquests", frame)
    assert report.passed("ERROR")
    assert not report.passed("WARN")
    assert [o.rule_id for o in report.failures()] == ["inquests._extract_date.not_in_future"]
    assert "warnings for analysts" in report.to_html()


def test_reports_are_pruned_to_the_newest(staged, tmp_path):
    report = validate_staged("inquests", staged["inquests"].head(5))
    for i in range(5):
        report.write(tmp_path, stem=f"2026010{i}T000000", keep=3)
    assert sorted(p.name for p in tmp_path.glob("*.html")) == [
        "20260102T000000.html", "20260103T000000.html", "20260104T000000.html", "latest.html"]
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_person_check_needs_the_death_report_ids(staged):
    with pytest.raises(ValueError, match="death_reports"):
        validate_staged("death_report_persons", staged["death_report_persons"])


def test_only_the_requested_severity_is_run(staged):
    report = validate_staged("me_deaths", staged["me_deaths"], severities=("WARN",))
    assert report.outcomes and {o.severity for o in report.outcomes} == {"WARN"}


def test_empty_staged_frame_passes(staged):
    report = validate_staged("ed_assaults", staged["ed_assaults"].clear())
    assert report.rows == 0 and report.passed("ERROR")


def test_great_expectations_loaded_while_waiting_is_the_context_validation_uses(tmp_path):
    """``load_great_expectations`` (what ``build`` calls between its looks at landing) imports GX
    and makes the context; the first validation uses that context instead of making its own,
    and its verdicts are those of a validation that imported GX itself (a fresh process each)."""
    import subprocess
    import sys

    script = tmp_path / "validate.py"
    script.write_text(
        "import json, sys\n"
        "import polars as pl\n"
        "from homicide_assets.lib import quality\n"
        "from homicide_assets.lib.registry import default_registry\n"
        "from homicide_assets.lib.staging import stage_feed\n"
        "from homicide_assets_tests.bad_inputs.rows import good_rows, raw_frame\n"
        "context = None\n"
        "if sys.argv[1] == 'background':\n"
        "    quality.load_great_expectations()\n"
        "    context = quality._GX_STATE['context']\n"
        "    quality.load_great_expectations()  # one context per process\n"
        "    assert quality._GX_STATE['context'] is context\n"
        "else:\n"
        "    assert 'great_expectations' not in sys.modules\n"
        "staged = stage_feed('death_reports', raw_frame('death_reports', good_rows('death_reports', 20)),\n"
        "                    b'k' * 32, default_registry()).staged\n"
        "staged = staged.with_columns(pl.when(pl.col('report_id') == staged['report_id'][0])\n"
        "    .then(pl.lit('zz')).otherwise(pl.col('classification')).alias('classification'))\n"
        "report = quality.validate_staged('death_reports', staged)\n"
        "assert context is None or quality._GX_STATE['context'] is context\n"
        "print(json.dumps([[o.rule_id, o.success, o.unexpected_count] for o in report.outcomes]))\n")
    got = {}
    for how in ("background", "first-validation"):
        proc = subprocess.run([sys.executable, str(script), how], capture_output=True, text=True, cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        got[how] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["background"] == got["first-validation"]
    assert [rule for rule, success, _ in got["background"] if not success] == ["death_reports.classification.enum"]
