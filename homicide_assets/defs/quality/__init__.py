"""Quality: the declared suites as asset checks on staged feeds, row conservation, alerts.

Wire into ``Definitions``::

    from homicide_assets.defs.quality import quality_checks, quality_sensors, alert_channel_resource
    Definitions(asset_checks=quality_checks, sensors=[..., *quality_sensors],
                resources={"platform": ..., "alert_channel": alert_channel_resource(), ...})
"""

from homicide_assets.defs.quality.checks import QUALITY_CHECK_KEYS, build_quality_checks, quality_checks
from homicide_assets.defs.quality.resources import AlertChannelResource, alert_channel_resource
from homicide_assets.defs.quality.sensors import (
    feed_overdue_sensor,
    quality_alert_sensor,
    quality_sensors,
    raise_pending_alerts,
)

__all__ = [
    "QUALITY_CHECK_KEYS",
    "AlertChannelResource",
    "alert_channel_resource",
    "build_quality_checks",
    "feed_overdue_sensor",
    "quality_alert_sensor",
    "quality_checks",
    "quality_sensors",
    "raise_pending_alerts",
]
