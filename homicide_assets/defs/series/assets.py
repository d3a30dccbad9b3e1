"""``series/case_links`` and ``series/linked_series``, and the checks on them.

One step computes both (they come from one search: :func:`homicide_assets.lib.series.find_series`),
records the series in the ``series_seen`` table with stable ids and alerts analysts when a
series appears or grows (:mod:`homicide_assets.lib.series_decisions`). The metadata shows
counts, the top series (ids, sizes, kinds and backtest: no names), the Knox test of the
police-reported deaths and the false-alarm rates the thresholds were set for.
"""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AutomationCondition,
    Config,
    MetadataValue,
    Output,
    asset_check,
    multi_asset,
)
from pydantic import Field

from homicide_assets.defs.metadata import markdown_table
from homicide_assets.defs.quality.resources import AlertChannelResource
from homicide_assets.lib.series import (
    CASE_LINKS_SCHEMA,
    KINDS,
    LINKED_SERIES_SCHEMA,
    SeriesParams,
    find_series,
)
from homicide_assets.lib.series_decisions import record_series
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
GROUP = "series"
CASE_LINKS_KEY = AssetKey(["series", "case_links"])
LINKED_SERIES_KEY = AssetKey(["series", "linked_series"])
DEATH_REGISTER_KEY = AssetKey(["linkage", "death_register"])
INPUTS = {
    "death_register": AssetIn(key=DEATH_REGISTER_KEY),
    "person_clusters": AssetIn(key=AssetKey(["linkage", "person_clusters"])),
    "death_reports": AssetIn(key=AssetKey(["staged", "death_reports"])),
    "death_report_persons": AssetIn(key=AssetKey(["staged", "death_report_persons"])),
    "me_deaths": AssetIn(key=AssetKey(["staged", "me_deaths"])),
    "safeguarding_contacts": AssetIn(key=AssetKey(["staged", "safeguarding_contacts"])),
}
class SeriesConfig(Config):
    """Run config of the series search (defaults are the thresholds chosen on seed 1)."""

    link_threshold: float = Field(
        default=SeriesParams.link_threshold,
        ge=0.0,
        le=1.0,
        description="Link score from which two deaths join a series.",
    )
    scan_false_alarms_per_year: float = Field(
        default=SeriesParams.scan_false_alarms_per_year,
        gt=0.0,
        description="False alarms a year allowed to the space-time scan, over all its groups.",
    )
    excess_false_alarms_per_year: float = Field(
        default=SeriesParams.excess_false_alarms_per_year,
        gt=0.0,
        description="False alarms a year allowed to the institution and clinician excess scan.",
    )
    unexpected_false_alarms_per_year: float = Field(
        default=SeriesParams.unexpected_false_alarms_per_year,
        gt=0.0,
        description="False alarms a year allowed to the scan of sudden or ill-defined certificates "
        "from one clinician at one place.",
    )
    alert: bool = Field(default=True, description="Alert analysts when a series appears or grows.")

    def params(self) -> SeriesParams:
        return SeriesParams(
            link_threshold=self.link_threshold,
            scan_false_alarms_per_year=self.scan_false_alarms_per_year,
            excess_false_alarms_per_year=self.excess_false_alarms_per_year,
            unexpected_false_alarms_per_year=self.unexpected_false_alarms_per_year,
        )




def _knox(result) -> dict:
    knox = result.search.knox
    if knox is None:
        return {"knox_test": MetadataValue.text("too few police-reported deaths with a place")}
    return {
        "knox_test": MetadataValue.text(knox.describe()),
        "knox_p_value": MetadataValue.float(knox.p_value),
        "knox_ratio": MetadataValue.float(float(knox.ratio)),
    }


