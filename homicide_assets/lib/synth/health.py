"""The NHS feeds: ``me_deaths`` (medical examiner offices) and ``ed_assaults`` (ISTV, anonymous)."""

from __future__ import annotations

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.synth import geo, stats
from homicide_assets.lib.synth.config import PERIOD_END, NoiseParams, Scale
from homicide_assets.lib.synth.institutions import TRUSTS_BY_LA
from homicide_assets.lib.synth.noise import record_identity
from homicide_assets.lib.synth.police import TRUTH_COLUMNS
from homicide_assets.lib.synth.rand import (
    age_from_bands,
    choice_from_dict,
    dates_in_period,
    minutes_of_day,
    poisson_count,
)
from homicide_assets.lib.synth.text import CAUSES, SUDDEN_CAUSES, ed_location_texts

#: Medical examiner ``place_of_death_type`` for the deaths' place (hospital, home, care_home, hospice,
#: public_place, other are the contract's values already).
HOSPICE_CODES = ("HSP01", "HSP02", "HSP03", "HSP04", "HSP05", "HSP06")


def trust_for_deaths(rng: np.random.Generator, deaths: pl.DataFrame) -> np.ndarray:
    """The trust (partner id) whose medical examiner office scrutinises each death."""
    sites = geo.hospital_sites()
    site_trust = dict(zip(sites["site_code"], sites["partner_id"]))
    d = geo.districts()
    home_la = d["la_code"].to_numpy()[deaths["home_district_idx"].to_numpy()]
    out = np.empty(deaths.height, dtype=object)
    for la, trusts in TRUSTS_BY_LA.items():
        idx = np.flatnonzero(home_la == la)
        out[idx] = np.asarray(list(trusts), dtype=object)[
            rng.choice(len(trusts), size=len(idx), p=list(trusts.values()))
        ]
    site = deaths["hospital_site"].to_numpy()
    has = site != None  # noqa: E711
    out[has] = [site_trust[s] for s in site[has]]
    return out


def _causes(rng: np.random.Generator, apparent: np.ndarray) -> tuple[list, list, list, list]:
    n = len(apparent)
    c1a, c1b, c2, icd = [None] * n, [None] * n, [None] * n, [None] * n
    for cat, options in CAUSES.items():
        idx = np.flatnonzero(apparent == cat)
        if len(idx) == 0:
            continue
        w = np.array([o[4] for o in options])
        picks = rng.choice(len(options), size=len(idx), p=w / w.sum())
        for i, k in zip(idx, picks):
            a, b, c, code, _ = options[k]
            c1a[i], c1b[i], c2[i], icd[i] = a, b or None, c or None, code
    return c1a, c1b, c2, icd


def _certified(certified_as: pl.Series) -> tuple[list[int], list[int]]:
    values = certified_as.to_list()
    rows = [i for i, v in enumerate(values) if v is not None]
    return rows, [int(values[i]) for i in rows]


