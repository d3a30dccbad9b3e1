"""``patterns/death_patterns`` and ``patterns/violence_hotspots``.

Thin wrappers: the statistics are in :mod:`homicide_assets.lib.patterns` and
:mod:`homicide_assets.lib.hotspots`. An exceedance in the reporting period (a month above
its control limit, an authority above the funnel plot's 99.8% limit, a new hotspot) is
raised once to analysts through :func:`homicide_assets.lib.alerts.raise_alert`.
"""

from datetime import date

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AutomationCondition,
    Config,
    Output,
    asset,
)
from pydantic import Field

from homicide_assets.defs.metadata import markdown_table
from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.lib.hotspots import violence_hotspots as build_violence_hotspots
from homicide_assets.lib.patterns import (
    MEASURE_LABELS,
    default_data_as_of,
    period_of,
    police_data_as_of,
)
from homicide_assets.lib.patterns import (
    death_patterns as build_death_patterns,
)
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
GROUP = "patterns"
DEATH_PATTERNS_KEY = AssetKey(["patterns", "death_patterns"])
VIOLENCE_HOTSPOTS_KEY = AssetKey(["patterns", "violence_hotspots"])
DEATH_REGISTER_KEY = AssetKey(["linkage", "death_register"])
DEATH_REPORTS_KEY = AssetKey(["staged", "death_reports"])
ED_ASSAULTS_KEY = AssetKey(["staged", "ed_assaults"])


class PatternsConfig(Config):
    """Run config of the patterns assets."""

    as_of: str | None = Field(
        default=None,
        description="The day the data are complete to (YYYY-MM-DD); the reporting period is the 12 complete "
        "months ending then. Default: the newest police extract date (the police deliver daily).",
    )
    raise_alerts: bool = Field(default=True, description="Raise an alert for each new exceedance or hotspot.")


def _as_of(config: PatternsConfig, platform: PlatformResource, death_reports: pl.DataFrame) -> date:
    """Config, else the newest police extract received (receipts and ledger), else the staged rows."""
    if config.as_of:
        return date.fromisoformat(config.as_of)
    from homicide_assets.lib.report import read_store_tables

    store = read_store_tables(platform.database_url())
    found = police_data_as_of(store.deliveries, store.receipts, death_reports)
    return found or default_data_as_of(pl.DataFrame(schema={"date_of_death": pl.Date}), death_reports)




def exceedances(patterns: pl.DataFrame) -> pl.DataFrame:
    """Monitored months and authorities outside their limits (what the alerts are about)."""
    return patterns.filter(
        pl.col("section").is_in(["trend", "funnel"])
        & pl.col("monitored").fill_null(False)
        & pl.col("exceedance").is_not_null()
    ).select(
        "section",
        "measure",
        "category",
        "period_start",
        "period_end",
        "deaths",
        "expected",
        "upper_limit",
        "lower_limit",
        "exceedance",
        "false_alarm_rate",
    )


@asset(
    key=DEATH_PATTERNS_KEY,
    ins={"death_register": AssetIn(key=DEATH_REGISTER_KEY), "death_reports": AssetIn(key=DEATH_REPORTS_KEY)},
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "Death investigations across the force area (police reports, and deaths partners mark unnatural or "
        "unexplained): counts and rates per 100,000 with exact Poisson 95% intervals by local authority, "
        "classification, method, sex, age band, ethnicity, location type and domestic abuse; monthly Poisson "
        "control charts (exact limits, each exceedance with its false-alarm probability); a funnel plot of the "
        "authorities; the police versus partner view (deaths with no police report, classification "
        "disagreements, known to services). One long table: `section` says which part a row belongs to."
    ),
)
def death_patterns(
    context: AssetExecutionContext,
    config: PatternsConfig,
    platform: PlatformResource,
    alert_channel: AlertChannelResource,
    death_register: pl.DataFrame,
    death_reports: pl.DataFrame,
) -> Output[pl.DataFrame]:
    as_of = _as_of(config, platform, death_reports)
    patterns = build_death_patterns(death_register, death_reports, data_as_of=as_of)
    period = period_of(patterns)
    ex = exceedances(patterns)
    raised = 0
    if config.raise_alerts:
        raised = raise_exceedance_alerts(platform.database_url(), ex, alert_channel)
    trend = patterns.filter((pl.col("section") == "trend") & pl.col("monitored"))
    force = patterns.filter((pl.col("section") == "change") & (pl.col("dimension") == "force"))
    return Output(
        patterns,
        metadata={
            "dagster/row_count": patterns.height,
            "data_as_of": str(as_of),
            "reporting_period": f"{period[0]} to {period[1]}" if period else "no data",
            "force": markdown_table(
                force.select(
                    "measure",
                    "deaths",
                    "rate_per_100k",
                    "rate_ci_low",
                    "rate_ci_high",
                    pl.col("expected").alias("previous"),
                    "p_value",
                ),
                12,
            ),
            "exceedances": markdown_table(ex, 12),
            "exceedance_count": ex.height,
            "months_checked": trend.height,
            "false_alarms_expected": float(trend.get_column("false_alarm_rate").sum())
            if trend.height
            else 0.0,
            "alerts_raised": raised,
        },
    )


