"""The report: both editions as files under reports/<date>/, weekly and after every delivery."""

from homicide_assets.defs.report.assets import (
    OPTIONAL_INPUTS,
    PARTNER_KEY,
    REPORT_KEY,
    ReportConfig,
    death_investigations_reports,
    report_assets,
    report_schedules,
    weekly_report_schedule,
)

__all__ = [
    "OPTIONAL_INPUTS",
    "PARTNER_KEY",
    "REPORT_KEY",
    "ReportConfig",
    "death_investigations_reports",
    "report_assets",
    "report_schedules",
    "weekly_report_schedule",
]
