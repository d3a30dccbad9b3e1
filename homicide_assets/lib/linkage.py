"""Probabilistic person linkage with Splink: :func:`link_people` and its clustering helpers.

Pure library code (no Dagster). It knows nothing about police forces or UK postcodes: it
takes polars frames of people and returns scored pairs, so it works on any population.

The model is a Fellegi-Sunter model trained unsupervised on the data being linked:

- ``u`` probabilities by random sampling of record pairs (Splink 5 samples by a hash of the
  record ids, so the same inputs always give the same model);
- ``m`` probabilities by expectation maximisation on blocked pairs (same date of birth;
  same forename and surname; same identifier where there is one);
- the prior (probability two random records match) from deterministic rules.

Comparisons (each level is a plain-language label in :func:`link_people`'s evidence):

- forename and surname: exact (with term-frequency adjustment, so "smith" counts for less
  than "okonkwo"; frequencies counted once per distinct identity, so a person recorded
  many times does not make their own name look common), Jaro-Winkler typos, nicknames
  and spelling variants from ``seeds/nicknames.csv`` ("bill" ~ "william"), shortened
  forenames ("harj" ~ "harjinder"), shared name parts (hyphenated, double-barrelled and
  married surnames: "smith-jones" ~ "jones"), initials;
- date of birth: exact, day and month swapped, one keystroke, within a year;
- postcode (any country's format): exact, same first part ("B23 6TJ" ~ "B23 7QX");
- date of death, when the records carry one (two records of one death): same day, a day
  apart, within a month;
- sex; and identifiers compared exactly. Deterministic identifiers (a valid NHS number
  by default) decide when both records carry one: equal is a match, different is not,
  unless the rest of the record contradicts the identifier outright.

Two rules of the data are applied after scoring: records of deaths more than a month
apart are two people, and deterministic identifiers decide as above.

Trained ``m`` probabilities are floored (:data:`M_PROBABILITY_FLOOR`) so that one keying
error cannot veto an otherwise clear match.

Candidate pairs come from blocking rules, each admitting the pairs one kind of error would
hide (identifiers; date of birth with a name initial or the last part of the surname;
names with the birth year and month, the birth day and month, or a swapped date; rare
names where a date of birth is blank; postcode; date of death with a name), and none
joining on a common value alone, so the pairs scored grow about linearly with the
records: 1.2 million pairs for 424,000 records at force-decade scale.

Backends: DuckDB (default, in process) or Spark (``backend="spark"``, with a
``spark_session``) for national scale; the model and rules are the same.
"""

from __future__ import annotations

import copy
import csv
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import polars as pl

from homicide_assets.lib.settings import SEEDS_DIR

logger = logging.getLogger(__name__)

#: Pairs at or above this match probability are returned by :func:`link_people`.
DEFAULT_THRESHOLD = 0.9
#: Identifier columns compared exactly when present (a valid NHS number by default).
DEFAULT_IDENTIFIERS: tuple[str, ...] = ("nhs_number",)
NICKNAMES_PATH = SEEDS_DIR / "nicknames.csv"
#: Values that mean "no name" rather than a name ("unknown" for an unidentified body).
PLACEHOLDER_NAMES = frozenset(
    {
        "unknown",
        "unk",
        "nk",
        "n k",
        "not known",
        "none",
        "null",
        "na",
        "n a",
        "x",
        "xx",
        "xxx",
        "anon",
        "anonymous",
        "unidentified",
    }
)
Backend = Literal["duckdb", "spark"]

REQUIRED_COLUMNS = ("id", "forename", "surname", "date_of_birth")
OPTIONAL_COLUMNS = ("postcode", "sex", "date_of_death")


# --------------------------------------------------------------------------------------
# Reference data


@lru_cache(maxsize=4)
def load_nicknames(path: Path = NICKNAMES_PATH) -> dict[str, tuple[str, ...]]:
    """Nickname or variant -> the formal names it stands for, from ``seeds/nicknames.csv``.

    A name may stand for several formal names ("alex": alexander, alexandra), and a
    spelling variant is listed against the usual spelling ("stephen": steven), followed
    transitively. Formal names are not listed against themselves.
    """
    out: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name, formal = _fold(row["name"]), _fold(row["formal"])
            if name and formal and name != formal:
                out.setdefault(name, []).append(formal)
    # Follow chains ("cathy" -> "catherine" -> "katherine") so a nickname reaches every
    # spelling of its formal name.
    closed: dict[str, tuple[str, ...]] = {}
    for name in out:
        seen: set[str] = set()
        todo = list(out[name])
        while todo:
            formal = todo.pop()
            if formal not in seen and formal != name:
                seen.add(formal)
                todo.extend(out.get(formal, ()))
        closed[name] = tuple(sorted(seen))
    return closed


