"""Rates, intervals, control limits, scope and the police-partner view, on known numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from homicide_assets.lib import hotspots as H
from homicide_assets.lib import patterns as P
from homicide_assets.lib.feeds import LA_CODES

BHAM, COV, DUD, SAND, SOL, WAL, WOLV = LA_CODES


# --------------------------------------------------------------------------------------
# Statistics on textbook numbers


def test_exact_poisson_interval_matches_published_values():
    # Garwood limits as tabulated (e.g. Ulm 1990; the R call poisson.test(k)$conf.int)
    low, high = P.poisson_ci([0, 1, 10, 100])
    assert low[0] == 0 and high[0] == pytest.approx(3.6889, abs=1e-4)
    assert low[1] == pytest.approx(0.02532, abs=1e-5) and high[1] == pytest.approx(5.5716, abs=1e-4)
    assert low[2] == pytest.approx(4.7954, abs=1e-4) and high[2] == pytest.approx(18.3904, abs=1e-4)
    assert low[3] == pytest.approx(81.3639, abs=1e-3) and high[3] == pytest.approx(121.6268, abs=1e-3)


def test_rate_per_100k_per_year_and_its_interval():
    rate, low, high = P.rate_with_ci([10, 30], [100_000, 300_000], [1.0, 2.0])
    assert rate[0] == pytest.approx(10.0) and low[0] == pytest.approx(4.7954, abs=1e-4)
    assert high[0] == pytest.approx(18.3904, abs=1e-4)
    assert rate[1] == pytest.approx(5.0)  # 30 deaths / 600,000 person-years


def test_clopper_pearson_share_interval():
    low, high = P.clopper_pearson([5, 0, 10], [10, 10, 10])
    assert low[0] == pytest.approx(0.18709, abs=1e-5) and high[0] == pytest.approx(0.81291, abs=1e-5)
    assert low[1] == 0 and high[1] == pytest.approx(0.30850, abs=1e-5)
    assert high[2] == 1 and low[2] == pytest.approx(0.69150, abs=1e-5)


def test_poisson_limits_are_exact_and_state_their_false_alarm_rate():
    lower, upper, fa = P.poisson_limits([2.0, 50.0])
    # lambda 2: P(X > 8) = 0.000237 <= 0.001 but P(X > 7) = 0.0011 > 0.001
    assert upper[0] == 8 and lower[0] == 0
    assert fa[0] == pytest.approx(0.000237, abs=2e-6)
    # lambda 50: P(X > 73) = 0.00089; P(X < 30) = 0.00072
    assert upper[1] == 73 and lower[1] == 30
    assert fa[1] < 2 * P.CONTROL_TAIL and fa[1] > P.CONTROL_TAIL


def test_two_period_comparison():
    assert P.compare_counts(100, 100, 365, 365) == pytest.approx(1.0)
    assert P.compare_counts(150, 100, 365, 365) < 0.01
    assert P.compare_counts(0, 0, 365, 365) == 1.0


# --------------------------------------------------------------------------------------
# Control chart


def _months(first: date, n: int) -> list[date]:
    return [P.add_months(first, i) for i in range(n)]


def test_control_chart_flags_a_spike_in_the_reporting_period_only():
    months = _months(date(2023, 10, 1), 36)
    counts = np.full(36, 10)
    counts[5] = 40  # a spike in the baseline is never an exceedance
    counts[30] = 40  # a spike in the monitored year is
    chart = P.control_chart(counts, months, monitor_from=date(2025, 10, 1))
    flagged = [months[i] for i, e in enumerate(chart["exceedance"]) if e]
    assert flagged == [date(2026, 4, 1)]
    assert chart["exceedance"][30] == "above"
    assert "baseline: 24 months" in chart["note"]
    # centre line follows the days in the month: a 31-day month expects more than a 30-day one
    assert chart["expected"][0] > chart["expected"][1]  # October vs November
    assert all(0 < fa < 2 * P.CONTROL_TAIL for fa in chart["false_alarm"])


def test_control_chart_with_one_year_of_history_is_phase_one():
    months = _months(date(2025, 10, 1), 12)
    chart = P.control_chart(np.full(12, 5), months, monitor_from=date(2025, 10, 1))
    assert chart["note"].startswith("phase I")
    assert not any(chart["exceedance"])


def test_control_chart_flags_a_fall_when_the_limit_allows_it():
    months = _months(date(2023, 10, 1), 36)
    counts = np.full(36, 60)
    counts[33] = 20
    chart = P.control_chart(counts, months, monitor_from=date(2025, 10, 1))
    assert chart["exceedance"][33] == "below"


# --------------------------------------------------------------------------------------
# A constructed register


def register(rows: list[dict]) -> pl.DataFrame:
    base = {
        "death_id": None,
        "person_key": None,
        "police_report_id": None,
        "source_records": [],
        "date_of_death": None,
        "la_code": BHAM,
        "sex": "m",
        "age_at_death": 30,
        "police_classification": None,
        "inquest_conclusion": None,
        "icd10_underlying": None,
        "known_to_services": [],
        "disagreements": [],
        "match_probability": 1.0,
    }
    out = []
    for i, r in enumerate(rows):
        row = {**base, "death_id": f"D{i:04d}", "person_key": f"P{i:04d}", **r}
        if not row["source_records"]:
            row["source_records"] = (
                [f"death_reports:wmp:{row['police_report_id']}"]
                if row["police_report_id"]
                else [f"me_deaths:uhb:ME{i}"]
            )
        out.append(row)
    return pl.DataFrame(out, schema=REGISTER_SCHEMA)


REGISTER_SCHEMA = {
    "death_id": pl.String,
    "person_key": pl.String,
    "police_report_id": pl.String,
    "source_records": pl.List(pl.String),
    "date_of_death": pl.Date,
    "la_code": pl.String,
    "sex": pl.String,
    "age_at_death": pl.Int64,
    "police_classification": pl.String,
    "inquest_conclusion": pl.String,
    "icd10_underlying": pl.String,
    "known_to_services": pl.List(pl.String),
    "disagreements": pl.List(pl.String),
    "match_probability": pl.Float64,
}


def reports(ids: list[str], **columns) -> pl.DataFrame:
    n = len(ids)
    data = {
        "report_id": ids,
        "method": ["sharp_instrument"] * n,
        "ethnicity": ["white"] * n,
        "location_type": ["street"] * n,
        "domestic_abuse_related": [False] * n,
        "incident_lat": [52.48] * n,
        "incident_lon": [-1.90] * n,
        "_extract_date": [date(2026, 9, 30)] * n,
    }
    data.update(columns)
    return pl.DataFrame(data)


def test_scope_keeps_police_reports_and_unnatural_partner_deaths_only():
    d = date(2026, 3, 1)
    reg = register(
        [
            {"police_report_id": "DR-2026-000001", "date_of_death": d, "police_classification": "natural"},
            {"date_of_death": d, "icd10_underlying": "I21.9"},  # natural, ME only: out
            {"date_of_death": d, "icd10_underlying": "I21.9", "inquest_conclusion": "natural_causes"},  # out
            {"date_of_death": d, "icd10_underlying": "X42"},  # external cause
            {"date_of_death": d, "icd10_underlying": "F11.2"},  # drug poisoning (ONS)
            {"date_of_death": d, "icd10_underlying": "R99"},  # unknown cause
            {"date_of_death": d, "inquest_conclusion": "pending", "icd10_underlying": "I21.9"},  # inquest
        ]
    )
    inv = P.investigations(reg, reports(["DR-2026-000001"]))
    assert inv.get_column("death_id").to_list() == ["D0000", "D0003", "D0004", "D0005", "D0006"]
    assert inv.get_column("scope_reason").to_list() == [
        "police report",
        "external cause of death",
        "drug poisoning",
        "cause unknown",
        "inquest conclusion",
    ]
    assert inv.filter(~pl.col("has_police_report")).get_column("method").unique().to_list() == [
        "no police report"
    ]


def test_homicide_by_any_source():
    d = date(2026, 3, 1)
    reg = register(
        [
            {"police_report_id": "DR-1", "date_of_death": d, "police_classification": "suspected_homicide"},
            {
                "police_report_id": "DR-2",
                "date_of_death": d,
                "police_classification": "natural",
                "inquest_conclusion": "unlawful_killing",
            },
            {"date_of_death": d, "icd10_underlying": "X99.1"},  # assault by sharp object, no police report
            {"police_report_id": "DR-4", "date_of_death": d, "police_classification": "suspected_suicide"},
        ]
    )
    inv = P.investigations(reg, reports(["DR-1", "DR-2", "DR-4"]))
    assert inv.get_column("homicide").to_list() == [True, True, True, False]
    dis = inv.get_column("classification_disagreement").to_list()
    assert dis[1] == "police: natural; inquest: unlawful killing"
    assert dis[0] is None and dis[3] is None


def test_open_conclusions_never_disagree_and_assault_cause_contradicts_natural():
    d = date(2026, 3, 1)
    reg = register(
        [
            {
                "police_report_id": "DR-1",
                "date_of_death": d,
                "police_classification": "homicide",
                "inquest_conclusion": "open",
            },
            {
                "police_report_id": "DR-2",
                "date_of_death": d,
                "police_classification": "natural",
                "icd10_underlying": "Y04",
            },
            {
                "police_report_id": "DR-3",
                "date_of_death": d,
                "police_classification": "unexplained",
                "icd10_underlying": "Y04",
            },
        ]
    )
    dis = P.investigations(reg, reports(["DR-1", "DR-2", "DR-3"])).get_column("classification_disagreement")
    assert dis.to_list() == [None, "police: natural; cause of death: assault (ICD-10 Y04)", None]


def test_reporting_period_is_the_last_twelve_complete_months():
    empty = pl.DataFrame(schema={"date_of_death": pl.Date})
    p = P.reporting_period(empty, date(2026, 9, 30))
    assert (p.start, p.end, p.previous_start, p.previous_end) == (
        date(2025, 10, 1),
        date(2026, 9, 30),
        date(2024, 10, 1),
        date(2025, 9, 30),
    )
    p = P.reporting_period(empty, date(2026, 9, 29))  # September not complete yet
    assert (p.start, p.end) == (date(2025, 9, 1), date(2026, 8, 31))


def _year_of_deaths(per_la: dict[str, int], homicide_every: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, ids, i = [], [], 0
    start = date(2025, 10, 1)
    for la, n in per_la.items():
        for k in range(n):
            rid = f"DR-2026-{i:06d}"
            rows.append(
                {
                    "police_report_id": rid,
                    "date_of_death": start + timedelta(days=(k * 7) % 365),
                    "la_code": la,
                    "police_classification": "homicide" if k % homicide_every == 0 else "natural",
                    "sex": "f" if k % 2 else "m",
                    "age_at_death": 17 + k % 60,
                    "known_to_services": ["housing"] if k % 4 == 0 else [],
                }
            )
            ids.append(rid)
            i += 1
    return register(rows), reports(ids)


def test_death_patterns_breakdowns_add_up_and_rates_use_each_population():
    per_la = {BHAM: 120, COV: 40, DUD: 30, SAND: 60, SOL: 10, WAL: 25, WOLV: 35}
    reg, dr = _year_of_deaths(per_la)
    pops = {c: 100_000 for c in LA_CODES} | {BHAM: 1_000_000}
    out = P.death_patterns(reg, dr, data_as_of=date(2026, 9, 30), population=pops)
    assert tuple(out.columns) == P.PATTERN_COLUMNS
    cur = out.filter(
        (pl.col("section") == "breakdown") & (pl.col("note") == "current") & (pl.col("measure") == "all")
    )
    la = cur.filter(pl.col("dimension") == "local_authority")
    assert dict(zip(la["la_code"], la["deaths"])) == per_la
    years = 365 / 365.25
    bham = la.filter(pl.col("la_code") == BHAM).row(0, named=True)
    assert bham["rate_per_100k"] == pytest.approx(120 / (1_000_000 * years) * 100_000)
    assert bham["rate_ci_low"] < bham["rate_per_100k"] < bham["rate_ci_high"]
    for dim, _ in P.DIMENSIONS:  # every dimension partitions the same deaths
        assert cur.filter(pl.col("dimension") == dim)["deaths"].sum() == sum(per_la.values()), dim
    sex = cur.filter(pl.col("dimension") == "sex")
    assert set(sex["category"]) == {"male", "female"}
    assert (sex["denominator"] == sum(pops.values())).all()
    force = out.filter(
        (pl.col("section") == "change") & (pl.col("dimension") == "force") & (pl.col("measure") == "all")
    )
    assert force["deaths"][0] == sum(per_la.values())
    hom = out.filter(
        (pl.col("section") == "change") & (pl.col("dimension") == "force") & (pl.col("measure") == "homicide")
    )
    assert hom["deaths"][0] == sum(len(range(0, n, 3)) for n in per_la.values())


def test_funnel_flags_the_authority_far_above_the_force_rate():
    per_la = {BHAM: 100, COV: 30, DUD: 28, SAND: 120, SOL: 19, WAL: 25, WOLV: 24}
    reg, dr = _year_of_deaths(per_la)
    out = P.death_patterns(reg, dr, data_as_of=date(2026, 9, 30))
    funnel = out.filter((pl.col("section") == "funnel") & (pl.col("measure") == "all"))
    flagged = dict(zip(funnel["category"], funnel["exceedance"]))
    assert flagged["Sandwell"] == "above"
    assert flagged["Birmingham"] == "below"  # 100 against ~170 expected for its population
    assert flagged["Coventry"] is None
    assert funnel["false_alarm_rate"].max() < 2 * P.FUNNEL_OUTER_TAIL


def test_police_partner_view_counts_partner_only_deaths_and_services():
    d = date(2026, 3, 1)
    reg = register(
        [
            {
                "police_report_id": "DR-1",
                "date_of_death": d,
                "police_classification": "natural",
                "source_records": ["death_reports:wmp:DR-1", "me_deaths:uhb:ME1"],
                "known_to_services": ["housing"],
            },
            {
                "police_report_id": "DR-2",
                "date_of_death": d,
                "police_classification": "natural",
                "inquest_conclusion": "unlawful_killing",
                "source_records": ["death_reports:wmp:DR-2", "inquests:coroner_bs:I1"],
            },
            {
                "date_of_death": d,
                "icd10_underlying": "X42",
                "la_code": SAND,
                "source_records": ["me_deaths:swbh:ME3", "inquests:coroner_bc:I3"],
                "known_to_services": ["housing", "substance_misuse"],
            },
            {
                "date_of_death": d,
                "icd10_underlying": "R99",
                "la_code": SAND,
                "source_records": ["me_deaths:swbh:ME4"],
            },
        ]
    )
    out = P.death_patterns(reg, reports(["DR-1", "DR-2"]), data_as_of=date(2026, 9, 30))
    pp = out.filter((pl.col("section") == "police_partner") & (pl.col("measure") == "all"))

    def rows(dim):
        r = pp.filter(pl.col("dimension") == dim)
        return dict(zip(r["category"], r["deaths"]))

    assert rows("reporting_source") == {
        "police and partners": 2,
        "medical examiner and coroner, no police report": 1,
        "medical examiner only, no police report": 1,
    }
    assert rows("no_police_report_by_local_authority") == {"Sandwell": 2}
    assert rows("classification_disagreement") == {
        "police: natural; inquest: unlawful killing": 1,
        "any classification disagreement": 1,
    }
    assert rows("known_to_services") == {"any service": 2, "housing": 2, "substance misuse": 1}
    share = pp.filter(
        (pl.col("dimension") == "known_to_services") & (pl.col("category") == "any service")
    ).row(0, named=True)
    assert share["share"] == pytest.approx(0.5) and share["denominator"] == 4


def test_police_data_as_of_reads_receipts_then_ledger():
    receipts = pl.DataFrame(
        {
            "file_name": ["wmp__death_reports__20260930.csv", "uhb__me_deaths__20261001.csv", "notes.txt"],
            "partner_folder": ["wmp", "uhb", "wmp"],
            "outcome": ["duplicate", "accepted", "quarantined"],
        }
    )
    ledger = pl.DataFrame({"feed": ["death_reports"], "extract_date": [date(2026, 9, 28)]})
    assert P.police_data_as_of(ledger, receipts) == date(2026, 9, 30)
    assert P.police_data_as_of(ledger, None) == date(2026, 9, 28)
    assert P.police_data_as_of(None, None, reports(["DR-1"])) == date(2026, 9, 30)


# --------------------------------------------------------------------------------------
# Hotspots


def test_postcode_district_and_text_placement():
    ed = pl.DataFrame(
        {
            "attendance_id": ["a", "b", "c", "d"],
            "arrived_at": [datetime(2026, 1, 5, 22, 0)] * 4,
            "assault_at": [None] * 4,
            "assault_postcode": ["B12 9AB", None, "ZZ1 1ZZ", None],
            "assault_location_text": [None, "outside the chip shop, B70", None, "in town"],
        }
    ).with_columns(
        pl.col("arrived_at").dt.replace_time_zone("Europe/London"),
        pl.col("assault_at").cast(pl.Datetime("us", "Europe/London")),
    )
    placed = H.ed_assault_locations(ed)
    assert placed["district"].to_list() == ["B12", "B70", None, None]
    assert placed["la_code"].to_list() == [BHAM, SAND, None, None]
    assert placed["placed_by"].to_list() == ["postcode", "location text", "not placed", "not placed"]


def test_space_time_expectation_and_a_planted_hotspot():
    rng = np.random.default_rng(7)
    areas = [f"A{i}" for i in range(10)]
    quarters = [date(2025, 1, 1), date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1)]
    rows = [(a, q) for a in areas for q in quarters for _ in range(int(rng.poisson(20)))]
    rows += [("A3", quarters[2])] * 40  # planted
    events = pl.DataFrame(rows, schema={"area_id": pl.String, "period_start": pl.Date}, orient="row")
    out = H.space_time_hotspots(events)
    cell = out.filter((pl.col("area_id") == "A3") & (pl.col("period_start") == quarters[2])).row(
        0, named=True
    )
    n_a = events.filter(pl.col("area_id") == "A3").height
    n_q = events.filter(pl.col("period_start") == quarters[2]).height
    assert cell["expected"] == pytest.approx(n_a * n_q / events.height)
    assert cell["hotspot"] and cell["p_value"] < H.HOTSPOT_P
    assert out.filter(pl.col("hotspot")).height == 1
    assert out["expected"].sum() == pytest.approx(events.height)
    assert (out["false_alarm_rate"] < H.HOTSPOT_P).all()


def test_grid_cells_are_one_kilometre():
    lat = np.array([52.48, 52.48, 52.489, 52.48])
    lon = np.array([-1.90, -1.8999, -1.90, -1.885])
    ids, c_lat, c_lon = H.grid_cells(lat, lon)
    assert ids[0] == ids[1] != ids[2]  # ~1 km north is the next row
    assert ids[0] != ids[3]  # ~1 km east is the next column
    x, y = H.project(np.array([c_lat[0]]), np.array([c_lon[0]]))
    assert x[0] % 1000 == pytest.approx(500, abs=1) and y[0] % 1000 == pytest.approx(500, abs=1)


# --------------------------------------------------------------------------------------
# Alerts for exceedances (raised by the patterns asset)


def test_each_exceedance_is_alerted_once(tmp_path):
    from homicide_assets.defs.patterns.assets import exceedances, raise_exceedance_alerts
    from homicide_assets.defs.quality.resources import AlertChannelResource
    from homicide_assets.lib.alerts import alerts

    per_la = {BHAM: 100, COV: 30, DUD: 28, SAND: 120, SOL: 19, WAL: 25, WOLV: 24}
    reg, dr = _year_of_deaths(per_la)
    ex = exceedances(P.death_patterns(reg, dr, data_as_of=date(2026, 9, 30)))
    assert ex.height >= 2  # Sandwell above, Birmingham below (funnel)
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    assert raise_exceedance_alerts(url, ex, AlertChannelResource()) == ex.height
    assert raise_exceedance_alerts(url, ex, AlertChannelResource()) == 0  # the same facts again: no new alert
    stored = alerts(url, kind="exceedance")
    assert len(stored) == ex.height
    sandwell = next(a for a in stored if a.subject.startswith("Sandwell: death investigations"))
    assert "above the control limit" in sandwell.subject and "120" in sandwell.body