@multi_asset(
    name="series_search",
    outs={
        "case_links": AssetOut(
            key=CASE_LINKS_KEY,
            group_name=GROUP,
            owners=OWNERS,
            kinds={"polars", "parquet"},
            io_manager_key="warehouse_io_manager",
            automation_condition=AutomationCondition.eager(),
            description=(
                "Pairs of deaths with something in common, each with a score (0-1) and its evidence in "
                "words (outputs.md): the same person through linkage's person keys (finder, reporting "
                "person, last seen with, suspect, associate, next of kin; the suspect of one the victim "
                "of another), the same attending officers, clinician or place of death, distance and "
                "days apart against how common that closeness is where they happened, shared substances "
                "(rare ones weigh more), method, kind of place, victims' age and sex, concerns known to "
                "services; and group evidence (too many deaths with one clinician or at one care home, "
                "clusters in space and time). Entities common to many deaths (a large hospital, a busy "
                "officer) weigh next to nothing. `linked` marks links at or above the series threshold; "
                "`score_then` and `visible_on` are what the backtest saw. OFFICIAL-SENSITIVE: evidence "
                "may name people."
            ),
        ),
        "linked_series": AssetOut(
            key=LINKED_SERIES_KEY,
            group_name=GROUP,
            owners=OWNERS,
            kinds={"polars", "parquet"},
            io_manager_key="warehouse_io_manager",
            automation_condition=AutomationCondition.eager(),
            description=(
                "Connected groups of deaths joined by links at or above the threshold, ranked by score "
                "(outputs.md): members in date order, kinds, a reason paragraph an analyst can check, and "
                "the backtest (deaths replayed in date order): the date of the death at which the series "
                "could first have been flagged and how many members it had then. Ids are stable across "
                "runs (a series keeps its id as it grows); analysts are alerted when a series appears or "
                "grows. OFFICIAL-SENSITIVE: reasons may name people."
            ),
        ),
    },
    ins=INPUTS,
    can_subset=False,
)
def series_search(
    context: AssetExecutionContext,
    config: SeriesConfig,
    platform: PlatformResource,
    alert_channel: AlertChannelResource,
    death_register: pl.DataFrame,
    person_clusters: pl.DataFrame,
    death_reports: pl.DataFrame,
    death_report_persons: pl.DataFrame,
    me_deaths: pl.DataFrame,
    safeguarding_contacts: pl.DataFrame,
):
    """Search the register for linked series; store, alert and describe them."""
    params = config.params()
    staged = {
        "death_reports": death_reports,
        "death_report_persons": death_report_persons,
        "me_deaths": me_deaths,
        "safeguarding_contacts": safeguarding_contacts,
    }
    result = find_series(
        death_register, person_clusters, staged, params, held=platform.paths().models / "series"
    )
    if result.how == "held":
        search = (
            "held search reused: the deaths, the people, places and things they share, the "
            "parameters and the code are unchanged since it ran (models/series/)"
        )
    elif result.how == "incremental":
        search = result.searched_because
    else:
        search = f"searched all candidate pairs: {result.searched_because}"
    # counts of deaths, pairs and entities only: nothing here names anyone
    context.log.info(f"series search: {search}")
    changes = record_series(
        platform.database_url(), result.linked_series, channel=alert_channel.channel(), alert=config.alert
    )
    series = changes.series.select(list(LINKED_SERIES_SCHEMA)).cast(LINKED_SERIES_SCHEMA)
    for sid in changes.alerted:
        context.log.warning(f"series {sid} is new or has grown: analysts alerted")
    links = result.case_links.select(list(CASE_LINKS_SCHEMA))
    linked = links.filter(pl.col("linked"))
    kinds = (
        linked.select(pl.col("kinds").explode())
        .drop_nulls()
        .group_by("kinds")
        .len()
        .sort("len", descending=True)
    )
    yield Output(
        links,
        output_name="case_links",
        metadata={
            "dagster/row_count": links.height,
            "links_at_threshold": linked.height,
            "candidate_pairs_scored": result.candidate_pairs,
            "search": search,
            "link_threshold": params.link_threshold,
            "links_by_kind": markdown_table(kinds, 20),
            "top_links": markdown_table(
                linked.select(
                    "death_id_a",
                    "death_id_b",
                    "score",
                    "kinds",
                    "days_apart",
                    pl.col("metres_apart").round(0),
                ),
                10,
            ),
        },
    )
    flagged = series.filter(pl.col("flagged_at_member").is_not_null())
    yield Output(
        series,
        output_name="linked_series",
        metadata={
            "dagster/row_count": series.height,
            "deaths_in_series": int(series["size"].sum() or 0),
            "new_series": len(changes.new),
            "grown_series": len(changes.grown),
            "gone_series": len(changes.gone),
            "alerts_raised": len(changes.alerted),
            "dismissed_not_alerted": len(changes.suppressed),
            "median_flagged_at_member": MetadataValue.float(float(flagged["flagged_at_member"].median()))
            if flagged.height
            else MetadataValue.float(float("nan")),
            "top_series": markdown_table(
                series.select("series_id", "size", "score", "kinds", "first_flagged_on", "flagged_at_member"),
                15,
            ),
            "group_evidence": markdown_table(
                result.groups.select(
                    "scan", "group", pl.col("members").list.len().alias("deaths"), "p_value", "p_threshold"
                ),
                15,
            ),
            "false_alarm_rates": MetadataValue.md(
                f"- pair links: score >= {params.link_threshold} (posterior with prior odds "
                f"{params.partners_per_death} series partners per death)\n"
                f"- space-time scan: {params.scan_false_alarms_per_year} false alarms a year over all groups "
                f"(Monte Carlo, {params.scan_permutations} permutations of the dates)\n"
                f"- institution and clinician excess: {params.excess_false_alarms_per_year} false alarms a year "
                f"(Monte Carlo, {params.excess_simulations} simulations)\n"
                f"- sudden or ill-defined certificates from one clinician at one place: "
                f"{params.unexpected_false_alarms_per_year} false alarms a year (Monte Carlo, "
                f"{params.unexpected_simulations} simulations)"
            ),
            **_knox(result),
        },
    )