def _fold(text: str | None) -> str:
    """Lower case, accents removed, punctuation to spaces, one space between words."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("'", "").replace("\u2019", "")
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------
# Standardising people


def _name_expr(col: str) -> pl.Expr:
    """Polars expression folding a name as :func:`_fold` does (vectorised)."""
    folded = (
        pl.col(col)
        .cast(pl.String)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"['\u2019]", "")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )
    return pl.when(folded.is_in(list(PLACEHOLDER_NAMES)) | (folded == "")).then(None).otherwise(folded)


def standardise_people(
    frame: pl.DataFrame, identifier_columns: Sequence[str] = DEFAULT_IDENTIFIERS
) -> pl.DataFrame:
    """The comparison features Splink sees, one row per input row, in input order.

    ``frame`` needs ``forename``, ``surname`` and ``date_of_birth`` (a ``Date``, or ISO
    text); ``postcode``, ``sex``, ``date_of_death`` and the ``identifier_columns`` are used
    when present.
    Names are folded (case, accents, punctuation); placeholder names such as "unknown"
    become null; postcodes lose their spaces for exact comparison and keep their first
    part (the UK outward code, when the format has one) for a partial match.
    """
    missing = [c for c in ("forename", "surname", "date_of_birth") if c not in frame.columns]
    if missing:
        raise ValueError(f"people frame lacks required column(s) {missing}")
    nick = load_nicknames()
    # A blocking key shared by a nickname and its formal names: the alphabetically first
    # formal name that is not itself a variant ("cathy", "catherine" -> "katherine").
    terminal = {
        name: sorted(f for f in formals if f not in nick) or sorted(formals) for name, formals in nick.items()
    }
    nick_frame = pl.DataFrame(
        {
            "_first": list(nick),
            "_formal": [list(v) for v in nick.values()],
            "_key": [terminal[k][0] for k in nick],
        },
        schema={"_first": pl.String, "_formal": pl.List(pl.String), "_key": pl.String},
    )
    dob = frame["date_of_birth"]
    if dob.dtype == pl.String:
        dob = dob.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    elif dob.dtype == pl.Datetime or isinstance(dob.dtype, pl.Datetime):
        dob = dob.dt.date()
    elif dob.dtype != pl.Date:
        raise ValueError(f"date_of_birth must be a Date or ISO text, not {dob.dtype}")

    out = frame.select(
        _name_expr("forename").alias("forename"),
        _name_expr("surname").alias("surname"),
    ).with_columns(date_of_birth=dob)
    out = out.with_columns(
        pl.col("forename").str.split(" ").alias("forename_tokens"),
        pl.col("surname").str.split(" ").alias("surname_tokens"),
        pl.col("forename").str.slice(0, 1).alias("forename_initial"),
        pl.col("surname").str.slice(0, 1).alias("surname_initial"),
        pl.col("forename").str.split(" ").list.first().alias("_first"),
        pl.col("surname").str.replace_all(" ", "").alias("surname_joined"),
        pl.col("surname").str.split(" ").list.last().alias("surname_last"),
    )
    out = out.join(nick_frame, on="_first", how="left", maintain_order="left")
    # Every name a forename can stand for: its own words and, for a nickname, the formal
    # names ("bill" -> {bill, william}); two forenames sharing one are a nickname match.
    out = out.with_columns(
        pl.when(pl.col("forename").is_null())
        .then(None)
        .otherwise(
            pl.concat_list(
                pl.col("forename_tokens"), pl.col("_formal").fill_null(pl.lit([], pl.List(pl.String)))
            )
            .list.unique()
            .list.sort()
        )
        .alias("forename_names"),
        # A blocking key shared by a nickname and its formal name ("bill", "william").
        pl.coalesce(pl.col("_key"), pl.col("_first")).alias("forename_key"),
    ).drop("_first", "_formal", "_key")
    swapped_ok = pl.col("date_of_birth").dt.day().le(12) & (
        pl.col("date_of_birth").dt.day() != pl.col("date_of_birth").dt.month()
    )
    out = out.with_columns(
        pl.col("date_of_birth").dt.strftime("%Y-%m-%d").alias("date_of_birth_text"),
        pl.col("date_of_birth").dt.year().alias("birth_year"),
        pl.col("date_of_birth").dt.month().alias("birth_month"),
        pl.col("date_of_birth").dt.strftime("%m-%d").alias("birth_day_month"),
        pl.when(swapped_ok)
        .then(
            pl.date(
                pl.col("date_of_birth").dt.year(),
                pl.col("date_of_birth").dt.day(),
                pl.col("date_of_birth").dt.month(),
            )
        )
        .otherwise(None)
        .alias("date_of_birth_swapped"),
    )
    if "postcode" in frame.columns:
        pc = frame["postcode"].cast(pl.String).str.to_uppercase().str.strip_chars()
        compact = pc.str.replace_all(r"[^0-9A-Z]", "")
        first_part = pc.str.split(" ").list.first().str.replace_all(r"[^0-9A-Z]", "")
        out = out.with_columns(
            postcode=pl.when(compact == "").then(None).otherwise(compact),
            # The part before the first space, when the format has one (UK outward code).
            postcode_area=pl.when(pc.str.contains(" ")).then(first_part).otherwise(None),
        )
    else:
        out = out.with_columns(postcode=pl.lit(None, pl.String), postcode_area=pl.lit(None, pl.String))
    if "date_of_death" in frame.columns:
        dod = frame["date_of_death"]
        if dod.dtype == pl.String:
            dod = dod.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        out = out.with_columns(date_of_death=dod.cast(pl.Date))
    else:
        out = out.with_columns(date_of_death=pl.lit(None, pl.Date))
    if "sex" in frame.columns:
        sex = frame["sex"].cast(pl.String).str.to_lowercase().str.strip_chars()
        sex = sex.replace({"male": "m", "man": "m", "female": "f", "woman": "f", "h": "m"})
        out = out.with_columns(sex=pl.when(sex.is_in(["m", "f", "x"])).then(sex).otherwise(None))
    else:
        out = out.with_columns(sex=pl.lit(None, pl.String))
    for ident in identifier_columns:
        if ident in frame.columns:
            v = frame[ident].cast(pl.String).str.replace_all(r"\s", "")
            out = out.with_columns(pl.when(v == "").then(None).otherwise(v).alias(ident))
        else:
            out = out.with_columns(pl.lit(None, pl.String).alias(ident))
    return out


# --------------------------------------------------------------------------------------
# The Splink model


def _comparisons(identifiers: Sequence[str], present: set[str]) -> list[Any]:
    """Splink comparisons for the columns that carry information."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    forename = cl.CustomComparison(
        output_column_name="forename",
        comparison_description="forename",
        comparison_levels=[
            cll.NullLevel("forename"),
            cll.ExactMatchLevel("forename").configure(
                tf_adjustment_column="forename", m_probability=0.8, label_for_charts="same forename"
            ),
            cll.JaroWinklerLevel("forename", 0.92).configure(
                m_probability=0.06, label_for_charts="forename typo"
            ),
            cll.ArrayIntersectLevel("forename_names", 1).configure(
                m_probability=0.06, label_for_charts="forename nickname or shared part"
            ),
            # a shortened forename: "harj" for "harjinder", "chris" for "christopher"
            cll.CustomLevel(
                "(length(forename_l) >= 3 and substr(forename_r, 1, length(forename_l)) = forename_l) "
                "or (length(forename_r) >= 3 and substr(forename_l, 1, length(forename_r)) = forename_r)"
            ).configure(m_probability=0.02, label_for_charts="forename shortened"),
            cll.CustomLevel(
                "(length(forename_l) = 1 or length(forename_r) = 1) "
                "and forename_initial_l = forename_initial_r"
            ).configure(m_probability=0.02, label_for_charts="forename initial only"),
            cll.JaroWinklerLevel("forename", 0.8).configure(
                m_probability=0.02, label_for_charts="forename similar"
            ),
            cll.ElseLevel().configure(m_probability=0.04, label_for_charts="forename differs"),
        ],
    )
    surname = cl.CustomComparison(
        output_column_name="surname",
        comparison_description="surname",
        comparison_levels=[
            cll.NullLevel("surname"),
            cll.ExactMatchLevel("surname").configure(
                tf_adjustment_column="surname", m_probability=0.85, label_for_charts="same surname"
            ),
            cll.CustomLevel("surname_joined_l = surname_joined_r").configure(
                m_probability=0.01, label_for_charts="surname spacing or hyphen"
            ),
            cll.JaroWinklerLevel("surname", 0.92).configure(
                m_probability=0.05, label_for_charts="surname typo"
            ),
            cll.ArrayIntersectLevel("surname_tokens", 1).configure(
                m_probability=0.03, label_for_charts="surname shares a part (hyphenated or married)"
            ),
            cll.JaroWinklerLevel("surname", 0.8).configure(
                m_probability=0.02, label_for_charts="surname similar"
            ),
            cll.ElseLevel().configure(m_probability=0.04, label_for_charts="surname differs"),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_description="date of birth",
        comparison_levels=[
            cll.NullLevel("date_of_birth"),
            cll.ExactMatchLevel("date_of_birth").configure(
                m_probability=0.85, label_for_charts="same date of birth"
            ),
            cll.CustomLevel("date_of_birth_swapped_l = date_of_birth_r").configure(
                m_probability=0.03, label_for_charts="date of birth day and month swapped"
            ),
            cll.DamerauLevenshteinLevel("date_of_birth_text", 1).configure(
                m_probability=0.05, label_for_charts="date of birth one keystroke apart"
            ),
            cll.AbsoluteDateDifferenceLevel(
                "date_of_birth", threshold=1, metric="year", input_is_string=False
            ).configure(m_probability=0.03, label_for_charts="date of birth within a year"),
            cll.ElseLevel().configure(m_probability=0.04, label_for_charts="date of birth differs"),
        ],
    )
    comparisons = [forename, surname, dob]
    if "postcode" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="postcode",
                comparison_description="postcode",
                comparison_levels=[
                    cll.NullLevel("postcode"),
                    cll.ExactMatchLevel("postcode").configure(
                        m_probability=0.6, label_for_charts="same postcode"
                    ),
                    cll.ExactMatchLevel("postcode_area").configure(
                        m_probability=0.15, label_for_charts="same postcode area"
                    ),
                    cll.ElseLevel().configure(m_probability=0.25, label_for_charts="postcode differs"),
                ],
            )
        )
    if "date_of_death" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="date_of_death",
                comparison_description="date of death",
                comparison_levels=[
                    cll.NullLevel("date_of_death"),
                    cll.ExactMatchLevel("date_of_death").configure(
                        m_probability=0.85, label_for_charts="same date of death"
                    ),
                    cll.AbsoluteDateDifferenceLevel(
                        "date_of_death", threshold=1, metric="day", input_is_string=False
                    ).configure(m_probability=0.08, label_for_charts="dates of death a day apart"),
                    cll.AbsoluteDateDifferenceLevel(
                        "date_of_death", threshold=31, metric="day", input_is_string=False
                    ).configure(m_probability=0.05, label_for_charts="dates of death within a month"),
                    cll.ElseLevel().configure(m_probability=0.02, label_for_charts="dates of death differ"),
                ],
            )
        )
    if "sex" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="sex",
                comparison_description="sex",
                comparison_levels=[
                    cll.NullLevel("sex"),
                    cll.ExactMatchLevel("sex").configure(m_probability=0.97, label_for_charts="same sex"),
                    cll.ElseLevel().configure(m_probability=0.03, label_for_charts="sex differs"),
                ],
            )
        )
    for ident in identifiers:
        if ident in present:
            label = ident.replace("_", " ")
            comparisons.append(
                cl.CustomComparison(
                    output_column_name=ident,
                    comparison_description=label,
                    comparison_levels=[
                        cll.NullLevel(ident),
                        cll.ExactMatchLevel(ident).configure(
                            m_probability=0.99, label_for_charts=f"same {label}"
                        ),
                        cll.ElseLevel().configure(m_probability=0.01, label_for_charts=f"{label} differs"),
                    ],
                )
            )
    return comparisons


