"""Sensors that tell analysts: check failures, refused files and rows, dropped columns, late partners.

A failed non-blocking check does not fail its run, so a run-failure sensor never sees it:
``quality_alert_sensor`` reads the check evaluations themselves (and the ledger's
quarantine records), and ``feed_overdue_sensor`` compares each partner's newest extract
with its cadence. Both only raise alerts (``lib.alerts``); neither requests runs.
``raise_pending_alerts`` does what one tick of the alert sensor does, for callers without a
sensor daemon (``homicide-assets build``, tests).
"""


import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckKey,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.dagster_run import DagsterRunStatus

from homicide_assets.defs.quality.checks import QUALITY_CHECK_KEYS
from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.lib.alerts import (
    AlertChannel,
    AlertOutcome,
    alert_check_failed,
    alert_ingest_events,
    alert_overdue_feeds,
    raise_alert,
    retry_unsent,
)
from homicide_assets.resources import PlatformResource

ALERT_SENSOR_INTERVAL_SECONDS = 60
OVERDUE_SENSOR_INTERVAL_SECONDS = 3600
LOCAL_TZ = ZoneInfo("Europe/London")


def _metadata_value(metadata: Mapping, name: str, default=None):
    value = metadata.get(name)
    if value is None:
        return default
    return getattr(value, "value", value)


def alert_check_results(
    instance: DagsterInstance, url: str, channel: AlertChannel, cursor: Mapping | None = None,
    check_keys: Sequence[AssetCheckKey] = QUALITY_CHECK_KEYS,
) -> tuple[dict, list[AlertOutcome]]:
    """Alert on each check evaluation newer than ``cursor`` that failed, or could not run."""
    cursor = dict(cursor or {})
    seen: dict[str, int] = dict(cursor.get("checks", {}))
    outcomes: list[AlertOutcome] = []
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
    for key, record in records.items():
        name = key.to_user_string()
        if record.id <= seen.get(name, 0):
            continue
        feed = key.asset_key.path[-1]
        if record.status == AssetCheckExecutionRecordStatus.FAILED and record.event is not None:
            evaluation = record.event.asset_check_evaluation
            metadata = evaluation.metadata if evaluation else {}
            severity = "ERROR" if evaluation is None or evaluation.severity.value == "ERROR" else "WARN"
            failures = _metadata_value(metadata, "failed_rules", []) or [
                {"rule_id": f"{feed}.{key.name}", "rule": evaluation.description if evaluation else key.name,
                 "unexpected_count": None}]
            outcomes.append(alert_check_failed(
                url, feed, key.name, severity, failures, int(_metadata_value(metadata, "rows", 0) or 0),
                _metadata_value(metadata, "report_html"), channel=channel))
            seen[name] = record.id
        elif record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
            seen[name] = record.id
        else:  # planned: an error if its run has ended without evaluating it
            run = instance.get_run_by_id(record.run_id)
            if run is not None and run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                outcomes.append(raise_alert(
                    url, "check_error", f"staged/{feed}: check {key.name} could not run",
                    f"The check {name} did not complete: run {record.run_id} ended {run.status.value}.",
                    f"check_error:{name}:{record.run_id}", severity="ERROR",
                    next_step="Open the run in the Dagster UI, fix the error it shows, and re-run refresh_all.",
                    channel=channel, feed=feed))
                seen[name] = record.id
    cursor["checks"] = seen
    return cursor, [o for o in outcomes if o.new]


def raise_pending_alerts(instance: DagsterInstance, url: str, channel: AlertChannel,
                         cursor: Mapping | None = None) -> tuple[dict, list[AlertOutcome]]:
    """One tick of the alert sensor: check results, ingest events, and a retry of failed sends."""
    cursor = dict(cursor or {})
    cursor, from_checks = alert_check_results(instance, url, channel, cursor)
    cursor, from_ingest = alert_ingest_events(url, cursor, channel)
    retry_unsent(url, channel)
    return cursor, [*from_checks, *from_ingest]


@sensor(
    name="quality_alert_sensor",
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Tells analysts (alerts table, e-mail, webhook) when a data quality check fails or cannot run, a "
        "file is quarantined, rows are refused, or columns outside an agreement are dropped. Reads check "
        "evaluations directly: a failed non-blocking check does not fail its run."
    ),
)
def quality_alert_sensor(context: SensorEvaluationContext, platform: PlatformResource,
                         alert_channel: AlertChannelResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    cursor, raised = raise_pending_alerts(context.instance, platform.database_url(), alert_channel.channel(), cursor)
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    for outcome in raised:
        context.log.info(f"alert {outcome.alert.kind}: {outcome.alert.subject} (sent: {', '.join(outcome.sent) or '-'})")
    return SkipReason(f"{len(raised)} new alert(s) raised" if raised else "nothing new to tell analysts")


@sensor(
    name="feed_overdue_sensor",
    minimum_interval_seconds=OVERDUE_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Once an hour: every partner feed owed under an agreement in force whose newest extract is older "
        "than its cadence (seeds/partner_feeds.csv) raises an alert, once per missed extract."
    ),
)
def feed_overdue_sensor(context: SensorEvaluationContext, platform: PlatformResource,
                        alert_channel: AlertChannelResource):
    today = datetime.now(LOCAL_TZ).date()
    raised = [o for o in alert_overdue_feeds(platform.database_url(), platform.registry(), today,
                                             alert_channel.channel()) if o.new]
    for outcome in raised:
        context.log.info(f"overdue: {outcome.alert.subject}")
    return SkipReason(f"{len(raised)} partner feed(s) newly overdue" if raised else "no feed newly overdue")


quality_sensors = [quality_alert_sensor, feed_overdue_sensor]