def raise_exceedance_alerts(database_url: str, ex: pl.DataFrame, alert_channel: AlertChannelResource) -> int:
    """One alert per exceedance (de-duplicated on series, area and month); returns how many were new."""
    from homicide_assets.lib.alerts import raise_alert

    channel = alert_channel.channel()
    new = 0
    for r in ex.iter_rows(named=True):
        what = MEASURE_LABELS[r["measure"]]
        when = (
            f"{r['period_start']:%B %Y}"
            if r["section"] == "trend"
            else f"{r['period_start']:%b %Y} to {r['period_end']:%b %Y}"
        )
        limit = r["upper_limit"] if r["exceedance"] == "above" else r["lower_limit"]
        outcome = raise_alert(
            database_url,
            "exceedance",
            f"{r['category']}: {what} {r['exceedance']} the control limit ({when})",
            (
                f"{r['deaths']} {what} in {r['category']} ({when}) against {r['expected']:.1f} expected; the "
                f"{'upper' if r['exceedance'] == 'above' else 'lower'} limit is {limit:.0f}. With no real change, "
                f"a count crosses these limits with probability {r['false_alarm_rate']:.4f} (the false-alarm rate)."
            ),
            f"exceedance:{r['section']}:{r['measure']}:{r['category']}:{r['period_start']}:{r['exceedance']}",
            severity="WARN",
            next_step="Open the death investigations report (Trends and control limits) and review the deaths.",
            channel=channel,
            count_repeat=False,
        )
        new += int(outcome.new)
    return new


@asset(
    key=VIOLENCE_HOTSPOTS_KEY,
    ins={
        "ed_assaults": AssetIn(key=ED_ASSAULTS_KEY),
        "death_register": AssetIn(key=DEATH_REGISTER_KEY),
        "death_reports": AssetIn(key=DEATH_REPORTS_KEY),
    },
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "Where violence happens, quarter by quarter: emergency department assault attendances by postcode "
        "district (from the assault postcode, else a district in the location text) and death investigations "
        "on a 1 km grid, each area-quarter tested against the space-time permutation expectation (area total "
        "x quarter total / all) with an exact Poisson test; hotspots flagged at p < 0.001 with 3+ events, "
        "with each test's false-alarm probability."
    ),
)
def violence_hotspots(
    context: AssetExecutionContext,
    config: PatternsConfig,
    platform: PlatformResource,
    ed_assaults: pl.DataFrame,
    death_register: pl.DataFrame,
    death_reports: pl.DataFrame,
) -> Output[pl.DataFrame]:
    as_of = _as_of(config, platform, death_reports)
    frame = build_violence_hotspots(ed_assaults, death_register, death_reports, data_as_of=as_of)
    flagged = frame.filter(pl.col("hotspot"))
    return Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "data_as_of": str(as_of),
            "hotspots": flagged.height,
            "false_hotspots_expected": float(frame.get_column("false_alarm_rate").sum())
            if frame.height
            else 0.0,
            "recent_hotspots": markdown_table(
                flagged.sort("period_start", descending=True).select(
                    "source", "area_type", "la_code", "period_start", "events", "expected", "p_value"
                ),
                12,
            ),
        },
    )


patterns_assets = [death_patterns, violence_hotspots]