#: A full name (forename key and surname) carried by more distinct people (told apart by
#: date of birth) than this is too common to link records on names alone, so pairs
#: sharing only it are not generated.
RARE_NAME_MAX_RECORDS = 10


def blocking_statistics(
    features: list[pl.DataFrame], identifiers: Sequence[str]
) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """The data-wide statistics behind the blocking keys, for :func:`apply_blocking_keys`.

    Returns ``names`` (``rare_name``: forename key and surname, ``rare``: whether no more
    than :data:`RARE_NAME_MAX_RECORDS` distinct dates of birth go with it, blank counting
    as one) and ``crowded`` (per identifier, the values more than
    :data:`MAX_RECORDS_PER_IDENTIFIER` records share).
    """
    both = pl.concat(
        [f.select("forename_key", "surname", "date_of_birth", *identifiers) for f in features],
        how="vertical_relaxed",
    )
    name = pl.concat_str(["forename_key", pl.lit("|"), "surname"])
    # counted once per distinct date of birth, so one person recorded often (a finder in
    # many reports) does not make their own name look common
    identities = both.select(name.alias("rare_name"), "date_of_birth").drop_nulls("rare_name").unique()
    names = (
        identities.group_by("rare_name")
        .len()
        .select("rare_name", (pl.col("len") <= RARE_NAME_MAX_RECORDS).alias("rare"))
        .sort("rare_name")
    )
    crowded = {
        ident: sorted(
            both.group_by(ident).len().filter(pl.col("len") > MAX_RECORDS_PER_IDENTIFIER)[ident].drop_nulls().to_list()
        )
        for ident in identifiers
    }
    return names, crowded


def apply_blocking_keys(
    features: list[pl.DataFrame],
    identifiers: Sequence[str],
    names: pl.DataFrame,
    crowded: Mapping[str, Sequence[str]],
) -> list[pl.DataFrame]:
    """``<identifier>_block`` (the identifier unless its value is ``crowded``) and
    ``rare_name`` (forename key and surname where ``names`` marks it rare) on each frame."""
    rare = names.filter(pl.col("rare")).select(pl.col("rare_name").alias("_name"), "rare_name")
    name = pl.concat_str(["forename_key", pl.lit("|"), "surname"])
    keyed = []
    for frame in features:
        frame = (
            frame.with_columns(name.alias("_name"))
            .join(rare, on="_name", how="left", maintain_order="left")
            .drop("_name")
        )
        for ident in identifiers:
            common = pl.Series(ident, list(crowded.get(ident, ())), dtype=pl.String)
            frame = frame.with_columns(
                pl.when(pl.col(ident).is_in(common.implode()))
                .then(None)
                .otherwise(pl.col(ident))
                .alias(f"{ident}_block")
            )
        keyed.append(frame)
    return keyed


def add_blocking_keys(features: list[pl.DataFrame], identifiers: Sequence[str]) -> list[pl.DataFrame]:
    """Blocking keys computed over all frames together.

    ``<identifier>_block``: the identifier where no more than
    :data:`MAX_RECORDS_PER_IDENTIFIER` records share it (a number shared by hundreds is a
    placeholder or a switchboard, not a person). ``rare_name``: forename key and surname
    where no more than :data:`RARE_NAME_MAX_RECORDS` distinct dates of birth (blank counts
    as one) go with them.
    """
    names, crowded = blocking_statistics(features, identifiers)
    return apply_blocking_keys(features, identifiers, names, crowded)


def _prediction_rules(
    identifiers: Sequence[str], present: set[str], deterministic: Sequence[str]
) -> list[Any]:
    """Blocking rules for prediction: each admits the candidate pairs one kind of error
    would otherwise hide, and no rule squares with the population."""
    from splink import block_on

    rules: list[Any] = []
    for ident in identifiers:
        if ident in present:
            # a deterministic identifier alone; a shared phone (a household) with an initial
            key = [f"{ident}_block"] if ident in deterministic else [f"{ident}_block", "forename_initial"]
            rules.append(block_on(*key))
    rules += [
        block_on("date_of_birth", "forename_initial"),
        block_on("date_of_birth", "surname_initial"),
        # the last part of a double-barrelled or married surname: "achterberg-lindqvist"
        block_on("date_of_birth", "surname_last"),
        # same names, date of birth keyed wrongly: a day typo, a year typo, day and month
        # swapped (either way round)
        block_on("forename_key", "surname", "birth_year", "birth_month"),
        block_on("forename_key", "surname", "birth_day_month"),
        # (Splink compares each pair both ways round, so one direction is enough)
        "l.date_of_birth_swapped = r.date_of_birth and l.forename_initial = r.forename_initial",
        # same names, date of birth missing on one side (a finder, an unidentified body).
        # Only for names rare enough that they could decide a match alone
        # (:data:`RARE_NAME_MAX_RECORDS`): every John Smith against every other would
        # square with the population and none of those pairs could reach a threshold.
        "l.rare_name = r.rare_name and (l.date_of_birth is null or r.date_of_birth is null)",
    ]
    if "postcode" in present:
        rules.append(block_on("postcode", "surname_initial"))
    if "date_of_death" in present:
        # two records of one death, date of birth perhaps blank: a nickname or a new
        # surname (forename key), or a typo in the forename (surname and initial)
        rules.append(block_on("date_of_death", "forename_key"))
        rules.append(block_on("date_of_death", "surname", "forename_initial"))
    return rules


