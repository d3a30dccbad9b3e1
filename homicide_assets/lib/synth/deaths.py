"""The real deaths behind every feed: background deaths by true category, vectorised.

One row per death with everything the feeds later render: who (sex, age, home), when, where
(incident point, place of death, hospital site or care home), how (method, substances), and
which partners come to know of it (police, medical examiner, coroner). Planted series and
decoys (:mod:`homicide_assets.lib.synth.series`) add rows of the same shape.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from homicide_assets.lib.synth import geo, stats
from homicide_assets.lib.synth.config import PERIOD_END, Scale
from homicide_assets.lib.synth.institutions import TRUSTS_BY_LA, Institutions
from homicide_assets.lib.synth.rand import (
    age_from_bands,
    choice_from_dict,
    dates_in_period,
    minutes_of_day,
    poisson_count,
)

CATEGORIES = ("homicide", "suicide", "drug", "road_traffic", "accident", "natural")
#: Which district weighting (geo.district_weights) places each category.
PLACE_KIND = {
    "homicide": "violence",
    "suicide": "suicide",
    "drug": "drug",
    "road_traffic": "road",
    "accident": "natural",
    "natural": "natural",
}

#: Where (police ``location_type``) unnatural deaths happen. Homicides: ~45% in a dwelling,
#: most of the rest in the street or open space [ONS-HOM, location tables]; domestic homicides
#: nearly all at home.
LOCATION_TYPE: dict[str, dict[str, float]] = {
    "homicide": {
        "dwelling": 0.42,
        "street": 0.36,
        "public_open_space": 0.08,
        "licensed_premises": 0.05,
        "retail": 0.02,
        "transport": 0.02,
        "other": 0.05,
    },
    "homicide_domestic": {"dwelling": 0.88, "street": 0.06, "public_open_space": 0.03, "other": 0.03},
    "suicide": {
        "dwelling": 0.60,
        "public_open_space": 0.12,
        "transport": 0.07,
        "waterway": 0.05,
        "other": 0.16,
    },
    "drug": {
        "dwelling": 0.74,
        "public_open_space": 0.07,
        "street": 0.06,
        "other": 0.11,
        "licensed_premises": 0.01,
        "custody": 0.01,
    },
    "road_traffic": {"street": 0.96, "other": 0.04},
    "accident": {
        "dwelling": 0.55,
        "care_home": 0.10,
        "street": 0.06,
        "waterway": 0.04,
        "public_open_space": 0.05,
        "other": 0.20,
    },
}
#: Unnatural deaths where the person dies in hospital rather than at the scene.
DIES_IN_HOSPITAL: dict[str, float] = {
    "homicide": 0.30,
    "suicide": 0.10,
    "drug": 0.10,
    "road_traffic": 0.35,
    "accident": 0.45,
}
NATURAL_LOCATION = {
    "home": "dwelling",
    "care_home": "care_home",
    "hospital": "hospital",
    "hospice": "other",
    "other": "public_open_space",
}

DEATH_SCHEMA: dict[str, pl.DataType] = {
    "true_category": pl.String,
    "sex": pl.String,
    "age": pl.Int64,
    "date_of_death": pl.Date,
    "minute_of_day": pl.Int64,
    "home_district_idx": pl.Int64,
    "district_idx": pl.Int64,
    "la_code": pl.String,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "place_of_death_type": pl.String,
    "location_type": pl.String,
    "hospital_site": pl.String,
    "care_home_code": pl.String,
    "clinician_ref": pl.String,
    #: planted institution series only: the certificate wording the certifier used (an index
    #: into text.SUDDEN_CAUSES); null elsewhere (causes are drawn by health._causes)
    "certified_as": pl.Int64,
    "method": pl.String,
    "substances": pl.List(pl.String),
    "domestic": pl.Boolean,
    "gang": pl.Boolean,
    "police": pl.Boolean,
    "me": pl.Boolean,
    "inquest": pl.Boolean,
    "ed_died": pl.Boolean,
    "date_unknown": pl.Boolean,
    # Overrides used by planted series and decoys (null = derive from the category).
    #: what the death looks like to professionals when it hides its true category (a poisoning
    #: passed off as an overdose looks ``drug``; a care home killing looks ``natural``)
    "apparent_category": pl.String,
    "initial_classification": pl.String,
    "final_classification": pl.String,
    "officer_in_case": pl.String,
    "attending_officers": pl.List(pl.String),
    "series_id": pl.String,
    "control_id": pl.String,
    "person_id": pl.String,
    #: reference a planted row is known by until death ids are assigned (``<series_id>#<n>``)
    "plant_ref": pl.String,
}


def empty_deaths() -> pl.DataFrame:
    return pl.DataFrame(schema=DEATH_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every death column (missing ones null) in schema order and types."""
    cols = []
    for name, dtype in DEATH_SCHEMA.items():
        cols.append(pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name))
    return frame.select(cols)


