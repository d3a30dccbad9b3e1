"""Partners: compliance of each partner with its cadence and agreement; non-responders named."""

from homicide_assets.defs.partners.assets import (
    ComplianceConfig,
    compliance,
    partner_compliance_daily,
    partners_assets,
    partners_schedules,
)

partners_sensors: list = []

__all__ = [
    "ComplianceConfig", "compliance", "partner_compliance_daily", "partners_assets", "partners_schedules",
    "partners_sensors",
]
