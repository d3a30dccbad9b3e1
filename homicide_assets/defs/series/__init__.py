"""Series: case links between deaths, linked series with reasons and a backtest, alerts.

from homicide_assets.defs.series import series_assets, series_checks
Definitions(assets=[..., *series_assets], asset_checks=[..., *series_checks],
            resources={"platform": ..., "alert_channel": alert_channel_resource(), ...})
"""

from homicide_assets.defs.series.assets import (
    CASE_LINKS_KEY,
    LINKED_SERIES_KEY,
    SeriesConfig,
    linked_series_contract,
    series_assets,
    series_checks,
    series_search,
)

__all__ = [
    "CASE_LINKS_KEY",
    "LINKED_SERIES_KEY",
    "SeriesConfig",
    "linked_series_contract",
    "series_assets",
    "series_checks",
    "series_search",
]
