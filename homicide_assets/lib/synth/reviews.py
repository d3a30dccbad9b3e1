"""``review_recommendations``: learning reviews after deaths, their recommendations and progress.

Reviews are drawn from the deaths that lead to them (domestic homicides to DARDRs, knife and
gun homicides to OWHRs, adults known to services to SARs, children to CSPRs, inquests with a
PFD report to PFD responses, homicides to MIR debriefs) plus thematic IOPC and inspectorate
reports. Each recommendation's text names one or two themes a classifier should find (the
truth is in ``ground_truth/recommendation_themes.parquet``). Owners send a file on
publication and a quarterly update of the recommendations whose status changed.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import PFD_RESPONSE_DAYS
from homicide_assets.lib.synth import stats
from homicide_assets.lib.synth.config import LATEST_DATE, PERIOD_END, Scale
from homicide_assets.lib.synth.institutions import LA_PARTNER
from homicide_assets.lib.synth.rand import poisson_count
from homicide_assets.lib.synth.text import RECOMMENDATION_EVIDENCE, RECOMMENDATION_THEMES

THEMES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "dardr": ("domestic_abuse", "risk_assessment", "information_sharing", "multi_agency_working", "training"),
    "owhr": ("weapons", "information_sharing", "multi_agency_working", "safeguarding_referral"),
    "sar": (
        "safeguarding_referral",
        "mental_health",
        "substance_misuse",
        "supervision",
        "multi_agency_working",
    ),
    "cspr": ("safeguarding_referral", "information_sharing", "training", "multi_agency_working"),
    "pfd": ("mental_health", "substance_misuse", "risk_assessment", "information_sharing", "training"),
    "iopc": ("training", "supervision", "risk_assessment"),
    "inspectorate": ("information_sharing", "training", "supervision", "multi_agency_working"),
    "mir_debrief": ("information_sharing", "training", "weapons", "supervision"),
}
TITLES = {
    "dardr": "Domestic Abuse Related Death Review: {alias}",
    "owhr": "Offensive Weapons Homicide Review: {alias}",
    "sar": "Safeguarding Adult Review: {alias}",
    "cspr": "Child Safeguarding Practice Review: {alias}",
    "pfd": "Regulation 28 report to prevent future deaths ({alias})",
    "iopc": "IOPC learning report: {alias}",
    "inspectorate": "HMICFRS inspection: {alias}",
    "mir_debrief": "Major investigation debrief: {alias}",
}
THEMATIC_TITLES = (
    "the police response to deaths",
    "vulnerability and risk in custody",
    "responding to missing people",
    "information sharing between partners",
    "sudden death investigations",
)
OTHER_OWNERS = (
    "Birmingham and Solihull Integrated Care Board",
    "Black Country Integrated Care Board",
    "Probation Service",
    "Change Grow Live",
    "West Midlands Ambulance Service University NHS Foundation Trust",
    "Birmingham Women's and Children's NHS Foundation Trust",
    "Birmingham and Solihull Mental Health NHS Foundation Trust",
)
LA_NAMES = {
    "bham": "Birmingham",
    "cov": "Coventry",
    "dudley": "Dudley",
    "sandwell": "Sandwell",
    "solihull": "Solihull",
    "walsall": "Walsall",
    "wolves": "Wolverhampton",
}


def _quarter_end_after(d: date) -> date:
    month = ((d.month - 1) // 3 + 1) * 3
    end = date(d.year, month, 1) + timedelta(days=32)
    return date(end.year, end.month, 1) - timedelta(days=1)


def build_reviews(
    rng: np.random.Generator,
    scale: Scale,
    deaths: pl.DataFrame,
    report_ids: pl.DataFrame,
    inquests: pl.DataFrame,
    series: list[dict],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Recommendation rows (all versions) and their themes (truth)."""
    d = deaths.join(report_ids, on="death_id", how="inner", maintain_order="left")
    years = scale.force_years
    candidates: dict[str, pl.DataFrame] = {
        "dardr": d.filter((pl.col("true_category") == "homicide") & pl.col("domestic")),
        "owhr": d.filter(
            (pl.col("true_category") == "homicide")
            & pl.col("method").is_in(["sharp_instrument", "shooting"])
            & ~pl.col("domestic")
        ),
        "sar": d.filter(
            pl.col("true_category").is_in(["drug", "suicide", "natural"]) & (pl.col("age") >= 18)
        ),
        "cspr": d.filter(pl.col("age") < 18),
        "mir_debrief": d.filter(pl.col("true_category") == "homicide"),
        "iopc": d.filter(pl.col("location_type") == "custody"),
    }
    reviews = []
    serial_members = {s["series_id"]: s for s in series if s["kind"] == "serial_domestic"}
    for rtype, (per_year, _) in stats.REVIEWS_PER_FORCE_YEAR.items():
        if rtype in ("pfd", "inspectorate"):
            continue
        pool = candidates[rtype].sort("death_id")
        k = min(
            pool.height,
            poisson_count(rng, per_year * years, minimum=1 if rtype in ("dardr", "mir_debrief") else 0),
        )
        if k == 0:
            continue
        chosen = pool[sorted(rng.choice(pool.height, size=k, replace=False).tolist())]
        for row in chosen.iter_rows(named=True):
            lag = int(rng.integers(60, 540 if rtype in ("dardr", "owhr", "sar", "cspr") else 200))
            published = row["date_of_death"] + timedelta(days=lag)
            if published > PERIOD_END - timedelta(days=3):
                published = row["date_of_death"] + timedelta(days=int(rng.integers(14, 60)))
            if published > PERIOD_END - timedelta(days=3):
                continue
            linked = [row["report_id"]]
            sid = row.get("series_id")
            if rtype == "dardr" and sid in serial_members:
                linked = sorted(d.filter(pl.col("series_id") == sid)["report_id"].to_list())
            owner = {
                "dardr": LA_PARTNER[row["la_code"]],
                "sar": LA_PARTNER[row["la_code"]],
                "cspr": LA_PARTNER[row["la_code"]],
                "owhr": "vrp",
                "mir_debrief": "wmp",
                "iopc": "wmp",
            }[rtype]
            reviews.append(
                {
                    "type": rtype,
                    "partner": owner,
                    "published": published,
                    "linked": linked,
                    "la": LA_PARTNER[row["la_code"]],
                }
            )
    pfd = inquests.filter(pl.col("pfd_issued").fill_null(False)).unique(
        "inquest_ref", keep="last", maintain_order=True
    )
    for row in pfd.sort("inquest_ref").iter_rows(named=True):
        published = row["concluded_on"] + timedelta(days=int(rng.integers(0, 15)))
        if published <= PERIOD_END - timedelta(days=3):
            reviews.append(
                {
                    "type": "pfd",
                    "partner": row["_partner_id"],
                    "published": published,
                    "linked": [row["police_report_id"]] if row["police_report_id"] else [],
                    "la": None,
                }
            )
    for _ in range(poisson_count(rng, stats.REVIEWS_PER_FORCE_YEAR["inspectorate"][0] * years)):
        published = scale.period_start + timedelta(
            days=int(rng.integers(10, (PERIOD_END - scale.period_start).days - 3))
        )
        reviews.append(
            {"type": "inspectorate", "partner": "wmp", "published": published, "linked": [], "la": None}
        )
    if not reviews:
        return pl.DataFrame(), pl.DataFrame()
    reviews.sort(key=lambda r: (r["published"], r["type"], r["partner"]))
    rows, themes_rows = [], []
    counters: dict[tuple, int] = {}
    for r in reviews:
        key = (r["type"], r["partner"], r["published"].year)
        counters[key] = counters.get(key, 0) + 1
        review_id = f"{r['type'].upper()}-{r['partner'].upper()}-{r['published'].year}-{counters[key]:02d}"
        alias = (
            f"'{chr(65 + int(rng.integers(0, 26)))}' ({r['published'].year})"
            if r["type"] != "inspectorate"
            else THEMATIC_TITLES[int(rng.integers(0, len(THEMATIC_TITLES)))]
        )
        board = _board(r)
        lo, hi = stats.REVIEWS_PER_FORCE_YEAR[r["type"]][1]
        for k in range(int(rng.integers(lo, hi + 1))):
            themes = list(
                rng.choice(THEMES_BY_TYPE[r["type"]], size=1 if rng.random() < 0.7 else 2, replace=False)
            )
            owner_org = _owner(rng, r)
            text = " ".join(
                RECOMMENDATION_THEMES[t][int(rng.integers(0, len(RECOMMENDATION_THEMES[t])))] for t in themes
            )
            text = text.replace("{org}", owner_org if not owner_org.islower() else owner_org.upper()).replace(
                "{board}", board or "The partnership"
            )
            due = (
                (None if rng.random() < 0.4 else r["published"] + timedelta(days=PFD_RESPONSE_DAYS))
                if r["type"] == "pfd"
                else (
                    None
                    if rng.random() < 0.1
                    else r["published"] + timedelta(days=int(rng.integers(90, 365)))
                )
            )
            if due is not None and due > LATEST_DATE:
                due = None  # not yet agreed: nothing generated is dated after LATEST_DATE
            rec_id = f"R{k + 1:02d}"
            base = {
                "review_id": review_id,
                "recommendation_id": rec_id,
                "review_type": r["type"],
                "review_title": TITLES[r["type"]].format(alias=alias),
                "linked_report_ids": r["linked"],
                "published_on": r["published"],
                "recommendation_text": text,
                "owner_organisation": owner_org,
                "governance_board": board,
                "due_on": due,
                "_partner_id": r["partner"],
            }
            themes_rows.append(
                {
                    "record_key": f"review_recommendations:{r['partner']}:{review_id}|{rec_id}",
                    "review_id": review_id,
                    "recommendation_id": rec_id,
                    "themes": themes,
                }
            )
            # Status path: not_started -> in_progress -> implemented -> verified (or closed_not_implemented).
            day = r["published"]
            path = [("not_started", day, None, None)]
            accepted = bool(rng.random() < 0.95)
            for status, lo_d, hi_d in (
                ("in_progress", 30, 150),
                ("implemented", 60, 300),
                ("verified", 30, 200),
            ):
                if not accepted and status != "in_progress":
                    break
                day = day + timedelta(days=int(rng.integers(lo_d, hi_d)))
                if rng.random() < 0.15:
                    break
                path.append(
                    (
                        status,
                        day,
                        accepted,
                        RECOMMENDATION_EVIDENCE[int(rng.integers(0, len(RECOMMENDATION_EVIDENCE)))]
                        if status in ("implemented", "verified")
                        else None,
                    )
                )
            if not accepted:
                day = day + timedelta(days=int(rng.integers(30, 200)))
                path.append(("closed_not_implemented", day, False, None))
            for v, (status, updated, acc, evidence) in enumerate(path):
                available = r["published"] if v == 0 else _quarter_end_after(updated)
                if available > PERIOD_END:
                    break
                rows.append(
                    {
                        **base,
                        "accepted": acc if v else (None if rng.random() < 0.5 else True),
                        "status": status,
                        "status_updated_on": updated if v else r["published"],
                        "evidence": evidence,
                        "_available_on": available,
                        "_version": v + 1,
                    }
                )
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("linked_report_ids").cast(pl.List(pl.String)),
        _person_id=pl.lit(None, pl.String),
        _death_id=pl.lit(None, pl.String),
        _role=pl.lit(None, pl.String),
    )
    return frame, pl.DataFrame(themes_rows)


def _board(r: dict) -> str | None:
    la = LA_NAMES.get(r["la"] or "", "Birmingham")
    return {
        "dardr": f"{la} Community Safety Partnership",
        "owhr": "West Midlands Violence Reduction Partnership Board",
        "sar": f"{la} Safeguarding Adults Board",
        "cspr": f"{la} Safeguarding Children Partnership",
        "pfd": None,
        "iopc": "WMP Organisational Learning Board",
        "inspectorate": "WMP Organisational Learning Board",
        "mir_debrief": "WMP Major Crime Review Board",
    }[r["type"]]


def _owner(rng: np.random.Generator, r: dict) -> str:
    """Who a recommendation is addressed to: a partner id or another organisation's name."""
    options = ["wmp", r["partner"], r["la"] or "bham", "uhb", "swbh"] + list(OTHER_OWNERS)
    w = np.array([4, 4, 2, 1, 1] + [0.6] * len(OTHER_OWNERS))
    return options[int(rng.choice(len(options), p=w / w.sum()))]
