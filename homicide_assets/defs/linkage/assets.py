"""``linkage/person_matches``, ``linkage/person_clusters`` and ``linkage/death_register``.

Thin wrappers: the work is in :mod:`homicide_assets.lib.linkage_register` (and, below it,
Splink through :mod:`homicide_assets.lib.linkage`).
"""

from typing import Literal

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
from homicide_assets.lib.linkage_register import (
    CLUSTER_THRESHOLD,
    PERSON_FEEDS,
    REESTIMATE_FRACTION,
    ClusterState,
    LinkageState,
    RegisterState,
    match_people,
    person_records,
    update_death_register,
    update_person_clusters,
)
from homicide_assets.resources import PlatformResource

OWNERS = ["team:force-data-engineering"]
#: Record keys of the rescored records listed in ``person_matches`` metadata (all are counted).
RESCORED_KEYS_SHOWN = 200
GROUP = "linkage"
STAGED_INS = {feed: AssetIn(key=AssetKey(["staged", feed])) for feed in PERSON_FEEDS}


class LinkageConfig(Config):
    """How ``linkage/person_matches`` runs Splink."""

    backend: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Splink backend: 'duckdb' in process (default), 'spark' for national scale "
        "(needs pyspark; uses the active Spark session or creates one).",
    )
    threshold: float = Field(
        default=CLUSTER_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="Match probability from which two records are the same person.",
    )
    seed: int | None = Field(
        default=None,
        description="Mixed into the sampling that trains u probabilities (sampling is by a hash of "
        "record ids, so results are reproducible without one).",
    )
    reestimate: bool = Field(
        default=False,
        description="Estimate the model again on this run even when the held model may be reused.",
    )
    reestimate_fraction: float = Field(
        default=REESTIMATE_FRACTION,
        ge=0.0,
        description="Reuse the held model (models/person_linkage/ in the data directory) and score only the "
        "pairs touching new or changed records until the records added, changed or removed since it was "
        "estimated reach this share of those it was estimated on; then estimate it again. 0 estimates "
        "on every run. The model is also estimated when none is held (a fresh data directory), when the "
        "linkage code, the seed or the columns carrying information change.",
    )




