"""Real-world recording noise: how each partner writes down a person's true identity.

Every source record starts from the person's true identity (``ground_truth/persons.parquet``)
and passes through :func:`record_identity`, which applies typos, nicknames, birth or
married surnames, day/month swaps in dates of birth, missing or mis-keyed NHS numbers,
old addresses, blanks, casing and spacing, at the rates of :class:`NoiseParams` times the
feed's multipliers in :data:`FEED_NOISE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from homicide_assets.lib.synth.config import NoiseParams
from homicide_assets.lib.synth.names import NICKNAMES, SPELLING_VARIANTS

LOWER = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class FeedNoise:
    """Multipliers on :class:`NoiseParams` for one feed, and its NHS number presence."""

    names: float = 1.0  # typos, case, spacing
    nickname: float = 1.0
    surname_variant: float = 1.0
    dob: float = 1.0  # swaps and typos
    dob_missing: float = 1.0  # 0 where the contract requires a date of birth
    postcode: float = 1.0
    nhs_present: str | None = None  # which NoiseParams rate; None: the feed has no NHS number


#: Medical examiner records are traced against the NHS Spine (few typos, formal names, current
#: surname, upper-case surnames common); police and council records are typed from what people
#: say; coroners' officers work from the police report and the registrar.
FEED_NOISE: dict[str, FeedNoise] = {
    "death_reports": FeedNoise(nhs_present="nhs_present_police"),
    "death_report_persons": FeedNoise(names=1.3, nickname=2.0, surname_variant=1.2, dob=1.5, dob_missing=4.0),
    "me_deaths": FeedNoise(
        names=0.25,
        nickname=0.1,
        surname_variant=0.4,
        dob=0.2,
        dob_missing=0.0,
        postcode=0.3,
        nhs_present="nhs_present_me",
    ),
    "safeguarding_contacts": FeedNoise(names=1.0, nickname=1.3, dob=1.2, nhs_present="nhs_present_la"),
    "inquests": FeedNoise(names=0.5, nickname=0.4, surname_variant=0.7, dob=0.5, dob_missing=1.5),
}


def typo(values: pl.Series, mask: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """One keyboard slip in each masked value: deletion, transposition, substitution or doubling.

    The first letter is kept (people rarely mistype it, and blocking on it is common practice,
    so typos there would make linkage artificially impossible).
    """
    n = len(values)
    length = values.str.len_chars().fill_null(0).to_numpy()
    pos = 1 + np.floor(rng.random(n) * np.maximum(length - 1, 1)).astype(np.int64)
    frame = pl.DataFrame(
        {
            "s": values,
            "k": pos,
            "op": rng.integers(0, 4, n),
            "c": LOWER[rng.integers(0, 26, n)],
            "m": mask & (length >= 3),
        }
    )
    s, k = pl.col("s"), pl.col("k")
    return frame.select(
        pl.when(~pl.col("m"))
        .then(s)
        .when(pl.col("op") == 0)
        .then(s.str.slice(0, k) + s.str.slice(k + 1))
        .when(pl.col("op") == 1)
        .then(s.str.slice(0, k - 1) + s.str.slice(k, 1) + s.str.slice(k - 1, 1) + s.str.slice(k + 1))
        .when(pl.col("op") == 2)
        .then(s.str.slice(0, k) + pl.col("c") + s.str.slice(k + 1))
        .otherwise(s.str.slice(0, k + 1) + s.str.slice(k, 1) + s.str.slice(k + 1))
        .alias(values.name)
    ).to_series()


def nickname(values: pl.Series, mask: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """A nickname or alternative spelling for each masked value that has one (Bob for Robert)."""
    out = values.to_numpy().astype(object).copy()
    for i in np.flatnonzero(mask):
        options = NICKNAMES.get(out[i], ()) + SPELLING_VARIANTS.get(out[i], ())
        if options:
            out[i] = options[int(rng.integers(0, len(options)))]
    return pl.Series(values.name, out.tolist(), dtype=pl.String)


def surname_variant(
    surname: pl.Series, birth_surname: pl.Series, mask: np.ndarray, rng: np.random.Generator
) -> pl.Series:
    """For masked rows: the birth surname instead of the married one, one half of a double-barrelled
    surname, or (for three in ten of the rest) a common alternative spelling (Clarke/Clark)."""
    cur = surname.to_numpy().astype(object).copy()
    birth = birth_surname.to_numpy().astype(object)
    for i in np.flatnonzero(mask):
        name = cur[i]
        if name is None:
            continue
        if birth[i] is not None and birth[i] != name and "-" not in name:
            cur[i] = birth[i]
        elif "-" in name:
            parts = name.split("-")
            cur[i] = parts[int(rng.integers(0, len(parts)))] if rng.random() < 0.7 else name.replace("-", " ")
        elif name in SPELLING_VARIANTS and rng.random() < 0.3:
            options = SPELLING_VARIANTS[name]
            cur[i] = options[int(rng.integers(0, len(options)))]
    return pl.Series(surname.name, cur.tolist(), dtype=pl.String)


def casing_and_spacing(
    values: pl.Series,
    params: NoiseParams,
    multiplier: float,
    rng: np.random.Generator,
    upper_bias: float = 0.6,
) -> pl.Series:
    """Upper or lower case for some values, stray spaces for others."""
    n = len(values)
    case = rng.random(n) < params.case_rate * multiplier
    upper = rng.random(n) < upper_bias
    space = rng.random(n) < params.space_rate * multiplier
    where = rng.integers(0, 3, n)
    frame = pl.DataFrame({"s": values, "case": case, "upper": upper, "space": space, "where": where})
    s = pl.col("s")
    cased = (
        pl.when(pl.col("case") & pl.col("upper"))
        .then(s.str.to_uppercase())
        .when(pl.col("case"))
        .then(s.str.to_lowercase())
        .otherwise(s)
    )
    spaced = (
        pl.when(~pl.col("space"))
        .then(cased)
        .when(pl.col("where") == 0)
        .then(pl.lit(" ") + cased)
        .when(pl.col("where") == 1)
        .then(cased + pl.lit(" "))
        .otherwise(cased.str.replace(" ", "  ").str.replace("-", " - "))
    )
    return frame.select(spaced.alias(values.name)).to_series()


def noisy_dates_of_birth(
    dob: pl.Series, params: NoiseParams, fn: FeedNoise, rng: np.random.Generator, required: bool
) -> pl.Series:
    """Dates of birth with day/month swaps, small typos and (when optional) blanks."""
    n = len(dob)
    frame = pl.DataFrame(
        {
            "d": dob,
            "swap": rng.random(n) < params.dob_swap_rate * fn.dob,
            "typo": rng.random(n) < params.dob_typo_rate * fn.dob,
            "kind": rng.integers(0, 3, n),
            "shift": rng.choice(np.array([-3, -2, -1, 1, 2, 3]), n),
            "blank": (rng.random(n) < params.dob_missing_rate * fn.dob_missing) & (not required),
        }
    )
    d = pl.col("d")
    swappable = (d.dt.day() <= 12) & (d.dt.day() != d.dt.month())
    swapped = pl.date(d.dt.year(), d.dt.day(), d.dt.month())
    typo_value = (
        pl.when(pl.col("kind") == 0)
        .then(d + pl.duration(days=pl.col("shift")))
        .when(pl.col("kind") == 1)
        .then(
            pl.date(
                d.dt.year() + pl.col("shift").sign(), d.dt.month(), pl.min_horizontal(d.dt.day(), pl.lit(28))
            )
        )
        .otherwise(
            pl.date(
                d.dt.year() + 10 * pl.col("shift").sign(),
                d.dt.month(),
                pl.min_horizontal(d.dt.day(), pl.lit(28)),
            )
        )
    )
    return frame.select(
        pl.when(pl.col("blank"))
        .then(pl.lit(None, pl.Date))
        .when(pl.col("swap") & swappable)
        .then(swapped)
        .when(pl.col("typo"))
        .then(typo_value)
        .otherwise(d)
        .alias(dob.name)
    ).to_series()


def noisy_postcodes(
    current: pl.Series, previous: pl.Series, params: NoiseParams, fn: FeedNoise, rng: np.random.Generator
) -> pl.Series:
    """Postcodes: sometimes the previous address, sometimes blank, sometimes without the space or lower case."""
    n = len(current)
    frame = pl.DataFrame(
        {
            "cur": current,
            "prev": previous,
            "old": rng.random(n) < params.moved_postcode_rate,
            "blank": rng.random(n) < params.postcode_missing_rate * fn.postcode,
            "fmt": rng.random(n) < params.postcode_format_rate,
            "how": rng.integers(0, 2, n),
        }
    )
    base = pl.when(pl.col("old") & pl.col("prev").is_not_null()).then(pl.col("prev")).otherwise(pl.col("cur"))
    formatted = (
        pl.when(~pl.col("fmt"))
        .then(base)
        .when(pl.col("how") == 0)
        .then(base.str.replace(" ", ""))
        .otherwise(base.str.to_lowercase())
    )
    return frame.select(
        pl.when(pl.col("blank")).then(pl.lit(None, pl.String)).otherwise(formatted).alias(current.name)
    ).to_series()


def noisy_nhs_numbers(
    nhs: pl.Series, present_rate: float, params: NoiseParams, rng: np.random.Generator, pool: np.ndarray
) -> pl.Series:
    """NHS numbers present at ``present_rate``; a few are somebody else's valid number."""
    n = len(nhs)
    present = rng.random(n) < present_rate
    wrong = present & (rng.random(n) < params.nhs_wrong_person_rate)
    values = nhs.to_numpy().astype(object).copy()
    if wrong.any() and len(pool):
        values[wrong] = pool[rng.integers(0, len(pool), wrong.sum())]
    values[~present] = None
    return pl.Series(nhs.name, values.tolist(), dtype=pl.String)


