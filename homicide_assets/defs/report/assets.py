"""``report/death_investigations_report`` and ``report/partner_edition``: the files, weekly and after each delivery.

One step renders both editions from the same inputs (so they always describe the same
data) under ``reports/<YYYY-MM-DD>/`` (the run date in Europe/London). The rendering is in
:mod:`homicide_assets.lib.report`. Sections whose upstream asset does not exist yet or has
not been materialised (linked series, lessons, partner compliance) render as "not yet
available"; those assets are ``deps`` read from the warehouse, not ``ins``, for that reason.
"""

from datetime import date

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    Config,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    multi_asset,
)
from pydantic import Field

from homicide_assets.defs.patterns.assets import (
    DEATH_PATTERNS_KEY,
    DEATH_REGISTER_KEY,
    DEATH_REPORTS_KEY,
    VIOLENCE_HOTSPOTS_KEY,
)
from homicide_assets.lib.report import (
    EDITIONS,
    ReportInputs,
    build_report,
    read_store_tables,
    read_warehouse,
    run_date_today,
)
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
GROUP = "report"
REPORT_KEY = AssetKey(["report", "death_investigations_report"])
PARTNER_KEY = AssetKey(["report", "partner_edition"])
#: Sections filled by other domains: read from the warehouse when they have been materialised.
OPTIONAL_INPUTS: dict[str, AssetKey] = {
    "case_links": AssetKey(["series", "case_links"]),
    "linked_series": AssetKey(["series", "linked_series"]),
    "recommendations": AssetKey(["lessons", "recommendations"]),
    "lessons_in_days": AssetKey(["lessons", "lessons_in_days"]),
    "compliance": AssetKey(["partners", "compliance"]),
}


class ReportConfig(Config):
    """Run config of the report."""

    run_date: str | None = Field(
        default=None, description="Folder date (YYYY-MM-DD) under reports/. Default: today in Europe/London."
    )
    pdf: bool = Field(
        default=False,
        description="Also write a PDF of each edition (needs WeasyPrint, which is not a dependency yet: at "
        "force-decade it adds ~10 s of CPU, beyond the report's 15 s budget, so it is asked for, not default).",
    )


_DESCRIPTION = (
    "The analytical report on death investigations the inspectorate asked for: executive summary, a "
    "choropleth of the seven authorities, trend charts with control limits, breakdowns, hotspots, linked "
    "series with their reasons and members, where police and partners disagree, lessons and partner "
    "compliance, data quality and methodology. Self-contained HTML (no script, font or remote request) with a "
    "CSV extract of every table, under reports/<YYYY-MM-DD>/. "
)


@multi_asset(
    specs=[
        AssetSpec(
            REPORT_KEY,
            group_name=GROUP,
            owners=OWNERS,
            kinds={"html", "csv"},
            deps=[
                DEATH_PATTERNS_KEY,
                VIOLENCE_HOTSPOTS_KEY,
                DEATH_REGISTER_KEY,
                DEATH_REPORTS_KEY,
                *OPTIONAL_INPUTS.values(),
            ],
            automation_condition=AutomationCondition.eager(),
            description=_DESCRIPTION + "Full edition (OFFICIAL-SENSITIVE): death_investigations_report.html.",
        ),
        AssetSpec(
            PARTNER_KEY,
            group_name=GROUP,
            owners=OWNERS,
            kinds={"html", "csv"},
            deps=[
                DEATH_PATTERNS_KEY,
                VIOLENCE_HOTSPOTS_KEY,
                DEATH_REGISTER_KEY,
                DEATH_REPORTS_KEY,
                *OPTIONAL_INPUTS.values(),
            ],
            automation_condition=AutomationCondition.eager(),
            description=_DESCRIPTION + "Partner edition: partner_edition.html, no names, dates of birth, NHS "
            "numbers, report ids or exact locations; counts 1-4 shown <5 with secondary suppression.",
        ),
    ],
    ins={
        "death_patterns": AssetIn(key=DEATH_PATTERNS_KEY),
        "violence_hotspots": AssetIn(key=VIOLENCE_HOTSPOTS_KEY),
        "death_register": AssetIn(key=DEATH_REGISTER_KEY),
        "death_reports": AssetIn(key=DEATH_REPORTS_KEY),
    },
    can_subset=True,
    name="death_investigations_reports",
)
def death_investigations_reports(
    context: AssetExecutionContext,
    config: ReportConfig,
    platform: PlatformResource,
    death_patterns: pl.DataFrame,
    violence_hotspots: pl.DataFrame,
    death_register: pl.DataFrame,
    death_reports: pl.DataFrame,
):
    """Render the selected editions and record each file's path and executive summary."""
    data_dir = platform.paths()
    optional = {name: read_warehouse(data_dir, key.path) for name, key in OPTIONAL_INPUTS.items()}
    for name, frame in optional.items():
        if frame is None:
            context.log.info(
                f"{OPTIONAL_INPUTS[name].to_user_string()} not materialised: section not yet available"
            )
    quarantine, deliveries, _receipts = read_store_tables(platform.database_url())
    run_date = date.fromisoformat(config.run_date) if config.run_date else run_date_today()
    inputs = ReportInputs(
        death_patterns=death_patterns,
        violence_hotspots=violence_hotspots,
        death_register=death_register,
        death_reports=death_reports,
        quarantine=quarantine,
        deliveries=deliveries,
        run_date=run_date,
        **optional,
    )
    wanted = [
        e for e, key in (("full", REPORT_KEY), ("partner", PARTNER_KEY)) if key in context.selected_asset_keys
    ]
    result = build_report(inputs, data_dir.reports, editions=wanted, pdf=config.pdf)
    missing = [OPTIONAL_INPUTS[n].to_user_string() for n, f in optional.items() if f is None]
    for edition in wanted:
        out = result.editions[edition]
        key = REPORT_KEY if edition == "full" else PARTNER_KEY
        yield MaterializeResult(
            asset_key=key,
            metadata={
                "path": MetadataValue.path(str(out.html_path)),
                "summary": MetadataValue.md(out.summary_md),
                "folder": MetadataValue.path(str(result.folder)),
                "run_date": run_date.isoformat(),
                "csv_extracts": len(out.csv_paths),
                "tables": MetadataValue.json(sorted(out.csv_paths)),
                "sections_not_yet_available": MetadataValue.json(missing),
                "pdf": MetadataValue.path(str(out.pdf_path))
                if out.pdf_path
                else (out.pdf_note or "not requested"),
                "render_seconds": round(result.timings.get(f"render_{edition}", 0.0), 2),
                "edition": EDITIONS[edition].name,
            },
        )


#: Monday 06:00 Europe/London, before the daily management meeting: the report and all it
#: is built from (except the per-delivery raw partitions, which the delivery sensor keeps
#: up to date).
weekly_report_schedule = ScheduleDefinition(
    name="weekly_death_investigations_report",
    cron_schedule="0 6 * * 1",
    execution_timezone="Europe/London",
    target=AssetSelection.assets(REPORT_KEY, PARTNER_KEY).upstream() - AssetSelection.key_prefixes(["raw"]),
    default_status=DefaultScheduleStatus.RUNNING,
    description="The death investigations report, both editions, rebuilt from the latest deliveries every "
    "Monday at 06:00 (Europe/London).",
)

report_assets = [death_investigations_reports]
report_schedules = [weekly_report_schedule]
