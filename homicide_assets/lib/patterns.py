"""Patterns of death investigations across the force area: counts, rates, limits, exceedances.

Pure functions over polars frames (no Dagster). :func:`death_patterns` is the body of the
``patterns/death_patterns`` asset; the report reads its rows and never recomputes them.

What is counted
    A *death investigation* is a death in ``linkage/death_register`` that the police
    reported, or that a partner's record marks as unnatural or unexplained: an inquest
    whose conclusion is anything but natural causes (pending, open and narrative
    included), or an underlying cause of death (ICD-10) that is external (V01-Y98), a
    drug-use disorder counted in the ONS drug-poisoning definition (F11-F16, F18, F19),
    or ill-defined (R95-R99). Natural deaths the medical examiner scrutinised with none of
    these marks are not death investigations and are left out. :func:`scope_reason` says
    which rule let a death in.

Rates
    Counts per 100,000 residents per year, with exact (Garwood) Poisson 95% confidence
    intervals from the chi-squared distribution. Local authority rates use that
    authority's population (``seeds/local_authorities.csv``); every other breakdown (sex,
    age band, ethnicity, method...) is per 100,000 residents of the whole force area,
    because the seeds carry no population by sex, age or ethnicity: these rates say how
    many such deaths there are for the area's size, not the risk within each group.

Trend: Poisson control chart (c-chart) with exact probability limits
    Chosen over CUSUM and over a funnel plot for the time trend because (1) a chief
    officer reads a monthly count against a band at a glance; (2) monthly counts per
    authority are small (often 0-5), so the usual normal 3-sigma limits are wrong and
    exact Poisson quantiles are needed; (3) the false-alarm probability of every point
    can be stated exactly, which a CUSUM states only as an average run length. CUSUM
    would find small sustained shifts sooner; with a year of history it cannot be
    calibrated honestly, so it is left for later. The centre line is the daily rate of
    the baseline (the up to 36 months before the 12-month reporting period) times the
    days in each month; the limits are the Poisson quantiles with at most
    :data:`CONTROL_TAIL` (0.1%, like 3-sigma's 0.135%) in each tail. When the history
    before the reporting period is shorter than :data:`MIN_BASELINE_MONTHS`, the
    baseline is the whole series (a phase-I chart) and the rows say so.

Authorities compared: funnel plot
    For the reporting period, each authority's count against the force-wide rate times
    its population, with exact Poisson 95% and 99.8% limits (Spiegelhalter, 2005).
    Outside the 99.8% limits is an exceedance; the false-alarm probability is the exact
    two-tailed probability outside the limits under the force rate.

Police and partners
    Deaths partners know of with no police report, classification disagreements
    (a police classification an inquest conclusion or an underlying cause contradicts,
    plus the disagreements the register recorded) and the share of deaths known to a
    local authority service before the death, with Clopper-Pearson intervals.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import LA_CODES

#: Two-sided level of every confidence interval.
CI_ALPHA = 0.05
#: Largest probability allowed in each tail beyond a control limit.
CONTROL_TAIL = 0.001
#: Funnel plot tails: inner (95%) and outer (99.8%) limits.
FUNNEL_INNER_TAIL = 0.025
FUNNEL_OUTER_TAIL = 0.001
#: Months of history a control chart's baseline may use, and the least it needs.
BASELINE_MONTHS = 36
MIN_BASELINE_MONTHS = 12
#: Length of the reporting period (months) ending at the last complete month.
REPORTING_MONTHS = 12
#: Share of the earliest deaths ignored when choosing where a chart starts (a few late
#: registrations of old deaths would otherwise stretch it back by years).
SERIES_START_QUANTILE = 0.005
PER = 100_000
DAYS_PER_YEAR = 365.25

HOMICIDE_CLASSIFICATIONS = ("homicide", "suspected_homicide")
NO_POLICE_REPORT = "no police report"
NOT_RECORDED = "not recorded"

AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 15, "0-15"),
    (16, 24, "16-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, 74, "65-74"),
    (75, 200, "75+"),
)
SEX_LABELS = {"m": "male", "f": "female", "x": "other", "u": "not known"}

#: Breakdown dimensions in report order, with the column of :func:`investigations` each reads.
DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("local_authority", "la_name"),
    ("classification", "classification"),
    ("method", "method"),
    ("sex", "sex"),
    ("age_band", "age_band"),
    ("ethnicity", "ethnicity"),
    ("location_type", "location_type"),
    ("domestic_abuse", "domestic_abuse"),
)
MEASURES = ("all", "homicide")
MEASURE_LABELS = {"all": "death investigations", "homicide": "homicides"}

#: Police classification -> inquest conclusions that do not contradict it. A definite
#: conclusion outside the set is a disagreement; open, narrative and pending never are.
COMPATIBLE_CONCLUSIONS: dict[str, frozenset[str]] = {
    "homicide": frozenset({"unlawful_killing", "lawful_killing"}),
    "suspected_homicide": frozenset({"unlawful_killing", "lawful_killing"}),
    "suspected_suicide": frozenset({"suicide", "drug_related", "alcohol_related", "accident_misadventure"}),
    "drug_related": frozenset({"drug_related", "accident_misadventure", "suicide", "alcohol_related"}),
    "road_traffic": frozenset({"road_traffic_collision", "accident_misadventure", "unlawful_killing"}),
    "accidental": frozenset(
        {"accident_misadventure", "road_traffic_collision", "drug_related", "alcohol_related"}
    ),
    "natural": frozenset({"natural_causes", "alcohol_related"}),
}
NEUTRAL_CONCLUSIONS = frozenset({"open", "narrative", "pending"})

PATTERN_SCHEMA: dict[str, pl.DataType] = {
    "section": pl.String,  # breakdown | change | trend | funnel | police_partner
    "measure": pl.String,  # all | homicide
    "dimension": pl.String,
    "category": pl.String,
    "la_code": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "deaths": pl.Int64,
    "denominator": pl.Int64,  # population (rates) or deaths (shares)
    "years": pl.Float64,
    "rate_per_100k": pl.Float64,
    "rate_ci_low": pl.Float64,
    "rate_ci_high": pl.Float64,
    "share": pl.Float64,
    "share_ci_low": pl.Float64,
    "share_ci_high": pl.Float64,
    "expected": pl.Float64,
    "lower_limit": pl.Float64,
    "upper_limit": pl.Float64,
    "inner_lower_limit": pl.Float64,
    "inner_upper_limit": pl.Float64,
    "monitored": pl.Boolean,
    "exceedance": pl.String,  # above | below | null
    "false_alarm_rate": pl.Float64,
    "p_value": pl.Float64,
    "note": pl.String,
}
PATTERN_COLUMNS = tuple(PATTERN_SCHEMA)


# --------------------------------------------------------------------------------------
# Statistics



def _stats():
    """scipy.stats, imported on first use (it costs seconds at import, in every run worker)."""
    from scipy import stats

    return stats

def poisson_ci(counts, alpha: float = CI_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) two-sided Poisson confidence interval for each observed count."""
    k = np.asarray(counts, dtype=float)
    low = np.where(k > 0, _stats().chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    high = _stats().chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return low, high


def rate_with_ci(counts, population, years, alpha: float = CI_ALPHA, per: int = PER):
    """Rate per ``per`` person-years with exact Poisson limits: (rate, low, high) arrays."""
    k = np.asarray(counts, dtype=float)
    exposure = np.asarray(population, dtype=float) * np.asarray(years, dtype=float)
    low, high = poisson_ci(k, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(exposure > 0, per / exposure, np.nan)
    return k * scale, low * scale, high * scale


def clopper_pearson(successes, trials, alpha: float = CI_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval for a share (nan when there are no trials)."""
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, _stats().beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, _stats().beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def poisson_limits(expected, tail: float = CONTROL_TAIL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Poisson control limits around ``expected``.

    Returns ``(lower, upper, false_alarm)``: a count strictly above ``upper`` or strictly
    below ``lower`` is an exceedance; ``upper`` is the smallest count with
    P(X > upper) <= ``tail`` and ``lower`` the largest with P(X < lower) <= ``tail``.
    ``false_alarm`` is the exact probability of an exceedance when nothing has changed
    (below ``2 * tail`` because counts are whole numbers).
    """
    lam = np.asarray(expected, dtype=float)
    upper = _stats().poisson.isf(tail, lam)
    lower = _stats().poisson.ppf(tail, lam)
    # ppf gives the smallest l with P(X <= l) >= tail, so P(X < l) < tail: that is lower.
    below = np.where(lower > 0, _stats().poisson.cdf(lower - 1, lam), 0.0)
    false_alarm = _stats().poisson.sf(upper, lam) + below
    return lower, upper, false_alarm


def poisson_upper_p(observed, expected) -> np.ndarray:
    """P(X >= observed) for X ~ Poisson(expected): the one-sided exceedance p-value."""
    x = np.asarray(observed, dtype=float)
    lam = np.asarray(expected, dtype=float)
    return np.where(x > 0, _stats().poisson.sf(x - 1, lam), 1.0)


def compare_counts(current: int, previous: int, current_days: float, previous_days: float) -> float:
    """Two-sided exact p-value that two Poisson counts share one rate (conditional binomial)."""
    n = current + previous
    if n == 0:
        return 1.0
    p = current_days / (current_days + previous_days)
    return float(_stats().binomtest(current, n, p).pvalue)


# --------------------------------------------------------------------------------------
# ICD-10 and scope


def _icd_block(code: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    letter = code.str.slice(0, 1)
    number = code.str.slice(1, 2).cast(pl.Int64, strict=False)
    return letter, number


def icd10_external_expr(code: pl.Expr) -> pl.Expr:
    """External causes of morbidity and mortality (V01-Y98)."""
    letter, _ = _icd_block(code)
    return letter.is_in(["V", "W", "X", "Y"]).fill_null(False)


def icd10_assault_expr(code: pl.Expr) -> pl.Expr:
    """Assault (X85-Y09)."""
    letter, number = _icd_block(code)
    return (((letter == "X") & (number >= 85)) | ((letter == "Y") & (number <= 9))).fill_null(False)


def icd10_drug_poisoning_expr(code: pl.Expr) -> pl.Expr:
    """ONS drug-poisoning codes: F11-F16, F18-F19, X40-X44, X60-X64, X85, Y10-Y14."""
    letter, n = _icd_block(code)
    return (
        ((letter == "F") & (((n >= 11) & (n <= 16)) | (n == 18) | (n == 19)))
        | ((letter == "X") & (((n >= 40) & (n <= 44)) | ((n >= 60) & (n <= 64)) | (n == 85)))
        | ((letter == "Y") & (n >= 10) & (n <= 14))
    ).fill_null(False)


def icd10_ill_defined_expr(code: pl.Expr) -> pl.Expr:
    """Ill-defined and unknown causes of mortality (R95-R99)."""
    letter, n = _icd_block(code)
    return ((letter == "R") & (n >= 95)).fill_null(False)


def scope_reason_expr() -> pl.Expr:
    """Why a register row is a death investigation (null when it is not one)."""
    icd = pl.col("icd10_underlying").str.to_uppercase()
    conclusion = pl.col("inquest_conclusion")
    return (
        pl.when(pl.col("police_report_id").is_not_null())
        .then(pl.lit("police report"))
        .when(conclusion.is_not_null() & (conclusion != "natural_causes"))
        .then(pl.lit("inquest conclusion"))
        .when(icd10_external_expr(icd))
        .then(pl.lit("external cause of death"))
        .when(icd10_drug_poisoning_expr(icd))
        .then(pl.lit("drug poisoning"))
        .when(icd10_ill_defined_expr(icd))
        .then(pl.lit("cause unknown"))
        .otherwise(None)
    )


def homicide_expr() -> pl.Expr:
    """Homicide by any source: police classification, unlawful killing, or assault ICD-10."""
    return (
        pl.col("police_classification").is_in(list(HOMICIDE_CLASSIFICATIONS)).fill_null(False)
        | (pl.col("inquest_conclusion") == "unlawful_killing").fill_null(False)
        | icd10_assault_expr(pl.col("icd10_underlying").str.to_uppercase())
    )


def age_band_expr(age: pl.Expr) -> pl.Expr:
    out = pl.when(age.is_null()).then(pl.lit(NOT_RECORDED))
    for low, high, label in AGE_BANDS:
        out = out.when((age >= low) & (age <= high)).then(pl.lit(label))
    return out.otherwise(pl.lit(NOT_RECORDED))


def _source_feeds_expr() -> pl.Expr:
    return pl.col("source_records").list.eval(pl.element().str.split(":").list.first())


def register_from_death_reports(death_reports: pl.DataFrame) -> pl.DataFrame:
    """A stand-in register (one row per police report) for when linkage has not run.

    Used only so the patterns and the report can be built from the police feed alone;
    partner-only deaths, disagreements and known-to-services are then empty.
    """
    from homicide_assets.lib.geography import la_of_points

    reports = death_reports.unique("report_id", keep="last")
    la = la_of_points(
        reports.get_column("incident_lat").to_numpy(), reports.get_column("incident_lon").to_numpy()
    )
    return reports.select(
        pl.concat_str([pl.lit("D-"), pl.col("report_id")]).alias("death_id"),
        pl.lit(None, pl.String).alias("person_key"),
        pl.col("report_id").alias("police_report_id"),
        pl.concat_list([pl.col("record_key")]).alias("source_records"),
        pl.col("date_of_death"),
        pl.Series("la_code", la, dtype=pl.String),
        pl.col("sex"),
        pl.when(pl.col("date_of_birth").is_not_null() & pl.col("date_of_death").is_not_null())
        .then(
            ((pl.col("date_of_death") - pl.col("date_of_birth")).dt.total_days() / DAYS_PER_YEAR)
            .floor()
            .cast(pl.Int64)
        )
        .alias("age_at_death"),
        pl.col("classification").alias("police_classification"),
        pl.lit(None, pl.String).alias("inquest_conclusion"),
        pl.lit(None, pl.String).alias("icd10_underlying"),
        pl.lit([], pl.List(pl.String)).alias("known_to_services"),
        pl.lit([], pl.List(pl.String)).alias("disagreements"),
        pl.lit(1.0).alias("match_probability"),
    )


def investigations(death_register: pl.DataFrame, death_reports: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per death investigation, with every field the breakdowns read.

    Method, ethnicity, location type, domestic abuse and coordinates come from the police
    report (``staged/death_reports``) and are ``not recorded`` for partner-only deaths.
    """
    reg = death_register.with_columns(scope_reason_expr().alias("scope_reason")).filter(
        pl.col("scope_reason").is_not_null()
    )
    police_cols = {
        "method": pl.String,
        "ethnicity": pl.String,
        "location_type": pl.String,
        "domestic_abuse_related": pl.Boolean,
        "incident_lat": pl.Float64,
        "incident_lon": pl.Float64,
        "reported_at": pl.Datetime("us", "Europe/London"),
        "substances": pl.List(pl.String),
    }
    if death_reports is not None and death_reports.height:
        dr = death_reports.unique("report_id", keep="last").select(
            pl.col("report_id").alias("police_report_id"),
            *[
                (pl.col(c).cast(t) if c in death_reports.columns else pl.lit(None, t)).alias(c)
                for c, t in police_cols.items()
            ],
        )
    else:
        dr = pl.DataFrame(schema={"police_report_id": pl.String, **police_cols})
    joined = reg.join(dr, on="police_report_id", how="left")
    has_police = pl.col("police_report_id").is_not_null()
    feeds = _source_feeds_expr()
    la_names = pl.DataFrame({"la_code": list(LA_CODES), "la_name": list(LA_CODES.values())})

    def police_field(col: str) -> pl.Expr:
        return (
            pl.when(~has_police)
            .then(pl.lit(NO_POLICE_REPORT))
            .when(pl.col(col).is_null())
            .then(pl.lit(NOT_RECORDED))
            .otherwise(pl.col(col).cast(pl.String).str.replace_all("_", " "))
        )

    out = joined.join(la_names, on="la_code", how="left").with_columns(
        pl.col("date_of_death").dt.truncate("1mo").alias("month"),
        pl.col("la_name").fill_null(NOT_RECORDED),
        homicide_expr().alias("homicide"),
        has_police.alias("has_police_report"),
        feeds.list.contains("me_deaths").fill_null(False).alias("known_to_medical_examiner"),
        feeds.list.contains("inquests").fill_null(False).alias("known_to_coroner"),
        pl.when(~has_police)
        .then(pl.lit(NO_POLICE_REPORT))
        .otherwise(pl.col("police_classification").fill_null(NOT_RECORDED).str.replace_all("_", " "))
        .alias("classification"),
        police_field("method").alias("method"),
        police_field("ethnicity").alias("ethnicity"),
        police_field("location_type").alias("location_type"),
        pl.when(~has_police)
        .then(pl.lit(NO_POLICE_REPORT))
        .when(pl.col("domestic_abuse_related").is_null())
        .then(pl.lit(NOT_RECORDED))
        .when(pl.col("domestic_abuse_related"))
        .then(pl.lit("domestic abuse related"))
        .otherwise(pl.lit("not domestic abuse related"))
        .alias("domestic_abuse"),
        pl.col("sex").replace_strict(SEX_LABELS, default=NOT_RECORDED).alias("sex"),
        age_band_expr(pl.col("age_at_death")).alias("age_band"),
        (pl.col("known_to_services").list.len() > 0).fill_null(False).alias("known_to_any_service"),
        classification_disagreement_expr().alias("classification_disagreement"),
    )
    return out.rename({"incident_lat": "lat", "incident_lon": "lon"}).sort("date_of_death", "death_id")


def classification_disagreement_expr() -> pl.Expr:
    """Plain words when the police classification contradicts the inquest or the cause.

    Null when there is no contradiction. An inquest conclusion of unlawful killing or an
    assault cause of death against a police classification that is not homicide is the
    case the inspectorate worries about most: a homicide the police did not record as one.
    """
    police = pl.col("police_classification")
    conclusion = pl.col("inquest_conclusion")
    icd = pl.col("icd10_underlying").str.to_uppercase()
    compatible = pl.lit(True)
    for cls, allowed in COMPATIBLE_CONCLUSIONS.items():
        compatible = (
            pl.when(police == cls)
            .then(conclusion.is_in(list(allowed | NEUTRAL_CONCLUSIONS)))
            .otherwise(compatible)
        )
    conclusion_clash = police.is_not_null() & conclusion.is_not_null() & ~compatible.fill_null(True)
    open_police = police.is_in(["homicide", "suspected_homicide", "suspicious", "unexplained", "other"])
    assault_clash = police.is_not_null() & ~open_police.fill_null(False) & icd10_assault_expr(icd)
    return (
        pl.when(conclusion_clash)
        .then(
            pl.concat_str(
                [
                    pl.lit("police: "),
                    police.str.replace_all("_", " "),
                    pl.lit("; inquest: "),
                    conclusion.str.replace_all("_", " "),
                ]
            )
        )
        .when(assault_clash)
        .then(
            pl.concat_str(
                [
                    pl.lit("police: "),
                    police.str.replace_all("_", " "),
                    pl.lit("; cause of death: assault (ICD-10 "),
                    icd,
                    pl.lit(")"),
                ]
            )
        )
        .otherwise(None)
    )


# --------------------------------------------------------------------------------------
# Periods


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ReportingPeriod:
    """The 12 months reported on, the 12 before them, and where the monthly series start."""

    start: date
    end: date
    previous_start: date
    previous_end: date
    series_start: date  # first month of the control charts
    data_as_of: date  # the day up to which the data are complete

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def years(self) -> float:
        return self.days / DAYS_PER_YEAR

    @property
    def previous_days(self) -> int:
        return (self.previous_end - self.previous_start).days + 1

    @property
    def previous_covered(self) -> bool:
        """True when the data reach back over the whole previous 12 months."""
        return self.series_start <= self.previous_start

    @property
    def label(self) -> str:
        return f"{self.start:%B %Y} to {self.end:%B %Y}"


def reporting_period(deaths: pl.DataFrame, data_as_of: date | None = None) -> ReportingPeriod:
    """The 12 complete months ending at or before ``data_as_of`` (default: last death).

    A month counts as complete when its last day is on or before ``data_as_of``.
    """
    dates = deaths.get_column("date_of_death").drop_nulls() if deaths.height else pl.Series([], dtype=pl.Date)
    if data_as_of is None:
        data_as_of = dates.max() if dates.len() else date.today()
    end = month_end(data_as_of)
    if end > data_as_of:
        end = data_as_of.replace(day=1) - timedelta(days=1)
    start = add_months(end.replace(day=1), -(REPORTING_MONTHS - 1))
    previous_end = start - timedelta(days=1)
    previous_start = add_months(start, -REPORTING_MONTHS)
    if dates.len():
        first = dates.sort().gather(int(SERIES_START_QUANTILE * (dates.len() - 1)))[0]
        # a chart starts where the data start (months before hold no data, not zero deaths)
        series_start = min(first.replace(day=1), end.replace(day=1))
    else:
        series_start = start
    return ReportingPeriod(start, end, previous_start, previous_end, series_start, data_as_of)


def _measure_filter(measure: str) -> pl.Expr:
    return pl.col("homicide") if measure == "homicide" else pl.lit(True)


def _empty_patterns() -> pl.DataFrame:
    return pl.DataFrame(schema=PATTERN_SCHEMA)


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing columns as nulls, cast, and order as :data:`PATTERN_SCHEMA`."""
    return frame.with_columns(
        [pl.lit(None, dtype).alias(c) for c, dtype in PATTERN_SCHEMA.items() if c not in frame.columns]
    ).select([pl.col(c).cast(t) for c, t in PATTERN_SCHEMA.items()])


# --------------------------------------------------------------------------------------
# Breakdowns, change, funnel


def populations() -> dict[str, int]:
    from homicide_assets.lib.registry import local_authorities

    return {la.la_code: la.population for la in local_authorities()}


def breakdowns(inv: pl.DataFrame, period: ReportingPeriod, population: dict[str, int]) -> pl.DataFrame:
    """Counts, shares and rates per 100,000 per year for every dimension and measure."""
    force_pop = sum(population.values())
    name_pop = {LA_CODES[c]: p for c, p in population.items() if c in LA_CODES}
    parts = []
    for label, start, end in (
        ("current", period.start, period.end),
        ("previous", period.previous_start, period.previous_end),
    ):
        years = ((end - start).days + 1) / DAYS_PER_YEAR
        window = inv.filter(pl.col("date_of_death").is_between(start, end))
        for measure in MEASURES:
            sub = window.filter(_measure_filter(measure))
            total = sub.height
            for dimension, column in DIMENSIONS:
                counts = sub.group_by(column).agg(pl.len().alias("deaths")).rename({column: "category"})
                if dimension == "local_authority":
                    # every authority appears, with zero when no death fell there
                    counts = (
                        pl.DataFrame({"category": list(LA_CODES.values())})
                        .join(counts, on="category", how="full", coalesce=True)
                        .with_columns(pl.col("deaths").fill_null(0))
                    )
                counts = counts.sort("deaths", "category", descending=[True, False])
                k = counts.get_column("deaths").to_numpy()
                if dimension == "local_authority":
                    pop = np.array([name_pop.get(c, 0) for c in counts.get_column("category")], dtype=float)
                else:
                    pop = np.full(len(k), force_pop, dtype=float)
                rate, low, high = rate_with_ci(k, pop, years)
                s_low, s_high = clopper_pearson(k, np.full(len(k), total))
                codes = {v: c for c, v in LA_CODES.items()}
                parts.append(
                    counts.with_columns(
                        pl.lit("breakdown").alias("section"),
                        pl.lit(measure).alias("measure"),
                        pl.lit(dimension).alias("dimension"),
                        pl.col("category").replace_strict(codes, default=None).alias("la_code")
                        if dimension == "local_authority"
                        else pl.lit(None, pl.String).alias("la_code"),
                        pl.lit(start).alias("period_start"),
                        pl.lit(end).alias("period_end"),
                        pl.Series("denominator", pop.astype(np.int64)),
                        pl.lit(years).alias("years"),
                        pl.Series("rate_per_100k", np.where(pop > 0, rate, np.nan)),
                        pl.Series("rate_ci_low", np.where(pop > 0, low, np.nan)),
                        pl.Series("rate_ci_high", np.where(pop > 0, high, np.nan)),
                        pl.Series("share", k / total if total else np.full(len(k), np.nan)),
                        pl.Series("share_ci_low", s_low),
                        pl.Series("share_ci_high", s_high),
                        pl.lit(label).alias("note"),
                    )
                )
    return _finish(pl.concat(parts, how="diagonal_relaxed")) if parts else _empty_patterns()


def change(inv: pl.DataFrame, period: ReportingPeriod, population: dict[str, int]) -> pl.DataFrame:
    """The reporting period against the 12 months before it, force-wide and per authority.

    ``deaths`` is the current count, ``expected`` the previous one, ``p_value`` the exact
    two-sided test that both periods share one rate (both null when the data do not reach
    back over the previous 12 months).
    """
    rows = []
    for measure in MEASURES:
        sub = inv.filter(_measure_filter(measure))
        for la_code in [None, *LA_CODES]:
            area = sub if la_code is None else sub.filter(pl.col("la_code") == la_code)
            cur = area.filter(pl.col("date_of_death").is_between(period.start, period.end)).height
            prev = area.filter(
                pl.col("date_of_death").is_between(period.previous_start, period.previous_end)
            ).height
            pop = sum(population.values()) if la_code is None else population.get(la_code, 0)
            rate, low, high = rate_with_ci([cur], [pop], [period.years])
            rows.append(
                {
                    "section": "change",
                    "measure": measure,
                    "dimension": "force" if la_code is None else "local_authority",
                    "category": "West Midlands" if la_code is None else LA_CODES[la_code],
                    "la_code": la_code,
                    "period_start": period.start,
                    "period_end": period.end,
                    "deaths": cur,
                    "denominator": pop,
                    "years": period.years,
                    "rate_per_100k": float(rate[0]),
                    "rate_ci_low": float(low[0]),
                    "rate_ci_high": float(high[0]),
                    "expected": float(prev) if period.previous_covered else None,
                    "p_value": compare_counts(cur, prev, period.days, period.previous_days)
                    if period.previous_covered
                    else None,
                    "note": f"previous: {period.previous_start} to {period.previous_end}"
                    + ("" if period.previous_covered else " (before the data begin: no comparison)"),
                }
            )
    return _finish(pl.DataFrame(rows, infer_schema_length=None))


def funnel(inv: pl.DataFrame, period: ReportingPeriod, population: dict[str, int]) -> pl.DataFrame:
    """Each authority's count in the reporting period against the force rate (funnel plot)."""
    rows = []
    window = inv.filter(pl.col("date_of_death").is_between(period.start, period.end))
    codes = [c for c in LA_CODES if c in population]
    pops = np.array([population[c] for c in codes], dtype=float)
    for measure in MEASURES:
        sub = window.filter(_measure_filter(measure) & pl.col("la_code").is_in(codes))
        counts = dict(sub.group_by("la_code").agg(pl.len()).iter_rows())
        k = np.array([counts.get(c, 0) for c in codes], dtype=float)
        force_rate = k.sum() / (pops.sum() * period.years)
        expected = force_rate * pops * period.years
        lo, hi, fa = poisson_limits(expected, FUNNEL_OUTER_TAIL)
        ilo, ihi, _ = poisson_limits(expected, FUNNEL_INNER_TAIL)
        rate, r_low, r_high = rate_with_ci(k, pops, period.years)
        for i, code in enumerate(codes):
            above, below = k[i] > hi[i], k[i] < lo[i]
            rows.append(
                {
                    "section": "funnel",
                    "measure": measure,
                    "dimension": "local_authority",
                    "category": LA_CODES[code],
                    "la_code": code,
                    "period_start": period.start,
                    "period_end": period.end,
                    "deaths": int(k[i]),
                    "denominator": int(pops[i]),
                    "years": period.years,
                    "rate_per_100k": float(rate[i]),
                    "rate_ci_low": float(r_low[i]),
                    "rate_ci_high": float(r_high[i]),
                    "expected": float(expected[i]),
                    "lower_limit": float(lo[i]),
                    "upper_limit": float(hi[i]),
                    "inner_lower_limit": float(ilo[i]),
                    "inner_upper_limit": float(ihi[i]),
                    "monitored": True,
                    "exceedance": "above" if above else ("below" if below else None),
                    "false_alarm_rate": float(fa[i]),
                    "p_value": float(poisson_upper_p(k[i], expected[i])),
                    "note": f"force rate {force_rate * PER:.2f} per 100,000 per year",
                }
            )
    return _finish(pl.DataFrame(rows, infer_schema_length=None))


# --------------------------------------------------------------------------------------
# Control charts


def month_starts(first: date, last: date) -> list[date]:
    out, m = [], first.replace(day=1)
    while m <= last:
        out.append(m)
        m = add_months(m, 1)
    return out


def control_chart(monthly: np.ndarray, months: list[date], monitor_from: date) -> dict[str, np.ndarray | str]:
    """Centre line, exact limits, exceedances and false-alarm rates for one monthly series.

    ``monthly[i]`` is the count in the month starting ``months[i]``. Points from
    ``monitor_from`` on are monitored; the baseline is the up to :data:`BASELINE_MONTHS`
    months before it, or the whole series (phase I) when fewer than
    :data:`MIN_BASELINE_MONTHS` are available.
    """
    counts = np.asarray(monthly, dtype=float)
    days = np.array([calendar.monthrange(m.year, m.month)[1] for m in months], dtype=float)
    monitored = np.array([m >= monitor_from for m in months])
    base_idx = np.flatnonzero(~monitored)[-BASELINE_MONTHS:]
    if len(base_idx) >= MIN_BASELINE_MONTHS:
        note = f"baseline: {len(base_idx)} months before the reporting period"
    else:
        base_idx = np.arange(len(months))
        note = (
            f"phase I: limits from all {len(months)} months (under {MIN_BASELINE_MONTHS} months of history)"
        )
    daily = counts[base_idx].sum() / days[base_idx].sum() if len(base_idx) else 0.0
    expected = daily * days
    lower, upper, false_alarm = poisson_limits(expected)
    above = monitored & (counts > upper)
    below = monitored & (counts < lower)
    exceedance = np.where(above, "above", np.where(below, "below", None))
    return {
        "expected": expected,
        "lower": lower,
        "upper": upper,
        "false_alarm": false_alarm,
        "monitored": monitored,
        "exceedance": exceedance,
        "note": note,
        "p_value": np.where(
            counts >= expected, poisson_upper_p(counts, expected), _stats().poisson.cdf(counts, expected)
        ),
    }


def trends(inv: pl.DataFrame, period: ReportingPeriod) -> pl.DataFrame:
    """Monthly control charts: force-wide and per authority, all deaths and homicides."""
    months = month_starts(period.series_start, period.end)
    if not months:
        return _empty_patterns()
    window = inv.filter(pl.col("date_of_death").is_between(months[0], period.end))
    grid = pl.DataFrame({"month": months}, schema={"month": pl.Date})
    parts = []
    for measure in MEASURES:
        sub = window.filter(_measure_filter(measure))
        for la_code in [None, *LA_CODES]:
            area = sub if la_code is None else sub.filter(pl.col("la_code") == la_code)
            monthly = grid.join(area.group_by("month").agg(pl.len().alias("deaths")), on="month", how="left")
            counts = monthly.get_column("deaths").fill_null(0).to_numpy()
            chart = control_chart(counts, months, period.start)
            parts.append(
                pl.DataFrame(
                    {
                        "section": "trend",
                        "measure": measure,
                        "dimension": "force" if la_code is None else "local_authority",
                        "category": "West Midlands" if la_code is None else LA_CODES[la_code],
                        "la_code": la_code,
                        "period_start": months,
                        "period_end": [month_end(m) for m in months],
                        "deaths": counts.astype(np.int64),
                        "expected": chart["expected"],
                        "lower_limit": chart["lower"],
                        "upper_limit": chart["upper"],
                        "monitored": chart["monitored"],
                        "exceedance": list(chart["exceedance"]),
                        "false_alarm_rate": chart["false_alarm"],
                        "p_value": chart["p_value"],
                        "note": chart["note"],
                    },
                    schema_overrides={"la_code": pl.String, "exceedance": pl.String},
                )
            )
    return _finish(pl.concat(parts, how="diagonal_relaxed"))


# --------------------------------------------------------------------------------------
# Police and partners


def police_partner_view(inv: pl.DataFrame, period: ReportingPeriod) -> pl.DataFrame:
    """Deaths only partners know of, classification disagreements, known to services.

    Rows are shares of the reporting period's death investigations (``denominator``)
    with Clopper-Pearson intervals.
    """
    window = inv.filter(pl.col("date_of_death").is_between(period.start, period.end))
    parts = []

    def add(dimension: str, frame: pl.DataFrame, denominator: int, measure: str = "all") -> None:
        if frame.is_empty():
            return
        k = frame.get_column("deaths").to_numpy()
        low, high = clopper_pearson(k, np.full(len(k), denominator))
        parts.append(
            frame.with_columns(
                pl.lit("police_partner").alias("section"),
                pl.lit(measure).alias("measure"),
                pl.lit(dimension).alias("dimension"),
                pl.lit(period.start).alias("period_start"),
                pl.lit(period.end).alias("period_end"),
                pl.lit(denominator).alias("denominator"),
                pl.Series("share", k / denominator if denominator else np.full(len(k), np.nan)),
                pl.Series("share_ci_low", low),
                pl.Series("share_ci_high", high),
            )
        )

    source = (
        pl.when(
            pl.col("has_police_report") & (pl.col("known_to_medical_examiner") | pl.col("known_to_coroner"))
        )
        .then(pl.lit("police and partners"))
        .when(pl.col("has_police_report"))
        .then(pl.lit("police only"))
        .when(pl.col("known_to_medical_examiner") & pl.col("known_to_coroner"))
        .then(pl.lit("medical examiner and coroner, no police report"))
        .when(pl.col("known_to_coroner"))
        .then(pl.lit("coroner only, no police report"))
        .otherwise(pl.lit("medical examiner only, no police report"))
    )
    for measure in MEASURES:
        sub = window.filter(_measure_filter(measure))
        n = sub.height
        add(
            "reporting_source",
            sub.group_by(source.alias("category")).agg(pl.len().alias("deaths")).sort("category"),
            n,
            measure,
        )
        no_police = sub.filter(~pl.col("has_police_report"))
        add(
            "no_police_report_by_local_authority",
            no_police.group_by(pl.col("la_name").alias("category"), "la_code")
            .agg(pl.len().alias("deaths"))
            .sort("category"),
            n,
            measure,
        )
        add(
            "no_police_report_by_reason",
            no_police.group_by(pl.col("scope_reason").alias("category"))
            .agg(pl.len().alias("deaths"))
            .sort("category"),
            n,
            measure,
        )
        with_both = sub.filter(
            pl.col("has_police_report")
            & (pl.col("inquest_conclusion").is_not_null() | pl.col("icd10_underlying").is_not_null())
        )
        disagree = sub.filter(pl.col("classification_disagreement").is_not_null())
        add(
            "classification_disagreement",
            disagree.group_by(
                pl.col("classification_disagreement").str.replace(r" \(ICD-10 .*\)$", "").alias("category")
            )
            .agg(pl.len().alias("deaths"))
            .sort("deaths", "category", descending=[True, False])
            .vstack(
                pl.DataFrame(
                    {"category": ["any classification disagreement"], "deaths": [disagree.height]},
                    schema={"category": pl.String, "deaths": pl.UInt32},
                )
            ),
            with_both.height,
            measure,
        )
        recorded = sub.filter(pl.col("disagreements").list.len() > 0).height
        add(
            "recorded_disagreement",
            pl.DataFrame({"category": ["any disagreement between sources"], "deaths": [recorded]}),
            n,
            measure,
        )
        known = sub.filter(pl.col("known_to_any_service"))
        services = (
            known.select(pl.col("known_to_services").list.unique())
            .explode("known_to_services")
            .group_by(pl.col("known_to_services").str.replace_all("_", " ").alias("category"))
            .agg(pl.len().alias("deaths"))
            .sort("deaths", "category", descending=[True, False])
        )
        add(
            "known_to_services",
            pl.DataFrame({"category": ["any service"], "deaths": [known.height]}).vstack(
                services.cast({"deaths": pl.Int64})
            )
            if services.height
            else pl.DataFrame({"category": ["any service"], "deaths": [known.height]}),
            n,
            measure,
        )
    return _finish(pl.concat(parts, how="diagonal_relaxed")) if parts else _empty_patterns()


# --------------------------------------------------------------------------------------
# The asset's body


def death_patterns(
    death_register: pl.DataFrame,
    death_reports: pl.DataFrame | None = None,
    data_as_of: date | None = None,
    population: dict[str, int] | None = None,
) -> pl.DataFrame:
    """Every pattern row of ``patterns/death_patterns`` (columns :data:`PATTERN_COLUMNS`).

    ``data_as_of`` is the day the data are complete to (default: the newest police
    extract date, else the last death); the reporting period is the 12 complete months
    ending then.
    """
    population = population or populations()
    inv = investigations(death_register, death_reports)
    if data_as_of is None:
        data_as_of = default_data_as_of(inv, death_reports)
    period = reporting_period(inv, data_as_of)
    frames = [
        breakdowns(inv, period, population),
        change(inv, period, population),
        funnel(inv, period, population),
        trends(inv, period),
        police_partner_view(inv, period),
    ]
    return (
        pl.concat([f for f in frames if f.height], how="vertical")
        if any(f.height for f in frames)
        else _empty_patterns()
    )


def default_data_as_of(inv: pl.DataFrame, death_reports: pl.DataFrame | None) -> date:
    """The newest police extract date (police deliver daily), else the last death, else today."""
    if death_reports is not None and "_extract_date" in death_reports.columns and death_reports.height:
        value = death_reports.get_column("_extract_date").max()
        if value is not None:
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if inv.height:
        value = inv.get_column("date_of_death").max()
        if value is not None:
            return value
    return date.today()


def police_data_as_of(
    deliveries: pl.DataFrame | None,
    receipts: pl.DataFrame | None = None,
    death_reports: pl.DataFrame | None = None,
) -> date | None:
    """The newest extract date the police ``death_reports`` feed has sent.

    The police deliver daily, so their newest extract (even one with no rows) is the day
    the data are complete to. Read from the receipts (every file taken from landing) and
    the deliveries ledger, else the staged police rows (:func:`default_data_as_of`).
    """
    from homicide_assets.lib.feeds import FILE_NAME_PATTERN

    dates: list[date] = []
    if receipts is not None and receipts.height:
        for name in receipts.get_column("file_name").to_list():
            m = FILE_NAME_PATTERN.match(name or "")
            if m and m["feed"] == "death_reports":
                try:
                    dates.append(
                        date.fromisoformat(
                            f"{m['extract_date'][:4]}-{m['extract_date'][4:6]}-{m['extract_date'][6:]}"
                        )
                    )
                except ValueError:
                    continue
    if deliveries is not None and deliveries.height:
        dates.extend(
            deliveries.filter(pl.col("feed") == "death_reports").get_column("extract_date").drop_nulls()
        )
    if dates:
        return max(dates)
    if death_reports is not None:
        return default_data_as_of(pl.DataFrame(schema={"date_of_death": pl.Date}), death_reports)
    return None


def period_of(patterns: pl.DataFrame) -> tuple[date, date] | None:
    """The reporting period a ``death_patterns`` frame was computed for."""
    rows = patterns.filter((pl.col("section") == "breakdown") & (pl.col("note") == "current"))
    if rows.is_empty():
        return None
    return rows.get_column("period_start")[0], rows.get_column("period_end")[0]
