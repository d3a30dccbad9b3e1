"""Linked series of deaths: pairwise case links with evidence, series, and a backtest.

Pure library code (no Dagster); the assets in ``defs/series`` call :func:`find_series`.

How a link is scored
--------------------
Every piece of evidence that two deaths share is weighed as a likelihood ratio, in bits:
``log2(m / u)``, where ``u`` is the chance that an unrelated death would share it with
this one (measured on the force's own data) and ``m`` the chance that two deaths of one
series share it (a judgement, in :class:`SeriesParams`). This is the Fellegi-Sunter
weighing Splink uses for people, applied to deaths. ``u`` is where the discounting lives:

- shared people, officers, clinicians and places of death: ``u`` is how many other
  deaths the same person, officer, clinician or institution appears in, over all deaths
  (an inverse document frequency): a finder in two reports is rare, a busy hospital or a
  sudden-death officer appears in hundreds and weighs next to nothing;
- substances, method, location type, victim profile, vulnerabilities: ``u`` is their share
  of deaths (GHB or nitazenes are rare and weigh a lot; alcohol is common and does not);
- place: ``u`` is the share of all deaths within that distance of these two (measured
  around them, so 300 m apart in the city centre weighs less than 300 m apart in a
  suburb); time: the share of pairs of deaths that close in time.

The bits add up to ``W``; the link ``score`` is the posterior probability
``1 / (1 + 2 ** -(W + prior_bits))`` with prior odds ``partners_per_death / deaths``: the
expected number of series partners of a death over the number of deaths it could be
paired with. A link at or above ``link_threshold`` joins two deaths into a series.
Excess deaths at one institution or with one clinician, and clusters of deaths in space
and time, are also tested as groups (a Poisson scan), because no pair of them is
remarkable alone: see :mod:`homicide_assets.lib.series_scan`.

The backtest replays deaths in date order and scores each link with what was known on
the date of its later death (entity counts up to that date), to say when each series
would first have been flagged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.series_stats import (
    DENSITY_RADII_M,
    KnoxResult,
    cKDTree,
    knox_test,
    local_density,
    project_m,
    share_within,
)

#: Series kinds (``series/linked_series.kinds``), outputs.md.
KINDS = (
    "shared_person",
    "shared_place",
    "shared_substance",
    "same_method",
    "similar_victims",
    "space_time",
    "shared_officer",
    "shared_clinician",
    "shared_institution",
)
#: Person roles in ``death_report_persons``, plus the deceased themself.
PERSON_ROLES = (
    "deceased",
    "suspect",
    "finder",
    "reporting_person",
    "last_seen_with",
    "witness",
    "associate",
    "next_of_kin",
)
#: Methods that say nothing about how two deaths are alike.
UNINFORMATIVE_METHODS = ("not_known", "other")
#: Location types too common to be evidence of a shared kind of place.
COMMON_LOCATION_TYPES = ("dwelling", "street", "other", "hospital")
#: Substances too unspecific to be evidence.
UNINFORMATIVE_SUBSTANCES = ("other",)
EPOCH = date(1970, 1, 1)

ROLE_WORDS = {
    "deceased": "the deceased",
    "suspect": "suspect",
    "finder": "finder",
    "reporting_person": "reporting person",
    "last_seen_with": "last seen with",
    "witness": "witness",
    "associate": "associate",
    "next_of_kin": "next of kin",
}


def _role_pair_m() -> dict[tuple[str, str], float]:
    """m: how often two deaths of one series share a person in these two roles."""
    close = ("finder", "reporting_person", "last_seen_with")
    out: dict[tuple[str, str], float] = {}
    for a in PERSON_ROLES:
        for b in PERSON_ROLES:
            pair = tuple(sorted((a, b)))
            if a == "deceased" and b == "deceased":
                continue  # the same person dead twice is a linkage question, not a series
            if "next_of_kin" in pair:
                m = 0.03  # families bury more than one member: weak
            elif "witness" in pair:
                m = 0.15
            elif pair == ("suspect", "suspect") or set(pair) == {"deceased", "suspect"}:
                m = 0.9
            elif "suspect" in pair and (a in close or b in close):
                m = 0.8  # the suspect of one death found or reported another (Port, serial domestic)
            elif a in close and b in close:
                # the same finder twice is rare; the same reporting person is often family
                m = {"finder": 0.8, "last_seen_with": 0.8}.get(a, 0.5) if a == b else 0.6
            elif "suspect" in pair:
                m = 0.5
            else:  # associates, the deceased of one as a close person of another
                m = 0.4
            out[pair] = m
    return out


@dataclass(frozen=True)
class SeriesParams:
    """Every judgement the method makes, in one place (chosen on seed 1, held on others)."""

    #: expected number of series partners of a death, for the prior odds of a link
    partners_per_death: float = 0.01
    #: a link at or above this score joins a series
    link_threshold: float = 0.65
    #: links below this score are not written to ``case_links``
    report_floor: float = 0.05
    #: m for a shared person, by (sorted) pair of roles
    role_pair_m: dict[tuple[str, str], float] = field(default_factory=_role_pair_m)
    #: pseudo-count of other deaths for an entity seen only in the two deaths compared
    person_pseudo: float = 0.05
    #: a person in more deaths than this weighs less in proportion (m x usual / deaths)
    person_usual_deaths: float = 4.0
    entity_pseudo: float = 0.5
    #: m and the most bits one shared entity of each type can give
    officer_m: float = 0.3
    officer_max_bits: float = 4.0
    clinician_m: float = 0.6
    clinician_max_bits: float = 6.0
    institution_m: float = 0.6
    institution_max_bits: float = 6.0
    person_max_bits: float = 24.0
    substance_m: float = 0.8
    method_m: float = 0.6
    location_type_m: float = 0.5
    profile_m: float = 0.5
    #: ages within this many years count as the same age band
    profile_age_gap: int = 8
    #: weigh what kind of death two deaths share together, not one feature at a time (see
    #: :func:`_joint_kind`), for pairs scoring at least this on the one-at-a-time weighing
    joint_kind: bool = True
    joint_kind_floor: float = 0.01
    #: deaths' worth of weight of a feature's share of all deaths against its share among the
    #: deaths alike in the other ways (how the kinds of death that go together are counted)
    kind_prior_deaths: float = 20.0
    #: the power at which features beyond the rarest count when the force's deaths cannot
    #: show how they go together (0: the rarest alone; 1: as if independent)
    kind_beyond_data: float = 0.3
    #: weighings with each pair's own cluster (the deaths the previous weighing links to
    #: either of it, each counted as far as it is linked) left out of its background
    cluster_passes: int = 1
    #: pseudo-deaths added to the observed and expected counts of deaths of one kind near two
    #: (the ratio of the two is how much nearer that kind lies than all deaths do)
    kind_place_prior_deaths: float = 1.0
    vulnerability_m: float = 0.4
    flag_m: float = 0.8  # both domestic abuse related, both gang related
    #: how far apart and how long apart members of one series are: an equal mixture of
    #: exponentials at these scales (a drug batch within days and a few km, a Port-like
    #: series over a year within a few hundred metres, a serial perpetrator over years)
    place_scales_m: tuple[float, ...] = (200.0, 1_500.0, 5_000.0)
    time_scales_days: tuple[float, ...] = (10.0, 60.0, 400.0)
    min_distance_m: float = 50.0
    min_gap_days: float = 1.0
    #: candidate pairs: deaths within this distance and gap (space-time proximity) ...
    candidate_distance_m: float = 1_500.0
    candidate_gap_days: int = 45
    #: ... deaths at one place over a longer time ...
    place_distance_m: float = 400.0
    place_gap_days: int = 400
    #: ... and deaths sharing a person or a substance, each paired with the next ``k``
    entity_rank_window: int = 25
    #: methods in at most this share of police reports pair deaths as above
    rare_method_share: float = 0.05
    #: excess scan (institutions, clinicians): windows up to this long, groups this large
    excess_max_days: int = 90
    excess_min_deaths: int = 3
    #: excess scan: longest run tested, and the false alarms allowed per year of data (the
    #: p-value threshold is set by Monte Carlo on the data's own entity sizes)
    excess_max_members: int = 8
    excess_false_alarms_per_year: float = 0.1
    excess_simulations: int = 20
    #: excess scan: days of data the usual rate of an entity's type is worth against its own
    #: deaths outside the run (shrinkage for entities with little history)
    excess_prior_days: float = 180.0
    #: sudden or ill-defined certificates from one clinician at one place (series_scan.unexpected_groups)
    unexpected_false_alarms_per_year: float = 0.1
    unexpected_simulations: int = 50
    unexpected_place_types: tuple[str, ...] = ("care_home", "home", "hospice")
    #: space-time permutation scan within substances, methods, kinds of place and the young
    scan_radii_m: tuple[float, ...] = (250.0, 1_000.0, 2_500.0, 5_000.0)
    scan_max_days: int = 100
    scan_min_deaths: int = 3
    scan_young_age: int = 25
    #: groups not scanned: too broad (chance clusters in them would set everyone's threshold),
    #: or clustered by infrastructure and season rather than by a common cause (road deaths on
    #: one road, summer drownings in one river: patterns/violence_hotspots' business, not series)
    scan_excluded_groups: tuple[str, ...] = (
        "substance:alcohol",
        "method:poisoning_drugs",
        "place:public_open_space",
        "method:motor_vehicle",
        "method:drowning",
        "place:waterway",
    )
    #: weight (in deaths) of the whole force's geography in a small group's spatial share
    scan_prior_deaths: float = 20.0
    scan_permutations: int = 30
    scan_false_alarms_per_year: float = 0.05
    seed: int = 0
    #: two deaths on the same day closer than this are one incident, never a series link
    same_incident_m: float = 100.0
    #: naive baseline: same postcode district and method within this many days
    baseline_gap_days: int = 30
    #: Knox test of the police-reported deaths (in the metadata): pairs within this distance
    #: and this many days, and the permutations of the dates its p-value is read from
    knox_space_m: float = 1_000.0
    knox_days: float = 14.0
    knox_permutations: int = 199
    #: a held search (models/series/) weighs new and changed deaths against the background,
    #: thresholds and Knox test of its last whole search until the deaths new, changed or gone
    #: since then reach this share of that search's deaths; the next build then searches whole
    reestimate_fraction: float = 0.05

    def with_(self, **kw) -> SeriesParams:
        return replace(self, **kw)


# ----------------------------------------------------------------------------------------
# 1. One profile per death


PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "death_id": pl.String,
    "police_report_id": pl.String,
    "person_key": pl.String,
    "date_of_death": pl.Date,
    "day": pl.Int64,
    "sex": pl.String,
    "age": pl.Int64,
    "la_code": pl.String,
    "classification": pl.String,
    "has_police_report": pl.Boolean,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "postcode_district": pl.String,
    "location_type": pl.String,
    "method": pl.String,
    "substances": pl.List(pl.String),
    "domestic": pl.Boolean,
    "gang": pl.Boolean,
    "officer_in_case": pl.String,
    "attending_officers": pl.List(pl.String),
    "institution": pl.String,
    "place_of_death_type": pl.String,
    "clinician": pl.String,
    "me_concern": pl.Boolean,
    "icd10": pl.String,
    "vulnerabilities": pl.List(pl.String),
    "label": pl.String,
}


def _frame(staged: Mapping[str, pl.DataFrame | None], feed: str) -> pl.DataFrame | None:
    frame = staged.get(feed)
    if frame is None or frame.is_empty():
        return None
    return frame


def _col(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)


def _name_label(forename: pl.Expr, surname: pl.Expr) -> pl.Expr:
    """``J. Smith`` from a forename and surname as recorded."""
    initial = forename.str.strip_chars().str.slice(0, 1).str.to_uppercase()
    sur = surname.str.strip_chars().str.to_titlecase()
    return (
        pl.when(initial.is_not_null() & (initial != ""))
        .then(pl.concat_str([initial, pl.lit(". "), sur]))
        .otherwise(sur)
    )


def postcode_district(postcode: pl.Expr) -> pl.Expr:
    """The outward code (``B15`` of ``B15 2TT``)."""
    return postcode.str.to_uppercase().str.strip_chars().str.split(" ").list.first()


def _person_keys(person_clusters: pl.DataFrame) -> pl.DataFrame:
    """``record_key``, ``person_key`` and ``p_link`` (linkage's probability for the record's
    place in its person; 1 where the clusters carry none)."""
    p_link = (
        pl.col("match_probability").cast(pl.Float64)
        if "match_probability" in person_clusters.columns
        else pl.lit(1.0)
    )
    return person_clusters.select("record_key", "person_key", p_link.alias("p_link"))


def death_profiles(
    register: pl.DataFrame,
    person_clusters: pl.DataFrame,
    staged: Mapping[str, pl.DataFrame | None],
) -> pl.DataFrame:
    """One row per death of the register with what series detection compares.

    From ``linkage/death_register`` (date, sex, age, authority, classification), the police
    report (``staged/death_reports``: place, method, substances, officers), the medical
    examiner's record (``staged/me_deaths``: place of death, clinician) and local authority
    contacts of the deceased before the death (``staged/safeguarding_contacts`` through
    ``linkage/person_clusters``: services and concerns). Deaths with no date are left out.
    """
    reg = register.select(
        "death_id",
        "police_report_id",
        "person_key",
        "date_of_death",
        "la_code",
        "sex",
        pl.col("age_at_death").cast(pl.Int64).alias("age"),
        pl.col("police_classification").alias("classification"),
        "source_records",
        pl.col("known_to_services").fill_null(pl.lit([], pl.List(pl.String))),
    )
    reports = _frame(staged, "death_reports")
    if reports is not None:
        police = reports.select(
            pl.col("report_id").alias("police_report_id"),
            _col(reports, "reported_at", pl.Datetime("us", "Europe/London")).dt.date().alias("_reported_on"),
            _col(reports, "date_of_death", pl.Date).alias("_report_dod"),
            _col(reports, "incident_lat", pl.Float64).alias("lat"),
            _col(reports, "incident_lon", pl.Float64).alias("lon"),
            pl.coalesce(
                _col(reports, "incident_postcode", pl.String), _col(reports, "home_postcode", pl.String)
            ).alias("_postcode"),
            _col(reports, "location_type", pl.String).alias("location_type"),
            _col(reports, "method", pl.String).alias("method"),
            _col(reports, "substances", pl.List(pl.String)).alias("substances"),
            _col(reports, "domestic_abuse_related", pl.Boolean).alias("domestic"),
            _col(reports, "gang_related", pl.Boolean).alias("gang"),
            _col(reports, "officer_in_case", pl.String).alias("officer_in_case"),
            _col(reports, "attending_officers", pl.List(pl.String)).alias("attending_officers"),
            _name_label(_col(reports, "forename", pl.String), _col(reports, "surname", pl.String)).alias(
                "_police_label"
            ),
        ).unique("police_report_id", keep="last")
        reg = reg.join(police, on="police_report_id", how="left")
    me = _frame(staged, "me_deaths")
    if me is not None:
        me_rows = me.select(
            "record_key",
            _col(me, "place_of_death_org", pl.String).alias("institution"),
            _col(me, "place_of_death_type", pl.String).alias("place_of_death_type"),
            _col(me, "attending_clinician_ref", pl.String).alias("clinician"),
            _col(me, "me_concern", pl.Boolean).alias("me_concern"),
            _col(me, "icd10_underlying", pl.String).alias("icd10"),
            _col(me, "home_postcode", pl.String).alias("_me_postcode"),
            _name_label(_col(me, "forename", pl.String), _col(me, "surname", pl.String)).alias("_me_label"),
        )
        me_per_death = (
            reg.select("death_id", pl.col("source_records").alias("record_key"))
            .explode("record_key")
            .join(me_rows, on="record_key", how="inner")
            .sort("record_key")
            .unique("death_id", keep="first")
            .drop("record_key")
        )
        reg = reg.join(me_per_death, on="death_id", how="left")
    contacts = _frame(staged, "safeguarding_contacts")
    if contacts is not None and not person_clusters.is_empty():
        concerns = (
            contacts.select(
                "record_key",
                _col(contacts, "service", pl.String).alias("service"),
                _col(contacts, "concerns", pl.List(pl.String)).alias("concerns"),
                _col(contacts, "first_contact_date", pl.Date).alias("first_contact_date"),
            )
            .join(
                _person_keys(person_clusters),
                on="record_key",
                how="inner",
            )
            .join(
                reg.select("person_key", pl.col("date_of_death").alias("_dod")).drop_nulls("person_key"),
                on="person_key",
                how="inner",
            )
            .filter(
                pl.col("first_contact_date").is_null()
                | pl.col("_dod").is_null()
                | (pl.col("first_contact_date") <= pl.col("_dod"))
            )
            .group_by("person_key")
            .agg(
                pl.col("concerns")
                .list.explode(keep_nulls=False, empty_as_null=False)
                .drop_nulls()
                .unique()
                .sort()
                .alias("_concerns")
            )
        )
        reg = reg.join(concerns, on="person_key", how="left")
    out = reg.with_columns(
        date_of_death=pl.coalesce(
            pl.col("date_of_death"),
            *[pl.col(c) for c in ("_report_dod", "_reported_on") if c in reg.columns],
        ),
        has_police_report=(pl.col("lat").is_not_null() if "lat" in reg.columns else pl.lit(False))
        | pl.col("police_report_id").is_not_null(),
        postcode_district=postcode_district(
            pl.coalesce(
                *[pl.col(c) for c in ("_postcode", "_me_postcode") if c in reg.columns],
                pl.lit(None, pl.String),
            )
        ),
        vulnerabilities=pl.concat_list(
            pl.col("known_to_services"),
            pl.col("_concerns").fill_null(pl.lit([], pl.List(pl.String)))
            if "_concerns" in reg.columns
            else pl.lit([], pl.List(pl.String)),
        )
        .list.unique()
        .list.sort(),
        label=pl.coalesce(
            *[pl.col(c) for c in ("_police_label", "_me_label") if c in reg.columns], pl.lit(None, pl.String)
        ),
    ).filter(pl.col("date_of_death").is_not_null())
    out = out.with_columns(day=(pl.col("date_of_death") - pl.lit(EPOCH)).dt.total_days().cast(pl.Int64))
    cols = []
    for name, dtype in PROFILE_SCHEMA.items():
        cols.append(pl.col(name).cast(dtype) if name in out.columns else pl.lit(None, dtype).alias(name))
    profiles = out.select(cols).with_columns(
        pl.col("substances").fill_null(pl.lit([], pl.List(pl.String))),
        pl.col("attending_officers").fill_null(pl.lit([], pl.List(pl.String))),
        pl.col("has_police_report").fill_null(False),
    )
    return profiles.sort(["day", "death_id"]).with_row_index("idx").with_columns(pl.col("idx").cast(pl.Int64))


# ----------------------------------------------------------------------------------------
# 2. What deaths share: people, officers, clinicians, institutions, substances

ENTITY_SCHEMA = {
    "idx": pl.Int64,
    "day": pl.Int64,
    "etype": pl.String,
    "entity": pl.String,
    "role": pl.String,
    "label": pl.String,
    #: linkage's probability that this person record belongs to its person key (1 for others)
    "p_link": pl.Float64,
}


def death_entities(
    profiles: pl.DataFrame,
    person_clusters: pl.DataFrame,
    staged: Mapping[str, pl.DataFrame | None],
) -> pl.DataFrame:
    """Long table: each death (``idx``) and each person, officer, clinician, institution and
    substance recorded against it, with the role and a display label.

    People are identified by ``person_key`` from linkage, so name variants of one finder are
    one entity; the deceased is the ``deceased`` role, so the suspect of one death being the
    victim of another is a shared person.
    """
    parts = [pl.DataFrame(schema=ENTITY_SCHEMA)]
    base = profiles.select("idx", "day")
    parts.append(
        profiles.filter(pl.col("person_key").is_not_null()).select(
            "idx",
            "day",
            pl.lit("person").alias("etype"),
            pl.col("person_key").alias("entity"),
            pl.lit("deceased").alias("role"),
            pl.col("label"),
        )
    )
    persons = _frame(staged, "death_report_persons")
    if persons is not None and not person_clusters.is_empty():
        rows = (
            persons.select(
                "record_key",
                pl.col("report_id").alias("police_report_id"),
                pl.col("role").cast(pl.String),
                _name_label(_col(persons, "forename", pl.String), _col(persons, "surname", pl.String)).alias(
                    "label"
                ),
            )
            .join(
                _person_keys(person_clusters),
                on="record_key",
                how="inner",
            )
            .join(
                profiles.select("idx", "day", "police_report_id").drop_nulls("police_report_id"),
                on="police_report_id",
                how="inner",
            )
        )
        parts.append(
            rows.select(
                "idx",
                "day",
                pl.lit("person").alias("etype"),
                pl.col("person_key").alias("entity"),
                "role",
                "label",
                pl.col("p_link").fill_null(1.0),
            )
        )
    parts.append(
        profiles.filter(pl.col("officer_in_case").is_not_null()).select(
            "idx",
            "day",
            pl.lit("officer").alias("etype"),
            pl.col("officer_in_case").alias("entity"),
            pl.lit("officer_in_case").alias("role"),
            pl.col("officer_in_case").alias("label"),
        )
    )
    parts.append(
        profiles.select("idx", "day", pl.col("attending_officers").alias("entity"))
        .explode("entity")
        .drop_nulls("entity")
        .select(
            "idx",
            "day",
            pl.lit("officer").alias("etype"),
            "entity",
            pl.lit("attending").alias("role"),
            pl.col("entity").alias("label"),
        )
    )
    parts.append(
        profiles.filter(pl.col("clinician").is_not_null()).select(
            "idx",
            "day",
            pl.lit("clinician").alias("etype"),
            pl.col("clinician").alias("entity"),
            pl.lit("attending_clinician").alias("role"),
            pl.col("clinician").alias("label"),
        )
    )
    parts.append(
        profiles.filter(pl.col("institution").is_not_null()).select(
            "idx",
            "day",
            pl.lit("institution").alias("etype"),
            pl.col("institution").alias("entity"),
            pl.col("place_of_death_type").fill_null("place").alias("role"),
            pl.col("institution").alias("label"),
        )
    )
    parts.append(
        profiles.select("idx", "day", pl.col("substances").alias("entity"))
        .explode("entity")
        .drop_nulls("entity")
        .filter(~pl.col("entity").is_in(UNINFORMATIVE_SUBSTANCES))
        .select(
            "idx",
            "day",
            pl.lit("substance").alias("etype"),
            "entity",
            pl.lit("present").alias("role"),
            pl.col("entity").alias("label"),
        )
    )
    del base
    parts = [p if "p_link" in p.columns else p.with_columns(p_link=pl.lit(1.0)) for p in parts]
    ent = pl.concat([p.select(list(ENTITY_SCHEMA)).cast(ENTITY_SCHEMA) for p in parts])
    # An officer works one area (a local authority: where most of their deaths are); how many
    # police-reported deaths that area has is the population an officer's share of deaths is
    # measured in (``Background.police_by_area``: part of the background, so a held search
    # counts an area's deaths as its basis did, and one new death there does not change every
    # officer of the area).
    la = profiles.select("idx", "la_code")
    officer_area = (
        ent.filter(pl.col("etype") == "officer")
        .select("entity", "idx")
        .unique()
        .join(la, on="idx", how="left")
        .group_by("entity", "la_code")
        .len()
        .sort(["entity", "len", "la_code"], descending=[False, True, False])
        .unique("entity", keep="first")
        .select("entity", pl.lit("officer").alias("etype"), pl.col("la_code").cast(pl.String).alias("area"))
    )
    ent = ent.join(officer_area, on=["etype", "entity"], how="left")
    # How many deaths' reports name someone so (initial and surname, any person key): the
    # namesakes linkage could have joined into one person.
    ent = ent.with_columns(
        n_named=pl.when(pl.col("etype") == "person")
        .then(pl.col("idx").n_unique().over(pl.col("etype"), pl.col("label").str.to_lowercase()))
        .otherwise(None)
        .cast(pl.Int64)
    )
    # One row per death, entity and role (an officer both attending and in the case counts once per role).
    ent = ent.unique(["idx", "etype", "entity", "role"], keep="first")
    # Deaths with the entity, in total and up to each death's date (for the backtest).
    ent = ent.with_columns(n_deaths=pl.col("idx").n_unique().over("etype", "entity").cast(pl.Int64))
    # (the deaths with it on or before each death's day: ties on the same day count together)
    first = (
        ent.select("etype", "entity", "idx", "day")
        .unique(["etype", "entity", "idx"])
        .with_columns(n_upto=pl.col("day").rank("max").over("etype", "entity").cast(pl.Int64))
    )
    return ent.join(
        first.select("etype", "entity", "idx", "n_upto"), on=["etype", "entity", "idx"], how="left"
    )


# ----------------------------------------------------------------------------------------
# 3. The background: how common everything is


@dataclass
class Background:
    """How many deaths have each attribute, counted on the data being searched.

    Shares used as ``u`` leave the two deaths compared out of the count ("how many *other*
    deaths have GHB"), so a series does not make its own signature look common.
    """

    n_deaths: int
    n_police: int
    n_me: int
    first_day: int
    span_days: float
    method_count: dict[str, int]
    substance_count: dict[str, int]
    substance_by_method_count: dict[tuple[str, str], int]
    location_count: dict[str, int]
    vulnerability_count: dict[str, int]
    vulnerability_by_method_count: dict[tuple[str, str], int]
    #: ("location:<type>" | "flag:domestic" | "flag:gang", method) -> police-reported deaths
    feature_by_method_count: dict[tuple[str, str], int]
    domestic_count: int
    gang_count: int
    #: police-reported deaths per local authority (the population an officer's share of
    #: deaths is measured in: the area they work)
    police_by_area: dict[str, int]
    #: per (method or None for all, sex), cumulative counts of ages 0..120 of police-reported
    #: deaths, for age-band shares (within the method when two deaths share it)
    age_cum: dict[tuple[str | None, str], np.ndarray]
    #: deaths per institution and per (institution, clinician) in medical examiner data
    institution_count: dict[str, int]
    institution_clinician_count: dict[tuple[str, str], int]
    density: np.ndarray  # (n_deaths, radii) neighbour counts; NaN rows without coordinates
    n_geo: int
    prior_bits: float
    #: the latitude candidate pairs' distances are projected at (the mean of the deaths with a
    #: place): part of the basis, so a held search's new deaths are measured as its pairs were
    lat0: float = 52.5

    @property
    def years(self) -> float:
        return self.span_days / 365.25

    def share(self, count: int | float, population: int | float) -> float:
        """Share of the *other* deaths with an attribute both compared deaths have."""
        return other_share(count, population)

    def profile_share(
        self, sex: np.ndarray, age_lo: np.ndarray, age_hi: np.ndarray, method: np.ndarray | None = None
    ) -> np.ndarray:
        """Share of other deaths of this sex with an age in ``[age_lo, age_hi]``, among the
        deaths by ``method`` where given (None: among all police-reported deaths)."""
        out = np.ones(len(sex))
        method = np.full(len(sex), None, dtype=object) if method is None else method
        method_key = np.array(["" if x is None else str(x) for x in method], dtype=object)
        for (mth, s), cum in self.age_cum.items():
            m = (sex == s) & (method_key == ("" if mth is None else mth))
            if not m.any():
                continue
            total = sum(int(c[-1]) for (mm, _), c in self.age_cum.items() if mm == mth) or 1
            lo = np.clip(age_lo[m], 0, 120).astype(int)
            hi = np.clip(age_hi[m], 0, 120).astype(int)
            n = cum[hi] - np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0)
            out[m] = (np.maximum(n - 2, 0) + 0.5) / total
        return out


def other_share(count, population, pseudo: float = 0.5):
    """``(count - 2 + pseudo) / population``: the share of other deaths with the attribute."""
    population = np.maximum(np.asarray(population, dtype=float), 1.0)
    return (np.maximum(np.asarray(count, dtype=float) - 2, 0) + pseudo) / population


def _counts(values: pl.Series) -> dict[str, int]:
    counts = values.drop_nulls().value_counts()
    return {r[0]: int(r[1]) for r in counts.iter_rows()}


def measure_background(profiles: pl.DataFrame, params: SeriesParams, with_density: bool = True) -> Background:
    """How common each attribute is among the deaths being searched (the ``u`` of every item).

    ``with_density=False`` leaves the neighbour counts NaN (a held search holds its own)."""
    police = profiles.filter(pl.col("has_police_report"))
    n = max(profiles.height, 1)
    days = profiles["day"]
    first_day = int(days.min()) if profiles.height else 0
    span = float(max(int(days.max()) - first_day + 1, 30)) if profiles.height else 365.0
    by_method = (
        police.select("method", pl.col("substances").list.unique())
        .explode("substances")
        .drop_nulls()
        .group_by("method", "substances")
        .len()
    )
    age_cum: dict[tuple[str | None, str], np.ndarray] = {}
    aged = police.filter(pl.col("sex").is_in(["m", "f"]) & pl.col("age").is_not_null())
    for s in ("m", "f"):
        ages = aged.filter(pl.col("sex") == s)["age"].clip(0, 120).to_numpy()
        age_cum[(None, s)] = np.cumsum(np.bincount(ages.astype(int), minlength=121))
    for (mth, s), grp in aged.filter(pl.col("method").is_not_null()).group_by("method", "sex"):
        age_cum[(mth, s)] = np.cumsum(
            np.bincount(grp["age"].clip(0, 120).to_numpy().astype(int), minlength=121)
        )
    vulnerable = police.select("method", pl.col("vulnerabilities").list.unique()).explode("vulnerabilities")
    vul_by_method = vulnerable.drop_nulls().group_by("method", "vulnerabilities").len()
    features = (
        pl.concat(
            [
                police.select(
                    pl.concat_str([pl.lit("location:"), pl.col("location_type")]).alias("f"), "method"
                ),
                police.filter(pl.col("domestic").fill_null(False)).select(
                    pl.lit("flag:domestic").alias("f"), "method"
                ),
                police.filter(pl.col("gang").fill_null(False)).select(
                    pl.lit("flag:gang").alias("f"), "method"
                ),
            ]
        )
        .drop_nulls()
        .group_by("f", "method")
        .len()
    )
    me = profiles.filter(pl.col("institution").is_not_null())
    combo = me.filter(pl.col("clinician").is_not_null()).group_by("institution", "clinician").len()
    has_geo = profiles["lat"].is_not_null() & profiles["lon"].is_not_null()
    geo_idx = np.flatnonzero(has_geo.to_numpy())
    density = np.full((profiles.height, len(DENSITY_RADII_M)), np.nan)
    if len(geo_idx) and with_density:
        pts = project_m(profiles["lat"].to_numpy()[geo_idx], profiles["lon"].to_numpy()[geo_idx])
        density[geo_idx] = local_density(pts)
    return Background(
        n_deaths=n,
        n_police=max(police.height, 1),
        n_me=max(int((profiles["clinician"].is_not_null() | profiles["institution"].is_not_null()).sum()), 1),
        first_day=first_day,
        span_days=span,
        method_count=_counts(police["method"]),
        substance_count=_counts(police["substances"].list.unique().explode()),
        substance_by_method_count={(r[0], r[1]): int(r[2]) for r in by_method.iter_rows()},
        location_count=_counts(police["location_type"]),
        vulnerability_count=_counts(vulnerable["vulnerabilities"]),
        vulnerability_by_method_count={(r[0], r[1]): int(r[2]) for r in vul_by_method.iter_rows()},
        feature_by_method_count={(r[0], r[1]): int(r[2]) for r in features.iter_rows()},
        institution_count=_counts(me["institution"]),
        institution_clinician_count={(r[0], r[1]): int(r[2]) for r in combo.iter_rows()},
        domestic_count=int(police["domestic"].fill_null(False).sum()),
        gang_count=int(police["gang"].fill_null(False).sum()),
        police_by_area=_counts(police["la_code"]),
        age_cum=age_cum,
        density=density,
        n_geo=len(geo_idx),
        prior_bits=math.log2(params.partners_per_death / n),
        lat0=float(np.nanmean(profiles["lat"].to_numpy()[geo_idx])) if len(geo_idx) else 52.5,
    )


# ----------------------------------------------------------------------------------------
# 4. Candidate pairs

PAIR_SCHEMA = {"a": pl.Int64, "b": pl.Int64}


def pair_groups(profiles: pl.DataFrame, entities: pl.DataFrame, bg: Background, params: SeriesParams) -> pl.DataFrame:
    """The groups whose deaths are paired by rank (:func:`candidate_pairs`): (g, idx, day,
    pos), one row per death of each group (``g``: :func:`group_codes`), each group's rows
    together, in date order (then ``idx``), numbered ``pos`` from 0."""
    seeds = entities.filter(pl.col("etype").is_in(["person", "substance"])).select(
        "etype", "entity", "idx", "day"
    )
    # rare methods and the domestic abuse and gang flags pair deaths the same way
    rare_methods = [m for m, c in bg.method_count.items() if c / bg.n_police <= params.rare_method_share]
    signatures = pl.concat(
        [
            profiles.filter(
                pl.col("method").is_in(rare_methods) & ~pl.col("method").is_in(UNINFORMATIVE_METHODS)
            ).select(pl.lit("method").alias("etype"), pl.col("method").alias("entity"), "idx", "day"),
            profiles.filter(pl.col("domestic").fill_null(False)).select(
                pl.lit("flag").alias("etype"), pl.lit("domestic").alias("entity"), "idx", "day"
            ),
            profiles.filter(pl.col("gang").fill_null(False)).select(
                pl.lit("flag").alias("etype"), pl.lit("gang").alias("entity"), "idx", "day"
            ),
        ]
    )
    rows = pl.concat([seeds, signatures])
    # each group by a 64-bit code of its etype and entity (numbers sort faster than names)
    rows = (
        pl.DataFrame({"g": group_codes(rows), "idx": rows["idx"], "day": rows["day"]})
        .unique(["g", "idx"])
        .sort("g", "day", "idx")
    )
    g = rows["g"].to_numpy()
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(g)])
    pos = np.arange(len(g), dtype=np.int64) - np.repeat(starts, sizes)
    return rows.with_columns(pos=pl.Series(pos, dtype=pl.Int64))


def window_pairs(group: np.ndarray, members: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each member paired with the next ``k`` of its group (``group`` and ``members`` in the
    groups' order, each group's rows together): one (a, b) per pair and group."""
    out_a, out_b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for step in range(1, k + 1):
        if step >= len(members):
            break
        same = group[step:] == group[:-step]
        if not same.any():
            break
        out_a.append(members[:-step][same])
        out_b.append(members[step:][same])
    return np.concatenate(out_a), np.concatenate(out_b)


def group_codes(rows: pl.DataFrame) -> pl.Series:
    """A 64-bit code per row naming its group (etype and entity), the same in every build of
    one polars version (which the held search's code version names)."""
    return rows.select("etype", "entity").hash_rows(seed=13)


def _entity_pairs(groups: pl.DataFrame, k: int) -> pl.DataFrame:
    """Each death paired with the next ``k`` deaths of its group (:func:`pair_groups`), once
    per group it shares with them (``a`` before ``b`` in ``idx``)."""
    if groups.height < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    a, b = window_pairs(groups["g"].to_numpy(), groups["idx"].to_numpy(), k)
    return pl.DataFrame({"a": a, "b": b}).cast(PAIR_SCHEMA)


def space_time_pairs(profiles: pl.DataFrame, distance_m: float, gap_days: int, lat0: float | None = None) -> pl.DataFrame:
    """Pairs of deaths with coordinates within ``distance_m`` and ``gap_days`` of each other
    (distances on the plane projected at ``lat0``)."""
    from scipy.spatial import cKDTree

    geo = profiles.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null()).select(
        "idx", "day", "lat", "lon"
    )
    if geo.height < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    idx = geo["idx"].to_numpy()
    day = geo["day"].to_numpy()
    pts = project_m(geo["lat"].to_numpy(), geo["lon"].to_numpy(), lat0)
    # time blocks of gap_days: compare each block with itself and the next
    block = (day - day.min()) // max(gap_days, 1)
    out_a, out_b = [], []
    for bl in np.unique(block):
        sel = np.flatnonzero((block == bl) | (block == bl + 1))
        if len(sel) < 2:
            continue
        pairs = cKDTree(pts[sel]).query_pairs(distance_m, output_type="ndarray")
        if not len(pairs):
            continue
        i, j = sel[pairs[:, 0]], sel[pairs[:, 1]]
        keep = (np.abs(day[i] - day[j]) <= gap_days) & ((block[i] == bl) | (block[j] == bl))
        out_a.append(idx[i[keep]])
        out_b.append(idx[j[keep]])
    if not out_a:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    return pl.DataFrame({"a": np.concatenate(out_a), "b": np.concatenate(out_b)}).cast(PAIR_SCHEMA)