@dataclass
class LinkageRun:
    """What one Splink run produced: scored pairs and the model that scored them."""

    pairs: pl.DataFrame
    model: dict[str, Any]
    level_labels: dict[str, dict[int, str]] = field(default_factory=dict)
    training_notes: list[str] = field(default_factory=list)


@dataclass
class HeldModel:
    """A trained person model and the data-wide statistics it scores with, held fixed so
    that records arriving later are scored exactly as the records it was trained on.

    ``settings``: the trained Splink model (m, u, prior, comparisons, prediction rules);
    ``identifiers``/``deterministic``: the identifiers it compares and those that decide;
    ``present``: the optional columns that carried information when it was trained (a
    column that starts or stops carrying information needs a new model); ``tf``: the
    term-frequency tables of forename and surname; ``names``: each forename key and
    surname seen, with whether it is rare enough to block on alone; ``crowded``: the
    identifier values too common to block or decide on; ``trained_records``: the records
    it was estimated on. Names first seen after training are added to ``tf`` and
    ``names`` once, with the frequency they have then (:func:`extend_model`), and keep it.
    """

    settings: dict[str, Any]
    link: bool
    identifiers: list[str]
    deterministic: list[str]
    present: list[str]
    tf: dict[str, pl.DataFrame]
    names: pl.DataFrame
    crowded: dict[str, list[str]]
    trained_records: int
    tf_total: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        """Write the model to ``folder`` (JSON and Parquet)."""
        import json

        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "settings": self.settings,
            "link": self.link,
            "identifiers": self.identifiers,
            "deterministic": self.deterministic,
            "present": self.present,
            "crowded": self.crowded,
            "trained_records": self.trained_records,
            "tf_total": self.tf_total,
            "notes": self.notes,
        }
        (folder / "model.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        for column, table in self.tf.items():
            table.write_parquet(folder / f"tf_{column}.parquet")
        self.names.write_parquet(folder / "names.parquet")

    @classmethod
    def load(cls, folder: Path) -> HeldModel:
        import json

        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        tf = {c: pl.read_parquet(folder / f"tf_{c}.parquet") for c in TF_COLUMNS}
        return cls(
            settings=meta["settings"],
            link=meta["link"],
            identifiers=list(meta["identifiers"]),
            deterministic=list(meta["deterministic"]),
            present=list(meta["present"]),
            tf=tf,
            names=pl.read_parquet(folder / "names.parquet"),
            crowded={k: list(v) for k, v in meta["crowded"].items()},
            trained_records=int(meta["trained_records"]),
            tf_total={k: int(v) for k, v in meta.get("tf_total", {}).items()},
            notes=list(meta.get("notes", [])),
        )


#: The name columns whose term frequencies adjust the comparison (same name, rare name: more weight).
TF_COLUMNS = ("forename", "surname")


@contextmanager
def _quiet_splink():
    logger_ = logging.getLogger("splink")
    before = logger_.level
    logger_.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger_.setLevel(before)


def _database_api(backend: Backend, spark_session: Any | None):
    if backend == "duckdb":
        import duckdb
        from splink import DuckDBAPI

        con = duckdb.connect(":memory:")
        con.execute("SET preserve_insertion_order = false")
        return DuckDBAPI(connection=con)
    if backend == "spark":
        from splink.backends.spark import SparkAPI

        if spark_session is None:
            from pyspark.sql import SparkSession  # optional dependency, national scale only

            spark_session = SparkSession.builder.appName("homicide_assets.linkage").getOrCreate()
        return SparkAPI(spark_session=spark_session)
    raise ValueError(f"unknown linkage backend {backend!r}: use 'duckdb' or 'spark'")


def _register(db_api, frame: pl.DataFrame, name: str, backend: Backend):
    if backend == "spark":
        spark = db_api.spark
        # Spark's views live in the session, not in this db_api: training and scoring (or an
        # earlier run in the same session) registered the name before
        if db_api.table_exists_in_database(name):
            db_api.delete_table_from_database(name)
        return db_api.register(spark.createDataFrame(frame.to_pandas()), table_name=name)
    return db_api.register(frame.to_arrow(), table_name=name)


def _informative(features: list[pl.DataFrame], column: str, link: bool) -> bool:
    counts = [f[column].drop_nulls().len() for f in features]
    return all(c > 0 for c in counts) if link else sum(counts) >= 2


def informative_columns(features: list[pl.DataFrame], identifiers: Sequence[str]) -> list[str]:
    """The optional columns (postcode, sex, date of death, ``identifiers``) that carry information."""
    link = len(features) == 2
    optional = ["postcode", "sex", "date_of_death", *identifiers]
    return [c for c in optional if _informative(features, c, link)]


def _pair_count(features: list[pl.DataFrame]) -> float:
    if len(features) == 2:
        return features[0].height * features[1].height
    n = sum(f.height for f in features)
    return n * (n - 1) / 2


def train_model(
    features: list[pl.DataFrame],
    *,
    identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    deterministic_identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    seed: int | None = None,
    max_pairs_u: float = 5e5,
    max_pairs_em: float = 5e5,
    deterministic_recall: float = 0.7,
) -> HeldModel:
    """Estimate the person model on standardised frames (:func:`standardise_people`), each
    with an integer ``unique_id``: the prior from deterministic rules, ``u`` by random
    sampling, ``m`` by expectation maximisation on blocked pairs (see :func:`run_splink`)."""
    from splink import Linker, SettingsCreator, block_on

    link = len(features) == 2
    present = set(informative_columns(features, identifiers))
    identifiers = [i for i in identifiers if i in present]
    deterministic_ids = [i for i in deterministic_identifiers if i in identifiers]
    notes: list[str] = []
    total_pairs = _pair_count(features)
    names, crowded = blocking_statistics(features, identifiers)
    features = apply_blocking_keys(features, identifiers, names, crowded)
    settings = SettingsCreator(
        link_type="link_only" if link else "dedupe_only",
        comparisons=_comparisons(identifiers, present),
        blocking_rules_to_generate_predictions=_prediction_rules(identifiers, present, deterministic_ids),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        max_iterations=20,
        em_convergence=1e-4,
    )
    db_api = _database_api(backend, spark_session)
    # (not "left"/"right": Splink uses the names in SQL, where those are keywords)
    table_names = ["left_people", "right_people"] if link else ["people"]
    sdfs = [_register(db_api, f, n, backend) for f, n in zip(features, table_names, strict=True)]
    with _quiet_splink():
        linker = Linker(sdfs if link else sdfs[0], settings, log_level=None)
        deterministic = [block_on("forename", "surname", "date_of_birth")]
        deterministic += [block_on(i) for i in deterministic_ids]
        try:
            linker.training.estimate_probability_two_random_records_match(
                deterministic, recall=deterministic_recall
            )
        except ValueError:
            linker.training.estimate_probability_two_random_records_match(deterministic, recall=1.0)
        lam = linker._settings_obj._probability_two_random_records_match
        # No exact duplicates at all: fall back on one match per record's worth of pairs.
        floor = min(0.5, max(1.0 / max(total_pairs, 1), 1e-9))
        if not lam or lam <= 0:
            linker._settings_obj._probability_two_random_records_match = floor
            notes.append("prior fell back to one match per record")
        # Splink 5 samples by a hash of the record ids: deterministic without a seed, and
        # twice as fast as with one.
        linker.training.estimate_u_using_random_sampling(
            max_pairs=max_pairs_u, seed=seed, min_count_per_level=None, num_chunks=1
        )
        # m by EM on blocked pairs: names trained among pairs with the same date of birth,
        # dates of birth and the rest among pairs with the same names, everything among
        # pairs sharing a deterministic identifier (the cleanest matches there are).
        em_rules = [block_on("date_of_birth"), block_on("forename", "surname")]
        em_rules += [block_on(i) for i in deterministic_ids]
        for rule in em_rules:
            rule_sql = rule.get_blocking_rule("duckdb").blocking_rule_sql
            before = linker.misc.save_model_to_json()
            # When EM fails, a second attempt with the "differs" levels held at their
            # current (floored) m: Splink refuses an m that EM drives to exactly 0 (a
            # disagreement never seen among the matches of a clean sample).
            for attempt in range(2):
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        rule, estimate_without_term_frequencies=True, max_pairs=max_pairs_em
                    )
                    if attempt:
                        notes.append(f"EM for {rule_sql} trained with disagreement levels held")
                    break
                except Exception as exc:  # e.g. too few pairs under this rule to train on
                    if attempt:
                        notes.append(f"EM skipped for {rule_sql}: {type(exc).__name__}: {str(exc)[:160]}")
                    # A failed session leaves the comparisons of its blocking rule removed
                    # from the linker's model (Splink 5 filters them before training):
                    # start again from the model as it was.
                    retry = _hold_disagreement_levels(before) if attempt == 0 else _release_levels(before)
                    linker = Linker(sdfs if link else sdfs[0], retry, log_level=None)
            if attempt == 1:
                linker = Linker(
                    sdfs if link else sdfs[0],
                    _release_levels(linker.misc.save_model_to_json()),
                    log_level=None,
                )
        model = regularise_model(linker.misc.save_model_to_json())
    tf, tf_total = {}, {}
    for column in TF_COLUMNS:
        tf[column], tf_total[column] = identity_term_frequencies(features, column, with_total=True)
    return HeldModel(
        settings=model,
        link=link,
        identifiers=list(identifiers),
        deterministic=deterministic_ids,
        present=sorted(present),
        tf=tf,
        names=names,
        crowded=crowded,
        trained_records=sum(f.height for f in features),
        tf_total=tf_total,
        notes=notes,
    )