def substances_column(
    rng: np.random.Generator, probabilities: dict[str, float], n: int, at_least_one: bool
) -> pl.Series:
    """A ``list[str]`` series: each substance included independently with its probability."""
    names = list(probabilities)
    hits = rng.random((n, len(names))) < np.asarray(list(probabilities.values()))
    if at_least_one:
        none = ~hits.any(axis=1)
        hits[none, names.index("other") if "other" in names else 0] = True
    frame = pl.DataFrame({name: hits[:, i] for i, name in enumerate(names)})
    return frame.select(
        pl.concat_list([pl.when(pl.col(name)).then(pl.lit(name)) for name in names])
        .list.drop_nulls()
        .alias("substances")
    ).to_series()


def pick_hospital_sites(rng: np.random.Generator, la_codes: np.ndarray) -> np.ndarray:
    """A hospital site for each death of a resident of ``la_codes`` (their trust's sites, by size)."""
    sites = geo.hospital_sites()
    out = np.empty(len(la_codes), dtype=object)
    for la, trusts in TRUSTS_BY_LA.items():
        idx = np.flatnonzero(la_codes == la)
        if len(idx) == 0:
            continue
        cand = sites.filter(pl.col("partner_id").is_in(list(trusts)))
        w = cand["relative_deaths"].to_numpy() * np.array([trusts[p] for p in cand["partner_id"].to_list()])
        out[idx] = cand["site_code"].to_numpy()[rng.choice(cand.height, size=len(idx), p=w / w.sum())]
    return out


