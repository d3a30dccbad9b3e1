"""The police feeds: ``death_reports`` and ``death_report_persons``, with their versions.

A report's first version is available when it is created; later versions carry the
investigation's progress (awaiting inquest, charged, closed) and reclassifications
(unexplained to natural after a post mortem, suspected homicide to homicide), and
identify bodies first recorded as ``unknown``. Every row carries hidden truth columns
(``_person_id``, ``_death_id``, ``_role``) that become ``ground_truth/source_records``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.synth import geo
from homicide_assets.lib.synth.config import NoiseParams
from homicide_assets.lib.synth.institutions import Institutions
from homicide_assets.lib.synth.names import zipf_weights
from homicide_assets.lib.synth.noise import record_identity
from homicide_assets.lib.synth.people import PersonIds, new_persons
from homicide_assets.lib.synth.text import police_narratives

TRUTH_COLUMNS = ["_partner_id", "_available_on", "_version", "_person_id", "_death_id", "_role"]

#: How the police first classify a death of each apparent category (then final classification).
INITIAL_CLASSIFICATION: dict[str, dict[str, float]] = {
    "homicide": {"suspected_homicide": 0.5, "homicide": 0.3, "suspicious": 0.2},
    "suicide": {"suspected_suicide": 0.85, "unexplained": 0.1, "accidental": 0.05},
    "drug": {"drug_related": 0.8, "unexplained": 0.15, "suspected_suicide": 0.05},
    "road_traffic": {"road_traffic": 1.0},
    "accident": {"accidental": 0.8, "unexplained": 0.1, "other": 0.1},
    "natural": {"natural": 0.7, "unexplained": 0.25, "other": 0.05},
}
FINAL_CLASSIFICATION = {
    "homicide": "homicide",
    "suicide": "suspected_suicide",
    "drug": "drug_related",
    "road_traffic": "road_traffic",
    "accident": "accidental",
    "natural": "natural",
}

#: People recorded against a report: role -> probability by category (suspects handled apart).
ROLE_PROBABILITY: dict[str, dict[str, float]] = {
    "next_of_kin": {
        "homicide": 0.9,
        "suicide": 0.9,
        "drug": 0.7,
        "road_traffic": 0.9,
        "accident": 0.85,
        "natural": 0.85,
    },
    "reporting_person": {
        "homicide": 0.5,
        "suicide": 0.6,
        "drug": 0.5,
        "road_traffic": 0.3,
        "accident": 0.6,
        "natural": 0.8,
    },
    "finder": {
        "homicide": 0.3,
        "suicide": 0.6,
        "drug": 0.6,
        "road_traffic": 0.0,
        "accident": 0.4,
        "natural": 0.35,
    },
    "last_seen_with": {
        "homicide": 0.3,
        "suicide": 0.2,
        "drug": 0.3,
        "road_traffic": 0.0,
        "accident": 0.1,
        "natural": 0.05,
    },
    "associate": {
        "homicide": 0.25,
        "suicide": 0.05,
        "drug": 0.3,
        "road_traffic": 0.0,
        "accident": 0.0,
        "natural": 0.0,
    },
    "witness": {
        "homicide": 0.8,
        "suicide": 0.15,
        "drug": 0.1,
        "road_traffic": 0.8,
        "accident": 0.1,
        "natural": 0.05,
    },
}
#: Share of finder and reporting person roles taken by people who find many bodies in their work
#: (hostel and care staff, security guards, landlords): decoys for "the same finder".
FREQUENT_FINDER_SHARE = 0.06
FREQUENT_FINDERS_PER_FORCE_YEAR = 20
NOMINAL_PRESENT = {
    "suspect": 0.8,
    "associate": 0.5,
    "last_seen_with": 0.3,
    "witness": 0.05,
    "finder": 0.08,
    "reporting_person": 0.05,
    "next_of_kin": 0.03,
}
DOB_PRESENT = {
    "suspect": 0.9,
    "associate": 0.7,
    "last_seen_with": 0.6,
    "witness": 0.4,
    "finder": 0.4,
    "reporting_person": 0.5,
    "next_of_kin": 0.6,
}


def assign_report_ids(police_deaths: pl.DataFrame) -> pl.DataFrame:
    """``report_id`` ``DR-YYYY-NNNNNN`` numbered in order of ``reported_at`` within each year."""
    ordered = police_deaths.sort(["reported_at", "death_id"])
    return ordered.with_columns(
        report_id=pl.format(
            "DR-{}-{}",
            pl.col("reported_at").dt.year(),
            (pl.int_range(pl.len()).over(pl.col("reported_at").dt.year()) + 1).cast(pl.String).str.zfill(6),
        )
    )


def reported_times(rng: np.random.Generator, deaths: pl.DataFrame) -> pl.Series:
    """When each death was reported: minutes to hours after it, days after for bodies found late."""
    n = deaths.height
    lag_min = np.where(
        deaths["date_unknown"].to_numpy(),
        rng.integers(1, 15, n) * 1440 + rng.integers(0, 1440, n),
        rng.integers(10, 240, n),
    )
    return deaths.select(
        (
            pl.col("date_of_death").cast(pl.Datetime("us"))
            + pl.duration(minutes=pl.col("minute_of_day"))
            + pl.duration(minutes=pl.Series(lag_min))
        ).alias("reported_at")
    ).to_series()


def _officers(rng: np.random.Generator, inst: Institutions, reports: pl.DataFrame) -> tuple[list, list, str]:
    """Attending officers (1-3 response officers of the incident's authority, Zipf so some attend many)
    and the officer in case (a major crime detective for homicides, else the first attending officer).

    One Birmingham response officer is the force's sudden-death specialist and attends a third of
    Birmingham's sudden deaths: a decoy for "shared officer".
    """
    officers = inst.officers
    response = officers.filter(pl.col("unit") == "response")
    by_la = {
        la: frame["collar"].to_numpy()
        for la, frame in response.partition_by("la_code", as_dict=True, include_key=True).items()
    }
    by_la = {k[0] if isinstance(k, tuple) else k: v for k, v in by_la.items()}
    detectives = officers.filter(pl.col("unit") == "major_crime")["collar"].to_numpy()
    specialist = by_la["E08000025"][0]
    n = reports.height
    la = reports["la_code"].to_numpy()
    count = rng.choice([1, 2, 3], size=n, p=[0.45, 0.4, 0.15])
    attending: list[list[str]] = []
    u = rng.random((n, 3))
    for i in range(n):
        pool = by_la[la[i]]
        w = zipf_weights(len(pool), 0.6)
        picks = list(dict.fromkeys(pool[np.searchsorted(np.cumsum(w) / w.sum(), u[i, : count[i]])].tolist()))
        attending.append(picks)
    cls = reports["classification"].to_numpy()
    sudden = (
        np.isin(cls, ["natural", "unexplained", "suspected_suicide"])
        & (la == "E08000025")
        & (rng.random(n) < 0.33)
    )
    for i in np.flatnonzero(sudden):
        if specialist not in attending[i]:
            attending[i] = [specialist] + attending[i][:2]
    forced = reports["attending_officers"].to_list()
    for i, extra in enumerate(forced):
        if extra:
            attending[i] = list(dict.fromkeys(list(extra) + attending[i]))[:4]
    serious = np.isin(reports["true_category"].to_numpy(), ["homicide"]) & np.isin(
        cls, ["homicide", "suspected_homicide", "suspicious"]
    )
    oic = [
        detectives[int(rng.integers(0, len(detectives)))] if serious[i] else attending[i][0] for i in range(n)
    ]
    return attending, oic, specialist


def build_police(
    rng: np.random.Generator,
    deaths: pl.DataFrame,
    persons: pl.DataFrame,
    planted_persons: pl.DataFrame,
    inst: Institutions,
    ids: PersonIds,
    noise: NoiseParams,
    nhs_pool: np.ndarray,
    force_years: float,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict]:
    """Build ``death_reports`` and ``death_report_persons`` rows (all versions).

    ``deaths`` must carry ``death_id``, ``person_id`` and the ``police`` flag; ``planted_persons``
    are series members' roles (``death_id``, ``role``, ``person_id``, recorded name overrides).
    Returns (death_reports, death_report_persons, new persons, decoy info).
    """
    police = deaths.filter(pl.col("police")).with_columns(reported_at=pl.lit(None, pl.Datetime("us")))
    police = police.with_columns(reported_at=reported_times(rng, police))
    police = assign_report_ids(police)
    n = police.height
    apparent = police.select(pl.coalesce("apparent_category", "true_category")).to_series().to_numpy()
    initial = np.empty(n, dtype=object)
    for cat, dist in INITIAL_CLASSIFICATION.items():
        idx = np.flatnonzero(apparent == cat)
        initial[idx] = np.asarray(list(dist), dtype=object)[
            rng.choice(len(dist), size=len(idx), p=list(dist.values()))
        ]
    final = np.array([FINAL_CLASSIFICATION[c] for c in apparent], dtype=object)
    police = police.with_columns(
        classification=pl.coalesce(
            pl.col("initial_classification"), pl.Series(initial.tolist(), dtype=pl.String)
        ),
        final_class=pl.coalesce(pl.col("final_classification"), pl.Series(final.tolist(), dtype=pl.String)),
    )
    attending, oic, specialist = _officers(rng, inst, police)
    police = police.with_columns(
        attending_list=pl.Series(attending, dtype=pl.List(pl.String)),
        officer_in_case=pl.coalesce(pl.col("officer_in_case"), pl.Series(oic, dtype=pl.String)),
    )

    # Identity as the police record it.
    ident = police.select("death_id", "person_id").join(
        persons, on="person_id", how="left", maintain_order="left"
    )
    ident = record_identity(ident, "death_reports", noise, rng, nhs_pool)
    unidentified = rng.random(n) < noise.unidentified_rate
    incident_district = police["district_idx"].to_numpy()
    jitter = rng.normal(0, 15, (n, 2))
    lat, lon = geo.offset_points(
        police["lat"].to_numpy(), police["lon"].to_numpy(), jitter[:, 0], jitter[:, 1]
    )
    method = police["method"].to_numpy().astype(object).copy()
    natural_like = np.isin(police["classification"].to_numpy(), ["natural", "unexplained", "other"])
    method[natural_like & (method == None) & (rng.random(n) < 0.3)] = "not_known"  # noqa: E711
    method[(rng.random(n) < 0.04)] = None
    substances = police["substances"].to_list()
    pending_tox = (
        (police["true_category"].to_numpy() == "drug")
        & (rng.random(n) < 0.1)
        & police["series_id"].is_null().to_numpy()
    )
    substances = [[] if p else s for s, p in zip(substances, pending_tox)]
    gang = police["gang"].to_numpy().astype(object)
    gang[(rng.random(n) < np.where(police["true_category"].to_numpy() == "homicide", 0.1, 0.35))] = None

    base = pl.DataFrame(
        {
            "report_id": police["report_id"],
            "reported_at": police["reported_at"],
            "date_of_death": police.select(
                pl.when(pl.col("date_unknown")).then(None).otherwise(pl.col("date_of_death"))
            ).to_series(),
            "classification": police["classification"],
            "investigation_status": pl.Series(["open"] * n, dtype=pl.String),
            "forename": ident["forename"],
            "surname": ident["surname"],
            "date_of_birth": ident["date_of_birth"],
            "sex": police["sex"],
            "ethnicity": ident["ethnicity"],
            "nhs_number": ident["nhs_number"],
            "home_postcode": ident["home_postcode"],
            "incident_postcode": pl.Series(
                np.where(rng.random(n) < 0.85, geo.postcodes(rng, incident_district), None).tolist(),
                dtype=pl.String,
            ),
            "incident_lat": np.round(lat, 6),
            "incident_lon": np.round(lon, 6),
            "location_type": police["location_type"],
            "method": pl.Series(method.tolist(), dtype=pl.String),
            "substances": pl.Series(substances, dtype=pl.List(pl.String)),
            "domestic_abuse_related": police["domestic"],
            "gang_related": pl.Series(gang.tolist(), dtype=pl.Boolean),
            "suspects_count": pl.Series([None] * n, dtype=pl.Int64),
            "officer_in_case": police["officer_in_case"],
            "attending_officers": police["attending_list"],
            "narrative": pl.Series([None] * n, dtype=pl.String),
        }
    )
    # Ethnicity: not stated or blank for some; "u" sex for a few unidentified bodies.
    eth = base["ethnicity"].to_numpy().astype(object)
    eth[rng.random(n) < 0.08] = "not_stated"
    eth[rng.random(n) < 0.05] = None
    base = base.with_columns(ethnicity=pl.Series(eth.tolist(), dtype=pl.String))
    truth = police.select(
        pl.lit("wmp").alias("_partner_id"),
        pl.col("person_id").alias("_person_id"),
        pl.col("death_id").alias("_death_id"),
        pl.lit("deceased").alias("_role"),
        pl.col("final_class"),
        pl.col("true_category"),
        pl.Series("apparent", apparent.tolist(), dtype=pl.String),
        pl.col("age"),
        pl.col("la_code"),
        pl.col("home_district_idx"),
        pl.col("district_idx"),
        pl.col("domestic"),
        pl.col("gang"),
        pl.col("sex").alias("_sex"),
    )

    report_persons, new_people = _report_persons(
        rng, police, persons, planted_persons, ids, noise, force_years
    )
    suspects = (
        report_persons.filter(pl.col("role") == "suspect")
        .group_by("report_id", maintain_order=True)
        .agg(pl.len().alias("_n"))
    )
    base = (
        base.join(suspects, on="report_id", how="left", maintain_order="left")
        .with_columns(
            suspects_count=pl.when(
                pl.col("classification").is_in(["homicide", "suspected_homicide", "suspicious"])
            )
            .then(pl.col("_n").fill_null(0).cast(pl.Int64))
            .when(pl.col("_n").is_not_null())
            .then(pl.col("_n").cast(pl.Int64))
            .otherwise(
                pl.when(pl.lit(pl.Series(rng.random(n) < 0.5))).then(pl.lit(0, pl.Int64)).otherwise(None)
            )
        )
        .drop("_n")
    )
    narrative_input = base.select(
        "classification", "location_type", "sex", "reported_at", "officer_in_case"
    ).with_columns(age=police["age"])
    base = base.with_columns(narrative=police_narratives(rng, narrative_input))

    versions = _report_versions(rng, base, truth, unidentified)
    decoys = {"specialist_officer": specialist}
    return versions, report_persons, new_people, decoys


def _report_versions(
    rng: np.random.Generator, base: pl.DataFrame, truth: pl.DataFrame, unidentified: np.ndarray
) -> pl.DataFrame:
    """Version 1 at report time; later versions as status and classification change."""
    n = base.height
    day = base["reported_at"].dt.date()
    cat = truth["apparent"].to_numpy()  # the investigation follows what the death looks like
    final = truth["final_class"].to_numpy()
    v1 = base.with_columns(truth.select(TRUTH_COLUMNS[3:] + ["_partner_id"])).with_columns(
        _available_on=day, _version=pl.lit(1)
    )
    # Unidentified bodies: recorded as unknown first, named in version 2.
    v1 = v1.with_columns(
        forename=pl.when(pl.Series(unidentified)).then(pl.lit("unknown")).otherwise("forename"),
        surname=pl.when(pl.Series(unidentified)).then(pl.lit("unknown")).otherwise("surname"),
        date_of_birth=pl.when(pl.Series(unidentified)).then(None).otherwise("date_of_birth"),
        nhs_number=pl.when(pl.Series(unidentified)).then(None).otherwise("nhs_number"),
        home_postcode=pl.when(pl.Series(unidentified)).then(None).otherwise("home_postcode"),
    )
    homicide = cat == "homicide"
    natural = np.isin(final, ["natural"])
    road = cat == "road_traffic"
    # Version 2: after a post mortem or charge decision.
    v2_status = np.where(
        homicide,
        np.where(rng.random(n) < 0.8, "charged", "open"),
        np.where(
            natural,
            "closed_nfa",
            np.where(
                road & (rng.random(n) < 0.3),
                "charged",
                np.where(rng.random(n) < 0.01, "transferred", "awaiting_inquest"),
            ),
        ),
    )
    v2_lag = np.where(
        homicide, rng.integers(5, 120, n), np.where(natural, rng.integers(1, 12, n), rng.integers(2, 20, n))
    )
    v3_status = np.where(
        homicide & (v2_status == "charged"),
        np.where(rng.random(n) < 0.75, "closed_convicted", "charged"),
        np.where(
            v2_status == "awaiting_inquest",
            "closed_nfa",
            np.where(v2_status == "charged", "closed_convicted", ""),
        ),
    )
    v3_lag = v2_lag + np.where(homicide, rng.integers(150, 500, n), rng.integers(60, 300, n))
    changed2 = (v2_status != "open") | (base["classification"].to_numpy() != final) | unidentified
    v2 = v1.filter(pl.Series(changed2)).with_columns(
        investigation_status=pl.Series(v2_status[changed2].tolist(), dtype=pl.String),
        classification=pl.Series(final[changed2].tolist(), dtype=pl.String),
        _available_on=(pl.col("_available_on") + pl.duration(days=pl.Series(v2_lag[changed2]))).cast(pl.Date),
        _version=pl.lit(2),
    )
    named = base.filter(pl.Series(changed2)).select(
        "forename", "surname", "date_of_birth", "nhs_number", "home_postcode"
    )
    v2 = v2.with_columns(named)
    has3 = changed2 & (v3_status != "")
    v3 = v2.filter(pl.Series(has3[changed2])).with_columns(
        investigation_status=pl.Series(v3_status[has3].tolist(), dtype=pl.String),
        _available_on=(
            pl.col("_available_on")
            - pl.duration(days=pl.Series(v2_lag[has3]))
            + pl.duration(days=pl.Series(v3_lag[has3]))
        ).cast(pl.Date),
        _version=pl.lit(3),
    )
    cols = FEEDS["death_reports"].column_names + TRUTH_COLUMNS
    return pl.concat([v.select(cols) for v in (v1, v2, v3)])


def _report_persons(
    rng: np.random.Generator,
    police: pl.DataFrame,
    persons: pl.DataFrame,
    planted: pl.DataFrame,
    ids: PersonIds,
    noise: NoiseParams,
    force_years: float,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People recorded against each report: relatives, finders, witnesses, suspects (new people,
    a pool of frequent finders, and the planted series' people)."""
    cat = police["true_category"].to_numpy()
    n = police.height
    rows_report, rows_role = [], []
    for role, probs in ROLE_PROBABILITY.items():
        p = np.array([probs[c] for c in cat])
        hit = rng.random(n) < p
        # Witnesses: sometimes several.
        reps = np.where(hit, np.where(role == "witness", rng.integers(1, 4, n), 1), 0)
        rows_report.append(np.repeat(np.arange(n), reps))
        rows_role.append(np.full(reps.sum(), role, dtype=object))
    # Suspects: homicides that are not planted (planted series bring their own), road deaths' drivers.
    planted_reports = set(planted["death_id"].to_list()) if planted.height else set()
    is_planted = police["death_id"].is_in(list(planted_reports)).to_numpy()
    suspects = np.where((cat == "homicide") & ~is_planted, rng.choice([0, 1, 1, 1, 1, 2, 2, 3], n), 0)
    suspects = np.where((cat == "road_traffic") & (rng.random(n) < 0.5), 1, suspects)
    rows_report.append(np.repeat(np.arange(n), suspects))
    rows_role.append(np.full(suspects.sum(), "suspect", dtype=object))
    report_idx = np.concatenate(rows_report)
    role = np.concatenate(rows_role)
    m = len(report_idx)

    # Who they are: relatives share the deceased's surname and often address; domestic suspects are
    # partners of the other sex; gang suspects young men from nearby; others anyone.
    d_age = police["age"].to_numpy()[report_idx]
    d_sex = police["sex"].to_numpy()[report_idx]
    d_home = police["home_district_idx"].to_numpy()[report_idx]
    d_dom = police["domestic"].to_numpy()[report_idx]
    d_gang = police["gang"].to_numpy()[report_idx]
    kin = role == "next_of_kin"
    partner = (role == "suspect") & d_dom
    young = (role == "suspect") & d_gang
    age = np.where(kin, np.clip(d_age + rng.normal(-10, 18, m), 18, 92), rng.integers(18, 70, m))
    age = np.where(partner, np.clip(d_age + rng.integers(-5, 8, m), 18, 90), age)
    age = np.where(young, rng.integers(15, 28, m), age).astype(np.int64)
    sex = np.where(rng.random(m) < 0.5, "m", "f").astype(object)
    sex = np.where(partner, np.where(d_sex == "f", "m", "f"), sex)
    sex = np.where((role == "suspect") & ~partner, np.where(rng.random(m) < 0.9, "m", "f"), sex).astype(
        object
    )
    home = np.where(kin & (rng.random(m) < 0.6) | partner, d_home, geo.sample_districts(rng, "residents", m))
    reported_day = police["reported_at"].dt.date().to_numpy()[report_idx]
    dob = reported_day.astype("datetime64[D]") - (age * 365.25 + rng.integers(0, 365, m)).astype(
        "timedelta64[D]"
    )
    new_people = new_persons(rng, ids, sex, dob, home.astype(np.int64), mover_share=noise.mover_share)
    deceased = persons.select("person_id", "birth_surname", "home_postcode")
    d_person = police["person_id"].to_numpy()[report_idx]
    dec = pl.DataFrame({"person_id": d_person}).join(
        deceased, on="person_id", how="left", maintain_order="left"
    )
    same_family = kin & (rng.random(m) < 0.7)
    new_people = new_people.with_columns(
        surname=pl.when(pl.Series(same_family)).then(dec["birth_surname"]).otherwise("surname"),
        birth_surname=pl.when(pl.Series(same_family)).then(dec["birth_surname"]).otherwise("birth_surname"),
        home_postcode=pl.when(pl.Series((kin & (home == d_home) & (rng.random(m) < 0.5)) | partner))
        .then(dec["home_postcode"])
        .otherwise("home_postcode"),
    )
    person_id = new_people["person_id"].to_numpy().astype(object)

    # Frequent finders: a small pool of professionals who find many bodies.
    pool_n = max(3, int(round(FREQUENT_FINDERS_PER_FORCE_YEAR * max(force_years, 0.2))))
    finders = new_people.head(0)
    frequent = np.isin(role, ["finder", "reporting_person"]) & (rng.random(m) < FREQUENT_FINDER_SHARE)
    if frequent.any():
        pool_rows = rng.choice(
            np.flatnonzero(~frequent), size=min(pool_n, int((~frequent).sum())), replace=False
        )
        finders = new_people[pool_rows.tolist()]
        pick = rng.choice(
            len(pool_rows),
            size=frequent.sum(),
            p=zipf_weights(len(pool_rows), 1.0) / zipf_weights(len(pool_rows), 1.0).sum(),
        )
        person_id[frequent] = finders["person_id"].to_numpy()[pick]
    keep_people = new_people.filter(
        pl.Series(~frequent) | pl.col("person_id").is_in(finders["person_id"].to_list())
    )

    rows = pl.DataFrame(
        {
            "death_id": police["death_id"].to_numpy()[report_idx].tolist(),
            "report_id": police["report_id"].to_numpy()[report_idx].tolist(),
            "role": role.tolist(),
            "person_id": person_id.tolist(),
            "recorded_forename": [None] * m,
            "recorded_surname": [None] * m,
            "with_nominal": (rng.random(m) < np.array([NOMINAL_PRESENT[r] for r in role])).tolist(),
            "with_dob": (rng.random(m) < np.array([DOB_PRESENT[r] for r in role])).tolist(),
        },
        schema_overrides={"recorded_forename": pl.String, "recorded_surname": pl.String},
    )
    if planted.height:
        planted_rows = planted.join(
            police.select("death_id", "report_id"), on="death_id", how="inner", maintain_order="left"
        ).select(rows.columns)
        rows = pl.concat([rows, planted_rows.cast(rows.schema)])
    # Person sequence within each report: roles in a natural order; some people added days later.
    order = {
        "reporting_person": 0,
        "finder": 1,
        "next_of_kin": 2,
        "witness": 3,
        "last_seen_with": 4,
        "associate": 5,
        "suspect": 6,
    }
    rows = rows.with_columns(
        _order=pl.col("role").replace_strict(order, return_dtype=pl.Int64),
        _r=pl.Series(rng.random(rows.height)),
    )
    rows = rows.sort(["report_id", "_order", "_r"]).with_columns(
        person_seq=(pl.int_range(pl.len()).over("report_id") + 1).cast(pl.Int64)
    )
    all_people = pl.concat([persons, keep_people], how="diagonal_relaxed")
    nominals = _nominal_ids(all_people)
    ident = rows.join(
        all_people.join(nominals, on="person_id", how="left", maintain_order="left"),
        on="person_id",
        how="left",
        maintain_order="left",
    )
    ident = ident.with_columns(
        date_of_birth=pl.when(pl.col("with_dob")).then("date_of_birth").otherwise(None)
    )
    recorded = record_identity(ident, "death_report_persons", noise, rng, np.array([], dtype=object))
    phone = _phone_formats(rng, recorded["phone"], present=0.5)
    lag = np.where(recorded["role"].to_numpy() == "suspect", rng.integers(0, 45, recorded.height), 0)
    lag = np.where(rng.random(recorded.height) < 0.1, rng.integers(1, 10, recorded.height), lag)
    report_day = recorded.join(
        police.select("report_id", pl.col("reported_at").dt.date().alias("_day")),
        on="report_id",
        how="left",
        maintain_order="left",
    )["_day"]
    out = recorded.with_columns(
        nominal_id=pl.when(pl.col("with_nominal")).then(pl.col("nominal_id")).otherwise(None),
        postcode=pl.when(pl.Series(rng.random(recorded.height) < 0.7))
        .then(pl.col("home_postcode"))
        .otherwise(None),
        phone=phone,
        _partner_id=pl.lit("wmp"),
        _available_on=(report_day + pl.duration(days=pl.Series(lag))).cast(pl.Date),
        _version=pl.lit(1),
        _person_id=pl.col("person_id"),
        _death_id=pl.col("death_id"),
        _role=pl.col("role"),
    )
    cols = FEEDS["death_report_persons"].column_names + TRUTH_COLUMNS
    people_out = keep_people.join(nominals, on="person_id", how="left", maintain_order="left")
    return out.select(cols), people_out


def _nominal_ids(people: pl.DataFrame) -> pl.DataFrame:
    """A stable police nominal reference per person (``WM`` + 8 digits derived from the person id)."""
    return people.select(
        "person_id",
        nominal_id=pl.format(
            "WM{}",
            (pl.col("person_id").str.slice(1).cast(pl.Int64) * 7919 % 99_999_989 + 10)
            .cast(pl.String)
            .str.zfill(8),
        ),
    )


def _phone_formats(rng: np.random.Generator, phone: pl.Series, present: float) -> pl.Series:
    """Phone numbers as people write them: spaced, unspaced, +44, brackets; many blank."""
    n = len(phone)
    style = rng.integers(0, 4, n)
    frame = pl.DataFrame({"p": phone, "s": style, "keep": rng.random(n) < present})
    digits = pl.col("p").str.replace_all(" ", "")
    expr = (
        pl.when(~pl.col("keep"))
        .then(None)
        .when(pl.col("s") == 0)
        .then(pl.col("p"))
        .when(pl.col("s") == 1)
        .then(digits)
        .when(pl.col("s") == 2)
        .then(pl.lit("+44 ") + digits.str.slice(1))
        .otherwise(
            pl.when(digits.str.starts_with("0121"))
            .then(pl.lit("(0121) ") + digits.str.slice(4))
            .otherwise(digits.str.slice(0, 5) + pl.lit("-") + digits.str.slice(5))
        )
    )
    return frame.select(expr.alias("phone")).to_series()