def extend_model(held: HeldModel, features: list[pl.DataFrame]) -> tuple[HeldModel, int]:
    """``held`` with the names of ``features`` it has never seen added to its term-frequency
    and rare-name tables (frequencies counted as at training: over the distinct identities
    now, divided by the identities it was trained on), and how many were added. Names it
    holds keep their values, so the pairs it scored before score the same again."""
    added = 0
    tf = dict(held.tf)
    for column in TF_COLUMNS:
        counts, _ = identity_term_frequencies(features, column, with_total=True, counts=True)
        new = counts.join(held.tf[column].select(column), on=column, how="anti")
        if new.height:
            total = max(held.tf_total.get(column, 0), 1)
            new = new.select(column, (pl.col("len") / total).alias(f"tf_{column}"))
            tf[column] = pl.concat([held.tf[column], new], how="vertical_relaxed").sort(column)
            added += new.height
    names, _ = blocking_statistics(features, [])
    new_names = names.join(held.names.select("rare_name"), on="rare_name", how="anti")
    if new_names.height:
        names = pl.concat([held.names, new_names]).sort("rare_name")
        added += new_names.height
    else:
        names = held.names
    if not added:
        return held, 0
    out = copy.copy(held)
    out.tf, out.names = tf, names
    return out, added


def _wrap_rules(rules: list[Any], dialect: str, flag: str) -> list[str]:
    """Each prediction rule as SQL, narrowed to pairs where either record has ``flag`` set.

    A pair passes a narrowed rule exactly when it passes the rule and touches a flagged
    record, so the pairs generated (Splink generates each pair once, under the first rule
    it passes) are those of the full run that touch a flagged record.
    """
    out = []
    for rule in rules:
        sql = rule if isinstance(rule, str) else rule.get_blocking_rule(dialect).blocking_rule_sql
        out.append(f"({sql}) and (l.{flag} or r.{flag})")
    return out


#: The boolean column of the features that marks the records to rescore (:func:`score_model`).
RESCORE_FLAG = "rescore_flag"


def _rescore_neighbourhood(
    frame: pl.DataFrame, flagged: pl.DataFrame, rules: list[Any], dialect: str
) -> pl.DataFrame:
    """The rows of ``frame`` that are flagged or could pair with a ``flagged`` row (of any
    frame) under one of ``rules``: those sharing the values of every equi-join condition of
    a rule with a flagged row, either way round. Every candidate pair touching a flagged row is between
    rows of the result, so scoring the result alone (unique ids kept) gives the same pairs
    as scoring ``frame``. A rule without equi-join conditions on plain columns (none here)
    could pair anything: then ``frame`` is returned whole."""
    from splink.internals.blocking_rule_creator_utils import to_blocking_rule_creator

    keep = [frame.filter(pl.col(RESCORE_FLAG)).select("unique_id")]
    for rule in rules:
        try:
            conditions = to_blocking_rule_creator(rule).get_blocking_rule(dialect)._equi_join_conditions
        except Exception:  # Splink's parser could not read the rule: no narrowing
            return frame
        pairs = [(a.strip('"`'), b.strip('"`')) for a, b in conditions]
        if not pairs or any(c not in frame.columns or c not in flagged.columns for pair in pairs for c in pair):
            return frame
        for mine, theirs in ((0, 1), (1, 0)):
            probe = flagged.select(
                [pl.col(pair[mine]).alias(f"_key{i}") for i, pair in enumerate(pairs)]
            ).drop_nulls().unique()
            keep.append(
                frame.join(
                    probe,
                    left_on=[pair[theirs] for pair in pairs],
                    right_on=[f"_key{i}" for i in range(len(pairs))],
                    how="semi",
                ).select("unique_id")
            )
    ids = pl.concat(keep).unique()
    return frame.join(ids, on="unique_id", how="semi", maintain_order="left")