def build_me_deaths(
    rng: np.random.Generator,
    deaths: pl.DataFrame,
    persons: pl.DataFrame,
    registry: Registry,
    noise: NoiseParams,
    nhs_pool: np.ndarray,
) -> pl.DataFrame:
    """Medical examiner records for deaths the ME offices scrutinise (one version each)."""
    me = deaths.filter(pl.col("me"))
    n = me.height
    trust = trust_for_deaths(rng, me)
    org = {p: registry.partner(p).org_code for p in set(trust.tolist())}
    apparent = me.select(pl.coalesce("apparent_category", "true_category")).to_series().to_numpy()
    unnatural = apparent != "natural"
    referred = unnatural | (rng.random(n) < np.where(me["police"].to_numpy(), 0.5, 0.06))
    c1a, c1b, c2, icd = _causes(rng, apparent)
    if "certified_as" in me.columns:  # planted institution series: the certifier's own wording
        for i, k in zip(*_certified(me["certified_as"])):
            a, b, c, code = SUDDEN_CAUSES[k]
            c1a[i], c1b[i], c2[i], icd[i] = a, b or None, c or None, code
    pending = unnatural & (rng.random(n) < 0.5)
    for i in np.flatnonzero(pending):
        c1a[i] = c1b[i] = c2[i] = icd[i] = None
    place = me["place_of_death_type"].to_numpy().astype(object)
    org_code = np.where(
        place == "hospital",
        me["hospital_site"].to_numpy(),
        np.where(
            place == "care_home",
            me["care_home_code"].to_numpy(),
            np.where(
                place == "hospice",
                np.asarray(HOSPICE_CODES, dtype=object)[rng.integers(0, len(HOSPICE_CODES), n)],
                None,
            ),
        ),
    )
    ident = me.select("death_id", "person_id").join(
        persons, on="person_id", how="left", maintain_order="left"
    )
    ident = record_identity(ident, "me_deaths", noise, rng, nhs_pool, dob_required=True)
    available = me.select(
        (pl.col("date_of_death") + pl.duration(days=pl.Series(rng.integers(2, 11, n)))).cast(pl.Date)
    )
    available = available.to_series()
    frame = pl.DataFrame(
        {
            "trust": trust.tolist(),
            "trust_code": [org[t] for t in trust],
            "nhs_number": ident["nhs_number"],
            "forename": ident["forename"],
            "surname": ident["surname"],
            "date_of_birth": ident["date_of_birth"],
            "sex": me["sex"],
            "home_postcode": ident["home_postcode"],
            "date_of_death": me["date_of_death"],
            "place_of_death_type": pl.Series(place.tolist(), dtype=pl.String),
            "place_of_death_org": pl.Series(org_code.tolist(), dtype=pl.String),
            "cause_1a": pl.Series(c1a, dtype=pl.String),
            "cause_1b": pl.Series(c1b, dtype=pl.String),
            "cause_2": pl.Series(c2, dtype=pl.String),
            "icd10_underlying": pl.Series(icd, dtype=pl.String),
            "attending_clinician_ref": me["clinician_ref"],
            "referred_to_coroner": referred,
            "me_concern": rng.random(n) < 0.03,
            "_partner_id": trust.tolist(),
            "_available_on": available,
            "_version": 1,
            "_person_id": me["person_id"],
            "_death_id": me["death_id"],
            "_role": "deceased",
        }
    )
    # Case ids numbered per trust in date order: ME-<trust code>-<yy>-<nnnnn>.
    frame = frame.sort(["trust", "date_of_death", "_death_id"]).with_columns(
        me_case_id=pl.format(
            "ME-{}-{}-{}",
            pl.col("trust_code"),
            (pl.col("date_of_death").dt.year() % 100).cast(pl.String).str.zfill(2),
            (pl.int_range(pl.len()).over("trust", pl.col("date_of_death").dt.year()) + 1)
            .cast(pl.String)
            .str.zfill(5),
        )
    )
    return frame.select(FEEDS["me_deaths"].column_names + TRUTH_COLUMNS)


