"""Synthetic people: true identities (names, dates of birth, NHS numbers, addresses).

A person's *true* identity is what ``ground_truth/persons.parquet`` holds; what each partner
records is a noisy rendering of it (:mod:`homicide_assets.lib.synth.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from homicide_assets.lib.synth import geo
from homicide_assets.lib.synth.names import FORENAMES, SURNAMES, zipf_weights
from homicide_assets.lib.synth.stats import ETHNIC_GROUPS, ETHNICITY_BY_LA, OLDER_WHITE_BOOST

#: Weights of the modulus-11 check over the first nine digits of an NHS number.
NHS_WEIGHTS = np.arange(10, 1, -1)
#: Ofcom reserves these ranges for drama; no real subscriber has them. Only 1,000 numbers each,
#: so different people share numbers: phone is weak evidence by construction.
DRAMA_MOBILE_PREFIX = "07700 900"
DRAMA_BIRMINGHAM_PREFIX = "0121 496 0"


def nhs_check_digit(first_nine: np.ndarray) -> np.ndarray:
    """Modulus-11 check digit of each row of a (n, 9) digit array; 10 marks an unusable base."""
    total = (first_nine * NHS_WEIGHTS).sum(axis=1)
    check = 11 - total % 11
    return np.where(check == 11, 0, check)


def is_valid_nhs_number(value: str) -> bool:
    """True for a 10-digit string whose last digit is the modulus-11 check of the first nine."""
    if len(value) != 10 or not value.isdigit():
        return False
    digits = np.array([[int(c) for c in value]])
    check = nhs_check_digit(digits[:, :9])[0]
    return bool(check != 10 and check == digits[0, 9])


def nhs_numbers(rng: np.random.Generator, n: int, exclude: set[str] | None = None) -> np.ndarray:
    """``n`` distinct valid NHS numbers in the ranges England allocates (400-499 and 600-708 million)."""
    out: list[str] = []
    seen = set(exclude or ())
    while len(out) < n:
        need = int((n - len(out)) * 1.15) + 16
        base = np.where(
            rng.random(need) < 0.5,
            rng.integers(400_000_000, 500_000_000, need),
            rng.integers(600_000_000, 708_800_000, need),
        )
        digits = (base[:, None] // 10 ** np.arange(8, -1, -1)) % 10
        check = nhs_check_digit(digits)
        keep = check != 10
        numbers = (base[keep] * 10 + check[keep]).astype(str)
        for number in numbers:
            if number not in seen:
                seen.add(number)
                out.append(number)
                if len(out) == n:
                    break
    return np.array(out, dtype=object)


@dataclass
class PersonIds:
    """Hands out person ids ``P00000001``... in creation order (deterministic)."""

    next_number: int = 1

    def take(self, n: int) -> np.ndarray:
        numbers = np.arange(self.next_number, self.next_number + n)
        self.next_number += n
        return np.char.add("P", np.char.zfill(numbers.astype(str), 8)).astype(object)


def _ethnicity(rng: np.random.Generator, la_codes: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    out = np.empty(len(la_codes), dtype=object)
    for la, shares in ETHNICITY_BY_LA.items():
        idx = np.flatnonzero(la_codes == la)
        if len(idx) == 0:
            continue
        base = np.asarray(shares, dtype=float)
        older = birth_year[idx] < 1960
        for mask, boost in ((older, OLDER_WHITE_BOOST), (~older, 1.0)):
            sub = idx[mask]
            if len(sub) == 0:
                continue
            w = base.copy()
            w[0] *= boost
            out[sub] = np.asarray(ETHNIC_GROUPS, dtype=object)[rng.choice(5, size=len(sub), p=w / w.sum())]
    return out


def _forenames(
    rng: np.random.Generator, ethnicity: np.ndarray, sex: np.ndarray, birth_year: np.ndarray
) -> np.ndarray:
    out = np.empty(len(sex), dtype=object)
    # White British forenames by birth cohort (names.forename_pool_key): before or from 1965.
    white = ethnicity == "white"
    keys = np.where(white, np.where(birth_year < 1965, "white_older", "white_younger"), ethnicity).astype(
        object
    )
    sex_key = np.where(sex == "f", "f", "m")
    for (group, s), names in FORENAMES.items():
        idx = np.flatnonzero((keys == group) & (sex_key == s))
        if len(idx):
            w = zipf_weights(len(names))
            out[idx] = np.asarray(names, dtype=object)[rng.choice(len(names), size=len(idx), p=w / w.sum())]
    return out


def _surnames(rng: np.random.Generator, ethnicity: np.ndarray, sex: np.ndarray) -> np.ndarray:
    # Mixed-heritage people carry surnames from either parent's group.
    group = ethnicity.copy()
    mixed = np.flatnonzero(group == "mixed")
    group[mixed] = np.asarray(["white", "black", "asian"], dtype=object)[
        rng.choice(3, size=len(mixed), p=[0.55, 0.3, 0.15])
    ]
    out = np.empty(len(sex), dtype=object)
    for g, names in SURNAMES.items():
        idx = np.flatnonzero(group == g)
        if len(idx):
            w = zipf_weights(len(names))
            out[idx] = np.asarray(names, dtype=object)[rng.choice(len(names), size=len(idx), p=w / w.sum())]
    # Sikh and Muslim naming: Kaur and Begum/Bibi are women's names, Singh a man's.
    male = sex != "f"
    out[male & (out == "Kaur")] = "Singh"
    out[male & (out == "Begum")] = "Miah"
    out[male & (out == "Bibi")] = "Khan"
    out[~male & (out == "Singh")] = "Kaur"
    return out


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    mobile = rng.random(n) < 0.8
    last = rng.integers(0, 1000, n)
    mob = np.char.add(DRAMA_MOBILE_PREFIX, np.char.zfill(last.astype(str), 3))
    land = np.char.add(DRAMA_BIRMINGHAM_PREFIX, np.char.zfill(last.astype(str), 3))
    return np.where(mobile, mob, land).astype(object)


def new_persons(
    rng: np.random.Generator,
    ids: PersonIds,
    sex: np.ndarray,
    date_of_birth: np.ndarray,
    home_district: np.ndarray,
    *,
    mover_share: float,
    ethnicity: np.ndarray | None = None,
    surname: np.ndarray | None = None,
) -> pl.DataFrame:
    """True identities for new people.

    ``sex`` (``m``/``f``), ``date_of_birth`` (``datetime64[D]``) and ``home_district`` (district
    index) are given by the caller (they follow from who dies where); names, ethnicity, NHS
    number, postcodes and phone are drawn here. ``surname`` forces a family surname.
    """
    n = len(sex)
    d = geo.districts()
    la = d["la_code"].to_numpy()[home_district].astype(object)
    birth_year = date_of_birth.astype("datetime64[Y]").astype(int) + 1970
    if ethnicity is None:
        ethnicity = _ethnicity(rng, la, birth_year)
    forename = _forenames(rng, ethnicity, sex, birth_year)
    birth_surname = _surnames(rng, ethnicity, sex) if surname is None else surname.copy()
    current = birth_surname.copy()
    age_now = 2026 - birth_year
    # About half of women over 22 carry a married surname different from their birth surname
    # (ONS Opinions and Lifestyle Survey: most women who marry take the spouse's surname).
    married = (sex == "f") & (age_now >= 22) & (rng.random(n) < 0.45) & (surname is None)
    current[married] = _surnames(rng, ethnicity[married], np.full(married.sum(), "m", dtype=object))
    hyphen = (rng.random(n) < 0.04) & ~married
    other = _surnames(rng, ethnicity[hyphen], sex[hyphen])
    current[hyphen] = np.char.add(np.char.add(birth_surname[hyphen].astype(str), "-"), other.astype(str))
    postcode = geo.postcodes(rng, home_district)
    moved = rng.random(n) < mover_share
    # Movers mostly move within the same authority (ONS internal migration: most moves are short).
    prev_district = np.where(rng.random(n) < 0.7, geo.sample_districts(rng, "residents", n), home_district)
    previous = np.where(moved, geo.postcodes(rng, prev_district), None)
    return pl.DataFrame(
        {
            "person_id": ids.take(n).tolist(),
            "forename": forename.tolist(),
            "surname": current.tolist(),
            "birth_surname": birth_surname.tolist(),
            "date_of_birth": date_of_birth,
            "sex": sex.tolist(),
            "ethnicity": ethnicity.tolist(),
            "nhs_number": nhs_numbers(rng, n).tolist(),
            "home_district_idx": home_district.astype(np.int64),
            "la_code": la.tolist(),
            "home_postcode": postcode.tolist(),
            "previous_postcode": previous.tolist(),
            "phone": _phones(rng, n).tolist(),
        },
        schema_overrides={"date_of_birth": pl.Date, "previous_postcode": pl.String},
    )


def plant_namesakes(rng: np.random.Generator, persons: pl.DataFrame, rate: float) -> pl.DataFrame:
    """Give a share of people the name of another person of the same sex born within ~3 years.

    People are sorted by sex and date of birth; a chosen person takes the forename and surname of
    the next person in that order (a namesake with a close date of birth). ``namesake_of`` names
    the person copied.
    """
    ordered = persons.with_row_index("_row").sort(["sex", "date_of_birth", "person_id"])
    n = ordered.height
    nxt = ordered.select(
        pl.col("person_id").shift(-1).alias("_src_id"),
        pl.col("forename").shift(-1).alias("_src_fore"),
        pl.col("surname").shift(-1).alias("_src_sur"),
        pl.col("birth_surname").shift(-1).alias("_src_birth"),
        (
            (pl.col("date_of_birth").shift(-1) - pl.col("date_of_birth")).dt.total_days().abs() <= 3 * 365
        ).alias("_close"),
        (pl.col("sex").shift(-1) == pl.col("sex")).alias("_same_sex"),
    )
    pick = (
        pl.Series("_pick", rng.random(n) < rate)
        & nxt["_close"].fill_null(False)
        & nxt["_same_sex"].fill_null(False)
    )
    ordered = pl.concat([ordered, nxt], how="horizontal").with_columns(pick)
    ordered = ordered.with_columns(
        forename=pl.when("_pick").then("_src_fore").otherwise("forename"),
        surname=pl.when("_pick").then("_src_sur").otherwise("surname"),
        birth_surname=pl.when("_pick").then("_src_birth").otherwise("birth_surname"),
        namesake_of=pl.when("_pick").then("_src_id").otherwise(pl.lit(None, pl.String)),
    )
    return ordered.sort("_row").drop(
        ["_row", "_src_id", "_src_fore", "_src_sur", "_src_birth", "_close", "_same_sex", "_pick"]
    )