def score_model(
    held: HeldModel,
    features: list[pl.DataFrame],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    keep_columns: Sequence[str] = (),
    rescore: bool = False,
) -> LinkageRun:
    """Score candidate pairs of standardised frames with a held model (:func:`run_splink`
    describes the output). With ``rescore``, each frame carries a boolean ``rescore_flag``
    and only the candidate pairs touching a flagged record are scored: exactly the pairs
    of a full run that touch one, with the same scores."""
    from splink import Linker, block_on

    link = held.link
    present = set(held.present)
    identifiers = list(held.identifiers)
    deterministic_ids = list(held.deterministic)
    notes: list[str] = []
    features = apply_blocking_keys(features, identifiers, held.names, held.crowded)
    dialect = "spark" if backend == "spark" else "duckdb"
    rules = _prediction_rules(identifiers, present, deterministic_ids)
    if rescore:
        # only the flagged records and those they could pair with go to Splink
        every_rule = [*rules, *(block_on(f"{i}_block") for i in deterministic_ids)]
        features = [f.with_columns(pl.col(RESCORE_FLAG).fill_null(False)) for f in features]
        flagged = pl.concat([f.filter(pl.col(RESCORE_FLAG)) for f in features], how="diagonal_relaxed")
        features = [_rescore_neighbourhood(f, flagged, every_rule, dialect) for f in features]
    else:
        features = [f.drop(RESCORE_FLAG, strict=False) for f in features]
    db_api = _database_api(backend, spark_session)
    table_names = ["left_people", "right_people"] if link else ["people"]
    sdfs = [_register(db_api, f, n, backend) for f, n in zip(features, table_names, strict=True)]
    with _quiet_splink():
        tf_tables = {
            column: _register(db_api, held.tf[column], f"tf_people_{column}", backend) for column in TF_COLUMNS
        }

        def scoring_linker(rules: list[Any]):
            scoring = dict(held.settings)
            scoring["blocking_rules_to_generate_predictions"] = (
                _wrap_rules(rules, dialect, RESCORE_FLAG) if rescore else rules
            )
            scoring["additional_columns_to_retain"] = list(keep_columns)
            scorer = Linker(sdfs if link else sdfs[0], scoring, log_level=None)
            for column, table in tf_tables.items():
                scorer.table_management.register_term_frequency_lookup(table, column)
            return scorer

        linker = scoring_linker(rules)
        predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        pairs = pl.from_arrow(predictions.as_pyarrow_table())
        if deterministic_ids:
            # Every pair sharing a deterministic identifier, scored down to the floor, so
            # that _apply_deterministic_identifiers can judge each one.
            # block_on quotes identifiers for the backend's dialect (Spark reads "x" as a string)
            shared = scoring_linker([block_on(f"{i}_block") for i in deterministic_ids])
            extra = shared.inference.predict(
                threshold_match_probability=min(threshold, DETERMINISTIC_SCORE_FLOOR), warning_mode="never"
            )
            extra = pl.from_arrow(extra.as_pyarrow_table())
            pairs = pl.concat([pairs, extra], how="diagonal_relaxed").unique(
                [
                    c
                    for c in ("unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r")
                    if c in pairs.columns
                ],
                keep="first",
                maintain_order=True,
            )
    labels = level_labels(linker)
    gamma_cols = [c for c in pairs.columns if c.startswith("gamma_")]
    keep = [f"{c}_{s}" for c in keep_columns for s in ("l", "r")]
    if link:
        frame_l = (pl.col("source_dataset_l") == table_names[1]).cast(pl.Int8)
        frame_r = (pl.col("source_dataset_r") == table_names[1]).cast(pl.Int8)
    else:
        frame_l = frame_r = pl.lit(0, pl.Int8)
    pairs = pairs.select(
        pl.col("unique_id_l").cast(pl.Int64),
        pl.col("unique_id_r").cast(pl.Int64),
        frame_l.alias("frame_l"),
        frame_r.alias("frame_r"),
        pl.col("match_weight").cast(pl.Float64),
        pl.col("match_probability").cast(pl.Float64),
        *gamma_cols,
        *keep,
    )
    if link:
        # Splink orders a pair by dataset name; put the first frame's record on the left.
        swap = pl.col("frame_l") == 1
        pairs = pairs.with_columns(
            *[
                pl.when(swap).then(pl.col(f"{c}_r")).otherwise(pl.col(f"{c}_l")).alias(f"{c}_l")
                for c in ("unique_id", "frame", *keep_columns)
            ],
            *[
                pl.when(swap).then(pl.col(f"{c}_l")).otherwise(pl.col(f"{c}_r")).alias(f"{c}_r")
                for c in ("unique_id", "frame", *keep_columns)
            ],
        )
    if "date_of_death" in labels:
        # A person dies once: records of deaths more than a month apart are two people,
        # however alike (namesakes born the same day exist; only the NHS number or the
        # date of death tells them apart).
        differs = _level(labels, "date_of_death", "dates of death differ")
        pairs = pairs.filter(~(pl.col("gamma_date_of_death") == differs).fill_null(False))
    pairs = _apply_deterministic_identifiers(pairs, features, deterministic_ids, labels, notes, held.crowded)
    pairs = pairs.filter(pl.col("match_probability") >= threshold)
    return LinkageRun(pairs, held.settings, labels, [*held.notes, *notes])


def run_splink(
    features: list[pl.DataFrame],
    *,
    identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    deterministic_identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    threshold: float = DEFAULT_THRESHOLD,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    seed: int | None = None,
    max_pairs_u: float = 5e5,
    max_pairs_em: float = 5e5,
    deterministic_recall: float = 0.7,
    keep_columns: Sequence[str] = (),
) -> LinkageRun:
    """Train and run the person model on standardised frames (:func:`standardise_people`).

    One frame dedupes; two frames link (``link_only``). Each frame needs an integer
    ``unique_id``. Returns pairs at or above ``threshold`` with ``unique_id_l``,
    ``unique_id_r``, ``frame_l``/``frame_r`` (0 for the first frame, 1 for the second;
    a linked pair always has the first frame's record on the left), ``match_weight``,
    ``match_probability``, one ``gamma_<comparison>`` column per comparison, ``exact_on``
    (the deterministic identifiers the pair shares, which make it a match with
    probability 1) and ``<column>_l``/``<column>_r`` for each of ``keep_columns``.

    :func:`train_model` then :func:`score_model`; the trained model is in the result.
    """
    if _pair_count(features) == 0:
        return LinkageRun(_empty_pairs(), {}, {}, ["nothing to compare"])
    held = train_model(
        features,
        identifiers=identifiers,
        deterministic_identifiers=deterministic_identifiers,
        backend=backend,
        spark_session=spark_session,
        seed=seed,
        max_pairs_u=max_pairs_u,
        max_pairs_em=max_pairs_em,
        deterministic_recall=deterministic_recall,
    )
    return score_model(
        held, features, threshold=threshold, backend=backend, spark_session=spark_session,
        keep_columns=keep_columns,
    )


def _empty_pairs() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "unique_id_l": pl.Int64,
            "unique_id_r": pl.Int64,
            "frame_l": pl.Int8,
            "frame_r": pl.Int8,
            "match_weight": pl.Float64,
            "match_probability": pl.Float64,
            "exact_on": pl.String,
        }
    )


def _level(labels: dict[str, dict[int, str]], comparison: str, label: str) -> int:
    return next(v for v, text in labels[comparison].items() if text == label)