def build_ed_assaults(
    rng: np.random.Generator, scale: Scale, deaths: pl.DataFrame, registry: Registry
) -> pl.DataFrame:
    """Anonymous ED assault attendances: the background, plus homicide victims who died in ED."""
    population = geo.districts()["la_population"].unique().sum()
    n = poisson_count(rng, stats.ED_ASSAULT_RATE * population / 1e5 * scale.force_years)
    day = dates_in_period(
        rng, scale.period_start, PERIOD_END, n, stats.MONTH_VIOLENCE, stats.WEEKDAY_VIOLENCE
    )
    assault_min = minutes_of_day(rng, stats.HOUR_VIOLENCE, n)
    district = geo.sample_districts(rng, "violence", n)
    la = geo.districts()["la_code"].to_numpy()[district]
    age = age_from_bands(rng, stats.ED_AGE_BANDS, n)
    sex = np.where(rng.random(n) < stats.ED_MALE_SHARE, "m", "f").astype(object)
    location = choice_from_dict(rng, stats.ED_LOCATION, n)
    relationship = choice_from_dict(rng, stats.ED_RELATIONSHIP, n)
    relationship = np.where(
        (location == "dwelling") & (rng.random(n) < 0.5),
        np.where(rng.random(n) < 0.6, "partner_ex_partner", "family"),
        relationship,
    )
    background = pl.DataFrame(
        {
            "district_idx": district,
            "la_code": la.tolist(),
            "day": day,
            "assault_min": assault_min,
            "age": age,
            "sex": sex.tolist(),
            "location": location.tolist(),
            "weapon": choice_from_dict(rng, stats.ED_WEAPON, n).tolist(),
            "relationship": relationship.tolist(),
            "disposal": choice_from_dict(rng, stats.ED_DISPOSAL, n).tolist(),
            "_person_id": pl.Series([None] * n, dtype=pl.String),
            "_death_id": pl.Series([None] * n, dtype=pl.String),
        },
        schema_overrides={"day": pl.Date},
    )
    background = background.with_columns(
        disposal=pl.when(pl.col("disposal") == "died").then(pl.lit("admitted")).otherwise("disposal")
    )
    died = deaths.filter(pl.col("ed_died"))
    weapon_of = {
        "sharp_instrument": "knife",
        "shooting": "firearm",
        "blunt_instrument": "blunt_object",
        "hitting_kicking": "body_part",
    }
    fatal = died.select(
        "district_idx",
        "la_code",
        pl.col("date_of_death").alias("day"),
        pl.col("minute_of_day").alias("assault_min"),
        "age",
        "sex",
        pl.col("location_type").alias("location"),
        pl.col("method").replace_strict(weapon_of, default="other").alias("weapon"),
        pl.lit("not_known").alias("relationship"),
        pl.lit("died").alias("disposal"),
        pl.col("person_id").alias("_person_id"),
        pl.col("death_id").alias("_death_id"),
    ).with_columns(pl.col("assault_min").cast(pl.Int64), pl.col("age").cast(pl.Int64))
    ed = pl.concat([background, fatal.cast(background.schema)])
    m = ed.height
    trusts = np.empty(m, dtype=object)
    la_all = ed["la_code"].to_numpy()
    for code, options in TRUSTS_BY_LA.items():
        idx = np.flatnonzero(la_all == code)
        trusts[idx] = np.asarray(list(options), dtype=object)[
            rng.choice(len(options), size=len(idx), p=list(options.values()))
        ]
    org = {p: registry.partner(p).org_code for p in set(trusts.tolist())}
    arrival_delay = rng.integers(15, 240, m)
    sex_recorded = ed["sex"].to_numpy().astype(object)
    sex_recorded[rng.random(m) < 0.03] = None
    sex_recorded[rng.random(m) < 0.01] = "u"
    postcode = np.where(rng.random(m) < 0.4, geo.postcodes(rng, ed["district_idx"].to_numpy()), None)
    out = (
        ed.with_columns(
            assault_ts=pl.col("day").cast(pl.Datetime("us")) + pl.duration(minutes=pl.col("assault_min")),
        )
        .with_columns(
            arrived_at=pl.col("assault_ts") + pl.duration(minutes=pl.Series(arrival_delay)),
            trust=pl.Series(trusts.tolist(), dtype=pl.String),
        )
        .with_columns(
            trust_code=pl.col("trust").replace_strict(org, return_dtype=pl.String),
            patient_age=pl.col("age").cast(pl.Int64),
            patient_sex=pl.Series(sex_recorded.tolist(), dtype=pl.String),
            assault_at=pl.when(pl.Series(rng.random(m) < 0.12)).then(None).otherwise(pl.col("assault_ts")),
            assault_location_type=pl.when(pl.Series(rng.random(m) < 0.06))
            .then(None)
            .otherwise(pl.col("location")),
            assault_location_text=pl.when(pl.Series(rng.random(m) < 0.25))
            .then(None)
            .otherwise(ed_location_texts(rng, m)),
            assault_postcode=pl.Series(postcode.tolist(), dtype=pl.String),
            assailant_relationship=pl.col("relationship"),
            _partner_id=pl.col("trust"),
            _available_on=(
                pl.col("assault_ts").dt.date() + pl.duration(days=pl.Series(rng.integers(1, 8, m)))
            ).cast(pl.Date),
            _version=pl.lit(1),
            _role=pl.when(pl.col("_death_id").is_not_null()).then(pl.lit("deceased")).otherwise(None),
        )
    )
    out = out.filter(pl.col("arrived_at").dt.date() <= PERIOD_END)
    out = out.sort(["trust", "arrived_at", "assault_min"]).with_columns(
        attendance_id=pl.format(
            "{}-ED-{}{}",
            pl.col("trust_code"),
            (pl.col("arrived_at").dt.year() % 100).cast(pl.String).str.zfill(2),
            (pl.int_range(pl.len()).over("trust", pl.col("arrived_at").dt.year()) + 1)
            .cast(pl.String)
            .str.zfill(6),
        )
    )
    return out.select(FEEDS["ed_assaults"].column_names + TRUTH_COLUMNS)
