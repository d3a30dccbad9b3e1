"""``partners/compliance`` and its daily schedule.

Thin wrapper: the work is in :mod:`homicide_assets.lib.compliance`.
"""

from datetime import date

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    Config,
    DefaultScheduleStatus,
    Output,
    ScheduleDefinition,
    asset,
)
from pydantic import Field

from homicide_assets.defs.metadata import markdown_table
from homicide_assets.lib.compliance import (
    ComplianceRules,
    build_compliance,
    ledger_as_of,
    non_responders,
    read_ledger,
)
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
GROUP = "partners"
COMPLIANCE_KEY = AssetKey(["partners", "compliance"])
_DEFAULT_RULES = ComplianceRules()


class ComplianceConfig(Config):
    """Run config of ``partners/compliance``."""

    as_of: str | None = Field(
        default=None,
        description="The day the table describes (YYYY-MM-DD). Default: the newest extract date in the "
        "deliveries ledger, so a replayed archive gives the same answer on any day.",
    )
    period_start: str | None = Field(
        default=None,
        description="First day extracts are owed from (YYYY-MM-DD). Default: the earliest extract date in "
        "the ledger (when the platform began receiving); never before a partner's agreement was signed.",
    )
    late_grace_days: int = Field(default=_DEFAULT_RULES.late_grace_days, ge=0,
                                 description="Days past the next due extract before a partner is a non-responder.")
    min_completeness: float = Field(default=_DEFAULT_RULES.min_completeness, ge=0, le=1,
                                    description="Share of owed extracts below which a partner is a non-responder.")
    expiry_warning_days: int = Field(default=_DEFAULT_RULES.expiry_warning_days, ge=0,
                                     description="Escalate agreements expiring within this many days.")
    min_quality: float = Field(default=_DEFAULT_RULES.min_quality, ge=0, le=1,
                               description="Escalate feeds whose quality pass rate is below this.")




@asset(
    key=COMPLIANCE_KEY,
    deps=[AssetKey(["staged", feed]) for feed in FEED_NAMES],
    group_name=GROUP,
    kinds={"polars", "parquet", "sqlite"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    description=(
        "Per partner and feed in the registry: extracts owed by cadence since the period start against "
        "extracts received (from the deliveries ledger), the last extract, days late, how often extracts "
        "came late, the quality pass rate (files not quarantined x rows passing the contract), the data "
        "sharing agreement and days to its expiry, and the non-responders to name and escalate, each "
        "with the reason in plain words (the PCC's commitment: partners who do not respond are reported "
        "at the highest levels)."
    ),
)
def compliance(context: AssetExecutionContext, config: ComplianceConfig, platform: PlatformResource) -> Output[pl.DataFrame]:
    ledger = read_ledger(platform.database_url())
    if config.as_of:
        as_of, source = date.fromisoformat(config.as_of), "config"
    elif (newest := ledger_as_of(ledger)) is not None:
        as_of, source = newest, "newest extract date in the ledger"
    else:
        as_of, source = date.today(), "today (the ledger is empty)"
    rules = ComplianceRules(config.late_grace_days, config.min_completeness, config.expiry_warning_days, config.min_quality)
    period_start = date.fromisoformat(config.period_start) if config.period_start else None
    frame = build_compliance(ledger, platform.registry(), as_of, period_start, rules)
    named = non_responders(frame)
    for r in named.iter_rows(named=True):
        context.log.warning(f"non-responder {r['partner_id']} {r['feed']}: {r['escalation_reason']}")
    owed = frame.filter(pl.col("extracts_owed").is_not_null())
    return Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "as_of": as_of.isoformat(),
            "as_of_source": source,
            "non_responders": named.height,
            "escalations": int(frame["escalate"].sum()) if frame.height else 0,
            "extracts_owed": int(owed["extracts_owed"].sum()) if owed.height else 0,
            "extracts_received": int(owed["extracts_received"].sum()) if owed.height else 0,
            "non_responders_table": markdown_table(
                named.select("organisation", "feed", "days_late", "escalation_reason"), 25),
            "compliance_table": markdown_table(
                owed.select("partner_id", "feed", "cadence_days", "extracts_owed", "extracts_received",
                            "last_extract_date", "days_late", "quality_pass_rate", "days_to_expiry"), 40),
        },
    )


partner_compliance_daily = ScheduleDefinition(
    name="partner_compliance_daily",
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/London",
    target=AssetSelection.assets(COMPLIANCE_KEY),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Rebuild partners/compliance every morning at 06:00 (Europe/London), before the daily management meeting.",
)

partners_assets = [compliance]
partners_schedules = [partner_compliance_daily]