def record_identity(
    frame: pl.DataFrame,
    feed: str,
    params: NoiseParams,
    rng: np.random.Generator,
    nhs_pool: np.ndarray,
    dob_required: bool = False,
) -> pl.DataFrame:
    """Replace true ``forename``, ``surname``, ``date_of_birth``, ``nhs_number`` and ``postcode``
    in ``frame`` with what the feed's partner records.

    ``frame`` needs the true columns ``forename``, ``surname``, ``birth_surname``,
    ``date_of_birth``, ``home_postcode``, ``previous_postcode`` and ``nhs_number``. Rows with a
    non-null ``recorded_forename`` / ``recorded_surname`` (planted name variants) keep those.
    """
    fn = FEED_NOISE[feed]
    n = frame.height
    if n == 0:
        return frame
    forename = frame["forename"]
    forename = nickname(forename, rng.random(n) < params.nickname_rate * fn.nickname, rng)
    forename = typo(forename, rng.random(n) < params.typo_rate * fn.names, rng)
    surname = surname_variant(
        frame["surname"],
        frame["birth_surname"],
        rng.random(n) < params.surname_variant_rate * fn.surname_variant,
        rng,
    )
    surname = typo(surname, rng.random(n) < params.typo_rate * fn.names, rng)
    if "recorded_forename" in frame.columns:
        forename = pl.select(pl.coalesce(frame["recorded_forename"], forename).alias("forename")).to_series()
        surname = pl.select(pl.coalesce(frame["recorded_surname"], surname).alias("surname")).to_series()
    forename = casing_and_spacing(forename, params, fn.names, rng, upper_bias=0.5)
    surname = casing_and_spacing(
        surname, params, fn.names * (2.5 if feed == "me_deaths" else 1.0), rng, upper_bias=0.8
    )
    dob = noisy_dates_of_birth(frame["date_of_birth"], params, fn, rng, required=dob_required)
    postcode = noisy_postcodes(frame["home_postcode"], frame["previous_postcode"], params, fn, rng)
    out = frame.with_columns(
        forename.alias("forename"),
        surname.alias("surname"),
        dob.alias("date_of_birth"),
        postcode.alias("home_postcode"),
    )
    if fn.nhs_present is not None:
        rate = getattr(params, fn.nhs_present)
        out = out.with_columns(
            noisy_nhs_numbers(frame["nhs_number"], rate, params, rng, nhs_pool).alias("nhs_number")
        )
    return out


def name_variant(rng: np.random.Generator, forename: str, surname: str) -> tuple[str, str]:
    """A recognisably different rendering of one person's name, for planted name variants:
    a nickname or spelling variant of the forename and, half the time, a typo in the surname."""
    options = NICKNAMES.get(forename, ()) + SPELLING_VARIANTS.get(forename, ())
    fore = options[int(rng.integers(0, len(options)))] if options else forename
    sur = surname
    if fore == forename or rng.random() < 0.5:
        if surname in SPELLING_VARIANTS:
            sur = SPELLING_VARIANTS[surname][0]
        elif len(surname) >= 4:
            k = int(rng.integers(1, len(surname) - 1))
            sur = (
                surname[:k] + surname[k + 1] + surname[k] + surname[k + 2 :]
                if rng.random() < 0.5
                else surname + "e"
            )
    if fore == forename and sur == surname:
        sur = surname + "s"
    return fore, sur
