"""``partner_delivery_sensor``: takes complete files from landing and requests their runs."""


import json

from dagster import (
    AssetKey,
    AssetSelection,
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

#: Tag on every run that refreshes what is downstream of the raw layer (the delivery run
#: below and the automation sensor's runs). The instance's run queue allows one such run at
#: a time (``tag_concurrency_limits`` in deploy/dagster.postgres.yaml and serve's embedded
#: default), so two refreshes never write the same table at once and none overwrites a
#: newer one with an older view of the deliveries.
REFRESH_TAG = "homicide_assets/refresh"

RAW_KEYS = [AssetKey(["raw", feed]) for feed in FEED_NAMES]


def downstream_of(context: SensorEvaluationContext, key: AssetKey) -> list[AssetKey]:
    """Every asset downstream of ``key`` in the code location, in a stable order.

    Empty when the sensor is evaluated without its repository (a unit test's context)."""
    repo = context.repository_def
    if repo is None:
        return []
    keys = AssetSelection.assets(key).downstream(include_self=False).resolve(repo.asset_graph)
    return sorted(keys, key=lambda k: k.to_user_string())


@sensor(
    name="partner_delivery_sensor",
    minimum_interval_seconds=DELIVERY_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=AssetSelection.assets(*RAW_KEYS).downstream(),
    description=(
        "Looks in landing/<partner_id>/ for complete delivery files (same size and mtime at two "
        "looks; *.part, ~$* and dot-files ignored), archives them, registers one dynamic partition "
        "per delivery and requests a run of that delivery's raw asset; the tick's last delivery's "
        "run also refreshes everything downstream of its feed (staged, checks, linkage, series, "
        "report), so one delivery reaches the report in one run. Badly named files, files "
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
    run_requests = []
    for i, d in enumerate(outcome.accepted):
        raw = AssetKey(["raw", d.feed])
        tags = {"homicide_assets/partner": d.partner_id, "homicide_assets/feed": d.feed}
        selection = [raw]
        if i == len(outcome.accepted) - 1:
            # One run from file to report. Earlier deliveries of the same tick are raw-only
            # runs; if this run's staging starts before they finish, their materialisations
            # are newer than staged's and the automation sensor refreshes again.
            downstream = downstream_of(context, raw)
            if downstream:
                selection += downstream
                tags[REFRESH_TAG] = "delivery"
        run_requests.append(
            RunRequest(run_key=d.delivery_id, asset_selection=selection, partition_key=d.delivery_id, tags=tags)
        )
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
