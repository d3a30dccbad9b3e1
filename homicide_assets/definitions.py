"""The one Definitions object: every asset, check, sensor, schedule and resource."""

from __future__ import annotations

import os

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    define_asset_job,
    in_process_executor,
)

from homicide_assets.defs.ingest import partner_delivery_sensor, raw_assets, staged_assets
from homicide_assets.defs.ingest.sensors import REFRESH_TAG
from homicide_assets.defs.lessons import lessons_assets, lessons_schedules, lessons_sensors
from homicide_assets.defs.linkage import linkage_assets
from homicide_assets.defs.partners import partners_assets, partners_schedules, partners_sensors
from homicide_assets.defs.patterns import patterns_assets
from homicide_assets.defs.quality import alert_channel_resource, quality_checks, quality_sensors
from homicide_assets.defs.report import report_assets, report_schedules
from homicide_assets.defs.series import series_assets, series_checks
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.settings import DataDir
from homicide_assets.resources import PlatformResource, WarehouseIOManager


def _env(name: str, default: str | None = None):
    """``EnvVar(name)`` when the variable is set (resolved at run time), else ``default``."""
    return EnvVar(name) if os.environ.get(name) else default


data_dir = DataDir.from_env()

platform = PlatformResource(
    data_dir=_env("HOMICIDE_DATA_DIR", str(data_dir.root)),
    database_url_override=_env("HOMICIDE_DATABASE_URL"),
    pseudonym_key=_env("HOMICIDE_PSEUDONYM_KEY"),
    pseudonym_key_file=_env("HOMICIDE_PSEUDONYM_KEY_FILE"),
)

RAW_KEYS = [AssetKey(["raw", feed]) for feed in FEED_NAMES]

#: one job per feed's deliveries (what the sensor and `homicide-assets build` run) ...
ingest_jobs = [
    define_asset_job(f"ingest_{feed}", selection=AssetSelection.assets(AssetKey(["raw", feed])),
                     description=f"Parse new `{feed}` deliveries into raw/{feed} partitions.")
    for feed in FEED_NAMES
]
#: ... and one job for everything downstream of the deliveries.
refresh_job = define_asset_job(
    "refresh_all",
    selection=AssetSelection.all() - AssetSelection.assets(*RAW_KEYS),
    description="Stage every feed and rebuild everything downstream (checks, linkage, series, report).",
)

#: Evaluates the assets' automation conditions (staged and everything downstream are eager,
#: so a new delivery refreshes the report). Running by default, every 10 s: Dagster's own
#: default automation sensor starts switched off and ticks every 30 s.
automation_sensor = AutomationConditionSensorDefinition(
    "refresh_after_deliveries",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    run_tags={REFRESH_TAG: "automation"},
    description="Materialises staged tables and everything downstream once new deliveries are parsed.",
)

defs = Definitions(
    assets=[
        *raw_assets, *staged_assets, *linkage_assets, *series_assets, *patterns_assets, *lessons_assets,
        *partners_assets, *report_assets,
    ],
    asset_checks=[*quality_checks, *series_checks],
    sensors=[partner_delivery_sensor, automation_sensor, *quality_sensors, *lessons_sensors, *partners_sensors],
    schedules=[*report_schedules, *lessons_schedules, *partners_schedules],
    jobs=[*ingest_jobs, refresh_job],
    resources={
        "platform": platform,
        "alert_channel": alert_channel_resource(),
        "warehouse_io_manager": WarehouseIOManager(platform=platform),
    },
    # Steps are light and many: one process avoids ~4 s of start-up per step.
    executor=in_process_executor,
)