def _apply_deterministic_identifiers(
    pairs: pl.DataFrame,
    features: list[pl.DataFrame],
    identifiers: Sequence[str],
    labels: dict[str, dict[int, str]],
    notes: list[str],
    crowded: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Let deterministic identifiers decide, unless the rest of the record contradicts them.

    - Equal values: a match (probability 1), unless forename and date of birth both
      differ outright, or the model, counting the shared identifier, still scores the
      pair under :data:`DETERMINISTIC_SCORE_FLOOR` (a relative's number keyed on the
      wrong record): then the model's score stands.
    - Different values (both present): not a match, the pair is dropped, unless forename,
      surname and date of birth are all exactly equal (a number keyed wrongly): then the
      model's score, which already counts the difference against, stands.
    """
    if not identifiers:
        return pairs.with_columns(exact_on=pl.lit(None, pl.String))
    g = lambda c: pl.col(f"gamma_{c}")  # noqa: E731
    name_dob_agree = (
        (g("forename") == _level(labels, "forename", "same forename"))
        & (g("surname") == _level(labels, "surname", "same surname"))
        & (g("date_of_birth") == _level(labels, "date_of_birth", "same date of birth"))
    ).fill_null(False)
    for ident in identifiers:
        differs = _level(labels, ident, f"{ident.replace('_', ' ')} differs")
        pairs = pairs.filter(~(g(ident) == differs).fill_null(False) | name_dob_agree)
    exact = _identifier_pairs(features, identifiers, notes, crowded)
    contradicted = (
        (g("forename") == _level(labels, "forename", "forename differs"))
        & (g("date_of_birth") == _level(labels, "date_of_birth", "date of birth differs"))
    ).fill_null(False)
    # Every pair sharing an identifier is a candidate (the identifier is a blocking rule)
    # and was scored at the low prediction threshold: one missing here is contradicted
    # so strongly that even the shared identifier left it under 1%.
    merged = pairs.join(exact, on=["unique_id_l", "unique_id_r", "frame_l", "frame_r"], how="left")
    merged = merged.with_columns(exact_on=pl.when(contradicted).then(None).otherwise(pl.col("exact_on")))
    return merged.with_columns(
        match_probability=pl.when(pl.col("exact_on").is_not_null())
        .then(1.0)
        .otherwise(pl.col("match_probability")),
    )


def identity_term_frequencies(
    features: list[pl.DataFrame], column: str, *, with_total: bool = False, counts: bool = False
) -> pl.DataFrame | tuple[pl.DataFrame, int]:
    """Term frequencies of ``column`` counted once per distinct identity.

    Splink's default counts a name once per record, so a person recorded fifteen times
    (a finder in many reports) makes their own rare name look common and their records
    then fail to link on it. Here a name counts once per distinct (forename, surname,
    date of birth): exact repeats of one identity collapse, different people sharing a
    name still count separately. Returns ``<column>``, ``tf_<column>`` (or, with
    ``counts``, ``<column>``, ``len``: the identities per name), and with ``with_total``
    also the number of identities the frequencies are over.
    """
    identities = pl.concat([f.select("forename", "surname", "date_of_birth") for f in features]).unique()
    per_name = identities.filter(pl.col(column).is_not_null()).group_by(column).len()
    total = int(per_name["len"].sum())
    out = per_name if counts else per_name.select(column, (pl.col("len") / max(total, 1)).alias(f"tf_{column}"))
    out = out.sort(column)
    return (out, total) if with_total else out


#: Smallest m probability a trained level keeps. Unsupervised training on clean stretches
#: of data can drive m towards 0 ("sex never differs between records of one person"),
#: which would let one keying error veto a match outright; 1 in 500 records caps the
#: evidence against at about 9 bits per comparison.
M_PROBABILITY_FLOOR = 0.002


def _hold_disagreement_levels(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``model`` whose last ("differs") level of every comparison keeps its m."""
    out = regularise_model(model)
    for comparison in out["comparisons"]:
        comparison["comparison_levels"][-1]["fix_m_probability"] = True
    return out


def _release_levels(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``model`` with no level's m held fixed."""
    out = copy.deepcopy(model)
    for comparison in out["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("fix_m_probability", None)
    return out


def regularise_model(model: dict[str, Any], m_floor: float = M_PROBABILITY_FLOOR) -> dict[str, Any]:
    """A copy of a trained Splink model with every level's m probability at least ``m_floor``."""
    out = copy.deepcopy(model)
    for comparison in out["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m = level.get("m_probability")
            if isinstance(m, (int, float)) and m < m_floor:
                level["m_probability"] = m_floor
    return out


#: Pairs sharing a deterministic identifier but scored under this are not forced to match.
DETERMINISTIC_SCORE_FLOOR = 0.01
#: An identifier value shared by more records than this is a placeholder or an error,
#: not a person: it links nothing deterministically.
MAX_RECORDS_PER_IDENTIFIER = 200


def _identifier_pairs(
    features: list[pl.DataFrame],
    identifiers: Sequence[str],
    notes: list[str],
    crowded: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Pairs of records sharing a value of a deterministic identifier (``exact_on``).

    Values shared by more than :data:`MAX_RECORDS_PER_IDENTIFIER` records are left out:
    counted here, or the ``crowded`` values given (a held model's)."""
    schema = {
        "unique_id_l": pl.Int64,
        "unique_id_r": pl.Int64,
        "frame_l": pl.Int8,
        "frame_r": pl.Int8,
        "exact_on": pl.String,
    }
    parts = []
    for ident in identifiers:
        sides = [
            f.select(
                pl.col("unique_id"), pl.col(ident).alias("_v"), pl.lit(i, pl.Int8).alias("_frame")
            ).filter(pl.col("_v").is_not_null())
            for i, f in enumerate(features)
        ]
        if crowded is None:
            values = pl.concat(sides)
            common = values.group_by("_v").len().filter(pl.col("len") > MAX_RECORDS_PER_IDENTIFIER).select("_v")
        else:
            common = pl.DataFrame({"_v": list(crowded.get(ident, ()))}, schema={"_v": pl.String})
        if common.height:
            notes.append(
                f"{common.height} {ident} value(s) shared by over {MAX_RECORDS_PER_IDENTIFIER} records ignored"
            )
            sides = [s.join(common, on="_v", how="anti") for s in sides]
        left, right = sides[0], sides[-1]
        joined = left.join(right, on="_v", suffix="_r").rename({"unique_id": "unique_id_l"})
        if len(features) == 1:
            joined = joined.filter(pl.col("unique_id_l") < pl.col("unique_id_r"))
        parts.append(
            joined.select(
                "unique_id_l",
                "unique_id_r",
                pl.lit(ident).alias("exact_on"),
                pl.lit(0, pl.Int8).alias("frame_l"),
                pl.lit(len(features) - 1, pl.Int8).alias("frame_r"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(parts)
        .group_by("unique_id_l", "unique_id_r", "frame_l", "frame_r")
        .agg(pl.col("exact_on").sort().str.join(", "))
        .cast(schema)
    )


def level_labels(linker) -> dict[str, dict[int, str]]:
    """``{comparison output column: {comparison vector value: label}}`` of a trained linker."""
    out: dict[str, dict[int, str]] = {}
    for comparison in linker._settings_obj.comparisons:
        levels = {}
        for level in comparison.comparison_levels:
            levels[level.comparison_vector_value] = "null" if level.is_null_level else level.label_for_charts
        out[comparison.output_column_name] = levels
    return out


def evidence_expr(labels: dict[str, dict[int, str]]) -> pl.Expr:
    """A polars expression giving each scored pair its evidence in words.

    "same forename; surname typo; date of birth day and month swapped" - null comparisons
    are left out; a pair matched on a deterministic identifier starts "decided by nhs number".
    """
    parts = [pl.concat_str([pl.lit("decided by "), pl.col("exact_on").str.replace_all("_", " ")])]
    for column, mapping in labels.items():
        gamma = f"gamma_{column}"
        keyed = {k: v for k, v in mapping.items() if v != "null"}
        parts.append(pl.col(gamma).replace_strict(keyed, default=None, return_dtype=pl.String))
    return pl.concat_str(parts, separator="; ", ignore_nulls=True)


# --------------------------------------------------------------------------------------
# Public API


def _check_people(frame: pl.DataFrame, name: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks required column(s) {missing}; needs {list(REQUIRED_COLUMNS)}")
    if frame["id"].null_count():
        raise ValueError(f"{name} frame has null ids")
    if frame["id"].n_unique() != frame.height:
        raise ValueError(f"{name} frame has duplicate ids: each row needs its own id")


def link_people(
    left: pl.DataFrame,
    right: pl.DataFrame | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    identifier_columns: Sequence[str] = DEFAULT_IDENTIFIERS,
    deterministic_identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    seed: int | None = None,
    with_evidence: bool = False,
) -> pl.DataFrame:
    """Find records of the same person: dedupe ``left``, or link ``left`` to ``right``.

    Args:
        left, right: polars frames with ``id`` (unique within the frame), ``forename``,
            ``surname``, ``date_of_birth`` (``Date`` or ISO text) and optionally
            ``postcode`` (any country's format), ``sex`` and ``nhs_number`` (or the
            other ``identifier_columns``), and ``date_of_death`` where the records are of
            deaths. Without ``right``, ``left`` is deduplicated.
        threshold: keep pairs whose match probability is at least this (default
            :data:`DEFAULT_THRESHOLD`, 0.9).
        backend: ``"duckdb"`` (default, in process) or ``"spark"`` for very large data
            (needs ``pyspark`` and Splink's Spark extras; pass ``spark_session`` or one
            is created).
        identifier_columns: columns holding identifiers compared exactly: equal values
            are strong evidence for a match, different values strong evidence against.
        deterministic_identifiers: those of ``identifier_columns`` that decide whenever
            both records carry one: equal values are a match (probability 1), different
            values are not (the pair is dropped). A valid NHS number by default. A value
            shared by more than :data:`MAX_RECORDS_PER_IDENTIFIER` records is ignored as a
            placeholder.
        seed: mixed into the sampling that estimates ``u``. Splink 5 samples record pairs
            by a hash of the record ids, so the same inputs give the same output with or
            without a seed (and twice as fast without).
        with_evidence: also return ``match_weight`` and ``evidence`` (the comparison
            levels in words, e.g. "forename nickname or shared part; same surname").

    Returns:
        A polars frame ``id_l``, ``id_r``, ``match_probability`` (plus ``match_weight``
        and ``evidence`` when asked), one row per predicted match, highest probability
        first. When deduplicating, ``id_l`` and ``id_r`` are both ids of ``left``; when
        linking, ``id_l`` is from ``left`` and ``id_r`` from ``right``.

    The model is trained unsupervised on the frames themselves, so very small frames
    (tens of rows) give rougher estimates than thousands of rows.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    _check_people(left, "left")
    frames = [left]
    if right is not None:
        _check_people(right, "right")
        frames.append(right)
    features = [
        standardise_people(f, identifier_columns)
        .with_row_index("unique_id")
        .with_columns(pl.col("unique_id").cast(pl.Int64))
        for f in frames
    ]
    run = run_splink(
        features,
        identifiers=identifier_columns,
        deterministic_identifiers=deterministic_identifiers,
        threshold=threshold,
        backend=backend,
        spark_session=spark_session,
        seed=seed,
    )
    pairs = run.pairs
    ids = [f["id"] for f in frames]
    id_dtype = ids[0].dtype if right is None or ids[1].dtype == ids[0].dtype else pl.String
    lookups = [
        pl.DataFrame(
            {"unique_id": pl.int_range(0, s.len(), eager=True, dtype=pl.Int64), "id": s.cast(id_dtype)}
        )
        for s in ids
    ]
    left_ids, right_ids = lookups[0], lookups[-1]
    if with_evidence:
        pairs = pairs.with_columns(evidence=evidence_expr(run.level_labels))
    out = (
        pairs.join(left_ids.rename({"unique_id": "unique_id_l", "id": "id_l"}), on="unique_id_l")
        .join(right_ids.rename({"unique_id": "unique_id_r", "id": "id_r"}), on="unique_id_r")
        .sort(["match_probability", "id_l", "id_r"], descending=[True, False, False])
    )
    cols = ["id_l", "id_r", "match_probability"]
    if with_evidence:
        cols += ["match_weight", "evidence"]
    return out.select(cols)


def cluster_pairs(
    ids: pl.Series | Sequence[Any],
    pairs: pl.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> pl.DataFrame:
    """Connected components of the pairs at or above ``threshold``, with Splink's solver.

    Args:
        ids: every record id (records with no pair become clusters of one).
        pairs: ``id_l``, ``id_r``, ``match_probability`` (e.g. from :func:`link_people`).

    Returns:
        ``id``, ``cluster_id`` (the smallest id in the cluster, so the same pairs always
        give the same cluster ids), ``cluster_size``.
    """
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    ids = pl.Series("id", ids) if not isinstance(ids, pl.Series) else ids.rename("id")
    if ids.n_unique() != ids.len():
        raise ValueError("cluster_pairs needs unique ids")
    # Splink's solver runs on integer node ids (positions): much faster than long text keys.
    nodes = (
        pl.DataFrame({"id": ids}).with_row_index("node", offset=0).with_columns(pl.col("node").cast(pl.Int64))
    )
    edges = (
        pairs.filter(pl.col("match_probability") >= threshold)
        .select(
            pl.col("id_l").cast(ids.dtype),
            pl.col("id_r").cast(ids.dtype),
            pl.col("match_probability").cast(pl.Float64),
        )
        .join(nodes.rename({"id": "id_l", "node": "node_l"}), on="id_l")
        .join(nodes.rename({"id": "id_r", "node": "node_r"}), on="id_r")
        .select("node_l", "node_r", "match_probability")
    )
    with _quiet_splink():
        db_api = DuckDBAPI()
        cc = cluster_pairwise_predictions_at_threshold(
            nodes.select("node").to_arrow(),
            edges.to_arrow(),
            db_api=db_api,
            node_id_column_name="node",
            edge_id_column_name_left="node_l",
            edge_id_column_name_right="node_r",
            threshold_match_probability=threshold,
        )
        components = pl.from_arrow(cc.as_pyarrow_table()).select(
            pl.col("node").cast(pl.Int64), pl.col("cluster_id").cast(pl.Int64).alias("_component")
        )
    out = nodes.join(components, on="node", how="left", maintain_order="left")
    # Splink names a cluster after one of its members; use the smallest id so it is stable.
    return out.with_columns(
        pl.col("id").min().over("_component").alias("cluster_id"),
        pl.len().over("_component").cast(pl.Int64).alias("cluster_size"),
    ).select("id", "cluster_id", "cluster_size")


def dedupe_people(
    people: pl.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    **link_kwargs: Any,
) -> pl.DataFrame:
    """``people`` with ``cluster_id`` and ``cluster_size``: one cluster per person found.

    Runs :func:`link_people` on ``people`` alone, then :func:`cluster_pairs`.
    """
    pairs = link_people(people, threshold=threshold, **link_kwargs)
    clusters = cluster_pairs(people["id"], pairs, threshold=threshold)
    return people.join(clusters, on="id", how="left", maintain_order="left")
