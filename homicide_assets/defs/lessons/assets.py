"""``lessons/recommendations`` and ``lessons/lessons_in_days``.

Thin wrappers: the work is in :mod:`homicide_assets.lib.lessons` (and the theme rules in
:mod:`homicide_assets.lib.themes`).
"""

from datetime import date

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AutomationCondition,
    Config,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from homicide_assets.defs.metadata import markdown_table
from homicide_assets.lib.compliance import newest_extract_date
from homicide_assets.lib.lessons import (
    DEFAULT_FLAG_AFTER_DAYS,
    FEED,
    build_lessons_in_days,
    build_recommendations,
    held_recommendation_history,
    overdue_list,
)
from homicide_assets.lib.lessons_updates import read_operator_updates
from homicide_assets.lib.themes import load_theme_rules
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
GROUP = "lessons"
RECOMMENDATIONS_KEY = AssetKey(["lessons", "recommendations"])
LESSONS_IN_DAYS_KEY = AssetKey(["lessons", "lessons_in_days"])
DEATH_REGISTER_KEY = AssetKey(["linkage", "death_register"])


class LessonsConfig(Config):
    """Run config of the lessons assets (Launchpad: ``ops: {lessons__recommendations: {config: ...}}``)."""

    as_of: str | None = Field(
        default=None,
        description="The day the tables describe (YYYY-MM-DD). Default: the newest extract date in the "
        "deliveries ledger, so a replayed archive gives the same answer on any day. Deliveries with a "
        "later extract date and operator updates effective after it are left out.",
    )
    flag_after_days: int = Field(
        default=DEFAULT_FLAG_AFTER_DAYS, ge=0,
        description="lessons_in_days: flag a homicide with no lesson recorded within this many days of the death.",
    )


def resolve_as_of(config_as_of: str | None, platform: PlatformResource) -> tuple[date, str]:
    """The as-of date and where it came from (config, ledger, or today when the ledger is empty)."""
    if config_as_of:
        return date.fromisoformat(config_as_of), "config"
    newest = newest_extract_date(platform.database_url())
    if newest is not None:
        return newest, "newest extract date in the ledger"
    return date.today(), "today (the ledger is empty)"




@asset(
    key=RECOMMENDATIONS_KEY,
    deps=[AssetKey(["staged", FEED])],
    ins={"death_register": AssetIn(key=DEATH_REGISTER_KEY)},
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "Every recommendation of every learning review (DARDR, OWHR, SAR, CSPR, PFD, IOPC, inspectorate, "
        "major investigation debrief) with its owner, governance board, due date (PFD: 56 days after "
        "publication when none is given), current status and full status history (every delivery's "
        "status and every operator update, never overwritten), days open, overdue flag, themes (phrase "
        "rules in seeds/recommendation_themes.csv, with the words that matched), whether a theme repeats "
        "an earlier review's, the partners involved and the deaths covered (via linkage/death_register)."
    ),
)
def recommendations(
    context: AssetExecutionContext, config: LessonsConfig, platform: PlatformResource,
    death_register: pl.DataFrame,
) -> Output[pl.DataFrame]:
    data_dir = platform.paths()
    as_of, as_of_source = resolve_as_of(config.as_of, platform)
    history, missing = held_recommendation_history(data_dir, data_dir.models / "review_history")
    if missing:
        context.log.warning(f"{len(missing)} deliveries of {FEED} have no parsed rows yet; their statuses are not in the history")
    updates = read_operator_updates(platform.database_url())
    frame = build_recommendations(history, as_of, updates, death_register, platform.registry(), load_theme_rules())
    overdue = overdue_list(frame)
    themes = (frame.select(pl.col("themes").explode()).drop_nulls().group_by("themes").len()
              .sort("len", descending=True) if frame.height else pl.DataFrame())
    return Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "as_of": as_of.isoformat(),
            "as_of_source": as_of_source,
            "reviews": frame["review_id"].n_unique() if frame.height else 0,
            "overdue": overdue.height,
            "open": int((~frame["status"].is_in(["implemented", "verified", "closed_not_implemented"])).sum()) if frame.height else 0,
            "with_repeated_theme": int(frame["repeated_theme"].sum()) if frame.height else 0,
            "repeated_for_same_owner": int((frame["repeated_for_owner"].list.len() > 0).sum())
            if frame.height
            else 0,
            "status_history_entries": int(frame["status_history"].list.len().sum()) if frame.height else 0,
            "operator_updates": updates.height,
            "without_theme": int((frame["themes"].list.len() == 0).sum()) if frame.height else 0,
            "themes": markdown_table(themes, 20),
            "overdue_preview": markdown_table(overdue.drop("review_title"), 15),
        },
    )


@asset(
    key=LESSONS_IN_DAYS_KEY,
    ins={
        "death_register": AssetIn(key=DEATH_REGISTER_KEY),
        "recommendations": AssetIn(key=RECOMMENDATIONS_KEY),
    },
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "For every homicide or serious violence death (police homicide or suspected homicide, or an "
        "inquest conclusion of unlawful killing): the first lesson recorded against it (a debrief or "
        "review recommendation linked to its police report), the days from the death to that lesson, "
        "and a flag when the configured period (default 28 days) passed without one."
    ),
)
def lessons_in_days(
    context: AssetExecutionContext, config: LessonsConfig, platform: PlatformResource,
    death_register: pl.DataFrame, recommendations: pl.DataFrame,
) -> Output[pl.DataFrame]:
    as_of, as_of_source = resolve_as_of(config.as_of, platform)
    frame = build_lessons_in_days(death_register, recommendations, as_of, config.flag_after_days)
    with_lesson = frame.filter(pl.col("first_lesson_on").is_not_null())
    median = with_lesson["days_to_first_lesson"].median() if with_lesson.height else None
    return Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "as_of": as_of.isoformat(),
            "as_of_source": as_of_source,
            "flag_after_days": config.flag_after_days,
            "flagged": int(frame["flagged"].sum()) if frame.height else 0,
            "with_a_lesson": with_lesson.height,
            "median_days_to_first_lesson": float(median) if median is not None else MetadataValue.null(),
            "flagged_preview": markdown_table(
                frame.filter(pl.col("flagged")).select("death_id", "police_classification", "inquest_conclusion",
                                                       "days_since_death", "flag_reason"), 15),
        },
    )


lessons_assets = [recommendations, lessons_in_days]