def birth_dates(rng: np.random.Generator, death_dates: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """Dates of birth consistent with ``ages`` (completed years) at ``death_dates``."""
    days_back = (ages * 365.25 + rng.integers(1, 365, len(ages))).astype("timedelta64[D]")
    return death_dates - days_back


def _category_frame(rng: np.random.Generator, category: str, n: int, scale: Scale) -> pl.DataFrame:
    """Who, when and where for ``n`` background deaths of one category (no institutions yet)."""
    if category == "homicide":
        domestic = rng.random(n) < stats.DOMESTIC_HOMICIDE_SHARE
        male_share_other = (
            stats.MALE_SHARE["homicide"]
            - stats.DOMESTIC_HOMICIDE_SHARE * (1 - stats.DOMESTIC_VICTIM_FEMALE_SHARE)
        ) / (1 - stats.DOMESTIC_HOMICIDE_SHARE)
        male = np.where(
            domestic, rng.random(n) > stats.DOMESTIC_VICTIM_FEMALE_SHARE, rng.random(n) < male_share_other
        )
    else:
        domestic = rng.random(n) < (0.04 if category == "suicide" else 0.0)
        male = rng.random(n) < stats.MALE_SHARE[category]
    age = age_from_bands(rng, stats.AGE_BANDS[category], n)
    if category == "homicide":
        age = np.where(domestic & (age < 18), age + 20, age)
    month_w = {"homicide": stats.MONTH_VIOLENCE, "suicide": stats.MONTH_SUICIDE}.get(
        category, stats.MONTH_NATURAL
    )
    if category in ("drug", "road_traffic"):
        month_w = None
    weekday_w = {"homicide": stats.WEEKDAY_VIOLENCE, "suicide": stats.WEEKDAY_SUICIDE}.get(category)
    day = dates_in_period(rng, scale.period_start, PERIOD_END, n, month_w, weekday_w)
    minute = minutes_of_day(rng, stats.HOUR_VIOLENCE if category == "homicide" else stats.HOUR_FOUND, n)
    home = geo.sample_districts(rng, PLACE_KIND[category], n)

    if category == "natural":
        place = choice_from_dict(rng, stats.PLACE_OF_DEATH, n)
        location = np.vectorize(NATURAL_LOCATION.get, otypes=[object])(place)
    else:
        if category == "homicide":
            location = np.where(
                domestic,
                choice_from_dict(rng, LOCATION_TYPE["homicide_domestic"], n),
                choice_from_dict(rng, LOCATION_TYPE["homicide"], n),
            )
        else:
            location = choice_from_dict(rng, LOCATION_TYPE[category], n)
        in_hospital = rng.random(n) < DIES_IN_HOSPITAL[category]
        place = np.where(
            in_hospital,
            "hospital",
            np.where(
                location == "dwelling", "home", np.where(location == "care_home", "care_home", "public_place")
            ),
        ).astype(object)
    # Incident district: at home for dwellings; elsewhere, half near home, half where such events cluster.
    away = geo.sample_districts(rng, PLACE_KIND[category], n)
    at_home = np.isin(location, ["dwelling", "care_home"]) | (rng.random(n) < 0.5)
    district = np.where(at_home, home, away)

    if category == "homicide":
        method = choice_from_dict(rng, stats.HOMICIDE_METHOD, n)
        method = np.where(domestic & (method == "shooting"), "strangulation_asphyxiation", method)
    elif category == "suicide":
        method = choice_from_dict(rng, stats.SUICIDE_METHOD, n)
        method = np.where(location == "transport", "other", method)
        method = np.where(location == "waterway", "drowning", method)
    elif category == "drug":
        method = np.full(n, "poisoning_drugs", dtype=object)
    elif category == "road_traffic":
        method = np.full(n, "motor_vehicle", dtype=object)
    elif category == "accident":
        method = choice_from_dict(rng, stats.ACCIDENT_METHOD, n)
        method = np.where(location == "waterway", "drowning", method)
    else:
        method = np.full(n, None, dtype=object)

    if category == "drug":
        substances = substances_column(rng, stats.DRUG_SUBSTANCES, n, at_least_one=True)
    elif category == "suicide":
        poisoned = method == "poisoning_drugs"
        # Self-poisoning: prescribed medicines ("other"), often with alcohol; otherwise alcohol in ~25%.
        with_medicines = substances_column(
            rng, {"other": 0.9, "alcohol": 0.3, "benzodiazepine": 0.1}, n, True
        )
        alcohol_only = substances_column(rng, {"alcohol": 0.25}, n, False)
        substances = pl.select(
            pl.when(pl.Series(poisoned)).then(with_medicines).otherwise(alcohol_only).alias("substances")
        ).to_series()
    elif category == "homicide":
        substances = substances_column(rng, {"alcohol": 0.3, "cocaine": 0.1, "other": 0.03}, n, False)
    elif category == "accident":
        substances = substances_column(rng, {"alcohol": 0.15}, n, False)
    else:
        substances = substances_column(rng, {"alcohol": 0.03}, n, False)

    young_male_street = (
        male
        & (age >= 14)
        & (age <= 30)
        & ~domestic
        & np.isin(method, ["sharp_instrument", "shooting", "hitting_kicking"])
    )
    gang = (category == "homicide") & young_male_street & (rng.random(n) < 0.5)
    return pl.DataFrame(
        {
            "true_category": np.full(n, category, dtype=object).tolist(),
            "sex": np.where(male, "m", "f").tolist(),
            "age": age,
            "date_of_death": day,
            "minute_of_day": minute,
            "home_district_idx": home,
            "district_idx": district,
            "place_of_death_type": place.tolist(),
            "location_type": location.tolist(),
            "method": method.tolist(),
            "domestic": domestic,
            "gang": np.asarray(gang, dtype=bool),
        },
        schema_overrides={"date_of_death": pl.Date},
    ).with_columns(substances)


def background_deaths(seed_rng: np.random.Generator, scale: Scale, inst: Institutions) -> pl.DataFrame:
    """All background deaths of the period, by category, with places, institutions and flags.

    Expected counts are the category rates (per 100,000 a year, :mod:`stats`) times the force
    population times ``scale.force_years``; counts are Poisson around them.
    """
    rng = seed_rng
    population = geo.districts()["la_population"].unique().sum()
    per_100k_years = population / 1e5 * scale.force_years
    frames = []
    natural_rate = stats.ALL_CAUSE_RATE - sum(stats.CATEGORY_RATE.values())
    for category in CATEGORIES:
        rate = natural_rate if category == "natural" else stats.CATEGORY_RATE[category]
        n = poisson_count(rng, rate * per_100k_years)
        if n:
            frames.append(_category_frame(rng, category, n, scale))
    deaths = pl.concat(frames)
    return place_and_flag(rng, deaths, inst)


def place_and_flag(
    rng: np.random.Generator, deaths: pl.DataFrame, inst: Institutions, keep_points: bool = False
) -> pl.DataFrame:
    """Add incident points, hospital sites, care homes, clinicians and which partners know of each death.

    With ``keep_points`` rows that already have ``lat``/``lon`` (planted series) keep them.
    """
    n = deaths.height
    d = geo.districts()
    home_la = d["la_code"].to_numpy()[deaths["home_district_idx"].to_numpy()].astype(object)
    place = deaths["place_of_death_type"].to_numpy().astype(object)
    location = deaths["location_type"].to_numpy().astype(object)
    category = deaths["true_category"].to_numpy().astype(object)
    district = deaths["district_idx"].to_numpy().copy()

    lat, lon = geo.points_in_districts(rng, district, spread_factor=1.0)
    # Hospital sites for deaths in hospital; natural hospital deaths happen at the site itself.
    site = np.where(place == "hospital", pick_hospital_sites(rng, home_la), None).astype(object)
    sites = geo.hospital_sites()
    site_lat = dict(zip(sites["site_code"], sites["lat"]))
    site_lon = dict(zip(sites["site_code"], sites["lon"]))
    site_district = dict(zip(sites["site_code"], sites["district"]))
    district_of_name = dict(zip(d["district"], d["district_idx"]))
    at_site = (location == "hospital") & (site != None)  # noqa: E711
    for code in np.unique(site[at_site].astype(str)):
        m = at_site & (site == code)
        jitter = rng.normal(0, 25, (m.sum(), 2))
        lat[m], lon[m] = geo.offset_points(
            np.full(m.sum(), site_lat[code]), np.full(m.sum(), site_lon[code]), jitter[:, 0], jitter[:, 1]
        )
        district[m] = district_of_name[site_district[code]]

    # Care homes in the resident's authority, bigger homes more often.
    homes = inst.care_homes
    care_home = np.full(n, None, dtype=object)
    is_home = (place == "care_home") | (location == "care_home")
    for la in np.unique(home_la[is_home].astype(str)):
        m = np.flatnonzero(is_home & (home_la == la))
        cand = homes.filter(pl.col("la_code") == la)
        if cand.height == 0:
            cand = homes
        w = cand["size_weight"].to_numpy()
        pick = rng.choice(cand.height, size=len(m), p=w / w.sum())
        care_home[m] = cand["care_home_code"].to_numpy()[pick]
        lat[m] = cand["lat"].to_numpy()[pick]
        lon[m] = cand["lon"].to_numpy()[pick]
        district[m] = cand["district_idx"].to_numpy()[pick]

    if keep_points and "lat" in deaths.columns:
        given = deaths["lat"].is_not_null().to_numpy()
        lat[given] = deaths["lat"].to_numpy()[given]
        lon[given] = deaths["lon"].to_numpy()[given]
        district[given] = deaths["district_idx"].to_numpy()[given]
        if "care_home_code" in deaths.columns:
            ch = deaths["care_home_code"].to_numpy()
            has = given & (ch != None)  # noqa: E711
            care_home[has] = ch[has]

    clinician = assign_clinicians(rng, inst, place, site, care_home, deaths["home_district_idx"].to_numpy())

    police_share = np.array([stats.POLICE_REPORT_SHARE.get(c, 0.0) for c in category])
    natural = category == "natural"
    police_share[natural] = np.vectorize(lambda p: stats.POLICE_NATURAL_SHARE_BY_PLACE.get(p, 0.0))(
        place[natural]
    )
    # Sudden deaths of younger people are far more often reported to the police.
    police_share[natural] *= np.where(deaths["age"].to_numpy()[natural] < 65, 2.0, 1.0)
    police = rng.random(n) < np.clip(police_share, 0, 1)
    me_share = np.array([stats.ME_SHARE[c] for c in category])
    me_share = np.where(place == "hospital", np.maximum(me_share, 0.6), me_share)
    me = rng.random(n) < me_share
    inquest_share = np.array([stats.INQUEST_SHARE[c] for c in category])
    inquest_share = np.where(natural & police, 0.10, inquest_share)
    inquest = rng.random(n) < inquest_share
    ed_died = (
        (category == "homicide")
        & (place == "hospital")
        & np.isin(
            deaths["method"].to_numpy().astype(object),
            ["sharp_instrument", "hitting_kicking", "shooting", "blunt_instrument"],
        )
        & (rng.random(n) < 0.7)
    )
    # Bodies found days later: date of death unknown to the police.
    date_unknown = (
        police & np.isin(location, ["dwelling", "waterway", "public_open_space"]) & (rng.random(n) < 0.03)
    )

    out = deaths.with_columns(
        district_idx=pl.Series(district, dtype=pl.Int64),
        la_code=pl.Series(d["la_code"].to_numpy()[district].tolist(), dtype=pl.String),
        lat=pl.Series(lat),
        lon=pl.Series(lon),
        hospital_site=pl.Series(site.tolist(), dtype=pl.String),
        care_home_code=pl.Series(care_home.tolist(), dtype=pl.String),
        clinician_ref=pl.Series(clinician.tolist(), dtype=pl.String),
    )
    for name, values in (
        ("police", police),
        ("me", me),
        ("inquest", inquest),
        ("ed_died", ed_died),
        ("date_unknown", date_unknown),
    ):
        if name in out.columns:
            out = out.with_columns(pl.coalesce(pl.col(name), pl.Series(values)).alias(name))
        else:
            out = out.with_columns(pl.Series(name, values))
    return conform(out)


def assign_clinicians(
    rng: np.random.Generator,
    inst: Institutions,
    place: np.ndarray,
    site: np.ndarray,
    care_home: np.ndarray,
    home_district: np.ndarray,
) -> np.ndarray:
    """The clinician last responsible: a hospital clinician (Zipf within the site), the care home's
    aligned GPs (each home works with three of its district's GPs), or a GP of the home district."""
    n = len(place)
    out = np.empty(n, dtype=object)
    hc = inst.hospital_clinicians
    for code in np.unique(site[site != None].astype(str)):  # noqa: E711
        m = np.flatnonzero(site == code)
        cand = hc.filter(pl.col("site_code") == code)
        w = cand["weight"].to_numpy()
        out[m] = cand["clinician_ref"].to_numpy()[rng.choice(cand.height, size=len(m), p=w / w.sum())]
    gps = inst.gps
    gp_refs = gps["clinician_ref"].to_numpy()
    per = gps.filter(pl.col("district_idx") == 0).height
    homes = inst.care_homes
    home_index = {c: i for i, c in enumerate(homes["care_home_code"].to_list())}
    home_district_of = homes["district_idx"].to_numpy()
    community = np.flatnonzero(out == None)  # noqa: E711
    ch = care_home[community]
    has_home = ch != None  # noqa: E711
    # Care-home deaths: one of three GPs aligned to that home.
    idx_home = np.array([home_index.get(c, 0) for c in ch[has_home]], dtype=np.int64)
    slot = (idx_home * 3 + rng.integers(0, 3, len(idx_home))) % per
    out[community[has_home]] = gp_refs[home_district_of[idx_home] * per + slot]
    # Other community deaths: any GP of the home district.
    rest = community[~has_home]
    out[rest] = gp_refs[home_district[rest] * per + rng.integers(0, per, len(rest))]
    return out


def complete_planted(rng: np.random.Generator, planted: pl.DataFrame, inst: Institutions) -> pl.DataFrame:
    """Hospital sites and clinicians for planted deaths that did not set them."""
    if planted.height == 0:
        return planted
    d = geo.districts()
    home_la = d["la_code"].to_numpy()[planted["home_district_idx"].to_numpy()].astype(object)
    place = planted["place_of_death_type"].to_numpy().astype(object)
    site = planted["hospital_site"].to_numpy().astype(object).copy()
    need = (place == "hospital") & (site == None)  # noqa: E711
    if need.any():
        site[need] = pick_hospital_sites(rng, home_la[need])
    clinician = planted["clinician_ref"].to_numpy().astype(object).copy()
    missing = clinician == None  # noqa: E711
    derived = assign_clinicians(
        rng,
        inst,
        place,
        site,
        planted["care_home_code"].to_numpy().astype(object),
        planted["home_district_idx"].to_numpy(),
    )
    clinician[missing] = derived[missing]
    return planted.with_columns(
        hospital_site=pl.Series(site.tolist(), dtype=pl.String),
        clinician_ref=pl.Series(clinician.tolist(), dtype=pl.String),
    )
