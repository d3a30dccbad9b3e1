"""``inquests``: opened by HM Coroners, concluded months (homicides: years) later."""

from __future__ import annotations

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.synth import stats
from homicide_assets.lib.synth.config import PERIOD_END, NoiseParams
from homicide_assets.lib.synth.institutions import CORONER_AREA_NAME, CORONER_BY_LA
from homicide_assets.lib.synth.noise import record_identity
from homicide_assets.lib.synth.police import TRUTH_COLUMNS

#: Conclusions by apparent category [MOJ-COR conclusions mix]. A Port-like poisoning looks like
#: an overdose to the coroner: Port's victims received open conclusions.
CONCLUSIONS: dict[str, dict[str, float]] = {
    "homicide": {"unlawful_killing": 0.6, "narrative": 0.25, "open": 0.15},
    "suicide": {"suicide": 0.7, "narrative": 0.15, "open": 0.15},
    "drug": {"drug_related": 0.65, "accident_misadventure": 0.1, "open": 0.15, "narrative": 0.1},
    "road_traffic": {"road_traffic_collision": 0.85, "narrative": 0.15},
    "accident": {"accident_misadventure": 0.8, "narrative": 0.1, "alcohol_related": 0.05, "open": 0.05},
    "natural": {"natural_causes": 0.75, "narrative": 0.15, "alcohol_related": 0.1},
}
REF_PREFIX = {"coroner_bs": "BS", "coroner_bc": "BC", "coroner_cov": "COV"}


def build_inquests(
    rng: np.random.Generator,
    deaths: pl.DataFrame,
    report_ids: pl.DataFrame,
    persons: pl.DataFrame,
    noise: NoiseParams,
) -> pl.DataFrame:
    """Inquest rows: version 1 when opened (conclusion pending), version 2 when concluded."""
    inq = deaths.filter(pl.col("inquest")).join(report_ids, on="death_id", how="left", maintain_order="left")
    n = inq.height
    apparent = inq.select(pl.coalesce("apparent_category", "true_category")).to_series().to_numpy()
    port_like = inq["series_id"].fill_null("").str.starts_with("port_like").to_numpy()
    conclusion = np.empty(n, dtype=object)
    for cat, dist in CONCLUSIONS.items():
        idx = np.flatnonzero(apparent == cat)
        conclusion[idx] = np.asarray(list(dist), dtype=object)[
            rng.choice(len(dist), size=len(idx), p=list(dist.values()))
        ]
    conclusion[port_like] = np.asarray(["open", "drug_related", "narrative"], dtype=object)[
        rng.choice(3, port_like.sum(), p=[0.5, 0.3, 0.2])
    ]
    opened_lag = rng.integers(3, 22, n)
    duration = np.where(apparent == "homicide", rng.integers(300, 900, n), rng.integers(90, 500, n))
    pfd = rng.random(n) < np.where(
        np.isin(apparent, ["drug", "suicide"]), stats.PFD_SHARE * 2, stats.PFD_SHARE
    )
    ident = inq.select("death_id", "person_id").join(
        persons, on="person_id", how="left", maintain_order="left"
    )
    ident = record_identity(ident, "inquests", noise, rng, np.array([], dtype=object))
    coroner = np.array([CORONER_BY_LA[la] for la in inq["la_code"].to_list()], dtype=object)
    referred = inq["report_id"].is_not_null().to_numpy() & (rng.random(n) < 0.9)
    base = pl.DataFrame(
        {
            "coroner": coroner.tolist(),
            "coroner_area": [CORONER_AREA_NAME[c] for c in coroner],
            "police_report_id": pl.Series(
                np.where(referred, inq["report_id"].to_numpy(), None).tolist(), dtype=pl.String
            ),
            "forename": ident["forename"],
            "surname": ident["surname"],
            "date_of_birth": ident["date_of_birth"],
            "date_of_death": inq["date_of_death"],
            "opened_on": pl.Series(
                inq["date_of_death"].to_numpy().astype("datetime64[D]") + opened_lag.astype("timedelta64[D]"),
                dtype=pl.Date,
            ),
            "_final_conclusion": pl.Series(conclusion.tolist(), dtype=pl.String),
            "_duration": duration,
            "_pfd": pfd,
            "_person_id": inq["person_id"],
            "_death_id": inq["death_id"],
        }
    )
    base = (
        base.filter(pl.col("opened_on") <= PERIOD_END)
        .sort(["coroner", "opened_on", "_death_id"])
        .with_columns(
            inquest_ref=pl.format(
                "{}-{}-{}",
                pl.col("coroner").replace_strict(REF_PREFIX, return_dtype=pl.String),
                pl.col("opened_on").dt.year().cast(pl.String),
                (pl.int_range(pl.len()).over("coroner", pl.col("opened_on").dt.year()) + 1)
                .cast(pl.String)
                .str.zfill(4),
            ),
            _partner_id=pl.col("coroner"),
            _role=pl.lit("deceased"),
        )
    )
    m = base.height
    v1 = base.with_columns(
        concluded_on=pl.lit(None, pl.Date),
        conclusion=pl.when(pl.Series(rng.random(m) < 0.5)).then(pl.lit("pending")).otherwise(None),
        pfd_issued=pl.lit(None, pl.Boolean),
        _available_on=(pl.col("opened_on") + pl.duration(days=pl.Series(rng.integers(0, 6, m)))).cast(
            pl.Date
        ),
        _version=pl.lit(1),
    )
    v2 = (
        base.with_columns(
            concluded_on=(pl.col("opened_on") + pl.duration(days=pl.col("_duration"))).cast(pl.Date),
            conclusion=pl.col("_final_conclusion"),
            pfd_issued=pl.col("_pfd"),
        )
        .with_columns(
            _available_on=(pl.col("concluded_on") + pl.duration(days=pl.Series(rng.integers(0, 11, m)))).cast(
                pl.Date
            ),
            _version=pl.lit(2),
        )
        .filter(pl.col("_available_on") <= PERIOD_END)
    )
    cols = FEEDS["inquests"].column_names + TRUTH_COLUMNS
    return pl.concat([v1.select(cols), v2.select(cols)])