@asset(
    key=AssetKey(["linkage", "person_matches"]),
    ins=STAGED_INS,
    group_name=GROUP,
    kinds={"splink", "duckdb", "polars"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "Pairs of person records (the deceased of police reports, medical examiner deaths and "
        "inquests; safeguarding contacts; the finders, suspects, witnesses and others of police "
        "reports) that may be the same person, scored by a Splink model trained unsupervised on "
        "the data (u by random sampling, m by expectation maximisation on blocked pairs, term "
        "frequency adjustment on names). Pseudonymised NHS numbers decide where both records "
        "carry one; an inquest citing a police report is that report's deceased. Each pair "
        "says why in words; `linked` marks pairs at or above the clustering threshold."
    ),
)
def person_matches(
    context: AssetExecutionContext,
    config: LinkageConfig,
    platform: PlatformResource,
    death_reports: pl.DataFrame,
    death_report_persons: pl.DataFrame,
    me_deaths: pl.DataFrame,
    inquests: pl.DataFrame,
    safeguarding_contacts: pl.DataFrame,
) -> Output[pl.DataFrame]:
    staged = {
        "death_reports": death_reports,
        "death_report_persons": death_report_persons,
        "me_deaths": me_deaths,
        "inquests": inquests,
        "safeguarding_contacts": safeguarding_contacts,
    }
    records = person_records(staged)
    state_dir = platform.paths().models / "person_linkage"
    previous = LinkageState.load(state_dir)
    matching = match_people(
        records,
        threshold=config.threshold,
        backend=config.backend,
        seed=config.seed,
        previous=previous,
        reestimate=config.reestimate,
        reestimate_fraction=config.reestimate_fraction,
    )
    for note in matching.training_notes:
        context.log.info(f"training: {note}")
    context.log.info(
        f"model {'estimated' if matching.estimated else 'reused'} ({matching.model_reason}); "
        f"{matching.rescored.len() if matching.rescored is not None else 0} of {records.height} records rescored"
    )
    if matching.state is not None:
        matching.state.save(state_dir)
    matches = matching.matches
    linked = matches.filter(pl.col("linked"))
    by_feeds = linked.group_by("feed_l", "feed_r").len().sort("len", descending=True).rename({"len": "pairs"})
    rescored = matching.rescored if matching.rescored is not None else records["record_key"]
    meta_state = matching.state.meta if matching.state is not None else {}
    return Output(
        matches,
        metadata={
            "dagster/row_count": matches.height,
            "person_records": records.height,
            "linked_pairs": linked.height,
            "pairs_for_review": matches.height - linked.height,
            "threshold": config.threshold,
            "backend": config.backend,
            "model": "re-estimated" if matching.estimated else "reused",
            "model_reason": matching.model_reason,
            "model_estimated_on_records": int(meta_state.get("estimated_on_records", records.height)),
            "records_changed_since_estimate": int(meta_state.get("changes_since_estimate", 0)),
            "reestimate_fraction": config.reestimate_fraction,
            "records_new": matching.changes.get("new", records.height),
            "records_changed": matching.changes.get("changed", 0),
            "records_removed": matching.changes.get("removed", 0),
            "records_rescored": rescored.len(),
            "rescored_record_keys": MetadataValue.json(
                {"count": rescored.len(), "first": rescored.head(RESCORED_KEYS_SHOWN).to_list()}
            ),
            "prior_match_probability": MetadataValue.float(
                float(matching.model.get("probability_two_random_records_match") or 0.0)
            ),
            "linked_pairs_by_feeds": markdown_table(by_feeds, 20),
            "preview": markdown_table(
                matches.sort("match_probability").select(
                    "feed_l", "role_l", "feed_r", "role_r", "match_probability", "evidence"
                )
            ),
        },
    )


@asset(
    key=AssetKey(["linkage", "person_clusters"]),
    ins={**STAGED_INS, "person_matches": AssetIn(key=AssetKey(["linkage", "person_matches"]))},
    group_name=GROUP,
    kinds={"splink", "polars"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "One row per person record with its `person_key`: records joined by linked pairs are one "
        "person (connected components, Splink's solver). The key is a keyed pseudonym of the first "
        "record received for the person, stable for the same inputs. `role` is `deceased`, "
        "`subject` (safeguarding contact) or the role recorded against a police report (finder, "
        "suspect...), so series detection can see the same finder across reports."
    ),
)
def person_clusters(
    context: AssetExecutionContext,
    platform: PlatformResource,
    death_reports: pl.DataFrame,
    death_report_persons: pl.DataFrame,
    me_deaths: pl.DataFrame,
    inquests: pl.DataFrame,
    safeguarding_contacts: pl.DataFrame,
    person_matches: pl.DataFrame,
) -> Output[pl.DataFrame]:
    staged = {
        "death_reports": death_reports,
        "death_report_persons": death_report_persons,
        "me_deaths": me_deaths,
        "inquests": inquests,
        "safeguarding_contacts": safeguarding_contacts,
    }
    records = person_records(staged)
    state_dir = platform.paths().models / "person_clusters"
    update = update_person_clusters(records, person_matches, platform.key(), previous=ClusterState.load(state_dir))
    update.state.save(state_dir)
    clusters = update.clusters
    whole = update.records_reclustered is None
    context.log.info(f"person clusters: {'made whole: ' if whole else ''}{update.reason}")
    sizes = clusters.group_by("person_key").len()
    repeat_people = (
        clusters.filter(pl.col("role") != "deceased")
        .group_by("person_key")
        .agg(pl.col("record_key").str.split("|").list.first().n_unique().alias("reports"))
    )
    return Output(
        clusters,
        metadata={
            "dagster/row_count": clusters.height,
            "clustered": "whole" if whole else "clusters touched",
            "clustered_reason": update.reason,
            "records_clustered": clusters.height if whole else update.records_reclustered,
            "persons": sizes.height,
            "persons_with_several_records": int((sizes["len"] > 1).sum()),
            "largest_cluster": int(sizes["len"].max() or 0),
            "people_in_several_police_reports": int((repeat_people["reports"] > 1).sum()),
            "records_by_role": markdown_table(
                clusters.group_by("feed", "role").len().sort("feed", "role"), 20
            ),
        },
    )


