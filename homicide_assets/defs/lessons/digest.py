"""``lessons_weekly_digest_sensor``: one message a week of overdue recommendations and non-responders.

The sensor reads the last materialised ``lessons/recommendations`` and
``partners/compliance`` and raises a single ``weekly_digest`` alert through
:mod:`homicide_assets.lib.alerts` (stored in the ``alerts`` table, sent by SMTP and/or
webhook through the ``alert_channel`` resource, configured by ``HOMICIDE_ALERT_*``). It sends at its first evaluation at or
after Monday 07:00 Europe/London each ISO week (so a daemon that was down on Monday still
sends on its return), and the alert's de-duplication key is the week, so the digest goes
out once per week whatever happens to the cursor.
"""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.lib.lessons_digest import Digest, build_digest, iso_week
from homicide_assets.resources import PlatformResource

LOCAL_TZ = ZoneInfo("Europe/London")
#: Monday (ISO weekday 1) from 07:00, after the compliance schedule (06:00) has run.
DIGEST_WEEKDAY = 1
DIGEST_HOUR = 7
DIGEST_SENSOR_INTERVAL_SECONDS = 15 * 60


def due_week(now_local: datetime, last_sent_week: str | None) -> str | None:
    """The ISO week to send for at ``now_local``, or ``None`` when nothing is due yet."""
    week = iso_week(now_local.date())
    started = (now_local.isoweekday(), now_local.hour) >= (DIGEST_WEEKDAY, DIGEST_HOUR)
    if not started or week == last_sent_week:
        return None
    return week


def send_weekly_digest(platform: PlatformResource, now_local: datetime, channel=None) -> tuple[Digest, object]:
    """Build the digest from the warehouse and raise it as one alert; returns (digest, alert outcome)."""
    from homicide_assets.lib.alerts import raise_alert

    data_dir = platform.paths()
    frames = {}
    for name, key in (("recommendations", ["lessons", "recommendations"]), ("compliance", ["partners", "compliance"])):
        path = data_dir.warehouse_file(key)
        frames[name] = pl.read_parquet(path) if path.exists() else pl.DataFrame()
    digest = build_digest(frames["recommendations"], frames["compliance"], now_local.date())
    outcome = raise_alert(
        platform.database_url(), "weekly_digest", digest.subject, digest.body, digest.dedup_key,
        severity="INFO",
        next_step=("Owners: update each overdue recommendation's status at its governance board and record it "
                   "(recommendation-status set). Chair of the VRP board: write to each non-responding partner."),
        channel=channel,
    )
    return digest, outcome


@sensor(
    name="lessons_weekly_digest_sensor",
    minimum_interval_seconds=DIGEST_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Once a week (first look after Monday 07:00 Europe/London) sends ONE digest listing every overdue "
        "recommendation (by owner) and every non-responding partner feed, with agreements near expiry, "
        "from the last lessons/recommendations and partners/compliance; through the alerts table and the "
        "configured SMTP/webhook channel. Requests no runs."
    ),
)
def lessons_weekly_digest_sensor(context: SensorEvaluationContext, platform: PlatformResource,
                                 alert_channel: AlertChannelResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    now_local = datetime.now(LOCAL_TZ)
    week = due_week(now_local, cursor.get("last_sent_week"))
    if week is None:
        return SkipReason(f"digest for {iso_week(now_local.date())} already sent or not yet due "
                          f"(Mondays from {DIGEST_HOUR:02d}:00 Europe/London)")
    digest, outcome = send_weekly_digest(platform, now_local, channel=alert_channel.channel())
    context.update_cursor(json.dumps({"last_sent_week": week}))
    context.log.info(f"weekly digest {week}: {digest.overdue} overdue, {digest.non_responders} non-responders; "
                     f"sent by {outcome.sent or 'no channel'}; failed {outcome.failed or 'none'}")
    return SkipReason(f"weekly digest {week} raised ({digest.overdue} overdue recommendations, "
                      f"{digest.non_responders} non-responding partner feeds)")
