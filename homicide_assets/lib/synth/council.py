"""``safeguarding_contacts``: what the seven councils return about people the police name.

Under the data sharing agreement a council returns its contacts (children's and adults'
social care, early help, housing, youth justice, substance misuse, mental health) for people
named in the force's death notifications (the deceased, suspects, associates) and for cohorts
at risk. A contact open at the time of a death is closed in a later extract.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.synth import geo, stats
from homicide_assets.lib.synth.config import PERIOD_END, NoiseParams, Scale
from homicide_assets.lib.synth.institutions import LA_PARTNER
from homicide_assets.lib.synth.noise import record_identity
from homicide_assets.lib.synth.people import PersonIds, new_persons
from homicide_assets.lib.synth.police import TRUTH_COLUMNS

#: Service and concerns by profile: (service, concerns, weight).
PROFILES: dict[str, tuple[tuple[str, tuple[str, ...], float], ...]] = {
    "young_violence": (
        ("youth_justice", ("gang_association", "criminal_exploitation"), 3),
        ("childrens_social_care", ("criminal_exploitation", "missing_episodes"), 2),
        ("early_help", ("missing_episodes",), 1),
        ("youth_justice", ("criminal_exploitation",), 2),
    ),
    "domestic": (
        ("adult_social_care", ("domestic_abuse",), 3),
        ("housing", ("domestic_abuse", "homelessness"), 2),
        ("childrens_social_care", ("domestic_abuse",), 1),
    ),
    "suicide": (
        ("mental_health", ("mental_health",), 4),
        ("adult_social_care", ("mental_health", "self_neglect"), 1),
        ("substance_misuse", ("substance_misuse", "mental_health"), 1),
    ),
    "drug": (
        ("substance_misuse", ("substance_misuse",), 4),
        ("housing", ("homelessness", "substance_misuse"), 2),
        ("adult_social_care", ("self_neglect", "substance_misuse"), 1),
    ),
    "elderly": (("adult_social_care", (), 4), ("adult_social_care", ("self_neglect",), 1)),
    "adult": (
        ("housing", (), 2),
        ("adult_social_care", (), 1),
        ("mental_health", ("mental_health",), 1),
        ("substance_misuse", ("substance_misuse",), 1),
    ),
}


def _profile(category: np.ndarray, age: np.ndarray, domestic: np.ndarray, role: np.ndarray) -> np.ndarray:
    prof = np.full(len(category), "adult", dtype=object)
    prof[age >= 70] = "elderly"
    prof[np.isin(category, ["drug"])] = "drug"
    prof[np.isin(category, ["suicide"])] = "suicide"
    prof[(category == "homicide") & (age < 26)] = "young_violence"
    prof[np.isin(role, ["suspect", "associate"]) & (age < 26)] = "young_violence"
    prof[domestic.astype(bool)] = "domestic"
    return prof


def _services(rng: np.random.Generator, profile: np.ndarray) -> tuple[list, list]:
    service = [None] * len(profile)
    concerns: list = [None] * len(profile)
    for name, options in PROFILES.items():
        idx = np.flatnonzero(profile == name)
        if len(idx) == 0:
            continue
        w = np.array([o[2] for o in options])
        picks = rng.choice(len(options), size=len(idx), p=w / w.sum())
        for i, k in zip(idx, picks):
            service[i] = options[k][0]
            concerns[i] = list(options[k][1])
    return service, concerns


def build_safeguarding(
    rng: np.random.Generator,
    scale: Scale,
    deaths: pl.DataFrame,
    report_persons: pl.DataFrame,
    persons: pl.DataFrame,
    planted_contacts: list[dict],
    ids: PersonIds,
    noise: NoiseParams,
    nhs_pool: np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Council contacts (all versions) and the at-risk cohort's new people."""
    police = deaths.filter(pl.col("police") & pl.col("series_id").is_null())
    known = rng.random(police.height) < np.array(
        [stats.KNOWN_TO_SERVICES[c] for c in police["true_category"].to_list()]
    )
    dec = police.filter(pl.Series(known))
    reps = rng.choice([1, 1, 1, 2, 2, 3], dec.height)
    dec = dec.select(
        pl.col("person_id"),
        pl.col("death_id"),
        pl.col("true_category"),
        pl.col("age"),
        pl.col("domestic"),
        pl.col("date_of_death").alias("anchor"),
        pl.lit("deceased").alias("role"),
    ).select(pl.all().gather(np.repeat(np.arange(dec.height), reps)))
    # Suspects and associates named in reports.
    named = report_persons.filter(pl.col("_role").is_in(["suspect", "associate", "last_seen_with"])).unique(
        "_person_id", keep="first", maintain_order=True
    )
    named = named.filter(pl.Series(rng.random(named.height) < 0.3))
    named = named.join(
        persons.select("person_id", "date_of_birth"),
        left_on="_person_id",
        right_on="person_id",
        how="left",
        maintain_order="left",
    )
    named = named.join(
        deaths.select("death_id", "date_of_death", "true_category", "domestic"),
        left_on="_death_id",
        right_on="death_id",
        how="left",
        maintain_order="left",
    ).select(
        pl.col("_person_id").alias("person_id"),
        pl.lit(None, pl.String).alias("death_id"),
        pl.col("true_category"),
        ((pl.col("date_of_death") - pl.col("date_of_birth")).dt.total_days() // 365)
        .fill_null(30)
        .cast(pl.Int64)
        .alias("age"),
        pl.col("domestic"),
        pl.col("date_of_death").alias("anchor"),
        pl.col("_role").alias("role"),
    )
    linked = pl.concat([dec.cast(named.schema), named])
    n = linked.height
    service, concerns = _services(
        rng,
        _profile(
            linked["true_category"].to_numpy(),
            linked["age"].to_numpy(),
            linked["domestic"].fill_null(False).to_numpy(),
            linked["role"].to_numpy(),
        ),
    )
    first_back = rng.integers(30, 1500, n)
    last_back = (first_back * rng.random(n)).astype(int)
    linked = linked.with_columns(
        service=pl.Series(service, dtype=pl.String),
        concerns=pl.Series(concerns, dtype=pl.List(pl.String)),
        first_contact_date=(pl.col("anchor") - pl.duration(days=pl.Series(first_back))).cast(pl.Date),
        last_contact_date=(pl.col("anchor") - pl.duration(days=pl.Series(last_back))).cast(pl.Date),
        open_case=pl.Series(rng.random(n) < 0.4),
        notified=(pl.col("anchor") + pl.duration(days=pl.Series(rng.integers(7, 29, n)))).cast(pl.Date),
    )
    # Planted contacts (series members), returned once the police name them.
    if planted_contacts:
        planted = pl.DataFrame(planted_contacts).with_columns(pl.col("concerns").cast(pl.List(pl.String)))
        anchor = planted.join(
            deaths.select("person_id", "date_of_death"), on="person_id", how="left", maintain_order="left"
        )
        # Contacts of living suspects are returned when the police name them (after the first death).
        planted = anchor.with_columns(
            death_id=pl.lit(None, pl.String),
            notified=(pl.max_horizontal("date_of_death", "last_contact_date") + pl.duration(days=10)).cast(
                pl.Date
            ),
            role=pl.lit("subject"),
        ).select(
            linked.select(
                "person_id",
                "death_id",
                "service",
                "concerns",
                "first_contact_date",
                "last_contact_date",
                "open_case",
                "notified",
                "role",
            ).columns
        )
    else:
        planted = None

    # At-risk cohort: living people whose contacts are returned (not linked to any death).
    k = int(round(stats.AT_RISK_COHORT_PER_FORCE_YEAR * scale.force_years))
    ages = rng.integers(10, 60, k)
    home = geo.sample_districts(rng, "violence", k)
    cohort_people = new_persons(
        rng,
        ids,
        np.where(rng.random(k) < 0.6, "m", "f").astype(object),
        np.datetime64(PERIOD_END) - (ages * 365.25 + rng.integers(0, 365, k)).astype("timedelta64[D]"),
        home,
        mover_share=noise.mover_share,
    )
    prof = np.where(
        ages < 25,
        "young_violence",
        np.where(rng.random(k) < 0.4, "domestic", np.where(rng.random(k) < 0.5, "drug", "adult")),
    ).astype(object)
    svc, conc = _services(rng, prof)
    span_days = (PERIOD_END - scale.period_start).days
    first = (
        np.datetime64(scale.period_start)
        - np.timedelta64(365, "D")
        + rng.integers(0, span_days + 300, k).astype("timedelta64[D]")
    )
    first = np.minimum(first, np.datetime64(PERIOD_END - timedelta(days=20)))
    cohort = pl.DataFrame(
        {
            "person_id": cohort_people["person_id"],
            "death_id": pl.Series([None] * k, dtype=pl.String),
            "service": pl.Series(svc, dtype=pl.String),
            "concerns": pl.Series(conc, dtype=pl.List(pl.String)),
            "first_contact_date": first,
            "open_case": rng.random(k) < 0.6,
        },
        schema_overrides={"first_contact_date": pl.Date},
    ).with_columns(
        last_contact_date=pl.min_horizontal(
            pl.col("first_contact_date") + pl.duration(days=pl.Series(rng.integers(0, 400, k))),
            pl.lit(PERIOD_END),
        ).cast(pl.Date),
        notified=(pl.col("first_contact_date") + pl.duration(days=pl.Series(rng.integers(3, 30, k)))).cast(
            pl.Date
        ),
        role=pl.lit("subject"),
    )
    cols = [
        "person_id",
        "death_id",
        "service",
        "concerns",
        "first_contact_date",
        "last_contact_date",
        "open_case",
        "notified",
        "role",
    ]
    frames = [linked.select(cols), cohort.select(cols)] + (
        [planted.select(cols)] if planted is not None else []
    )
    contacts = pl.concat(frames, how="vertical_relaxed")
    all_people = pl.concat([persons, cohort_people], how="diagonal_relaxed")
    ident = contacts.join(all_people, on="person_id", how="left", maintain_order="left")
    ident = record_identity(ident, "safeguarding_contacts", noise, rng, nhs_pool)
    m = ident.height
    # A contact refers to its subject's death when the subject died.
    ident = ident.drop("death_id").join(
        deaths.select("person_id", "death_id"), on="person_id", how="left", maintain_order="left"
    )
    ident = (
        ident.with_columns(
            _partner_id=pl.col("la_code").replace_strict(LA_PARTNER, return_dtype=pl.String),
            postcode=pl.col("home_postcode"),
            concerns=pl.when(pl.col("concerns").list.len() == 0).then(None).otherwise("concerns"),
            _r=pl.Series(rng.random(m)),
        )
        .sort(["_partner_id", "first_contact_date", "person_id", "_r"])
        .with_columns(
            contact_id=pl.format(
                "{}-SC-{}",
                pl.col("_partner_id").str.to_uppercase(),
                (pl.int_range(pl.len()).over("_partner_id") + 100001).cast(pl.String),
            ),
            _available_on=pl.col("notified"),
            _version=pl.lit(1),
            _person_id=pl.col("person_id"),
            _death_id=pl.col("death_id"),
            _role=pl.lit("subject"),
        )
    )
    # Open contacts of people who died are closed in a later extract.
    closing = ident.filter(pl.col("open_case") & pl.col("death_id").is_not_null())
    v2 = closing.with_columns(
        open_case=pl.lit(False),
        _available_on=(
            pl.col("notified") + pl.duration(days=pl.Series(rng.integers(14, 90, closing.height)))
        ).cast(pl.Date),
        _version=pl.lit(2),
    )
    cols = FEEDS["safeguarding_contacts"].column_names + TRUTH_COLUMNS
    return pl.concat([ident.select(cols), v2.select(cols)]), cohort_people
