"""The report: tables to HTML and CSV, the partner edition's protection, a real browser, the assets.

The slow tests build the committed tiny sample (``seeds/sample_deliveries``) once, through
``homicide-assets build``, and check the report against the tables it was made from and
against an independent recount from the death register.

The browser test needs Debian's ``chromium``: the session fixture installs it with apt when
it is missing (root and network needed), else the test is skipped naming what is missing.
``make test`` needs nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from homicide_assets.lib import disclosure as D
from homicide_assets.lib import report as R
from homicide_assets.lib.feeds import LA_CODES
from homicide_assets.lib.patterns import death_patterns, period_of
from homicide_assets.lib.settings import REPO_ROOT, DataDir
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.test_patterns import BHAM, SAND, register, reports

SAMPLE = REPO_ROOT / "seeds" / "sample_deliveries" / "landing"
RUN_DATE = date(2026, 11, 30)


class ReportTables(HTMLParser):
    """Every ``<table data-table>`` of a report: rows of {column: (data-value, text)}; tiles."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[dict[str, tuple[str | None, str]]]] = {}
        self.tiles: dict[str, str] = {}
        self._table = self._row = self._cell = self._tile = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "data-table" in a:
            self._table = a["data-table"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = {}
        elif tag == "td" and self._row is not None:
            self._cell = (a.get("data-col"), a.get("data-value"))
            self._text = []
        elif tag == "div" and "data-tile" in a:
            self._tile = a["data-tile"]
            self._text = []

    def handle_data(self, data):
        if self._cell is not None or self._tile is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row[self._cell[0]] = (self._cell[1], "".join(self._text).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._tile is not None:
            self.tiles[self._tile] = "".join(self._text).strip()
            self._tile = None


def parse(path: Path) -> ReportTables:
    p = ReportTables()
    p.feed(path.read_text(encoding="utf-8"))
    return p


# --------------------------------------------------------------------------------------
# Fast: constructed frames


def _inputs(**kw) -> R.ReportInputs:
    rows, ids = [], []
    for i in range(60):
        rid = f"DR-2026-{i:06d}"
        la = SAND if i < 3 else BHAM
        rows.append(
            {
                "police_report_id": rid,
                "date_of_death": date(2025, 10, 1 + i % 28),
                "la_code": la,
                "police_classification": "homicide" if i % 5 == 0 else "natural",
            }
        )
        ids.append(rid)
    rows.append({"date_of_death": date(2026, 2, 3), "icd10_underlying": "X99", "la_code": BHAM})
    reg = register(rows)
    dr = reports(
        ids,
        forename=["Alice"] * 60,
        surname=[f"Zebedee{i}" for i in range(60)],
        incident_postcode=["B12 9ZZ"] * 60,
    )
    return R.ReportInputs(
        death_patterns=death_patterns(reg, dr, data_as_of=date(2026, 9, 30)),
        death_register=reg,
        death_reports=dr,
        run_date=RUN_DATE,
        **kw,
    )


def test_partner_table_hides_small_counts_and_what_derives_from_them():
    table = R.Table(
        "t",
        "T",
        [
            R.Col("category", "Category"),
            R.Col("deaths", "Deaths", "count"),
            R.Col("share", "Share", "share", of="deaths"),
        ],
        R.with_total_row(
            pl.DataFrame(
                {"category": ["a", "b", "c"], "deaths": [3, 50, 20], "share": [3 / 73, 50 / 73, 20 / 73]}
            ),
            "category",
            ["deaths"],
        ),
        total_row=True,
    )
    partner = R.render_table(table, "partner")
    cells = [[c.html for c in row["cells"]] for row in partner.rows]
    assert cells == [
        ["a", "&lt;5", "&ndash;"],
        ["b", "50", "68.5%"],
        ["c", "[c]", "&ndash;"],
        ["Total", "73", ""],
    ]
    assert partner.csv["deaths"].to_list() == ["<5", "50", "[c]", "73"]
    assert partner.csv["share"].to_list()[0] in ("", None)
    full = R.render_table(table, "full")
    assert [row["cells"][1].value for row in full.rows] == [3, 50, 20, 73]


def test_table_totals_must_add_up_for_the_partner_edition():
    bad = R.Table(
        "t",
        "T",
        [R.Col("category", "Category"), R.Col("deaths", "Deaths", "count")],
        pl.DataFrame({"category": ["a", "b", "Total"], "deaths": [3, 50, 60]}),
        total_row=True,
    )
    with pytest.raises(ValueError, match="total of deaths"):
        R.render_table(bad, "partner")


def test_missing_sections_say_not_yet_available(tmp_path):
    result = R.build_report(_inputs(), tmp_path)
    page = (tmp_path / RUN_DATE.isoformat() / R.FULL_FILE).read_text()
    for key in ("series/linked_series", "lessons/recommendations", "partners/compliance"):
        assert f"Not yet available: {key}" in page
    assert result.editions["full"].csv_paths["by_local_authority"].exists()
    assert (tmp_path / RUN_DATE.isoformat() / R.PARTNER_FILE).exists()


def test_partner_edition_carries_no_identifiers(tmp_path):
    series = pl.DataFrame(
        {
            "series_id": ["S1"],
            "death_ids": [["D0001", "D0002"]],
            "police_report_ids": [["DR-2026-000001", "DR-2026-000002"]],
            "size": [2],
            "score": [0.9],
            "kinds": [["shared_person"]],
            "reason": ["same finder: A. Zebedee1"],
            "first_flagged_on": [date(2025, 10, 2)],
            "flagged_at_member": [2],
        }
    )
    links = pl.DataFrame(
        {
            "death_id_a": ["D0001"],
            "death_id_b": ["D0002"],
            "score": [0.95],
            "evidence": [["same finder: A. Zebedee1 (2 reports)", "410 m apart, 23 days"]],
        }
    )
    inputs = _inputs(linked_series=series, case_links=links)
    result = R.build_report(inputs, tmp_path)
    folder = tmp_path / RUN_DATE.isoformat()
    full = (folder / R.FULL_FILE).read_text()
    partner = (folder / R.PARTNER_FILE).read_text()
    partner_csvs = "".join(p.read_text() for p in folder.glob(f"{R.PARTNER_CSV_PREFIX}*.csv"))
    assert "410 m apart" in full and "410 m apart" not in partner
    for needle in ("DR-2026-000001", "Zebedee1", "D0001"):
        assert needle in full  # the full edition names (test of the test)
        assert needle not in partner and needle not in partner_csvs
    assert "P0001" not in partner and "B12 9ZZ" not in partner and "52.48" not in partner
    assert "<5" in partner or "&lt;5" in partner  # Sandwell's 3 deaths
    assert result.editions["partner"].tables["linked_series"].rows[0]["cells"][1].html == "&lt;5"


def test_offline_by_construction(tmp_path):
    R.build_report(_inputs(), tmp_path)
    for name in (R.FULL_FILE, R.PARTNER_FILE):
        page = (tmp_path / RUN_DATE.isoformat() / name).read_text()
        assert "<script" not in page and "@import" not in page and "@font-face" not in page
        assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
        assert "default-src 'none'" in page  # the page forbids itself any request


# --------------------------------------------------------------------------------------
# Slow: the committed sample, built end to end


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny sample through ``homicide-assets build``; then both editions from its warehouse."""
    from homicide_assets.cli import run_build

    root = tmp_path_factory.mktemp("report_build")
    prebuilt = os.environ.get("REPORT_TEST_PREBUILT")  # a data dir where the sample was built (saves minutes)
    if prebuilt:
        shutil.copytree(prebuilt, root / "data")
    data_dir = DataDir(root / "data").ensure()
    home = data_dir.root / "dagster_home"
    if not prebuilt:
        shutil.copytree(SAMPLE, data_dir.landing, dirs_exist_ok=True)
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
        mp.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
        mp.delenv("HOMICIDE_DATABASE_URL", raising=False)
        mp.setenv("DAGSTER_HOME", str(home))
        summary = None if prebuilt else run_build(quiet=True)
        inputs = R.inputs_from_data_dir(data_dir, RUN_DATE)
        result = R.build_report(inputs, data_dir.reports)
        yield {"data_dir": data_dir, "inputs": inputs, "result": result, "summary": summary, "home": home}


@pytest.mark.slow
def test_report_numbers_equal_the_tables_and_an_independent_recount(built):
    inputs, result = built["inputs"], built["result"]
    full = parse(result.editions["full"].html_path)
    patterns = inputs.death_patterns
    start, end = period_of(patterns)
    # 1. the authority table is the patterns table
    cur = patterns.filter(
        (pl.col("section") == "breakdown")
        & (pl.col("note") == "current")
        & (pl.col("dimension") == "local_authority")
    )
    want = {r["category"]: r for r in cur.filter(pl.col("measure") == "all").iter_rows(named=True)}
    hom = {
        r["category"]: r["deaths"] for r in cur.filter(pl.col("measure") == "homicide").iter_rows(named=True)
    }
    rows = full.tables["by_local_authority"]
    assert [r["category"][1] for r in rows[:7]] == list(LA_CODES.values())
    for row in rows[:-1]:  # the seven authorities, then any deaths whose authority is not recorded
        name = row["category"][1]
        assert int(row["deaths"][0]) == want[name]["deaths"]
        assert int(row["homicides"][0]) == hom.get(name, 0)
        if name in LA_CODES.values():  # "not recorded" has no population, so no rate
            assert float(row["rate_per_100k"][0]) == pytest.approx(want[name]["rate_per_100k"])
            assert float(row["rate_ci_low"][0]) == pytest.approx(want[name]["rate_ci_low"])
        else:
            assert row["rate_per_100k"][0] is None
    total = int(rows[-1]["deaths"][0])
    assert total == sum(r["deaths"] for r in want.values())
    assert full.tiles["deaths"] == f"{total:,}"
    # 2. an independent recount from the register: police report, or partner marks unnatural
    reg = inputs.death_register
    icd = pl.col("icd10_underlying").fill_null("")
    unnatural = (
        pl.col("police_report_id").is_not_null()
        | (pl.col("inquest_conclusion").is_not_null() & (pl.col("inquest_conclusion") != "natural_causes"))
        | icd.str.contains(r"^[VWXY]")
        | icd.str.contains(r"^F1[1-689]")
        | icd.str.contains(r"^R9[5-9]")
    )
    recount = reg.filter(unnatural & pl.col("date_of_death").is_between(start, end))
    assert total == recount.height
    by_la = dict(recount.group_by("la_code").len().iter_rows())
    for code, name in LA_CODES.items():
        assert want[name]["deaths"] == by_la.get(code, 0), name
    # 3. partners-only deaths: table total = register rows with no police report in scope
    nopol = full.tables["no_police_report_by_local_authority"]
    assert int(nopol[-1]["deaths"][0]) == recount.filter(pl.col("police_report_id").is_null()).height
    # 4. every CSV is its HTML table, value for value
    for name, rendered in result.editions["full"].tables.items():
        csv = pl.read_csv(result.editions["full"].csv_paths[name], infer_schema=False)
        html_rows = full.tables.get(name, [])
        shown = min(len(html_rows), R.LIST_ROWS)
        assert csv.height == len(rendered.rows), name
        for i in range(shown):
            for col, (value, _text) in html_rows[i].items():
                if value is not None:
                    assert str(csv[col][i]) == value, (name, i, col)
    # 5. lessons and compliance sections come from their tables
    recs = inputs.recommendations
    if recs is not None:
        status = full.tables["recommendations_by_status"]
        assert int(status[-1]["recommendations"][0]) == recs.height
    if inputs.compliance is not None:
        assert len(full.tables["partner_compliance"]) == inputs.compliance.height


@pytest.mark.slow
def test_partner_edition_of_the_sample_is_protected(built):
    inputs, result = built["inputs"], built["result"]
    partner = result.editions["partner"]
    page = partner.html_path.read_text()
    dr = inputs.death_reports
    for rid in dr["report_id"].to_list():
        assert rid not in page
    for death_id in inputs.death_register["death_id"].head(200).to_list():
        assert death_id not in page
    for key in inputs.death_register["person_key"].drop_nulls().head(200).to_list():
        assert key not in page
    for forename, surname in dr.select("forename", "surname").drop_nulls().head(100).iter_rows():
        assert f"{forename} {surname}" not in page
    for pc in dr["incident_postcode"].drop_nulls().head(100).to_list():
        assert pc not in page
    for name, rendered in partner.tables.items():  # no protected count of 1-4 is printed anywhere
        table = rendered.protection.get("table")
        if table is not None:
            assert D.is_disclosive(table) == [], name
        for row in rendered.rows:
            for cell in row["cells"]:
                if "sup" in cell.css:
                    assert cell.value is None
    csv_text = "".join(p.read_text() for p in partner.csv_paths.values())
    assert "DR-20" not in csv_text


# --------------------------------------------------------------------------------------
# A real browser


@pytest.fixture(scope="session")
def chromium():
    from homicide_assets.lib.report_browser import ensure_chromium

    try:
        return ensure_chromium()
    except RuntimeError as err:
        pytest.skip(f"headless Chromium unavailable: {err}")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow
def test_both_editions_open_offline_in_chromium(built, chromium, tmp_path):
    from homicide_assets.lib.report_browser import Chromium

    result = built["result"]
    with Chromium(chromium) as browser:
        for edition in ("full", "partner"):
            visit = browser.visit(
                result.editions[edition].html_path,
                screenshots={"page": {"full": True, "max_height": 4000}},
                evaluate={
                    "svgs": "document.querySelectorAll('svg').length",
                    "tables": "document.querySelectorAll('table').length",
                    "title": "document.title",
                },
            )
            assert visit.loaded
            assert visit.errors == [], visit.errors
            assert visit.network_requests == [], visit.network_requests
            width, height = _png_size(visit.screenshots["page"])
            assert width == 1280 and height > 1500
            assert visit.evaluations["svgs"] >= 3 and visit.evaluations["tables"] >= 10
            assert "Death investigations" in visit.evaluations["title"]
            (tmp_path / f"{edition}.png").write_bytes(visit.screenshots["page"])


@pytest.mark.slow
def test_the_browser_check_catches_a_request_and_a_console_error(chromium, tmp_path):
    """The harness must be able to fail: a page that calls out and logs an error is caught."""
    from homicide_assets.lib.report_browser import Chromium

    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
        "<script>console.error('boom')</script></body></html>"
    )
    with Chromium(chromium) as browser:
        visit = browser.visit(page)
    assert any("127.0.0.1:9" in u for u in visit.network_requests)
    assert any("boom" in e for e in visit.errors)


# --------------------------------------------------------------------------------------
# The assets and the schedule


def _all_assets():
    import homicide_assets.definitions as d
    from homicide_assets.defs.patterns import patterns_assets
    from homicide_assets.defs.report import report_assets

    mine = {k for a in [*patterns_assets, *report_assets] for k in a.keys}
    base = [a for a in d.defs.assets if not (set(getattr(a, "keys", [])) & mine)]
    return base, patterns_assets, report_assets


@pytest.mark.slow
def test_assets_write_both_editions_and_show_the_summary(built):
    from dagster import AssetSelection, DagsterInstance, materialize

    from homicide_assets.defs.patterns import DEATH_PATTERNS_KEY, VIOLENCE_HOTSPOTS_KEY
    from homicide_assets.defs.quality.resources import AlertChannelResource
    from homicide_assets.defs.report import PARTNER_KEY, REPORT_KEY
    from homicide_assets.resources import PlatformResource, WarehouseIOManager

    data_dir = built["data_dir"]
    base, patterns_assets, report_assets = _all_assets()
    platform = PlatformResource(data_dir=str(data_dir.root), pseudonym_key=TEST_KEY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(built["home"]))
        mp.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
        result = materialize(
            [*base, *patterns_assets, *report_assets],
            selection=AssetSelection.assets(
                DEATH_PATTERNS_KEY, VIOLENCE_HOTSPOTS_KEY, REPORT_KEY, PARTNER_KEY
            ),
            resources={
                "platform": platform,
                "warehouse_io_manager": WarehouseIOManager(platform=platform),
                "alert_channel": AlertChannelResource(),
            },
            run_config={
                "ops": {"death_investigations_reports": {"config": {"run_date": "2026-12-07", "pdf": False}}}
            },
            instance=DagsterInstance.ephemeral(),
        )
    assert result.success
    folder = data_dir.reports / "2026-12-07"
    assert (folder / R.FULL_FILE).exists() and (folder / R.PARTNER_FILE).exists()
    assert (folder / "by_local_authority.csv").exists()
    assert (folder / f"{R.PARTNER_CSV_PREFIX}by_local_authority.csv").exists()
    mats = {m.asset_key: m for m in result.get_asset_materialization_events()}
    for key, name in ((REPORT_KEY, R.FULL_FILE), (PARTNER_KEY, R.PARTNER_FILE)):
        meta = mats[key].materialization.metadata
        assert meta["path"].value == str(folder / name)
        assert "deaths were investigated" in meta["summary"].value
    patterns = pl.read_parquet(data_dir.warehouse_file(["patterns", "death_patterns"]))
    assert patterns.height and set(patterns["section"].unique()) >= {"breakdown", "trend", "funnel", "change"}


def test_weekly_schedule_runs_the_report_and_its_upstream_on_monday_morning():
    from dagster import AssetKey, Definitions

    import homicide_assets.definitions as d
    from homicide_assets.defs.report import PARTNER_KEY, REPORT_KEY, report_schedules

    base, patterns_assets, report_assets = _all_assets()
    defs = Definitions(
        assets=[*base, *patterns_assets, *report_assets],
        schedules=report_schedules,
        resources=d.defs.resources,
    )
    schedule = defs.get_schedule_def("weekly_death_investigations_report")
    assert schedule.cron_schedule == "0 6 * * 1" and schedule.execution_timezone == "Europe/London"
    job = defs.get_repository_def().get_job(schedule.job_name)
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {
        REPORT_KEY.to_user_string(),
        PARTNER_KEY.to_user_string(),
        "patterns/death_patterns",
        "linkage/death_register",
        "staged/death_reports",
    } <= keys
    assert not any(k.startswith("raw/") for k in keys)
    assert AssetKey(["raw", "death_reports"]) not in job.asset_layer.selected_asset_keys


def test_pdf_when_weasyprint_is_installed_else_a_plain_reason(tmp_path):
    import importlib.util

    result = R.build_report(_inputs(), tmp_path, editions=("partner",), pdf=True)
    out = result.editions["partner"]
    if importlib.util.find_spec("weasyprint") is None:
        assert out.pdf_path is None and "WeasyPrint is not installed" in out.pdf_note
    else:
        assert out.pdf_path.read_bytes()[:5] == b"%PDF-"