def space_time_radii(params: SeriesParams) -> tuple[tuple[float, int], ...]:
    """(metres, days) within which two deaths with a place are a candidate pair."""
    return (
        (params.candidate_distance_m, params.candidate_gap_days),
        (params.place_distance_m, params.place_gap_days),
    )


def unique_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """Pairs once each, ``a`` < ``b``, sorted."""
    return (
        pairs.filter(pl.col("a") != pl.col("b"))
        .select(pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b"))
        .unique()
        .sort("a", "b")
    )


@dataclass
class CandidatePairs:
    """The candidate pairs and what an incremental search updates them from: the groups
    paired by rank (:func:`pair_groups`) and their pairs counted (``n``: how many groups pair
    them; :func:`homicide_assets.lib.series_held.incremental_pairs`)."""

    pairs: pl.DataFrame
    groups: pl.DataFrame
    entity_pairs: pl.DataFrame


def candidate_pairs(
    profiles: pl.DataFrame, entities: pl.DataFrame, bg: Background, params: SeriesParams, parts: bool = False
) -> pl.DataFrame | CandidatePairs:
    """Pairs worth scoring: deaths sharing a person, a substance, a rare method or the domestic
    abuse or gang flag (each death paired with the next ``entity_rank_window`` deaths sharing
    it), deaths close in space and time
    (``candidate_distance_m`` and ``candidate_gap_days``), and deaths at one place
    (``place_distance_m``) within ``place_gap_days``.

    Busy officers, clinicians and institutions never make a pair by themselves (they are
    weighed on pairs found otherwise; excesses at one institution or with one clinician
    are found by :func:`homicide_assets.lib.series_scan.excess_groups`), which keeps the work
    near linear in the number of deaths. With ``parts``, a :class:`CandidatePairs`.
    """
    groups = pair_groups(profiles, entities, bg, params)
    by_group = _entity_pairs(groups, params.entity_rank_window)
    spaced = [space_time_pairs(profiles, m, days, bg.lat0) for m, days in space_time_radii(params)]
    pairs = unique_pairs(pl.concat([by_group, *spaced]))
    if not parts:
        return pairs
    counted = by_group.group_by("a", "b").agg(n=pl.len().cast(pl.Int64)).sort("a", "b")
    return CandidatePairs(pairs, groups.select("g", "idx", "pos"), counted)


# ----------------------------------------------------------------------------------------
# 5. Scoring


def _bits(m, u) -> np.ndarray:
    return np.log2(
        np.maximum(np.asarray(m, dtype=float), 1e-12) / np.maximum(np.asarray(u, dtype=float), 1e-12)
    )


def _pct(share: float) -> str:
    if share >= 0.095:
        return f"{share:.0%}"
    if share >= 0.0095:
        return f"{share:.1%}"
    return f"{share:.2%}"


def _fmt_distance(d: float) -> str:
    return f"{d:,.0f} m" if d < 1_000 else f"{d / 1000:.1f} km"


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


def shared_entities(
    pairs: pl.DataFrame,
    entities: pl.DataFrame,
    bg: Background,
    params: SeriesParams,
    kin: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Entities both deaths of each pair have (one row per pair, entity and role pair), with
    their weight in bits now (``bits``) and as known on the later death's date (``bits_then``)."""
    if "p_link" not in entities.columns:
        entities = entities.with_columns(p_link=pl.lit(1.0), n_named=pl.lit(None, pl.Int64))
    if "area" not in entities.columns:
        entities = entities.with_columns(area=pl.lit(None, pl.String))
    entities = entities.with_columns(
        n_area=pl.col("area").replace_strict(bg.police_by_area, default=None, return_dtype=pl.Int64)
    )
    ent_all = entities.select(
        "idx", "etype", "entity", "role", "label", "n_deaths", "n_upto", "day", "p_link", "n_named", "n_area"
    )
    # the rows of the pairs' own deaths (a few pairs - a held search's - need not join them all)
    ent = ent_all.filter(pl.col("idx").is_in(pl.concat([pairs["a"], pairs["b"]]).unique()))
    # Only pairs sharing an entity can gain anything here: find them on integer codes of the
    # entities (a pair meets every entity of its first death, then keeps those of its second),
    # then join the full rows for those pairs alone.
    codes = ent.select("idx", code=pl.struct("etype", "entity").rank("dense")).unique()
    pairs = (
        pairs.select("a", "b")
        .join(codes.rename({"idx": "a"}), on="a")
        .join(codes.rename({"idx": "b"}), on=["b", "code"], how="semi")
        .select("a", "b")
        .unique()
    )
    left = pairs.join(
        ent.rename(
            {
                "idx": "a",
                "role": "role_a",
                "label": "label_a",
                "day": "day_a",
                "p_link": "p_a",
                "n_named": "named_a",
            }
        )
        .drop("n_area")
        .join(
            ent.select("etype", "entity", "n_area").unique(["etype", "entity"]),
            on=["etype", "entity"],
            how="left",
        ),
        on="a",
    )
    both = left.join(
        ent.select(
            "idx",
            "etype",
            "entity",
            pl.col("role").alias("role_b"),
            pl.col("label").alias("label_b"),
            pl.col("n_upto").alias("n_upto_b"),
            pl.col("day").alias("day_b"),
            pl.col("p_link").alias("p_b"),
            pl.col("n_named").alias("named_b"),
        ).rename({"idx": "b"}),
        on=["b", "etype", "entity"],
    ).filter(pl.col("etype") != "substance")
    # The deceased of one death cannot find, report, witness or commit a later one: such a
    # "shared person" is two namesakes that linkage joined, not evidence.
    dead_then_alive = (pl.col("etype") == "person") & (
        (
            (pl.col("role_a") == "deceased")
            & (pl.col("role_b") != "deceased")
            & (pl.col("day_b") > pl.col("day_a") + 2)
        )
        | (
            (pl.col("role_b") == "deceased")
            & (pl.col("role_a") != "deceased")
            & (pl.col("day_a") > pl.col("day_b") + 2)
        )
    )
    both = both.filter(~dead_then_alive)
    if both.is_empty():
        return both.with_columns(
            bits=pl.lit(None, pl.Float64), bits_then=pl.lit(None, pl.Float64), text=pl.lit(None, pl.String)
        )
    # A person's other deaths that are themselves linked to the pair (the rest of a series) do
    # not make them common: each counts ``1 - p``, ``p`` its first-weighing probability of a
    # link to either death of the pair (``kin``: x, y, p, both ways round).
    if kin is not None and kin.height:
        people = (
            both.filter(pl.col("etype") == "person")
            .select("a", "b", "etype", "entity", _later=pl.max_horizontal("day_a", "day_b"))
            .unique(["a", "b", "etype", "entity"])
        )
        their = ent_all.filter(pl.col("etype") == "person").join(
            people.select("etype", "entity").unique(), on=["etype", "entity"], how="semi"
        )
        other = (
            people.join(
                their.select("etype", "entity", pl.col("idx").alias("d"), pl.col("day").alias("day_d")).unique(
                    ["etype", "entity", "d"]
                ),
                on=["etype", "entity"],
            )
            .filter((pl.col("d") != pl.col("a")) & (pl.col("d") != pl.col("b")))
            .join(kin.rename({"x": "a", "y": "d", "p": "p_ad"}), on=["a", "d"], how="left")
            .join(kin.rename({"x": "b", "y": "d", "p": "p_bd"}), on=["b", "d"], how="left")
            .with_columns(_p=pl.max_horizontal(pl.col("p_ad").fill_null(0.0), pl.col("p_bd").fill_null(0.0)))
            .group_by("a", "b", "etype", "entity")
            .agg(
                pl.col("_p").sum().alias("_excl"),
                # as known then: only the linked deaths up to the later death of the pair
                pl.col("_p").filter(pl.col("day_d") <= pl.col("_later")).sum().alias("_excl_then"),
            )
        )
        both = both.join(other, on=["a", "b", "etype", "entity"], how="left").with_columns(
            pl.col("_excl", "_excl_then").fill_null(0.0)
        )
    else:
        both = both.with_columns(_excl=pl.lit(0.0), _excl_then=pl.lit(0.0))
    role_m = {f"{a}|{b}": m for (a, b), m in params.role_pair_m.items()}
    both = both.with_columns(
        _roles=pl.concat_str(
            [pl.min_horizontal("role_a", "role_b"), pl.lit("|"), pl.max_horizontal("role_a", "role_b")]
        ),
        _later_upto=pl.max_horizontal("n_upto", "n_upto_b"),
        _later_day=pl.max_horizontal("day_a", "day_b"),
    )
    # Someone in many reports is a professional (a carer, a hostel worker) or several namesakes
    # joined by linkage: a series shares its people across a few deaths, not dozens.
    frequent = (params.person_usual_deaths / (pl.col("n_deaths") - pl.col("_excl")).cast(pl.Float64)).clip(
        upper_bound=1.0
    )
    m = (
        pl.when(pl.col("etype") == "person")
        .then(pl.col("_roles").replace_strict(role_m, default=0.0, return_dtype=pl.Float64) * frequent)
        .when(pl.col("etype") == "officer")
        .then(params.officer_m)
        .when(pl.col("etype") == "clinician")
        .then(params.clinician_m)
        .otherwise(params.institution_m)
    )
    population = (
        pl.when(pl.col("etype") == "officer")
        .then(pl.col("n_area").cast(pl.Float64).fill_null(float(bg.n_police)))
        .when(pl.col("etype") == "person")
        .then(float(bg.n_police))
        .when(pl.col("etype") == "clinician")
        .then(float(bg.n_me))
        .otherwise(float(bg.n_me))
    )
    pseudo = pl.when(pl.col("etype") == "person").then(params.person_pseudo).otherwise(params.entity_pseudo)
    cap = (
        pl.when(pl.col("etype") == "person")
        .then(params.person_max_bits)
        .when(pl.col("etype") == "officer")
        .then(params.officer_max_bits)
        .when(pl.col("etype") == "clinician")
        .then(params.clinician_max_bits)
        .otherwise(params.institution_max_bits)
    )
    elapsed = (pl.col("_later_day") - bg.first_day + 1).clip(lower_bound=30).cast(pl.Float64)
    # A person key is only as sure as linkage's weakest record in it: with probability 1 - p
    # the two are namesakes, and a namesake is as common as the name (reports naming a
    # "D. Smith" over all police reports).
    p_same = pl.min_horizontal(pl.col("p_a").fill_null(1.0), pl.col("p_b").fill_null(1.0))
    named = pl.max_horizontal(pl.col("named_a").fill_null(0), pl.col("named_b").fill_null(0))
    namesake = (
        pl.when(pl.col("etype") == "person")
        .then(
            (1 - p_same).clip(lower_bound=0.0) * (named - 2).clip(lower_bound=0).cast(pl.Float64) / population
        )
        .otherwise(0.0)
    )
    # A person's other deaths make them commoner (a carer, a hostel worker finds many) -
    # except a suspect's: nobody is a suspect by trade, and a suspect in several deaths is
    # the pattern itself (up to ``person_usual_deaths``, beyond which m is discounted).
    suspect = (pl.col("etype") == "person") & (
        (pl.col("role_a") == "suspect") | (pl.col("role_b") == "suspect")
    )
    others_now = (
        pl.when(suspect).then(0.0).otherwise((pl.col("n_deaths") - 2 - pl.col("_excl")).clip(lower_bound=0))
    )
    others_then = (
        pl.when(suspect)
        .then(0.0)
        .otherwise(
            (pl.col("_later_upto") - 2 - pl.col("_excl_then")).clip(lower_bound=0) * (bg.span_days / elapsed)
        )
    )
    u_now = (others_now + pseudo) / population + namesake
    # As known then: the entity's count up to the later death, as a rate over the whole span.
    u_then = (others_then + pseudo) / population + namesake
    both = both.with_columns(
        bits=pl.min_horizontal((m / u_now).log(2), cap).clip(lower_bound=0.0),
        bits_then=pl.min_horizontal((m / u_then).log(2), cap).clip(lower_bound=0.0),
        _m=m,
        _namesake_bits=pl.when(namesake > 0)
        .then((namesake / (((pl.col("n_deaths") - 2).clip(lower_bound=0) + pseudo) / population) + 1).log(2))
        .otherwise(0.0),
        _named=named,
        _p_same=p_same,
    ).filter(pl.col("_m") > 0)
    # one row per pair and entity: the role pair that weighs most (ties by roles and names, so
    # a pair gets the same words whichever pairs it is weighed with)
    both = both.sort(
        ["bits", "role_a", "role_b", "label_a", "label_b"],
        descending=[True, False, False, False, False],
        nulls_last=True,
    ).unique(["a", "b", "etype", "entity"], keep="first")
    n_text = pl.col("n_deaths").cast(pl.String)
    text = (
        pl.when((pl.col("etype") == "person") & (pl.col("role_a") == pl.col("role_b")))
        .then(
            pl.concat_str(
                [
                    pl.lit("same "),
                    pl.col("role_a").replace(ROLE_WORDS),
                    pl.lit(": "),
                    pl.col("label_a").fill_null("unnamed"),
                    pl.when(pl.col("label_a") != pl.col("label_b"))
                    .then(pl.concat_str([pl.lit(" / "), pl.col("label_b")]))
                    .otherwise(pl.lit("")),
                    pl.lit(" ("),
                    n_text,
                    pl.lit(" reports)"),
                ]
            )
        )
        .when(pl.col("etype") == "person")
        .then(
            pl.concat_str(
                [
                    pl.lit("same person: "),
                    pl.col("role_a").replace(ROLE_WORDS),
                    pl.lit(" in one ("),
                    pl.col("label_a").fill_null("unnamed"),
                    pl.lit("), "),
                    pl.col("role_b").replace(ROLE_WORDS),
                    pl.lit(" in the other ("),
                    pl.col("label_b").fill_null("unnamed"),
                    pl.lit(")"),
                ]
            )
        )
        .when(pl.col("etype") == "officer")
        .then(
            pl.concat_str(
                [
                    pl.lit("same officer: collar "),
                    pl.col("entity"),
                    pl.lit(" (attended or in the case of "),
                    n_text,
                    pl.lit(" of the "),
                    pl.col("n_area").cast(pl.String).fill_null("?"),
                    pl.lit(" police-reported deaths in the area they work)"),
                ]
            )
        )
        .when(pl.col("etype") == "clinician")
        .then(
            pl.concat_str(
                [
                    pl.lit("same attending clinician: "),
                    pl.col("entity"),
                    pl.lit(" ("),
                    n_text,
                    pl.lit(" deaths in all)"),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [
                    pl.lit("same place of death: "),
                    pl.col("entity"),
                    pl.lit(" ("),
                    pl.col("role_a").str.replace_all("_", " "),
                    pl.lit(", "),
                    n_text,
                    pl.lit(" deaths in all)"),
                ]
            )
        )
    )
    text = (
        pl.when(pl.col("_namesake_bits") >= 1.0)
        .then(
            pl.concat_str(
                [
                    text,
                    pl.lit(" (a common name: "),
                    pl.col("_named").cast(pl.String),
                    pl.lit(" deaths' reports name a "),
                    pl.col("label_a").fill_null("person"),
                    pl.lit("; linkage is "),
                    (pl.col("_p_same") * 100).round(1).cast(pl.String),
                    pl.lit("% sure these records are one person)"),
                ]
            )
        )
        .otherwise(text)
    )
    return both.with_columns(text=text).select(
        "a", "b", "etype", "entity", "role_a", "role_b", "bits", "bits_then", "text", "n_deaths"
    )


def _same(values: pl.Series, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether deaths ``a`` and ``b`` of each pair have the same value, both known."""
    return (values.gather(a) == values.gather(b)).fill_null(False).to_numpy()


def _lookup(keys, mapping: dict, default=0) -> np.ndarray:
    """``mapping[key]`` for every key of an array (a missing or None key gives ``default``)."""
    get = mapping.get
    return np.fromiter((get(k, default) for k in np.asarray(keys, dtype=object).tolist()), dtype=float)


def _shares_within_method(
    by_method: dict, overall: dict, methods: list, values: list, same: list, bg: Background
) -> np.ndarray:
    """Share of other deaths with each value: among deaths by the same method where the two
    compared deaths share one, else among all police-reported deaths."""
    pairs = np.empty(len(methods), dtype=object)
    pairs[:] = list(zip(methods, values))
    within = _lookup(pairs, by_method)
    method_total = _lookup(methods, bg.method_count, 1)
    total = _lookup(values, overall)
    return np.where(
        np.asarray(same, dtype=bool), other_share(within, method_total), other_share(total, bg.n_police)
    )


def mixture_cdf(x: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    """P(X <= x) for an equal mixture of exponentials with these scales."""
    x = np.asarray(x, dtype=float)
    return np.mean([1 - np.exp(-x / s) for s in scales], axis=0)


SUBSTANCE_WORDS = {
    "ghb": "GHB",
    "crack": "crack cocaine",
    "benzodiazepine": "benzodiazepines",
    "nitazene": "nitazenes",
    "spice": "spice (synthetic cannabinoids)",
}


class _KindIndex:
    """Police-reported deaths' kind features as boolean masks, for counting deaths alike in
    several ways at once (built once per search, masks cached by feature).

    The deaths counted (the *population*) are the police-reported rows of ``population``, or
    of ``p`` itself when it is None (a whole search); the deaths weighed (the *members*: the
    rows of ``p``, each pair's ``a`` and ``b``) are found in it by ``death_id``. A held search
    (:mod:`homicide_assets.lib.series_held`) counts among the deaths of its last whole search
    and weighs today's deaths, the new ones included, against them.
    """

    def __init__(self, p: pl.DataFrame, population: pl.DataFrame | None = None):
        pop = p if population is None else population
        police = pop["has_police_report"].fill_null(False).to_numpy()
        self.idx = np.flatnonzero(police)
        sub = pop[self.idx]
        self.method = np.array([x if x is not None else "" for x in sub["method"].to_list()], dtype=object)
        self.loc = np.array(
            [x if x is not None else "" for x in sub["location_type"].to_list()], dtype=object
        )
        self.dom = sub["domestic"].fill_null(False).to_numpy()
        self.gang = sub["gang"].fill_null(False).to_numpy()
        self.sex = np.array([x if x is not None else "" for x in sub["sex"].to_list()], dtype=object)
        self.age = sub["age"].fill_null(-1).to_numpy()
        self._lists = {"s": sub["substances"], "v": sub["vulnerabilities"]}
        lat, lon = sub["lat"].to_numpy().astype(float), sub["lon"].to_numpy().astype(float)
        lat0 = float(np.nanmean(pop["lat"].to_numpy().astype(float)))
        self.xy = project_m(lat, lon, lat0)
        #: member row -> its position in the population (-1: not counted there)
        self.pos = np.full(p.height, -1)
        if population is None:
            self.pos[self.idx] = np.arange(len(self.idx))
            self.police = police
            self._member_xy = None
        else:
            at = (
                p.select("death_id", pl.int_range(pl.len()).alias("_m"))
                .join(
                    pop[self.idx].select("death_id", pl.int_range(pl.len()).alias("_pos")),
                    on="death_id",
                    how="inner",
                )
            )
            self.pos[at["_m"].to_numpy()] = at["_pos"].to_numpy()
            self.police = p["has_police_report"].fill_null(False).to_numpy()
            self._member_xy = project_m(
                p["lat"].to_numpy().astype(float), p["lon"].to_numpy().astype(float), lat0
            )
        self.cache: dict[tuple, np.ndarray] = {}
        self._totals: dict[tuple, int] = {}

    def member_xy(self, row: int) -> np.ndarray:
        """Projected coordinates of a member (as the population's, for one counted there)."""
        if self._member_xy is None:
            return self.xy[self.pos[row]]
        return self._member_xy[row]

    def mask(self, feature: tuple) -> np.ndarray:
        """Police-reported deaths with a feature: ``("method", m)``, ``("loc", t)``,
        ``("dom", True)``, ``("gang", True)``, ``("s", substance)``, ``("v", vulnerability)``
        or ``("prof", sex, lo, hi)`` (that sex, aged ``lo``-``hi``)."""
        if feature not in self.cache:
            kind, value = feature[0], feature[1]
            if kind == "prof":
                m = (self.sex == value) & (self.age >= feature[2]) & (self.age <= feature[3])
            elif kind == "method":
                m = self.method == value
            elif kind == "loc":
                m = self.loc == value
            elif kind == "dom":
                m = self.dom.copy()
            elif kind == "gang":
                m = self.gang.copy()
            else:
                m = self._lists[kind].list.contains(value).fill_null(False).to_numpy()
            self.cache[feature] = m
        return self.cache[feature]

    def total(self, feats: tuple) -> int:
        """How many police-reported deaths have all of ``feats`` (counted once per set)."""
        key = tuple(sorted(feats))
        if key not in self._totals:
            if not key:
                self._totals[key] = len(self.idx)
            elif len(key) == 1:
                self._totals[key] = int(self.mask(key[0]).sum())
            else:
                self._totals[key] = int(np.logical_and.reduce([self.mask(f) for f in key]).sum())
        return self._totals[key]

    def has(self, feats, pos: np.ndarray) -> np.ndarray:
        """Whether the deaths at index positions ``pos`` have all of ``feats``."""
        inside = np.ones(len(pos), dtype=bool)
        for f_ in feats:
            inside &= self.mask(f_)[pos]
        return inside


@dataclass
class _LeftOut:
    """A pair's own cluster in a :class:`_KindIndex`: positions of the deaths linked to the
    pair and the probability each belongs with it. Counted with the cluster left out, each
    such death counts ``1 - p`` (every other death counts 1)."""

    pos: np.ndarray
    p: np.ndarray

    def count(self, index: _KindIndex, feats: tuple) -> float:
        """Deaths with all of ``feats``, the cluster's counting ``1 - p``."""
        return index.total(feats) - float(self.p[index.has(feats, self.pos)].sum())

    def count_among(self, positions: np.ndarray) -> float:
        """Deaths at ``positions``, the cluster's counting ``1 - p``."""
        return len(positions) - float(self.p[np.isin(self.pos, positions)].sum())


def _place_among_kind(ai, bi, r, index, bg, params, dist, same_inst, cache, method, loc, left=None):
    """Place bits for two police-reported deaths, weighed among police-reported deaths of
    their kind of place and method: how many of those lie within the pair's distance of
    them, against how many would if they lay like all deaths (road deaths on roads,
    drownings by water, custody deaths at a police station, drug deaths in the centre).
    Returns (bits or NaN to keep the all-deaths weighing, plain words or None)."""
    d = dist[r]
    if not np.isfinite(d) or same_inst[r] or not index.police[ai] or not index.police[bi]:
        return np.nan, None
    ca, cb = index.member_xy(ai), index.member_xy(bi)
    if not (np.isfinite(ca[0]) and np.isfinite(cb[0])):
        return np.nan, None
    key = (method, loc)
    if key not in cache:
        mk = np.ones(len(index.idx), dtype=bool)
        if method is not None:
            mk &= index.mask(("method", method))
        if loc is not None:
            mk &= index.mask(("loc", loc))
        where = np.flatnonzero(mk)
        where = where[np.isfinite(index.xy[where, 0])]
        pts = index.xy[where]
        counted = np.zeros(len(index.idx), dtype=bool)
        counted[where] = True
        cache[key] = (cKDTree(pts) if len(pts) else None, len(pts), where, counted)
    tree, n_kind, where, counted = cache[key]
    if tree is None:
        return np.nan, None
    # the pair's own deaths among those counted (both, in a whole search; a death new since
    # the held search's is not among them)
    own = float(sum(1 for x in (ai, bi) if index.pos[x] >= 0 and counted[index.pos[x]]))
    d_eff = max(float(d), params.min_distance_m)
    if d_eff > DENSITY_RADII_M[-1]:
        return 0.0, None
    s_all = 0.5 * (
        share_within(bg.density[[ai]], np.array([d_eff]), bg.n_geo)[0]
        + share_within(bg.density[[bi]], np.array([d_eff]), bg.n_geo)[0]
    )
    if left is None:
        counts = tree.query_ball_point(np.vstack([ca, cb]), d_eff + 1e-6, return_length=True)
        k = max(n_kind - own, 0)
    else:
        # the pair's own cluster left out (each of it counting 1 - its probability of belonging)
        hits = tree.query_ball_point(np.vstack([ca, cb]), d_eff + 1e-6)
        counts = [left.count_among(where[h]) if len(h) else 0.0 for h in hits]
        k = max(left.count_among(where) - own, 0.0)
    # each centre counts itself and the other of the pair (those of them counted)
    near = max(float(np.mean(counts)) - own, 0.0)
    expected = k * s_all
    ratio = (near + params.kind_place_prior_deaths) / (expected + params.kind_place_prior_deaths)
    share = min(s_all * ratio, 1.0)
    bits = max(float(_bits(mixture_cdf(d_eff, params.place_scales_m), share)), -2.0)
    what = " ".join(
        x
        for x in (
            "police-reported deaths",
            f"by {_words(method)}" if method else "",
            f"at a {_words(loc)} location" if loc else "",
        )
        if x
    )
    return (
        bits,
        f"{near:.0f} other {what} within {_fmt_distance(d_eff)} of these two ({expected:.1f} if they lay like all deaths)",
    )


def _cluster_of(kin: dict, ai: int, bi: int) -> dict[int, float]:
    """Other deaths linked to either death of a pair in the first weighing: death -> the
    probability it belongs with them (its stronger link to either)."""
    out = dict(kin.get(ai, {}))
    for d_, p_ in kin.get(bi, {}).items():
        if p_ > out.get(d_, 0.0):
            out[d_] = p_
    out.pop(ai, None)
    out.pop(bi, None)
    return out


def _joint_kind(
    rows,
    a,
    b,
    p,
    bg,
    params,
    *,
    same_method,
    same_loc,
    dom,
    gang,
    prof_ok,
    lo,
    hi,
    sub_of,
    vul_of,
    dist,
    same_inst,
    kin=None,
    population=None,
):
    """Weigh what kind of death a pair shares as one item, counted on the force's own deaths.

    One feature at a time, "both gang related", "both at licensed premises" and "both men
    aged 19-27" multiply as if independent; on the force's data they go together. Here the
    share ``u`` is the share of *other* police-reported deaths alike in **all** the ways the
    two are (same method, kind of place, domestic abuse or gang flag, sex and age band,
    every shared substance and vulnerability), and ``m`` the product of each feature's
    ``m``. Their nearness is then weighed among deaths of that kind: the share of them within
    the pair's distance (shrunk towards all deaths' share with ``kind_prior_deaths``), since
    deaths of one kind cluster (custody deaths at a police station, homeless drug deaths in
    the centre). Returns per row: kind bits, place bits, a plain-words line, and whether the
    row had any kind feature (else its items are left as they were).

    ``kin`` (death -> {other death: link score}) leaves the pair's own cluster out of its
    background: every other death counts ``1 - p``, ``p`` the first weighing's probability
    that it is linked to either death of the pair, so the other members of a series are not
    the deaths its signature is compared with (as the institution excess scan rates an
    entity against its deaths outside the run).
    """
    index = _KindIndex(p, population)
    method = p["method"].to_numpy(allow_copy=True)
    loc = p["location_type"].to_numpy(allow_copy=True)
    sex = p["sex"].to_numpy(allow_copy=True)
    n_police = max(bg.n_police, 1)
    kind_bits = np.zeros(len(rows))
    place_bits = np.zeros(len(rows))
    texts: list[str | None] = [None] * len(rows)
    done = np.zeros(len(rows), dtype=bool)
    geo_cache: dict[tuple, tuple] = {}
    for i, r in enumerate(rows.tolist()):
        ai, bi = int(a[r]), int(b[r])
        left = None
        n_pol = float(n_police)
        if kin:
            near = _cluster_of(kin, ai, bi)
            if near:
                inside = [(index.pos[d_], p_) for d_, p_ in near.items() if index.pos[d_] >= 0]
                left = _LeftOut(
                    np.array([x for x, _ in inside], dtype=np.int64), np.array([y for _, y in inside], dtype=float)
                )
                n_pol = max(left.count(index, ()), 1.0)

        def count(feats, left=left):
            return float(index.total(feats)) if left is None else left.count(index, feats)

        feats: list[tuple] = []
        m = 1.0
        words: list[str] = []
        if same_method[r]:
            feats.append(("method", method[ai]))
            m *= params.method_m
            words.append(_words(method[ai]))
        if same_loc[r]:
            feats.append(("loc", loc[ai]))
            m *= params.location_type_m
            words.append(f"at a {_words(loc[ai])} location")
        if dom[ai] and dom[bi]:
            feats.append(("dom", True))
            m *= params.flag_m
            words.append("domestic abuse related")
        if gang[ai] and gang[bi]:
            feats.append(("gang", True))
            m *= params.flag_m
            words.append("gang related")
        subs = sorted(set(sub_of.get(r, [])))
        if subs:
            feats.extend(("s", x) for x in subs)
            m *= params.substance_m
            words.append(", ".join(SUBSTANCE_WORDS.get(x, x) for x in subs))
        vuls = sorted(set(vul_of.get(r, [])))
        if vuls:
            feats.extend(("v", x) for x in vuls)
            m *= params.vulnerability_m
            words.append("known to services (" + ", ".join(x.replace("_", " ") for x in vuls[:3]) + ")")
        if prof_ok[r]:
            m *= params.profile_m
            who = "men" if sex[ai] == "m" else "women"
            words.append(f"{who} aged {max(int(lo[r]), 0)}-{int(hi[r])}")
        place_bits[i], place_text = _place_among_kind(
            ai,
            bi,
            r,
            index,
            bg,
            params,
            dist,
            same_inst,
            geo_cache,
            method[ai] if same_method[r] else None,
            loc[ai] if same_loc[r] else None,
            left,
        )
        if not feats and not prof_ok[r]:
            texts[i] = place_text
            continue
        every = list(feats)
        if prof_ok[r]:
            every.append(("prof", sex[ai], int(lo[r]), int(hi[r])))
        every = tuple(every)
        selves = [x for x in (ai, bi) if index.pos[x] >= 0 and index.has(every, index.pos[[x]])[0]]
        k = max(count(every) - len(selves), 0.0)
        # The share of other deaths alike in all these ways, one feature at a time, rarest
        # first: each feature's share among the deaths alike in the ones before it, shrunk
        # towards its share of all deaths with ``kind_prior_deaths`` (so a handful of
        # deaths cannot make a combination look impossible, and hundreds say how they go
        # together). A single feature is just its share.
        n_self = len(selves)
        margins = [max(count((x,)) - n_self, 0.0) for x in every]
        order = np.argsort(margins, kind="stable")
        u = 1.0
        chance = n_pol
        running: tuple = ()
        base = n_pol
        for j in order.tolist():
            p_marg = max(margins[j], 0.5) / n_pol
            running = (*running, every[j])
            cnt = max(count(running) - n_self, 0.0)
            u *= (cnt + params.kind_prior_deaths * p_marg) / (base + params.kind_prior_deaths)
            chance *= p_marg
            base = cnt
        # Where the deaths alike run out, the chain falls back on multiplying shares as if
        # independent. It may not go below the rarest feature's share times the others'
        # shares at the power ``kind_beyond_data``: features that may go together with the
        # rarest count only in part (GHB deaths are mostly young men; a heroin death often
        # has cocaine too), at any size of force.
        shares = sorted(max(x, 0.5) / n_pol for x in margins)
        if len(shares) > 1:
            u = max(u, shares[0] * float(np.prod(shares[1:])) ** params.kind_beyond_data)
        u = min(max(u, 1e-300), 1.0)
        kind_bits[i] = max(math.log2(m / u), 0.0)
        done[i] = True
        text = (
            f"taken together: {k:.0f} other police death report{'' if round(k) == 1 else 's'} ({_pct(k / n_pol)}) "
            + ("is" if round(k) == 1 else "are")
            + " all of: "
            + "; ".join(words)
            + (f" ({chance:.2g} if these went together only by chance)" if len(words) > 1 else "")
        )
        texts[i] = text + (f"; {place_text}" if place_text else "")
    return kind_bits, place_bits, texts, done


SCORED_SCHEMA = {
    "a": pl.Int64,
    "b": pl.Int64,
    "score": pl.Float64,
    "score_then": pl.Float64,
    "weight": pl.Float64,
    "kinds": pl.List(pl.String),
    "evidence": pl.List(pl.String),
    "evidence_bits": pl.List(pl.Float64),
    "days_apart": pl.Int64,
    "metres_apart": pl.Float64,
}


def score_pairs(
    pairs: pl.DataFrame,
    profiles: pl.DataFrame,
    entities: pl.DataFrame,
    bg: Background,
    params: SeriesParams,
    first: pl.DataFrame | None = None,
    scores_only: bool = False,
    population: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Weigh every item of evidence for each candidate pair.

    Returns the pairs scoring at least ``report_floor`` with ``bits_<item>`` per item,
    ``weight`` (total bits), ``score`` (posterior with today's knowledge), ``score_then``
    (entity counts as known on the later death's date, for the backtest), ``kinds`` and
    ``evidence`` (plain-language reasons, strongest first).

    ``first`` (a, b, score: a first weighing's links) leaves each pair's own cluster out of
    what it is compared with: the deaths linked to either of the pair count in the kind of
    death's background and in a shared person's other deaths only as far as they are not
    linked to it (``1 - score``). Links below ``joint_kind_floor`` (the level at which a
    pair is weighed jointly at all) are not a cluster: leaving such a death out would change
    any count by less than that share of it.

    ``population`` (profiles) is whom a kind of death is counted among: today's deaths when
    None, a held search's deaths otherwise (:class:`SearchBasis`); ``bg`` is then that
    search's background, with neighbour counts for the rows of ``profiles``.
    """
    kin_df, kin = None, None
    if first is not None:
        first = first.filter(pl.col("score") >= params.joint_kind_floor)
    if first is not None and first.height:
        f_ = first.select(pl.col("a").alias("x"), pl.col("b").alias("y"), pl.col("score").alias("p"))
        kin_df = (
            pl.concat([f_, f_.select(pl.col("y").alias("x"), pl.col("x").alias("y"), "p")])
            .group_by("x", "y")
            .agg(pl.col("p").max())
        )
        kin = {}
        for x_, y_, p_ in kin_df.iter_rows():
            kin.setdefault(x_, {})[y_] = p_
    if pairs.is_empty():
        return pl.DataFrame(schema=SCORED_SCHEMA)
    p = profiles
    a = pairs["a"].to_numpy()
    b = pairs["b"].to_numpy()
    n = len(a)

    def arr(name):
        return p[name].to_numpy(allow_copy=True)

    day = arr("day")
    gap = np.abs(day[b] - day[a]).astype(float)
    items: dict[str, np.ndarray] = {}

    # time: the share of pairs of deaths this close in time, against series members' gaps
    g = np.maximum(gap, params.min_gap_days)
    u_t = np.minimum(1.0, 2 * g / bg.span_days)
    items["time"] = np.clip(_bits(mixture_cdf(g, params.time_scales_days), u_t), -2.0, None)

    # place: the share of deaths this close to these two, against series members' distances
    lat, lon = arr("lat").astype(float), arr("lon").astype(float)
    has = np.isfinite(lat[a]) & np.isfinite(lat[b])
    dist = np.full(n, np.nan)
    space_bits = np.zeros(n)
    if has.any():
        from homicide_assets.lib.geography import haversine_m

        dist[has] = haversine_m(lat[a][has], lon[a][has], lat[b][has], lon[b][has])
        d = np.maximum(dist[has], params.min_distance_m)
        u_s = 0.5 * (
            share_within(bg.density[a][has], d, bg.n_geo) + share_within(bg.density[b][has], d, bg.n_geo)
        )
        bits = np.clip(_bits(mixture_cdf(d, params.place_scales_m), u_s), -2.0, None)
        # beyond the density ladder, closeness is no evidence either way
        space_bits[has] = np.where(d <= DENSITY_RADII_M[-1], bits, 0.0)
    items["place"] = space_bits

    # method
    method = arr("method")
    # each pair's method as a code into its distinct values, so a count per method is looked
    # up once per method, not once per pair
    methods_a = method[a].tolist()
    distinct = list(dict.fromkeys(methods_a))
    code = {m_: i for i, m_ in enumerate(distinct)}
    method_code = np.fromiter((code[m_] for m_ in methods_a), dtype=np.int64, count=len(methods_a))

    def by_method(mapping: dict, default=0) -> np.ndarray:
        return np.array([mapping.get(m_, default) for m_ in distinct], dtype=float)[method_code]

    informative = np.array([x is not None and x not in UNINFORMATIVE_METHODS for x in distinct], dtype=bool)
    same_method = (method[a] == method[b]) & informative[method_code]
    count_m = np.where(same_method, by_method(bg.method_count, bg.n_police), float(bg.n_police))
    items["method"] = np.where(
        same_method, np.clip(_bits(params.method_m, other_share(count_m, bg.n_police)), 0, None), 0.0
    )

    # location type, domestic abuse, gang related: each among deaths by the same method when
    # both share one (a waterway means drowning; most stabbings of young men are gang related)
    method_total = by_method(bg.method_count, 1)

    def conditional_share(feature: str, total: int, same: np.ndarray) -> np.ndarray:
        per_method = {m_: c for (f, m_), c in bg.feature_by_method_count.items() if f == feature}
        within = by_method(per_method)
        return np.where(same, other_share(within, method_total), other_share(total, bg.n_police))

    loc = arr("location_type")
    loc_a = p["location_type"].gather(a)
    same_loc = (
        ((loc_a == p["location_type"].gather(b)) & ~loc_a.is_in(COMMON_LOCATION_TYPES)).fill_null(False).to_numpy()
    )
    loc_bits = np.zeros(n)
    for x in loc_a.filter(pl.Series(same_loc)).unique().to_list():
        rows = np.flatnonzero(same_loc & (loc_a == x).fill_null(False).to_numpy())
        u = conditional_share(f"location:{x}", bg.location_count.get(x, 0), same_method)[rows]
        loc_bits[rows] = np.clip(_bits(params.location_type_m, u), 0, None)
    items["location_type"] = loc_bits
    dom = np.array([bool(x) for x in arr("domestic")])
    gang = np.array([bool(x) for x in arr("gang")])
    items["domestic"] = np.where(
        dom[a] & dom[b],
        np.clip(
            _bits(params.flag_m, conditional_share("flag:domestic", bg.domestic_count, same_method)), 0, None
        ),
        0.0,
    )
    items["gang"] = np.where(
        gang[a] & gang[b],
        np.clip(_bits(params.flag_m, conditional_share("flag:gang", bg.gang_count, same_method)), 0, None),
        0.0,
    )

    # victim profile: same sex, ages within profile_age_gap
    sex = arr("sex")
    age = p["age"].fill_null(-1).to_numpy()
    prof_ok = (
        (sex[a] == sex[b])
        & np.isin(sex[a], ["m", "f"])
        & (age[a] >= 0)
        & (age[b] >= 0)
        & (np.abs(age[a] - age[b]) <= params.profile_age_gap)
    )
    lo = np.minimum(age[a], age[b]) - (params.profile_age_gap - np.abs(age[a] - age[b])) // 2
    hi = lo + params.profile_age_gap
    # ages are compared among deaths by the same method when both share one (young men are
    # common among stabbings, rare among sudden deaths)
    profile_method = np.where(same_method, method[a], None).astype(object)
    items["profile"] = np.zeros(n)
    like = np.flatnonzero(prof_ok)
    if len(like):
        share = bg.profile_share(sex[a][like], lo[like], hi[like], profile_method[like])
        items["profile"][like] = np.clip(_bits(params.profile_m, share), 0, None)

    # substances (conditional on the method when both share it) and vulnerabilities
    frame = pl.DataFrame(
        {
            "_row": np.arange(n),
            "a": a,
            "b": b,
            "_same_method": same_method,
            "_method": p["method"].cast(pl.String).gather(a),
        }
    )
    lists = p.select("substances", "vulnerabilities")
    frame = frame.with_columns(
        _sa=lists["substances"].gather(a),
        _sb=lists["substances"].gather(b),
        _va=lists["vulnerabilities"].gather(a),
        _vb=lists["vulnerabilities"].gather(b),
    )
    sub_rows = (
        frame.select("_row", "_same_method", "_method", pl.col("_sa").list.set_intersection("_sb").alias("s"))
        .explode("s")
        .drop_nulls("s")
        .filter(~pl.col("s").is_in(UNINFORMATIVE_SUBSTANCES))
    )
    sub_bits = np.zeros(n)
    sub_text: list[str | None] = [None] * n
    if sub_rows.height:
        mth, subs_, sm = (
            sub_rows["_method"].to_list(),
            sub_rows["s"].to_list(),
            sub_rows["_same_method"].to_list(),
        )
        u = _shares_within_method(bg.substance_by_method_count, bg.substance_count, mth, subs_, sm, bg)
        share_all = np.array([bg.substance_count.get(s_, 0) / bg.n_police for s_ in subs_])
        sub_rows = sub_rows.with_columns(
            bits=pl.Series(np.clip(_bits(params.substance_m, u), 0, None)), share=pl.Series(share_all)
        )
        agg = (
            sub_rows.sort("_row", "bits", "s", descending=[False, True, False])
            .group_by("_row", maintain_order=True)
            .agg(
                (pl.col("bits").first() + 0.25 * pl.col("bits").slice(1).sum()).alias("bits"),
                pl.col("s"),
                pl.col("share"),
                pl.col("bits").alias("each"),
            )
        )
        for r, bits, names, shares, each in agg.iter_rows():
            sub_bits[r] = bits
            sub_text[r] = (
                "; ".join(
                    f"both {SUBSTANCE_WORDS.get(nm, nm)} (in {_pct(sh)} of police death reports)"
                    for nm, sh, e in zip(names, shares, each)
                    if e >= 1.0
                )[:300]
                or None
            )
    items["substance"] = sub_bits

    # a council's domestic abuse, gang or substance misuse concern says what the police flag
    # or the shared substances already say: count it once
    flagged = pl.DataFrame({"_row": np.arange(n), "_dom": dom[a] & dom[b], "_gang": gang[a] & gang[b]})
    vul_rows = (
        frame.select("_row", "_same_method", "_method", pl.col("_va").list.set_intersection("_vb").alias("v"))
        .explode("v")
        .drop_nulls("v")
        .join(flagged.with_columns(_subs=pl.Series(sub_bits > 0)), on="_row")
        .filter(
            ~((pl.col("v") == "domestic_abuse") & pl.col("_dom"))
            & ~((pl.col("v") == "gang_association") & pl.col("_gang"))
            & ~((pl.col("v") == "substance_misuse") & pl.col("_subs"))
        )
    )
    vul_bits = np.zeros(n)
    vul_text: list[str | None] = [None] * n
    if vul_rows.height:
        # among deaths by the same method when both share one (substance misuse is common
        # among drug deaths)
        u = _shares_within_method(
            bg.vulnerability_by_method_count,
            bg.vulnerability_count,
            vul_rows["_method"].to_list(),
            vul_rows["v"].to_list(),
            vul_rows["_same_method"].to_list(),
            bg,
        )
        vul_rows = vul_rows.with_columns(bits=pl.Series(np.clip(_bits(params.vulnerability_m, u), 0, None)))
        agg = (
            vul_rows.sort("_row", "bits", "v", descending=[False, True, False])
            .group_by("_row", maintain_order=True)
            .agg(pl.col("bits").first(), pl.col("v").str.replace_all("_", " ").alias("names"))
        )
        for r, bits, names in agg.iter_rows():
            vul_bits[r] = bits
            vul_text[r] = "both known to services (" + ", ".join(names[:3]) + ")"
    items["vulnerability"] = vul_bits

    # people, officers, clinicians, institutions
    shared = shared_entities(pairs, entities, bg, params, kin_df)
    etypes = ("person", "officer", "clinician", "institution")
    ent_bits = {t: np.zeros(n) for t in etypes}
    ent_then = {t: np.zeros(n) for t in etypes}
    ent_text: dict[int, list[tuple[float, str]]] = {}
    if shared.height:
        keyed = shared.join(frame.select("_row", "a", "b"), on=["a", "b"])
        for etype in etypes:
            sub = keyed.filter(pl.col("etype") == etype)
            if sub.is_empty():
                continue
            # the strongest entity counts fully, the next at half (two officers of one shift
            # are not independent evidence), the rest not at all
            agg = (
                sub.group_by("_row")
                .agg(
                    pl.col("bits").sort(descending=True).head(2).alias("b"),
                    pl.col("bits_then").sort(descending=True).head(2).alias("t"),
                )
                .with_columns(
                    (
                        pl.col("b").list.get(0) + 0.5 * pl.col("b").list.get(1, null_on_oob=True).fill_null(0)
                    ).alias("b"),
                    (
                        pl.col("t").list.get(0) + 0.5 * pl.col("t").list.get(1, null_on_oob=True).fill_null(0)
                    ).alias("t"),
                )
            )
            rows = agg["_row"].to_numpy()
            ent_bits[etype][rows] = agg["b"].to_numpy()
            ent_then[etype][rows] = agg["t"].to_numpy()
        for r, t, bits in keyed.select("_row", "text", "bits").iter_rows():
            if bits >= 1.0:
                ent_text.setdefault(r, []).append((bits, t))
    # Deaths at one institution share its place and its kind of place: one fact, counted once
    # (as the institution); and its clinicians: the clinician is weighed among the deaths there.
    inst, clin = arr("institution"), arr("clinician")
    same_inst = _same(p["institution"], a, b)
    if same_inst.any():
        items["place"] = np.where(same_inst, 0.0, items["place"])
        items["location_type"] = np.where(same_inst, 0.0, items["location_type"])
        rows = np.flatnonzero(
            same_inst & _same(p["clinician"], a, b)
        )
        for r in rows:
            key = (inst[a[r]], clin[a[r]])
            u = other_share(bg.institution_clinician_count.get(key, 0), bg.institution_count.get(key[0], 1))
            cap = max(float(_bits(params.clinician_m, u)), 0.0)
            ent_bits["clinician"][r] = min(ent_bits["clinician"][r], cap)
            ent_then["clinician"][r] = min(ent_then["clinician"][r], cap)

    # Officers work an area and GPs a practice: sharing one is partly sharing a place. Place,
    # officer and clinician are one family of evidence: the strongest counts fully, the
    # next at half, the third at a quarter.
    def local_family(place, officer, clinician):
        ranked = -np.sort(-np.vstack([np.maximum(place, 0), officer, clinician]), axis=0)
        return ranked[0] + 0.5 * ranked[1] + 0.25 * ranked[2] + np.minimum(place, 0)

    for etype in etypes:
        items[etype] = ent_bits[etype]

    # An officer's share is measured among the deaths of the area they work, so sharing one
    # is evidence beside the place, not part of it; a GP's practice is a place.
    zero = np.zeros(n)

    def combine(items):
        local_now = local_family(items["place"], zero, ent_bits["clinician"])
        local_then = local_family(items["place"], zero, ent_then["clinician"])
        family = items["place"] + items["clinician"]
        items = {**items, "officer": ent_bits["officer"]}
        # Domestic abuse, gang association and what services knew of the deceased describe one
        # life and go together (a domestic abuse death is often known to children's services): one
        # family too, the strongest in full, the next at half, the third at a quarter.
        circ = np.vstack([np.maximum(items[k], 0) for k in ("domestic", "gang", "vulnerability")])
        ranked_circ = -np.sort(-circ, axis=0)
        circ_family = ranked_circ[0] + 0.5 * ranked_circ[1] + 0.25 * ranked_circ[2]
        weight = (
            np.sum(np.vstack(list(items.values())), axis=0)
            - family
            + local_now
            - circ.sum(axis=0)
            + circ_family
        )
        weight_then = (
            weight
            + ent_then["person"]
            - ent_bits["person"]
            + ent_then["officer"]
            - ent_bits["officer"]
            + ent_then["institution"]
            - ent_bits["institution"]
            + local_then
            - local_now
        )
        return weight, weight_then

    items["kind"] = np.zeros(n)
    weight, weight_then = combine(items)
    # What kind of death two deaths share (method, kind of place, substances, victim, what
    # services knew), and how near they are, weighed together on the force's own deaths:
    # young men, gang related, at licensed premises, in the city centre are one common kind
    # of death, not four rare coincidences.
    kind_text: list[str | None] = [None] * n
    shown = {k: v.copy() for k, v in items.items()}
    if params.joint_kind:
        best = np.maximum(weight, weight_then) + bg.prior_bits
        rows = np.flatnonzero(best >= -np.log2(1 / params.joint_kind_floor - 1))
        if len(rows):
            sub_of: dict[int, list[str]] = {}
            if sub_rows.height:
                for r_, s_ in zip(sub_rows["_row"].to_list(), sub_rows["s"].to_list()):
                    sub_of.setdefault(r_, []).append(s_)
            vul_of: dict[int, list[str]] = {}
            if vul_rows.height:
                for r_, v_ in zip(vul_rows["_row"].to_list(), vul_rows["v"].to_list()):
                    vul_of.setdefault(r_, []).append(v_)
            kind_bits, place_new, texts, done = _joint_kind(
                rows,
                a,
                b,
                p,
                bg,
                params,
                same_method=same_method,
                same_loc=same_loc,
                dom=dom,
                gang=gang,
                prof_ok=prof_ok,
                lo=lo,
                hi=hi,
                sub_of=sub_of,
                vul_of=vul_of,
                dist=dist,
                same_inst=same_inst,
                kin=kin,
                population=population,
            )
            sel = rows[done]
            for k in ("method", "location_type", "domestic", "gang", "profile", "substance", "vulnerability"):
                items[k][sel] = 0.0
            items["kind"][rows] = kind_bits
            ok = np.isfinite(place_new)
            items["place"][rows[ok]] = place_new[ok]
            for r_, t_ in zip(rows.tolist(), texts):
                kind_text[r_] = t_
            weight, weight_then = combine(items)
    score = 1 / (1 + np.exp2(-(weight + bg.prior_bits)))
    score_then = 1 / (1 + np.exp2(-(weight_then + bg.prior_bits)))

    out = pl.DataFrame(
        {
            "a": a,
            "b": b,
            "score": score,
            "score_then": score_then,
            "weight": weight,
            "days_apart": gap.astype(np.int64),
            "metres_apart": dist,
            **{f"bits_{k}": v for k, v in items.items()},
        }
    )
    if scores_only:
        return out.select("a", "b", "score")
    keep = score >= min(params.report_floor, params.link_threshold)
    out = out.filter(pl.Series(keep))
    evidence, evidence_bits, kinds = [], [], []
    weighed = items
    items = shown  # the words and kinds name each shared feature; the weight is the joint one
    for r in np.flatnonzero(keep):
        ev: list[tuple[float, str]] = sorted(ent_text.get(r, ()), key=lambda x: (-x[0], x[1]))[:6]
        kd: set[str] = set()
        for etype, kind in (
            ("person", "shared_person"),
            ("officer", "shared_officer"),
            ("clinician", "shared_clinician"),
            ("institution", "shared_institution"),
        ):
            if items[etype][r] >= 2.0:
                kd.add(kind)
        if sub_text[r] and items["substance"][r] >= 1.0:
            ev.append((items["substance"][r], sub_text[r]))
            kd.add("shared_substance")
        if items["method"][r] >= 1.0:
            share = bg.method_count.get(method[a[r]], 0) / bg.n_police
            ev.append(
                (
                    items["method"][r],
                    f"same method: {_words(method[a[r]])} (in {_pct(share)} of police death reports)",
                )
            )
            kd.add("same_method")
        if items["location_type"][r] >= 1.0:
            ev.append((items["location_type"][r], f"both at a {_words(loc[a[r]])} location"))
        if items["profile"][r] >= 1.0:
            who = "men" if sex[a[r]] == "m" else "women"
            lo_age, hi_age = sorted((int(age[a[r]]), int(age[b[r]])))
            ages = f"aged {lo_age}" if lo_age == hi_age else f"aged {lo_age} and {hi_age}"
            ev.append((items["profile"][r], f"both {who} {ages}"))
            kd.add("similar_victims")
        if items["domestic"][r] >= 1.0:
            ev.append((items["domestic"][r], "both domestic abuse related"))
            kd.add("similar_victims")
        if items["gang"][r] >= 1.0:
            ev.append((items["gang"][r], "both gang related"))
            kd.add("similar_victims")
        if vul_text[r] and items["vulnerability"][r] >= 1.0:
            ev.append((items["vulnerability"][r], vul_text[r]))
            kd.add("similar_victims")
        if kind_text[r]:
            ev.append((max(weighed["kind"][r], 0.2), kind_text[r]))
        st_bits = weighed["place"][r] + items["time"][r]
        if np.isfinite(dist[r]):
            if weighed["place"][r] >= 3.0:
                kd.add("shared_place")
            if (
                dist[r] <= params.candidate_distance_m
                and gap[r] <= params.candidate_gap_days
                and st_bits >= 6.0
            ):
                kd.add("space_time")
            ev.append((max(st_bits, 0.5), f"{_fmt_distance(dist[r])} apart, {int(gap[r])} days"))
        else:
            ev.append((0.1, f"{int(gap[r])} days apart"))
        ev.sort(key=lambda x: -x[0])
        evidence.append([t for _, t in ev])
        evidence_bits.append([round(float(x), 2) for x, _ in ev])
        kinds.append(sorted(kd))
    return out.with_columns(
        evidence=pl.Series(evidence, dtype=pl.List(pl.String)),
        evidence_bits=pl.Series(evidence_bits, dtype=pl.List(pl.Float64)),
        kinds=pl.Series(kinds, dtype=pl.List(pl.String)),
    )


# ----------------------------------------------------------------------------------------
# 6. Series: connected groups of links above threshold, and the backtest


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, x: int, y: int) -> bool:
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        self.parent[max(rx, ry)] = min(rx, ry)
        return True


def components(edges_a: np.ndarray, edges_b: np.ndarray) -> dict[int, list[int]]:
    """Connected components (root -> sorted members) of an undirected edge list."""
    uf = _UnionFind()
    for x, y in zip(edges_a.tolist(), edges_b.tolist()):
        uf.union(x, y)
    out: dict[int, list[int]] = {}
    for x in list(uf.parent):
        out.setdefault(uf.find(x), []).append(x)
    return {r: sorted(m) for r, m in out.items()}


def backtest_flag(
    members: list[int], day: np.ndarray, edges: list[tuple[int, int, float, int]], threshold: float
) -> tuple[int | None, int | None, tuple[int, int] | None]:
    """When a series would first have been flagged, replaying its deaths in date order.

    ``edges`` are (a, b, score as known then, the day the link became visible: its later
    death's date, or for group evidence the day the group first raised an alarm). The
    series is flagged on the first day any of its links is visible at or above
    ``threshold``. Returns (flag day, members dead by then, the flagging pair).
    """
    visible = sorted((int(v), a, b) for a, b, s, v in edges if s >= threshold)
    if not visible:
        return None, None, None
    flag_day, a, b = visible[0]
    member_days = sorted(day[m] for m in members)
    at_member = int(np.searchsorted(np.asarray(member_days), flag_day, side="right"))
    return int(flag_day), at_member, (a, b)


def series_id_for(death_ids: list[str]) -> str:
    """Stable id from the first two members as flagged (``S-`` and 10 hex characters)."""
    digest = hashlib.sha256("|".join(death_ids).encode("utf-8")).hexdigest()
    return f"S-{digest[:10]}"


LINKED_SERIES_SCHEMA = {
    "series_id": pl.String,
    "death_ids": pl.List(pl.String),
    "police_report_ids": pl.List(pl.String),
    "size": pl.Int64,
    "score": pl.Float64,
    "kinds": pl.List(pl.String),
    "reason": pl.String,
    "first_flagged_on": pl.Date,
    "flagged_at_member": pl.Int64,
}
CASE_LINKS_SCHEMA = {
    "death_id_a": pl.String,
    "death_id_b": pl.String,
    "score": pl.Float64,
    "evidence": pl.List(pl.String),
    "kinds": pl.List(pl.String),
    "days_apart": pl.Int64,
    "metres_apart": pl.Float64,
    "score_then": pl.Float64,
    "visible_on": pl.Date,
    "linked": pl.Boolean,
}


def _day_to_date(d: int | None) -> date | None:
    return None if d is None else EPOCH + timedelta(days=int(d))


def _reason(
    members: list[int], profiles: pl.DataFrame, links: pl.DataFrame, flag: tuple, score: float
) -> str:
    """One paragraph an analyst can check: who, when, where, what links them, when it was flagged."""
    sub = profiles.filter(pl.col("idx").is_in(members)).sort("day")
    n = sub.height
    first, last = sub["date_of_death"][0], sub["date_of_death"][-1]
    parts = [f"{n} deaths between {first:%d %b %Y} and {last:%d %b %Y} ({(last - first).days} days)"]
    lat, lon = sub["lat"].to_numpy().astype(float), sub["lon"].to_numpy().astype(float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if ok.sum() >= 2:
        from homicide_assets.lib.geography import haversine_m

        la, lo = lat[ok], lon[ok]
        d = haversine_m(la[:, None], lo[:, None], la[None, :], lo[None, :])
        parts[0] += f", {ok.sum()} of them within {_fmt_distance(float(d.max()))} of one another"
    sexes = sub["sex"].drop_nulls().unique().to_list()
    ages = sub["age"].drop_nulls()
    if len(sexes) == 1 and ages.len():
        who = {"m": "men", "f": "women"}.get(sexes[0], "people")
        parts.append(
            f"all {who} aged {ages.min()} to {ages.max()}"
            if ages.min() != ages.max()
            else f"all {who} aged {ages.min()}"
        )
    methods = sub["method"].drop_nulls().filter(~sub["method"].drop_nulls().is_in(UNINFORMATIVE_METHODS))
    methods = methods.value_counts(sort=True)
    if methods.height and methods["count"][0] >= 2:
        parts.append(f"{methods['count'][0]} by {_words(methods['method'][0])}")
    subs = sub["substances"].explode().drop_nulls().value_counts(sort=True)
    subs = subs.filter(~pl.col("substances").is_in(UNINFORMATIVE_SUBSTANCES) & (pl.col("count") >= 2))
    if subs.height:
        parts.append(
            ", ".join(
                f"{r[0].upper() if r[0] in ('ghb',) else r[0]} in {r[1]}" for r in subs.head(3).iter_rows()
            )
        )
    text = "; ".join(parts) + "."
    # The weightiest evidence across the series' links (distances, gaps and ages are in the
    # summary above), each once, with how many links carry it.
    ev = (
        links.select("evidence", "evidence_bits")
        .explode("evidence", "evidence_bits")
        .drop_nulls()
        .filter(
            ~pl.col("evidence").str.contains(
                r" apart|^both (men|women) aged|^taken together: |^\d+ other police-reported"
            )
        )
        .group_by("evidence")
        .agg(pl.col("evidence_bits").sum().alias("bits"), pl.len().alias("links"))
        .sort(["bits", "evidence"], descending=[True, False])
        .head(5)
    )
    if ev.height:
        text += (
            " Linked by: "
            + "; ".join(e + (f" ({c} links)" if c > 1 else "") for e, _b, c in ev.iter_rows())
            + "."
        )
    flag_day, at_member, pair = flag
    if flag_day is not None:
        text += (
            f" It could first have been flagged on {_day_to_date(flag_day):%d %b %Y}, at the death of member "
            f"{at_member} of {n}."
        )
    text += f" Series score {score:.2f}."
    return text


@dataclass
class SeriesResult:
    """Outputs of one search: the two public tables and what the metadata shows."""

    case_links: pl.DataFrame
    linked_series: pl.DataFrame
    profiles: pl.DataFrame
    candidate_pairs: int
    #: group evidence (excess at an institution or clinician; space-time clusters)
    groups: pl.DataFrame
    search: LinkSearch

    @property
    def background(self) -> Background:
        return self.search.background

    @property
    def searched_because(self) -> str | None:
        """Why the search ran whole, or what it weighed again (None: the held search was
        reused, its inputs unchanged)."""
        return self.search.searched_because

    @property
    def how(self) -> str:
        """``whole``, ``incremental`` (only what changed weighed again, against the held
        basis) or ``held`` (reused as it was)."""
        return self.search.how


def assemble_series(links: pl.DataFrame, profiles: pl.DataFrame, params: SeriesParams) -> pl.DataFrame:
    """Series from scored links (columns a, b, score, score_then, evidence, kinds): connected
    groups of links at or above ``link_threshold``, ranked by score then size, each with its
    reason, kinds, and when the backtest would first have flagged it."""
    strong = links.filter(pl.col("score") >= params.link_threshold)
    if strong.is_empty():
        return pl.DataFrame(schema=LINKED_SERIES_SCHEMA)
    comps = components(strong["a"].to_numpy(), strong["b"].to_numpy())
    day = profiles["day"].to_numpy()
    death_id = profiles["death_id"].to_numpy()
    report = profiles["police_report_id"].to_numpy()
    rows = []
    for members in comps.values():
        members = sorted(members, key=lambda i: (day[i], death_id[i]))
        mset = set(members)
        inner = links.filter(pl.col("a").is_in(members) & pl.col("b").is_in(members))
        inner_strong = inner.filter(pl.col("score") >= params.link_threshold)
        edges = list(
            zip(
                inner["a"].to_list(),
                inner["b"].to_list(),
                inner["score_then"].to_list(),
                inner["visible_day"].to_list(),
            )
        )
        flag = backtest_flag(members, day, edges, params.link_threshold)
        # series score: noisy-or over a maximum spanning tree of its strong links
        uf = _UnionFind()
        tree_scores = []
        for a_, b_, s in sorted(
            zip(inner_strong["a"].to_list(), inner_strong["b"].to_list(), inner_strong["score"].to_list()),
            key=lambda x: -x[2],
        ):
            if uf.union(a_, b_):
                tree_scores.append(s)
        score = 1 - float(np.prod([1 - s for s in tree_scores]))
        kinds = sorted({k for ks in inner_strong["kinds"].to_list() for k in ks if k in KINDS})
        ids = [str(death_id[i]) for i in members]
        if flag[2] is not None:
            pair = sorted(flag[2], key=lambda i: (day[i], death_id[i]))
            sid = series_id_for([str(death_id[i]) for i in pair])
        else:
            sid = series_id_for(ids[:2])
        del mset
        rows.append(
            {
                "series_id": sid,
                "death_ids": ids,
                "police_report_ids": [str(report[i]) for i in members if report[i] is not None],
                "size": len(members),
                "score": round(score, 4),
                "kinds": kinds,
                "reason": _reason(members, profiles, inner_strong, flag, score),
                "first_flagged_on": _day_to_date(flag[0]),
                "flagged_at_member": flag[1],
            }
        )
    out = pl.DataFrame(rows, schema=LINKED_SERIES_SCHEMA)
    return out.sort(["score", "size", "series_id"], descending=[True, True, False])


LINK_COLUMNS = (
    "a",
    "b",
    "score",
    "score_then",
    "visible_day",
    "evidence",
    "evidence_bits",
    "kinds",
    "days_apart",
    "metres_apart",
)


def combine_links(parts: list[pl.DataFrame], params: SeriesParams) -> pl.DataFrame:
    """One row per pair from pair links and group links: scores combine as a noisy-or
    (independent evidence), evidence lists concatenate; a pair is visible in the backtest
    from the earliest day one of its parts alone crossed the threshold, else from when all
    its parts were known."""
    present = [p.select(LINK_COLUMNS) for p in parts if p.height]
    if not present:
        return pl.DataFrame(
            schema={**{c: SCORED_SCHEMA.get(c, pl.Float64) for c in LINK_COLUMNS}, "visible_day": pl.Int64}
        )
    links = pl.concat(present, how="vertical_relaxed")
    return (
        links.group_by("a", "b")
        .agg(
            (1 - (1 - pl.col("score")).product()).alias("score"),
            (1 - (1 - pl.col("score_then")).product()).alias("score_then"),
            pl.col("visible_day")
            .filter(pl.col("score_then") >= params.link_threshold)
            .min()
            .fill_null(pl.col("visible_day").max())
            .alias("visible_day"),
            pl.col("evidence").list.explode(keep_nulls=False, empty_as_null=False),
            pl.col("evidence_bits").list.explode(keep_nulls=False, empty_as_null=False),
            pl.col("kinds").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
            pl.col("days_apart").first(),
            pl.col("metres_apart").drop_nulls().first(),
        )
        .sort("a", "b")
    )


def reweighed_pairs(pairs: pl.DataFrame, first: pl.DataFrame, params: SeriesParams) -> pl.DataFrame:
    """The pairs a weighing with clusters left out can change: those with a death in some
    cluster of ``first`` (a link at or above ``joint_kind_floor``), and those ``first``
    already reports. Any other pair has no cluster to leave out, so :func:`score_pairs` gives
    it the score ``first`` gave, below the report floor: weighing it again changes nothing."""
    clustered = first.filter(pl.col("score") >= params.joint_kind_floor)
    in_cluster = pl.concat([clustered["a"], clustered["b"]]).unique()
    reported = first.filter(pl.col("score") >= min(params.report_floor, params.link_threshold)).select("a", "b")
    return (
        pl.concat(
            [
                pairs.filter(pl.col("a").is_in(in_cluster) | pl.col("b").is_in(in_cluster)),
                reported.cast(pairs.schema),
            ]
        )
        .unique()
        .sort("a", "b")
    )


def _with_scores(scores: pl.DataFrame, again: pl.DataFrame) -> pl.DataFrame:
    """``scores`` (a, b, score) with the pairs weighed ``again`` taking their new score."""
    return (
        scores.join(again.select("a", "b", pl.col("score").alias("_again")), on=["a", "b"], how="left")
        .with_columns(score=pl.coalesce("_again", "score"))
        .drop("_again")
    )


def find_series(
    register: pl.DataFrame,
    person_clusters: pl.DataFrame,
    staged: Mapping[str, pl.DataFrame | None],
    params: SeriesParams | None = None,
    held: Path | None = None,
) -> SeriesResult:
    """Case links and linked series from the death register, person keys and staged feeds.

    ``staged`` maps feed names (``death_reports``, ``death_report_persons``, ``me_deaths``,
    ``safeguarding_contacts``) to staged frames; a missing feed contributes no evidence.
    ``held`` (a folder) keeps the search between calls: see :func:`search_links`.
    """
    params = params or SeriesParams()
    return finish_series(search_links(register, person_clusters, staged, params, held=held), params)


@dataclass
class LinkSearch:
    """Everything :func:`find_series` weighs before links are thresholded into series."""

    links: pl.DataFrame
    profiles: pl.DataFrame
    #: None when the search was held (measured again on first use: :attr:`background`)
    measured: Background | None
    candidate_pairs: int
    groups: pl.DataFrame
    params: SeriesParams
    #: the Knox test of the police-reported deaths with a place (None: fewer than 3)
    knox: KnoxResult | None = None
    #: why the search ran whole, or None when the held search was reused
    searched_because: str | None = None
    #: what the pairs and groups were weighed against (None: a held search reused as it was)
    basis: SearchBasis | None = None
    #: the first weighing's (a, b, score) of every candidate pair, the candidate pairs and the
    #: scored pair links before group evidence joins them (what a held search keeps to weigh
    #: only what changed)
    first: pl.DataFrame | None = None
    pairs: pl.DataFrame | None = None
    scored: pl.DataFrame | None = None
    #: how the search ran: "whole", "held" (reused as it was) or "incremental"
    how: str = "whole"
    #: the candidate pairs with the groups paired by rank and their counted pairs
    candidates: CandidatePairs | None = None

    @property
    def background(self) -> Background:
        if self.measured is None:
            self.measured = measure_background(self.profiles, self.params)
        return self.measured


def search_links(
    register: pl.DataFrame,
    person_clusters: pl.DataFrame,
    staged: Mapping[str, pl.DataFrame | None],
    params: SeriesParams,
    held: Path | None = None,
) -> LinkSearch:
    """Pair links and group links, combined per pair, with same-incident pairs marked.

    With ``held`` (a folder: ``models/series/``) the search is kept there. A later call whose
    death profiles and shared entities are the same row for row, with the same parameters and
    code, returns the held links and groups (``how`` "held"); one with a few new, changed or
    gone deaths weighs only what they change against the held basis (``how``
    "incremental"); anything else searches whole (:mod:`homicide_assets.lib.series_held`).
    ``searched_because`` says why it searched whole, or what it weighed again.
    """
    from homicide_assets.lib.series_held import HeldSearch, incremental_search, search_code, search_digest

    profiles = death_profiles(register, person_clusters, staged)
    entities = death_entities(profiles, person_clusters, staged)
    digest, code, because = None, None, None
    if held is not None:
        digest, code = search_digest(profiles, entities, params), search_code(params)
        previous = HeldSearch.load(held, result_only=True)
        if previous is not None and previous.digest == digest:
            return LinkSearch(
                previous.links,
                profiles,
                None,
                previous.candidate_pairs,
                previous.groups,
                params,
                previous.knox,
                how="held",
            )
        if previous is None:
            because = "no search held"
        elif previous.code != code:
            because = "the parameters or the code changed"
        else:
            previous = HeldSearch.load(held)
            got = "no search held" if previous is None else incremental_search(previous, profiles, entities, params)
            if not isinstance(got, str):
                search, state = got
                state.digest = digest
                state.save(held)
                return search
            because = got
    search = _search(profiles, entities, params)
    search.searched_because = because
    if held is not None:
        HeldSearch.from_whole(search, entities, digest, code, params).save(held)
    return search


@dataclass
class SearchBasis:
    """What a search weighs its pairs and groups against.

    A whole search measures it on today's deaths: the background (how common each kind of
    death, place and thing is), the police-reported deaths a kind of death is counted among
    (``population``: None for today's deaths themselves), the group scans' alarm thresholds
    and the Knox test. A held search (:mod:`homicide_assets.lib.series_held`) keeps its last
    whole search's basis and weighs new and changed deaths against it, until enough has
    changed to measure it again, as linkage keeps its trained model. A threshold left None
    is set by its scan's own Monte Carlo null on the deaths searched.
    """

    background: Background
    population: pl.DataFrame | None = None
    #: space-time scan group -> alarm threshold
    scan_thresholds: dict[str, float] | None = None
    excess_threshold: float | None = None
    unexpected_threshold: float | None = None
    knox: KnoxResult | None = None
    knox_measured: bool = False


def weigh_pairs(
    pairs: pl.DataFrame,
    profiles: pl.DataFrame,
    entities: pl.DataFrame,
    basis: SearchBasis,
    params: SeriesParams,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Score ``pairs`` (every weighing pass) and return (scored links with their evidence,
    the first weighing's (a, b, score) of every pair, or None without a second pass)."""
    bg = basis.background
    kw = {"population": basis.population}
    if params.cluster_passes == 0:
        return score_pairs(pairs, profiles, entities, bg, params, **kw), None
    first = score_pairs(pairs, profiles, entities, bg, params, scores_only=True, **kw)
    scored = first
    # Weighed again with each pair's own cluster (the deaths the first weighing links to either
    # of it) left out of its background: a series' other members are not the deaths its
    # signature, or its finder's other finds, should be compared with.
    for k in range(params.cluster_passes):
        last = k == params.cluster_passes - 1
        todo = reweighed_pairs(pairs, scored, params)
        again = score_pairs(todo, profiles, entities, bg, params, first=scored, scores_only=not last, **kw)
        scored = again if last else _with_scores(scored, again)
    return scored, first


def _search(
    profiles: pl.DataFrame, entities: pl.DataFrame, params: SeriesParams, basis: SearchBasis | None = None
) -> LinkSearch:
    """The whole search: every candidate pair weighed against ``basis`` (measured on these
    deaths when None)."""
    if basis is None:
        basis = SearchBasis(measure_background(profiles, params))
    candidates = candidate_pairs(profiles, entities, basis.background, params, parts=True)
    pairs = candidates.pairs
    scored, first = weigh_pairs(pairs, profiles, entities, basis, params)
    search = link_search(scored, profiles, entities, basis, params, pairs.height)
    search.first, search.pairs, search.scored = first, pairs, scored
    search.candidates = candidates
    return search


def link_search(
    scored: pl.DataFrame,
    profiles: pl.DataFrame,
    entities: pl.DataFrame,
    basis: SearchBasis,
    params: SeriesParams,
    candidates: int,
) -> LinkSearch:
    """Scored pair links, group scans and the Knox test into one :class:`LinkSearch`
    (thresholds and Knox the basis lacks are measured and kept in it)."""
    from homicide_assets.lib.series_scan import (
        excess_groups,
        group_links,
        space_time_groups,
        unexpected_groups,
    )

    bg = basis.background
    day = profiles["day"].to_numpy()
    scored = scored.with_columns(
        visible_day=pl.Series(
            np.maximum(day[scored["a"].to_numpy()], day[scored["b"].to_numpy()]), dtype=pl.Int64
        )
    )
    used: dict = {}
    groups = pl.concat(
        [
            excess_groups(profiles, entities, bg, params, threshold=basis.excess_threshold, used=used),
            unexpected_groups(profiles, bg, params, threshold=basis.unexpected_threshold, used=used),
            space_time_groups(profiles, bg, params, thresholds=basis.scan_thresholds, used=used),
        ]
    )
    if basis.excess_threshold is None:
        basis.excess_threshold = used.get("excess")
    if basis.unexpected_threshold is None:
        basis.unexpected_threshold = used.get("unexpected")
    if basis.scan_thresholds is None:
        basis.scan_thresholds = used.get("scan")
    links = combine_links([scored, group_links(groups, profiles, params)], params)
    # Deaths on the same day at the same place are one incident (a fire, a crash, a double
    # killing, or one death reported twice): the linkage and incident questions, not a series.
    same_incident = (pl.col("days_apart") == 0) & (
        pl.col("metres_apart").fill_null(float("inf")) < params.same_incident_m
    )
    links = links.with_columns(
        same_incident=same_incident.fill_null(False),
        evidence=pl.when(same_incident.fill_null(False))
        .then(pl.concat_list(pl.lit(["same day and place: one incident, not a series"]), pl.col("evidence")))
        .otherwise(pl.col("evidence")),
        evidence_bits=pl.when(same_incident.fill_null(False))
        .then(pl.concat_list(pl.lit([0.0]), pl.col("evidence_bits")))
        .otherwise(pl.col("evidence_bits")),
    )
    if not basis.knox_measured:
        basis.knox, basis.knox_measured = knox_of(profiles, params), True
    return LinkSearch(links, profiles, bg, candidates, groups, params, basis.knox, basis=basis)


def knox_of(profiles: pl.DataFrame, params: SeriesParams) -> KnoxResult | None:
    """The Knox test of the police-reported deaths with a place (space-time interaction over
    the whole force; None with fewer than three)."""
    police = profiles.filter(
        pl.col("has_police_report") & pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
    )
    if police.height < 3:
        return None
    return knox_test(
        police["day"].to_numpy(),
        project_m(police["lat"].to_numpy(), police["lon"].to_numpy()),
        params.knox_space_m,
        params.knox_days,
        permutations=params.knox_permutations,
        seed=0,
    )


def finish_series(search: LinkSearch, params: SeriesParams) -> SeriesResult:
    """Series and the public ``case_links`` from a link search, at ``params.link_threshold``."""
    links, profiles = search.links, search.profiles
    series = assemble_series(links.filter(~pl.col("same_incident")), profiles, params)
    reported = links.filter(pl.col("score") >= params.report_floor)
    death_id = profiles["death_id"]
    a_id, b_id = death_id.gather(reported["a"]), death_id.gather(reported["b"])
    case_links = (
        reported.with_columns(
            # a < b by death id (outputs.md)
            death_id_a=pl.min_horizontal(a_id, b_id),
            death_id_b=pl.max_horizontal(a_id, b_id),
            linked=(pl.col("score") >= params.link_threshold) & ~pl.col("same_incident"),
            score=pl.col("score").round(4),
            score_then=pl.col("score_then").round(4),
            visible_on=pl.lit(EPOCH) + pl.duration(days=pl.col("visible_day")),
        )
        .select(list(CASE_LINKS_SCHEMA))
        .cast(CASE_LINKS_SCHEMA)
        .sort(["score", "death_id_a", "death_id_b"], descending=[True, False, False])
    )
    return SeriesResult(
        case_links=case_links,
        linked_series=series,
        profiles=profiles,
        candidate_pairs=search.candidate_pairs,
        groups=search.groups,
        search=search,
    )


# ----------------------------------------------------------------------------------------
# 7. The naive baseline


def naive_baseline(profiles: pl.DataFrame, gap_days: int = 30) -> pl.DataFrame:
    """What a desk check would find: same postcode district and same method within ``gap_days``.

    Returns series in the ``linked_series`` shape (reason, kinds and score are simple), with
    ``first_flagged_on``/``flagged_at_member`` from the same date-order replay.
    """
    base = profiles.filter(
        pl.col("postcode_district").is_not_null()
        & pl.col("method").is_not_null()
        & ~pl.col("method").is_in(UNINFORMATIVE_METHODS)
    ).select("idx", "day", "postcode_district", "method")
    pairs = base.join(base, on=["postcode_district", "method"], suffix="_b").filter(
        (pl.col("idx") < pl.col("idx_b")) & ((pl.col("day_b") - pl.col("day")).abs() <= gap_days)
    )
    if pairs.is_empty():
        return pl.DataFrame(schema=LINKED_SERIES_SCHEMA)
    links = pairs.select(
        pl.col("idx").alias("a"),
        pl.col("idx_b").alias("b"),
        pl.lit(1.0).alias("score"),
        pl.lit(1.0).alias("score_then"),
        pl.max_horizontal("day", "day_b").alias("visible_day"),
        pl.concat_list(
            [
                pl.concat_str(
                    [
                        pl.lit("same postcode district "),
                        pl.col("postcode_district"),
                        pl.lit(" and method "),
                        pl.col("method"),
                    ]
                )
            ]
        ).alias("evidence"),
        pl.lit([1.0]).alias("evidence_bits"),
        pl.lit(["shared_place", "same_method"]).alias("kinds"),
    )
    return assemble_series(links, profiles, SeriesParams(link_threshold=0.5))
