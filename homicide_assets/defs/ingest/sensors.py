"""``partner_delivery_sensor``: takes complete files from landing and requests their runs."""


import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.landing import look, receive
from homicide_assets.resources import PlatformResource

#: How often the sensor looks; a file must be unchanged across two looks to be taken.
DELIVERY_SENSOR_INTERVAL_SECONDS = 15


@sensor(
    name="partner_delivery_sensor",
    minimum_interval_seconds=DELIVERY_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[AssetKey(["raw", feed]) for feed in FEED_NAMES],
    description=(
        "Looks in landing/<partner_id>/ for complete delivery files (same size and mtime at two "
        "looks; *.part, ~$* and dot-files ignored), archives them, registers one dynamic partition "
        "per delivery and requests a run of that delivery's raw asset. Badly named files, files "
        "naming another partner's feed and feeds outside the partner's agreement are quarantined."
    ),
)
def partner_delivery_sensor(context: SensorEvaluationContext, platform: PlatformResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    data_dir = platform.paths()
    looked = look(data_dir, cursor)
    outcome = receive(data_dir, platform.registry(), looked.ready)
    for entry in outcome.quarantined:
        context.log.warning(f"quarantined {entry.file_name}: {entry.rule}")
    for receipt in outcome.duplicates:
        context.log.info(f"{receipt.file_name}: identical bytes already received ({receipt.delivery_id}); no-op")
    by_feed: dict[str, list[str]] = {}
    for d in outcome.accepted:
        by_feed.setdefault(d.feed, []).append(d.delivery_id)
    run_requests = [
        RunRequest(run_key=d.delivery_id, asset_selection=[AssetKey(["raw", d.feed])], partition_key=d.delivery_id,
                   tags={"homicide_assets/partner": d.partner_id, "homicide_assets/feed": d.feed})
        for d in outcome.accepted
    ]
    new_cursor = json.dumps(looked.cursor, sort_keys=True)
    if not run_requests and not outcome.quarantined and not outcome.duplicates:
        context.update_cursor(new_cursor)
        return SkipReason(f"no complete new files ({looked.pending} waiting for a second look)")
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[
            DELIVERY_PARTITIONS[feed].build_add_request(ids) for feed, ids in by_feed.items()
        ],
        cursor=new_cursor,
    )