@asset_check(
    asset=LINKED_SERIES_KEY,
    name="linked_series_contract",
    additional_ins={"death_register": AssetIn(key=DEATH_REGISTER_KEY)},
    description=(
        "series/linked_series keeps its contract: outputs.md columns, unique ids, size equal to the members, "
        "members in the register and in date order, kinds from the outputs.md list, a reason for every "
        "series, flagged_at_member between 2 and the size."
    ),
)
def linked_series_contract(linked_series: pl.DataFrame, death_register: pl.DataFrame) -> AssetCheckResult:
    problems: list[str] = []
    missing = [c for c in LINKED_SERIES_SCHEMA if c not in linked_series.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    else:
        if linked_series["series_id"].n_unique() != linked_series.height:
            problems.append("series ids are not unique")
        dates = dict(zip(death_register["death_id"].to_list(), death_register["date_of_death"].to_list()))
        for row in linked_series.iter_rows(named=True):
            sid, ids = row["series_id"], row["death_ids"]
            if row["size"] != len(ids):
                problems.append(f"{sid}: size {row['size']} but {len(ids)} members")
            unknown = [d for d in ids if d not in dates]
            if unknown:
                problems.append(f"{sid}: {len(unknown)} members not in the death register")
            member_dates = [dates[d] for d in ids if dates.get(d) is not None]
            if member_dates != sorted(member_dates):
                problems.append(f"{sid}: members not in date order")
            bad = [k for k in row["kinds"] if k not in KINDS]
            if bad:
                problems.append(f"{sid}: unknown kinds {bad}")
            if not (row["reason"] or "").strip():
                problems.append(f"{sid}: no reason")
            at = row["flagged_at_member"]
            if at is not None and not (2 <= at <= row["size"]):
                problems.append(f"{sid}: flagged_at_member {at} outside 2..{row['size']}")
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "series": linked_series.height,
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems[:30]) or "_none_"),
        },
    )


series_assets = [series_search]
series_checks = [linked_series_contract]