@asset(
    key=AssetKey(["linkage", "death_register"]),
    ins={
        **STAGED_INS,
        "person_matches": AssetIn(key=AssetKey(["linkage", "person_matches"])),
        "person_clusters": AssetIn(key=AssetKey(["linkage", "person_clusters"])),
    },
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    automation_condition=AutomationCondition.eager(),
    description=(
        "One row per real death, however many partners reported it (outputs.md): the deceased "
        "records of one person, one police report per death, with the best date of death, place "
        "(local authority), sex and age across sources; the police classification, inquest "
        "conclusion and underlying cause as reported; the services that knew the person before "
        "the death; and the disagreements between sources in plain words (police natural against "
        "an inquest's unlawful killing, dates of death more than a day apart, a death the NHS or a "
        "coroner knows of with no police report)."
    ),
)
def death_register(
    context: AssetExecutionContext,
    platform: PlatformResource,
    death_reports: pl.DataFrame,
    death_report_persons: pl.DataFrame,
    me_deaths: pl.DataFrame,
    inquests: pl.DataFrame,
    safeguarding_contacts: pl.DataFrame,
    person_matches: pl.DataFrame,
    person_clusters: pl.DataFrame,
) -> Output[pl.DataFrame]:
    staged = {
        "death_reports": death_reports,
        "death_report_persons": death_report_persons,
        "me_deaths": me_deaths,
        "inquests": inquests,
        "safeguarding_contacts": safeguarding_contacts,
    }
    records = person_records(staged)
    state_dir = platform.paths().models / "death_register"
    update = update_death_register(
        staged,
        records,
        person_clusters,
        person_matches.filter(pl.col("linked")),
        platform.key(),
        previous=RegisterState.load(state_dir),
    )
    update.state.save(state_dir)
    register = update.register
    whole = update.persons_rebuilt is None
    context.log.info(f"death register: {'rebuilt whole: ' if whole else ''}{update.reason}")
    with_disagreement = register.filter(pl.col("disagreements").list.len() > 0)
    sources = (
        register.with_columns(
            pl.col("source_records")
            .list.eval(pl.element().str.split(":").list.first())
            .list.unique()
            .list.sort()
            .list.join(" + ")
            .alias("sources")
        )
        .group_by("sources")
        .len()
        .sort("len", descending=True)
    )
    return Output(
        register,
        metadata={
            "dagster/row_count": register.height,
            "rebuilt": "whole" if update.persons_rebuilt is None else "persons touched",
            "rebuilt_reason": update.reason,
            "persons_rebuilt": (
                register["person_key"].n_unique() if update.persons_rebuilt is None else update.persons_rebuilt
            ),
            "deaths_with_police_report": int(register["police_report_id"].is_not_null().sum()),
            "deaths_with_disagreements": with_disagreement.height,
            "deaths_known_to_services": int((register["known_to_services"].list.len() > 0).sum()),
            "deaths_by_sources": markdown_table(sources, 20),
            "disagreements_preview": markdown_table(
                with_disagreement.select(
                    "death_id",
                    "date_of_death",
                    "la_code",
                    "police_classification",
                    "inquest_conclusion",
                    "disagreements",
                )
            ),
        },
    )


linkage_assets = [person_matches, person_clusters, death_register]
