"""``raw/<feed>`` (one partition per delivery) and ``staged/<feed>`` for every feed."""


import warnings
from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
)

from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS
from homicide_assets.defs.metadata import markdown_table
from homicide_assets.lib.feeds import FEED_NAMES, FEEDS
from homicide_assets.lib.ingest import parse_archived_delivery, record_staged, stage_and_quarantine
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]

# A single run over many new deliveries (BackfillPolicy.single_run) is what keeps a large
# build fast; the parameter is marked beta in Dagster 1.13 and warns on every import.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", category=Warning)




def build_raw_asset(feed: str) -> AssetsDefinition:
    @asset(
        key=AssetKey(["raw", feed]),
        partitions_def=DELIVERY_PARTITIONS[feed],
        backfill_policy=BackfillPolicy.single_run(),
        group_name="ingest",
        kinds={"polars", "parquet"},
        owners=OWNERS,
        io_manager_key="warehouse_io_manager",
        description=(
            f"Rows of each `{feed}` delivery as text, with source file and line. The file's bytes "
            "are archived read-only under archive/<partner>/<sha256>; a file that cannot be read "
            "(undecodable, empty, header mismatch, truncated, duplicate keys, wrong extension) is "
            "quarantined whole with its reason."
        ),
    )
    def _raw(context: AssetExecutionContext, platform: PlatformResource):
        data_dir = platform.paths()
        frames, refused, rows = {}, [], 0
        for delivery_id in context.partition_keys:
            outcome = parse_archived_delivery(data_dir, delivery_id)
            frames[delivery_id] = outcome.frame
            rows += outcome.frame.height
            if outcome.status == "quarantined":
                refused.append(f"{delivery_id}: {outcome.rule}")
                context.log.warning(f"delivery {delivery_id} quarantined: rule {outcome.rule}")
            if outcome.dropped_columns:
                context.log.warning(
                    f"delivery {delivery_id}: columns not permitted by the agreement dropped: "
                    f"{', '.join(outcome.dropped_columns)}"
                )
        return Output(
            frames,
            metadata={
                "deliveries": len(frames),
                "rows_read": rows,
                "files_quarantined": len(refused),
                "quarantined": MetadataValue.md("\n".join(f"- {r}" for r in refused) or "_none_"),
            },
        )

    return _raw


def build_staged_asset(feed: str) -> AssetsDefinition:
    spec = FEEDS[feed]
    ins = {"death_reports": AssetIn(key=AssetKey(["staged", "death_reports"]))} if feed == "death_report_persons" else {}

    decorate = asset(
        key=AssetKey(["staged", feed]),
        deps=[AssetKey(["raw", feed])],
        ins=ins,
        group_name="ingest",
        kinds={"polars", "parquet"},
        owners=OWNERS,
        io_manager_key="warehouse_io_manager",
        automation_condition=AutomationCondition.eager(),
        description=(
            f"{spec.description} Typed and normalised per the feed contract; identifiers "
            "pseudonymised (HMAC-SHA256); rows breaking the contract quarantined with file, line, "
            "column and rule; the newest extract wins per record key. A new delivery's rows are staged "
            "on the staging held in models/staging/ (the table a staging of every delivery makes)."
        ),
    )

    def _staged_body(context: AssetExecutionContext, platform: PlatformResource,
                     death_reports: pl.DataFrame | None) -> Iterator[Output[pl.DataFrame]]:
        data_dir = platform.paths()
        known = death_reports.get_column("report_id") if death_reports is not None else None
        result, counts, missing = stage_and_quarantine(
            data_dir, feed, platform.key(), platform.registry(), known_report_ids=known
        )
        if missing:
            context.log.warning(f"{len(missing)} received deliveries of {feed} have no parsed rows yet")
        totals = counts.select(pl.exclude("_delivery_id").sum()).row(0, named=True) if counts.height else {}
        preview_cols = [c for c in spec.column_names if not (spec.column(c).personal or spec.column(c).pseudonymise)
                        and c not in ("narrative",)][:8]
        yield Output(
            result.staged,
            metadata={
                "dagster/row_count": result.staged.height,
                "rows_read": int(totals.get("rows_read", 0)),
                "rows_staged": int(totals.get("rows_staged", 0)),
                "rows_quarantined": int(totals.get("rows_quarantined", 0)),
                "rows_superseded": int(totals.get("rows_superseded", 0)),
                "deliveries": counts.height,
                "deliveries_not_yet_parsed": len(missing),
                # every row staged ("whole", and why) or the held staging carried forward ("held")
                "staging": result.how,
                "rules_broken": MetadataValue.json(
                    result.rejects.group_by("column", "rule").len().sort("len", descending=True).head(20).to_dicts()
                ),
                "preview": markdown_table(result.staged, 5, columns=preview_cols),
            },
        )
        # Dagster resumes the body only once the IO manager has written the table, so the
        # ledger says "staged" of a delivery only when the table holding its rows is written
        # (a failed write leaves its deliveries "parsed", staged again by the next run).
        record_staged(data_dir, feed, counts, result.deliveries)

    if ins:
        def _staged(context: AssetExecutionContext, platform: PlatformResource,
                    death_reports: pl.DataFrame) -> Iterator[Output[pl.DataFrame]]:
            yield from _staged_body(context, platform, death_reports)
    else:
        def _staged(context: AssetExecutionContext, platform: PlatformResource) -> Iterator[Output[pl.DataFrame]]:
            yield from _staged_body(context, platform, None)
    return decorate(_staged)


raw_assets = [build_raw_asset(feed) for feed in FEED_NAMES]
staged_assets = [build_staged_asset(feed) for feed in FEED_NAMES]
