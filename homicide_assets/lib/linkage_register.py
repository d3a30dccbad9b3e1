"""From staged partner feeds to person keys and one register row per real death.

Pure library code (no Dagster). Three steps, each a public function the assets in
``defs/linkage`` call:

1. :func:`person_records` gathers every named person from the staged feeds: the deceased
   of ``death_reports``, ``me_deaths`` and ``inquests``, the subjects of
   ``safeguarding_contacts`` and the finders, suspects, witnesses and others of
   ``death_report_persons``.
2. :func:`match_people` scores pairs of those records with the Splink model of
   :mod:`homicide_assets.lib.linkage` (pseudonymised NHS numbers, police nominal ids and
   phone numbers compared exactly) and adds the exact links a partner gives us: an
   inquest that cites the police report id. :func:`cluster_people` turns the pairs into
   one ``person_key`` per person (a keyed pseudonym, stable for the same inputs).
3. :func:`build_death_register` groups the deceased records of each person into deaths
   (one police report per death), picks the best value of each field across sources,
   lists the disagreements between sources in plain words, and the services (from
   ``safeguarding_contacts``) that knew the person before the death.

The register's columns are the public contract of ``shared/design/outputs.md``.
"""

from __future__ import annotations

import csv
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from homicide_assets.lib.geography import la_of_points
from homicide_assets.lib.held import load_frames as _load_frames
from homicide_assets.lib.held import save_frames
from homicide_assets.lib.linkage import (
    DEFAULT_THRESHOLD,
    RESCORE_FLAG,
    Backend,
    HeldModel,
    LinkageRun,
    evidence_expr,
    extend_model,
    informative_columns,
    score_model,
    standardise_people,
    train_model,
)
from homicide_assets.lib.pseudonym import PSEUDONYM_HEX
from homicide_assets.lib.settings import SEEDS_DIR

PERSON_FEEDS = ("death_reports", "death_report_persons", "me_deaths", "inquests", "safeguarding_contacts")
DECEASED_FEEDS = ("death_reports", "me_deaths", "inquests")
#: Identifiers compared exactly: keyed pseudonyms of the NHS number, police nominal id, phone.
PLATFORM_IDENTIFIERS = ("nhs_number", "nominal_id", "phone")
#: Pairs at or above this probability are kept in ``linkage/person_matches`` (for review).
MATCH_REVIEW_THRESHOLD = 0.5
#: Pairs at or above this probability join two records into one person.
CLUSTER_THRESHOLD = DEFAULT_THRESHOLD
#: Dates of death further apart than this many days are a disagreement between sources.
DATE_OF_DEATH_TOLERANCE_DAYS = 1

#: Acute trust -> the local authority of its main hospital: the place of a hospital death
#: the police did not attend, and the last fallback for any death the trust knows of.
TRUST_LA = {
    "uhb": "E08000025",
    "swbh": "E08000028",
    "rwt": "E08000031",
    "dgft": "E08000027",
    "wht": "E08000030",
    "uhcw": "E08000026",
}
#: Coroner area -> local authority, only where the area is a single authority.
CORONER_LA = {"coroner_cov": "E08000026"}

FEED_WORDS = {
    "death_reports": "police report",
    "me_deaths": "medical examiner",
    "inquests": "inquest",
    "safeguarding_contacts": "safeguarding contact",
    "death_report_persons": "police report person",
}
#: Police classifications an inquest conclusion of unlawful killing contradicts.
NOT_HOMICIDE = ("natural", "accidental", "suspected_suicide", "drug_related", "road_traffic", "other")
HOMICIDE = ("homicide", "suspected_homicide")
#: Inquest conclusions of a death police would be expected to have attended.
UNNATURAL_CONCLUSIONS = (
    "unlawful_killing",
    "lawful_killing",
    "suicide",
    "accident_misadventure",
    "drug_related",
    "road_traffic_collision",
    "open",
)

PERSON_COLUMNS = {
    "record_key": pl.String,
    "feed": pl.String,
    "partner_id": pl.String,
    "role": pl.String,
    "forename": pl.String,
    "surname": pl.String,
    "date_of_birth": pl.Date,
    "sex": pl.String,
    "postcode": pl.String,
    "nhs_number": pl.String,
    "nominal_id": pl.String,
    "phone": pl.String,
    "report_id": pl.String,
    "cited_report_id": pl.String,
    "date_of_death": pl.Date,
    "extract_date": pl.Date,
}

DEATH_REGISTER_SCHEMA = {
    "death_id": pl.String,
    "person_key": pl.String,
    "police_report_id": pl.String,
    "source_records": pl.List(pl.String),
    "date_of_death": pl.Date,
    "la_code": pl.String,
    "sex": pl.String,
    "age_at_death": pl.Int64,
    "police_classification": pl.String,
    "inquest_conclusion": pl.String,
    "icd10_underlying": pl.String,
    "known_to_services": pl.List(pl.String),
    "disagreements": pl.List(pl.String),
    "match_probability": pl.Float64,
}
DEATH_REGISTER_COLUMNS = tuple(DEATH_REGISTER_SCHEMA)

PERSON_MATCH_SCHEMA = {
    "record_key_l": pl.String,
    "record_key_r": pl.String,
    "feed_l": pl.String,
    "feed_r": pl.String,
    "role_l": pl.String,
    "role_r": pl.String,
    "match_probability": pl.Float64,
    "match_weight": pl.Float64,
    "evidence": pl.String,
    "linked": pl.Boolean,
}
PERSON_CLUSTER_SCHEMA = {
    "record_key": pl.String,
    "feed": pl.String,
    "partner_id": pl.String,
    "role": pl.String,
    "person_key": pl.String,
    "cluster_size": pl.Int64,
    "match_probability": pl.Float64,
}


# --------------------------------------------------------------------------------------
# 1. Person records


def _col(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    if name in frame.columns:
        return pl.col(name).cast(dtype)
    return pl.lit(None, dtype)


def _person_rows(frame: pl.DataFrame, feed: str, mapping: dict[str, str | pl.Expr]) -> pl.DataFrame:
    exprs = []
    for out, dtype in PERSON_COLUMNS.items():
        src = mapping.get(out, out)
        if isinstance(src, pl.Expr):
            exprs.append(src.cast(dtype).alias(out))
        elif src is None:
            exprs.append(pl.lit(None, dtype).alias(out))
        else:
            exprs.append(_col(frame, src, dtype).alias(out))
    return frame.select(exprs)


def person_records(staged: Mapping[str, pl.DataFrame | None]) -> pl.DataFrame:
    """Every named person in the staged feeds, one row per record key.

    Columns: ``record_key``, ``feed``, ``partner_id``, ``role`` (``deceased`` for the
    subject of a death report, medical examiner death or inquest; ``subject`` for a
    safeguarding contact; the recorded role for ``death_report_persons``), the names,
    ``date_of_birth``, ``sex``, ``postcode`` (home postcode where the feed has one),
    ``nhs_number``/``nominal_id``/``phone`` (keyed pseudonyms), ``report_id`` (the police
    report the record belongs to), ``cited_report_id`` (an inquest's police report id),
    ``date_of_death`` and ``extract_date``. A missing or empty feed contributes nothing.
    """
    mappings: dict[str, dict[str, Any]] = {
        "death_reports": {
            "role": pl.lit("deceased"),
            "postcode": "home_postcode",
            "nhs_number": "nhs_number_key",
            "nominal_id": None,
            "phone": None,
            "cited_report_id": None,
        },
        "death_report_persons": {
            "role": "role",
            "sex": None,
            "nhs_number": None,
            "nominal_id": "nominal_id_key",
            "phone": "phone_key",
            "cited_report_id": None,
            "date_of_death": None,
        },
        "me_deaths": {
            "role": pl.lit("deceased"),
            "postcode": "home_postcode",
            "nhs_number": "nhs_number_key",
            "nominal_id": None,
            "phone": None,
            "report_id": None,
            "cited_report_id": None,
        },
        "inquests": {
            "role": pl.lit("deceased"),
            "sex": None,
            "postcode": None,
            "nhs_number": None,
            "nominal_id": None,
            "phone": None,
            "report_id": None,
            "cited_report_id": "police_report_id",
        },
        "safeguarding_contacts": {
            "role": pl.lit("subject"),
            "sex": None,
            "nominal_id": None,
            "phone": None,
            "nhs_number": "nhs_number_key",
            "report_id": None,
            "cited_report_id": None,
            "date_of_death": None,
        },
    }
    parts = []
    for feed in PERSON_FEEDS:
        frame = staged.get(feed)
        if frame is None or frame.is_empty():
            continue
        mapping = {"feed": pl.lit(feed), "partner_id": "_partner_id", "extract_date": "_extract_date"}
        mapping.update(mappings[feed])
        parts.append(_person_rows(frame, feed, mapping))
    if not parts:
        return pl.DataFrame(schema=PERSON_COLUMNS)
    records = pl.concat(parts, how="vertical")
    if records["record_key"].n_unique() != records.height:
        dup = records.filter(pl.col("record_key").is_duplicated())["record_key"].head(3).to_list()
        raise ValueError(f"person records repeat record keys (staged feeds must be one row per key): {dup}")
    return records.sort("record_key")


# --------------------------------------------------------------------------------------
# 2. Person matches and clusters


@dataclass
class PersonMatching:
    """Pairs of person records that may be the same person, with the model behind them.

    ``estimated``: whether the model was estimated on this run (else the held model was
    reused) and ``model_reason`` why; ``rescored``: the record keys whose candidate pairs
    were scored on this run (every record when the model was estimated or nothing was held
    to merge with); ``changes``: counts of ``new``, ``changed``, ``removed`` and
    ``unchanged`` records against the held state; ``state``: what to hold for the next run
    (:class:`LinkageState`)."""

    matches: pl.DataFrame  # PERSON_MATCH_SCHEMA
    model: dict[str, Any]
    training_notes: list[str]
    estimated: bool = True
    model_reason: str = ""
    rescored: pl.Series | None = None
    changes: dict[str, int] = field(default_factory=dict)
    state: LinkageState | None = None


#: Re-estimate a held model once the records added, changed or removed since it was
#: estimated (counted over every run in between) reach this share of the records it was
#: estimated on. Below it, the trained parameters (m, u, the prior, name frequencies) of
#: a model estimated on hundreds of thousands of records would move by less than their
#: own sampling noise.
REESTIMATE_FRACTION = 0.10
#: Bump when the held state's files change shape.
STATE_FORMAT = 1


def linkage_code_version() -> str:
    """sha256 of the code and reference data that define the model and the matches
    (``lib/linkage.py``, ``lib/linkage_register.py``, ``seeds/nicknames.csv``): a held model
    or held matches from other code are not reused."""
    import hashlib
    from pathlib import Path

    from homicide_assets.lib import linkage

    digest = hashlib.sha256()
    for path in (Path(linkage.__file__), Path(__file__), SEEDS_DIR / "nicknames.csv"):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class LinkageState:
    """What ``linkage/person_matches`` holds between runs (a folder, :meth:`save`/:meth:`load`).

    ``model``: the held Splink model; ``records``: the person records as last matched;
    ``matches``: the pairs then (``PERSON_MATCH_SCHEMA``); ``meta``: the code version,
    seed and thresholds they were made with, the records the model was estimated on and
    the records added, changed or removed since (``changes_since_estimate``).
    """

    model: HeldModel
    records: pl.DataFrame | None
    matches: pl.DataFrame | None
    meta: dict[str, Any]
    #: each held record's standardised comparison features (``record_key`` and the columns
    #: of :func:`~homicide_assets.lib.linkage.standardise_people`): a later run standardises
    #: only its new and changed records
    features: pl.DataFrame | None = None

    def save(self, folder: Path) -> None:
        """Replace ``folder`` with this state: written beside it, then renamed into place,
        so a crash leaves the old state or the new one (or none: the next run estimates)."""
        import json
        import shutil
        import uuid

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.model.save(tmp / "model")
            if self.records is not None:
                self.records.write_parquet(tmp / "records.parquet")
            if self.matches is not None:
                self.matches.write_parquet(tmp / "matches.parquet")
            if self.features is not None:
                self.features.write_parquet(tmp / "features.parquet")
            (tmp / "state.json").write_text(json.dumps(self.meta, sort_keys=True, indent=1), encoding="utf-8")
            old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
            if folder.exists():
                folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LinkageState | None:
        """The state in ``folder``; None when there is none or it cannot be read (then
        the next run estimates a model)."""
        import json

        folder = Path(folder)
        try:
            meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            if meta.get("format") != STATE_FORMAT:
                return None
            model = HeldModel.load(folder / "model")
            records = pl.read_parquet(folder / "records.parquet") if (folder / "records.parquet").exists() else None
            matches = pl.read_parquet(folder / "matches.parquet") if (folder / "matches.parquet").exists() else None
            path = folder / "features.parquet"
            features = pl.read_parquet(path) if path.exists() else None
        except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
            return None
        return cls(model, records, matches, meta, features)


def _record_changes(records: pl.DataFrame, previous: pl.DataFrame | None) -> dict[str, pl.Series]:
    """Record keys ``new`` (not held), ``changed`` (held with other values) and ``removed``."""
    keys = records["record_key"]
    if previous is None:
        empty = pl.Series("record_key", [], dtype=pl.String)
        return {"new": keys, "changed": empty, "removed": empty}
    cols = list(PERSON_COLUMNS)
    differs = records.join(previous.select(cols).cast(PERSON_COLUMNS), on=cols, how="anti", nulls_equal=True)
    held = previous.select("record_key")
    by_key = {"on": "record_key", "maintain_order": "left"}
    return {
        "new": differs.join(held, how="anti", **by_key)["record_key"],
        "changed": differs.join(held, how="semi", **by_key)["record_key"],
        "removed": held.join(records.select("record_key"), how="anti", **by_key)["record_key"],
    }


def _standardised(
    records: pl.DataFrame, previous: LinkageState | None, delta: dict[str, pl.Series], code_version: str
) -> pl.DataFrame:
    """``standardise_people(records)`` with ``record_key`` first, in the records' order. A
    held state of the same code keeps its records' features: only the new and changed
    records are standardised (each row's features are its own row's alone, so the frame is
    the same as standardising every record: ``test_linkage_incremental``)."""
    def standardise(frame: pl.DataFrame) -> pl.DataFrame:
        out = standardise_people(frame, PLATFORM_IDENTIFIERS)
        return out.select(frame["record_key"], *out.columns)

    held = previous.features if previous is not None else None
    if held is None or previous.meta.get("code_version") != code_version or "record_key" not in held.columns:
        return standardise(records)
    todo = pl.concat([delta["new"], delta["changed"]])
    fresh = standardise(records.filter(pl.col("record_key").is_in(todo.implode())))
    kept = held.filter(~pl.col("record_key").is_in(todo.implode()))
    if kept.columns != fresh.columns:
        return standardise(records)
    every = pl.concat([kept, fresh.cast(dict(kept.schema))])
    out = records.select("record_key").join(every, on="record_key", how="left", maintain_order="left")
    return out if out.height == records.height else standardise(records)


def _model_decision(
    previous: LinkageState | None,
    present: list[str],
    seed: int | None,
    backend: str,
    changes: int,
    reestimate: bool,
    reestimate_fraction: float,
    code_version: str,
) -> str | None:
    """Why the model must be estimated on this run, or None to reuse the held one."""
    if previous is None:
        return "no model held (a fresh data directory, or the held state could not be read)"
    if reestimate:
        return "asked for (reestimate)"
    meta = previous.meta
    if meta.get("code_version") != code_version:
        return "the linkage code changed since the model was estimated"
    if meta.get("seed") != seed:
        return "the sampling seed changed"
    if meta.get("backend") != backend:
        return "the backend changed (a model holds SQL in its backend's dialect)"
    if sorted(present) != sorted(previous.model.present):
        return "the columns carrying information changed"
    since = int(meta.get("changes_since_estimate", 0)) + changes
    trained = max(previous.model.trained_records, 1)
    if since >= reestimate_fraction * trained:
        return (
            f"{since:,} records added, changed or removed since it was estimated on {trained:,}: "
            f"at least {reestimate_fraction:.0%}"
        )
    return None


def match_people(
    records: pl.DataFrame,
    *,
    threshold: float = CLUSTER_THRESHOLD,
    review_threshold: float = MATCH_REVIEW_THRESHOLD,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    seed: int | None = None,
    previous: LinkageState | None = None,
    reestimate: bool = False,
    reestimate_fraction: float = REESTIMATE_FRACTION,
) -> PersonMatching:
    """Score pairs of person records (``linkage/person_matches``).

    Returns pairs at or above ``review_threshold`` with ``linked`` true from
    ``threshold``, each with the evidence in words, plus exact links (probability 1):
    an inquest citing a police report is the deceased of that report. Pairs the data
    rules out are dropped: the deceased of a report and a person recorded against the
    same report (a finder is not the body).

    Without ``previous`` the model is estimated on ``records`` and every candidate pair
    scored. With ``previous`` (the :class:`LinkageState` of an earlier run) the held
    model is reused unless :func:`_model_decision` says otherwise (``reestimate``; the
    records added, changed or removed since it was estimated reach ``reestimate_fraction``
    of those it was estimated on; other code, seed or informative columns): then only the
    candidate pairs touching a new or changed record are scored, the held pairs touching
    a changed or removed record are dropped and the rest kept. The result equals scoring
    every pair with the same held model (``test_linkage_incremental``).
    """
    code_version = linkage_code_version()
    if records.height < 2:
        return PersonMatching(
            pl.DataFrame(schema=PERSON_MATCH_SCHEMA), {}, ["fewer than two records"],
            model_reason="fewer than two records", rescored=records["record_key"],
        )
    score_threshold = min(review_threshold, threshold)
    held_records = previous.records if previous is not None else None
    delta = _record_changes(records, held_records)
    standardised = _standardised(records, previous, delta, code_version)
    features = (
        standardised.drop("record_key")
        .with_row_index("unique_id")
        .with_columns(pl.col("unique_id").cast(pl.Int64))
    )
    present = informative_columns([features], PLATFORM_IDENTIFIERS)
    n_changes = sum(s.len() for s in delta.values())
    reason = _model_decision(
        previous, present, seed, backend, n_changes, reestimate, reestimate_fraction, code_version
    )
    if reason is None and (
        previous.matches is None
        or held_records is None
        or previous.meta.get("score_threshold") != score_threshold
    ):
        incremental = False
    else:
        incremental = reason is None
    notes: list[str] = []
    if reason is not None:
        held = train_model(
            [features],
            identifiers=PLATFORM_IDENTIFIERS,
            backend=backend,
            spark_session=spark_session,
            seed=seed,
        )
        changes_since = 0
    else:
        held, added = extend_model(previous.model, [features])
        if added:
            notes.append(f"{added} names first seen added to the held model's name tables")
        changes_since = int(previous.meta.get("changes_since_estimate", 0)) + n_changes
    touched = pl.concat([delta["new"], delta["changed"]])
    if incremental:
        features = features.with_columns(records["record_key"].is_in(touched).alias(RESCORE_FLAG))
        if touched.len():
            run = score_model(held, [features], threshold=score_threshold, backend=backend,
                              spark_session=spark_session, rescore=True)
        else:
            run = LinkageRun(_empty_scored(), held.settings, {}, list(held.notes))
        rescored = touched.sort()
    else:
        run = score_model(held, [features], threshold=score_threshold, backend=backend, spark_session=spark_session)
        rescored = records["record_key"]
    ids = records.select(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("unique_id"),
        "record_key",
        "feed",
        "role",
        "report_id",
    )
    pairs = run.pairs
    if run.level_labels:
        pairs = (
            pairs.with_columns(evidence=evidence_expr(run.level_labels))
            .join(ids.rename(lambda c: f"{c}_l"), on="unique_id_l")
            .join(ids.rename(lambda c: f"{c}_r"), on="unique_id_r")
        )
        same_report = (pl.col("report_id_l") == pl.col("report_id_r")).fill_null(False) & (
            (pl.col("role_l") == "deceased") | (pl.col("role_r") == "deceased")
        )
        pairs = pairs.filter(~same_report)
    else:
        pairs = pl.DataFrame(schema={c: t for c, t in PERSON_MATCH_SCHEMA.items() if c != "linked"})
    parts = []
    if incremental:
        gone = pl.concat([delta["changed"], delta["removed"]]).implode()
        parts.append(
            previous.matches.filter(~pl.col("record_key_l").is_in(gone) & ~pl.col("record_key_r").is_in(gone))
            .drop("linked")
            .cast({c: t for c, t in PERSON_MATCH_SCHEMA.items() if c != "linked"})
        )
    parts += [
        pairs.select(
            "record_key_l",
            "record_key_r",
            "feed_l",
            "feed_r",
            "role_l",
            "role_r",
            "match_probability",
            "match_weight",
            "evidence",
        ),
        _cited_report_links(records),
    ]
    matches = pl.concat(parts, how="vertical_relaxed")
    # One row per unordered pair, the record keys in order, the strongest evidence kept
    # (on a tie, the first: held pairs, then Splink's, then the cited reports').
    swap = pl.col("record_key_l") > pl.col("record_key_r")
    matches = matches.with_columns(
        *[
            pl.when(swap).then(pl.col(f"{c}_r")).otherwise(pl.col(f"{c}_l")).alias(f"{c}_l")
            for c in ("record_key", "feed", "role")
        ],
        *[
            pl.when(swap).then(pl.col(f"{c}_l")).otherwise(pl.col(f"{c}_r")).alias(f"{c}_r")
            for c in ("record_key", "feed", "role")
        ],
    )
    matches = (
        matches.sort("match_probability", descending=True, maintain_order=True)
        .unique(["record_key_l", "record_key_r"], keep="first", maintain_order=True)
        .with_columns(linked=pl.col("match_probability") >= threshold)
        .sort(["record_key_l", "record_key_r"])
        .select(list(PERSON_MATCH_SCHEMA))
        .cast(PERSON_MATCH_SCHEMA)
    )
    estimated_on = held.trained_records
    state = LinkageState(
        held,
        records.select(list(PERSON_COLUMNS)),
        matches,
        {
            "format": STATE_FORMAT,
            "code_version": code_version,
            "seed": seed,
            "backend": backend,
            "score_threshold": score_threshold,
            "estimated_on_records": estimated_on,
            "changes_since_estimate": changes_since,
        },
        standardised,
    )
    counts = {k: int(v.len()) for k, v in delta.items()}
    counts["unchanged"] = records.height - counts["new"] - counts["changed"]
    return PersonMatching(
        matches,
        held.settings,
        [*run.training_notes, *notes],
        estimated=reason is not None,
        model_reason=reason or "reused: the held model",
        rescored=rescored,
        changes=counts,
        state=state,
    )


def _empty_scored() -> pl.DataFrame:
    return pl.DataFrame(schema={"unique_id_l": pl.Int64, "unique_id_r": pl.Int64, "match_probability": pl.Float64})


def _cited_report_links(records: pl.DataFrame) -> pl.DataFrame:
    inquests = records.filter(pl.col("cited_report_id").is_not_null()).select(
        pl.col("record_key").alias("record_key_l"),
        pl.col("feed").alias("feed_l"),
        pl.col("role").alias("role_l"),
        pl.col("cited_report_id"),
    )
    reports = records.filter(pl.col("feed") == "death_reports").select(
        pl.col("record_key").alias("record_key_r"),
        pl.col("feed").alias("feed_r"),
        pl.col("role").alias("role_r"),
        pl.col("report_id").alias("cited_report_id"),
    )
    return inquests.join(reports, on="cited_report_id").select(
        "record_key_l",
        "record_key_r",
        "feed_l",
        "feed_r",
        "role_l",
        "role_r",
        pl.lit(1.0).alias("match_probability"),
        pl.lit(None, pl.Float64).alias("match_weight"),
        pl.concat_str([pl.lit("inquest cites police report "), pl.col("cited_report_id")]).alias("evidence"),
    )


def _components(nodes: pl.Series, edges: pl.DataFrame) -> pl.DataFrame:
    """``record_key`` -> ``component`` (smallest record key in it), via Splink's solver."""
    from homicide_assets.lib.linkage import cluster_pairs

    out = cluster_pairs(
        nodes,
        edges.select(
            pl.col("record_key_l").alias("id_l"),
            pl.col("record_key_r").alias("id_r"),
            pl.lit(1.0).alias("match_probability"),
        ),
        threshold=0.0,
    )
    return out.select(pl.col("id").alias("record_key"), pl.col("cluster_id").alias("component"))


def _best_link(records: pl.DataFrame, matches: pl.DataFrame, group_col: str) -> pl.DataFrame:
    """Each record's strongest linked pair inside its own group (null when alone)."""
    both = pl.concat(
        [
            matches.select(
                pl.col("record_key_l").alias("a"), pl.col("record_key_r").alias("b"), "match_probability"
            ),
            matches.select(
                pl.col("record_key_r").alias("a"), pl.col("record_key_l").alias("b"), "match_probability"
            ),
        ]
    )
    groups = records.select("record_key", group_col)
    inside = (
        both.join(groups.rename({"record_key": "a", group_col: "ga"}), on="a")
        .join(groups.rename({"record_key": "b", group_col: "gb"}), on="b")
        .filter(pl.col("ga") == pl.col("gb"))
    )
    return (
        inside.group_by("a")
        .agg(pl.col("match_probability").max().alias("best_link"))
        .rename({"a": "record_key"})
    )


def keyed_pseudonyms(values: pl.Series, key: bytes, domain: str) -> pl.Series:
    """:func:`homicide_assets.lib.pseudonym.pseudonym` of every value, computed with the
    one-shot C HMAC (several times faster on hundreds of thousands of keys; same output)."""
    out = [
        None
        if v is None or not v.strip()
        else hmac.digest(key, f"{domain}:{v.strip()}".encode(), "sha256").hex()[:PSEUDONYM_HEX]
        for v in values.to_list()
    ]
    return pl.Series(values.name, out, dtype=pl.String)


def _anchor_key(records: pl.DataFrame, group_col: str) -> pl.DataFrame:
    """Per group, the record the platform received first (then the smallest key)."""
    return (
        records.sort(["extract_date", "record_key"], nulls_last=True)
        .group_by(group_col, maintain_order=True)
        .agg(pl.col("record_key").first().alias("anchor_record"))
    )


def cluster_people(
    records: pl.DataFrame,
    matches: pl.DataFrame,
    key: bytes,
) -> pl.DataFrame:
    """One row per person record with its ``person_key`` (``linkage/person_clusters``).

    Records joined by linked pairs (``matches.linked``) are one person. ``person_key`` is
    the keyed pseudonym of the first-received record of the cluster, so the same inputs
    always give the same keys and a new record joining a person does not change its key.
    ``match_probability`` is the record's strongest link inside its cluster (1.0 for a
    cluster of one: nothing was joined).
    """
    if records.is_empty():
        return pl.DataFrame(schema=PERSON_CLUSTER_SCHEMA)
    linked = matches.filter(pl.col("linked"))
    components = _components(records["record_key"], linked)
    with_component = records.join(components, on="record_key", how="left")
    anchors = _anchor_key(with_component, "component")
    anchors = anchors.with_columns(person_key=keyed_pseudonyms(anchors["anchor_record"], key, "person"))
    best = _best_link(with_component, linked, "component")
    out = (
        with_component.join(anchors, on="component", how="left")
        .join(best, on="record_key", how="left")
        .with_columns(
            cluster_size=pl.len().over("component").cast(pl.Int64),
            match_probability=pl.col("best_link").fill_null(1.0),
        )
    )
    return out.select(list(PERSON_CLUSTER_SCHEMA)).cast(PERSON_CLUSTER_SCHEMA).sort("record_key")


# --------------------------------------------------------------------------------------
# 3. Deaths


@lru_cache(maxsize=1)
def postcode_district_la() -> dict[str, str]:
    """Postcode district (outward code) -> GSS code, from ``seeds/postcode_districts.csv``."""
    with (SEEDS_DIR / "postcode_districts.csv").open(newline="", encoding="utf-8") as fh:
        return {r["district"].strip().upper(): r["la_code"] for r in csv.DictReader(fh)}


def _district_la(postcode: pl.Expr) -> pl.Expr:
    district = postcode.str.to_uppercase().str.split(" ").list.first()
    return district.replace_strict(postcode_district_la(), default=None, return_dtype=pl.String)


#: Deceased records of one person whose dates of death are further apart than this are
#: different deaths (namesakes born the same day, joined through a third record).
SAME_DEATH_MAX_DAYS = 31


def _both_ways(matches: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(
        [
            matches.select(
                pl.col("record_key_l").alias("record_key"),
                pl.col("record_key_r").alias("anchor"),
                "match_probability",
            ),
            matches.select(
                pl.col("record_key_r").alias("record_key"),
                pl.col("record_key_l").alias("anchor"),
                "match_probability",
            ),
        ]
    )


def _attach(others: pl.DataFrame, anchors: pl.DataFrame, within: str, direct: pl.DataFrame) -> pl.DataFrame:
    """Each of ``others`` joins one of the ``anchors`` sharing its ``within`` group: the one
    whose police report it cites, else the one it matches best, else the nearest date of
    death, else the first. Returns ``record_key``, ``anchor``."""
    return (
        others.join(anchors, on=within)
        .join(direct, on=["record_key", "anchor"], how="left")
        .with_columns(
            cites=(pl.col("cited_report_id") == pl.col("anchor_report")).fill_null(False),
            p=pl.col("match_probability").fill_null(0.0),
            gap=(pl.col("date_of_death") - pl.col("anchor_dod")).dt.total_days().abs().fill_null(10**6),
        )
        .sort(["record_key", "cites", "p", "gap", "anchor"], descending=[False, True, True, False, False])
        .group_by("record_key", maintain_order=True)
        .agg(pl.col("anchor").first())
    )


def assign_deaths(records: pl.DataFrame, clusters: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
    """Group the deceased records into deaths: ``record_key`` -> ``death_group``.

    The deceased records of one person are one death, with two exceptions a person's
    cluster can hold when linkage joined two people through a third record:

    - dates of death more than :data:`SAME_DEATH_MAX_DAYS` apart are different deaths
      (a record with no date of death joins the dated record it matches best);
    - one death has at most one record of each source (one police report, one medical
      examiner's scrutiny, one inquest): see :func:`_split_one_per_source`.
    """
    schema = {"record_key": pl.String, "death_group": pl.String}
    deceased = records.filter(pl.col("role") == "deceased").join(
        clusters.select("record_key", "person_key"), on="record_key", how="left"
    )
    if deceased.is_empty():
        return pl.DataFrame(schema=schema)
    direct = _both_ways(matches)
    keep = ["record_key", "person_key", "feed", "report_id", "cited_report_id", "date_of_death"]
    deceased = deceased.select(keep)
    # 1. dates of death: a new death wherever a person's dates jump by more than a month
    dated = (
        deceased.filter(pl.col("date_of_death").is_not_null())
        .sort(["person_key", "date_of_death", "record_key"])
        .with_columns(
            jump=(pl.col("date_of_death").diff().over("person_key").dt.total_days() > SAME_DEATH_MAX_DAYS)
            .fill_null(False)
            .cast(pl.Int64)
        )
        .with_columns(
            seed=pl.concat_str(["person_key", pl.lit("#"), pl.col("jump").cum_sum().over("person_key")])
        )
    )
    undated = deceased.filter(pl.col("date_of_death").is_null())
    date_anchors = dated.select(
        "person_key",
        pl.col("record_key").alias("anchor"),
        pl.col("report_id").alias("anchor_report"),
        pl.col("date_of_death").alias("anchor_dod"),
        pl.col("seed").alias("anchor_seed"),
    )
    placed = _attach(undated, date_anchors, "person_key", direct).join(
        date_anchors.select("anchor", "anchor_seed"), on="anchor"
    )
    undated = undated.join(
        placed.select("record_key", pl.col("anchor_seed").alias("seed")), on="record_key", how="left"
    )
    undated = undated.with_columns(seed=pl.coalesce("seed", pl.concat_str(["person_key", pl.lit("#0")])))
    seeded = pl.concat([dated.drop("jump"), undated.select(dated.drop("jump").columns)])
    # 2. one record per source per death
    per_feed = seeded.group_by("seed", "feed").len()
    crowded_seeds = per_feed.filter(pl.col("len") > 1)["seed"].unique().implode()
    simple = seeded.filter(~pl.col("seed").is_in(crowded_seeds)).select(
        "record_key", pl.col("seed").alias("death_group")
    )
    crowded = seeded.filter(pl.col("seed").is_in(crowded_seeds))
    if crowded.is_empty():
        return simple.sort("record_key")
    keys = crowded["record_key"].implode()
    scores = {
        (a, b): p
        for a, b, p in direct.filter(pl.col("record_key").is_in(keys) & pl.col("anchor").is_in(keys))
        .select("record_key", "anchor", "match_probability")
        .iter_rows()
    }
    rows = []
    for group in crowded.partition_by("seed", maintain_order=True):
        rows.extend(_split_one_per_source(group.to_dicts(), scores))
    split = pl.DataFrame(rows, schema=schema, orient="row")
    return pl.concat([simple, split]).sort("record_key")


#: Which source anchors the deaths when a group holds several records of one source.
ANCHOR_PRIORITY = {"death_reports": 0, "inquests": 1, "me_deaths": 2}


def _split_one_per_source(records: list[dict], scores: dict[tuple[str, str], float]) -> list[tuple[str, str]]:
    """Split the records of one person and date into deaths holding at most one record of
    each source. The source with most records anchors a death each (police first on a
    tie); the others join, best first, the death whose police report they cite, else the
    anchor they match best, else the one nearest in date of death, while that death has
    no record of their source yet. A record left over is a death of its own."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["feed"]] = counts.get(r["feed"], 0) + 1
    anchor_feed = min(counts, key=lambda f: (-counts[f], ANCHOR_PRIORITY.get(f, 9), f))
    anchors = sorted((r for r in records if r["feed"] == anchor_feed), key=lambda r: r["record_key"])
    others = [r for r in records if r["feed"] != anchor_feed]
    holds = {a["record_key"]: {anchor_feed} for a in anchors}

    def gap(r: dict, a: dict) -> int:
        if r["date_of_death"] is None or a["date_of_death"] is None:
            return 10**6
        return abs((r["date_of_death"] - a["date_of_death"]).days)

    candidates = sorted(
        (
            (
                -int(r["cited_report_id"] is not None and r["cited_report_id"] == a["report_id"]),
                -scores.get((r["record_key"], a["record_key"]), 0.0),
                gap(r, a),
                a["record_key"],
                r["record_key"],
            ),
            r,
            a,
        )
        for r in others
        for a in anchors
    )
    placed: dict[str, str] = {}
    for _, r, a in candidates:
        if r["record_key"] in placed or r["feed"] in holds[a["record_key"]]:
            continue
        placed[r["record_key"]] = a["record_key"]
        holds[a["record_key"]].add(r["feed"])
    out = [(a["record_key"], a["record_key"]) for a in anchors]
    out += [(r["record_key"], placed.get(r["record_key"], r["record_key"])) for r in others]
    return out


def _best_value(frame: pl.DataFrame, value: str, priority: dict[str, int], name: str) -> pl.DataFrame:
    """Per death, the value most sources agree on (ties: the feed ranked first)."""
    ranked = frame.filter(pl.col(value).is_not_null()).with_columns(
        pl.col("feed").replace_strict(priority, default=99, return_dtype=pl.Int64).alias("_rank")
    )
    counts = ranked.group_by("death_group", value).agg(pl.len().alias("_n"), pl.col("_rank").min())
    return (
        counts.sort(["death_group", "_n", "_rank"], descending=[False, True, False])
        .group_by("death_group", maintain_order=True)
        .agg(pl.col(value).first().alias(name))
    )


def _describe(feed: str, partner: str) -> str:
    words = FEED_WORDS.get(feed, feed)
    return f"{words} ({partner})" if feed != "death_reports" else words


def build_death_register(
    staged: Mapping[str, pl.DataFrame | None],
    records: pl.DataFrame,
    clusters: pl.DataFrame,
    matches: pl.DataFrame,
    key: bytes,
    *,
    details: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per real death (``linkage/death_register``), columns per outputs.md.

    ``death_id`` is ``D`` and the keyed pseudonym of the first record received for the
    death (stable as more sources arrive). Best values: date of death, sex and date of
    birth are those most sources agree on (ties: medical examiner, then inquest, then
    police for dates; police, then medical examiner for sex); ``la_code`` is where the
    death happened: the police incident coordinates (or incident postcode district), else
    for a hospital death the trust's authority, else the home postcode district, else the
    trust or a single-authority coroner area. ``match_probability`` is the lowest, over the
    death's records, of each record's strongest link to another record of the same death
    (1.0 when one source alone reported it).
    """
    groups = assign_deaths(records, clusters, matches)
    if groups.is_empty():
        return pl.DataFrame(schema=DEATH_REGISTER_SCHEMA)
    deceased = groups.join(records, on="record_key", how="left").join(
        clusters.select("record_key", "person_key"), on="record_key", how="left"
    )
    if details is None:
        details = _feed_details(staged)
    deceased = deceased.join(details, on="record_key", how="left")

    anchors = _anchor_key(deceased, "death_group")
    anchors = anchors.with_columns(
        death_id=pl.lit("D") + keyed_pseudonyms(anchors["anchor_record"], key, "death").str.slice(0, 16)
    )
    # The person is the police report's deceased where there is one, else the first record's.
    person = (
        deceased.sort([pl.col("feed") != "death_reports", "extract_date", "record_key"], nulls_last=True)
        .group_by("death_group", maintain_order=True)
        .agg(pl.col("person_key").first())
    )
    date_rank = {"me_deaths": 0, "inquests": 1, "death_reports": 2}
    dod = _best_value(deceased, "date_of_death", date_rank, "best_date_of_death")
    dob = _best_value(deceased, "date_of_birth", date_rank, "best_date_of_birth")
    sex = _best_value(
        deceased.with_columns(pl.when(pl.col("sex").is_in(["m", "f", "x"])).then(pl.col("sex"))),
        "sex",
        {"death_reports": 0, "me_deaths": 1},
        "best_sex",
    )
    by_feed = deceased.sort(["extract_date", "record_key"], descending=[True, False], nulls_last=True)
    police = (
        by_feed.filter(pl.col("feed") == "death_reports")
        .group_by("death_group", maintain_order=True)
        .agg(
            pl.col("report_id").first().alias("police_report_id"),
            pl.col("classification").first().alias("police_classification"),
            pl.col("incident_la").first(),
            pl.col("incident_postcode_la").first(),
        )
    )
    inquest = (
        by_feed.filter(pl.col("feed") == "inquests")
        .group_by("death_group", maintain_order=True)
        .agg(
            pl.col("conclusion").drop_nulls().first().alias("inquest_conclusion"),
            pl.col("cited_report_id").drop_nulls().first().alias("cited_report_id"),
            pl.col("partner_id").first().alias("coroner"),
        )
    )
    me = (
        by_feed.filter(pl.col("feed") == "me_deaths")
        .group_by("death_group", maintain_order=True)
        .agg(
            pl.col("icd10_underlying").drop_nulls().first().alias("icd10_underlying"),
            pl.col("partner_id").first().alias("trust"),
            pl.col("partner_id")
            .filter(pl.col("place_of_death_type") == "hospital")
            .first()
            .alias("hospital_trust"),
        )
    )
    home_la = (
        deceased.with_columns(home_la=_district_la(pl.col("postcode")))
        .filter(pl.col("home_la").is_not_null())
        .group_by("death_group")
        .agg(pl.col("home_la").mode().sort().first())
    )
    summary = deceased.group_by("death_group").agg(
        pl.col("record_key").sort().alias("source_records"),
        pl.len().alias("n_records"),
    )
    best = _best_link(deceased.select("record_key", "death_group"), matches, "death_group")
    # A record with no direct link inside its death (joined through a third record of the
    # same person) counts with its strongest link inside the person's cluster.
    certainty = (
        deceased.select("record_key", "death_group")
        .join(best, on="record_key", how="left")
        .join(
            clusters.select("record_key", pl.col("match_probability").alias("_person_link")),
            on="record_key",
            how="left",
        )
        .group_by("death_group")
        .agg(pl.coalesce("best_link", "_person_link", pl.lit(0.0)).min().alias("match_probability"))
    )
    register = (
        summary.join(anchors, on="death_group", how="left")
        .join(person, on="death_group", how="left")
        .join(dod, on="death_group", how="left")
        .join(dob, on="death_group", how="left")
        .join(sex, on="death_group", how="left")
        .join(police, on="death_group", how="left")
        .join(inquest, on="death_group", how="left")
        .join(me, on="death_group", how="left")
        .join(home_la, on="death_group", how="left")
        .join(certainty, on="death_group", how="left")
    )
    register = register.with_columns(
        la_code=pl.coalesce(
            "incident_la",
            "incident_postcode_la",
            # a hospital death happened at the trust's hospital, not at home
            pl.col("hospital_trust").replace_strict(TRUST_LA, default=None, return_dtype=pl.String),
            "home_la",
            pl.col("trust").replace_strict(TRUST_LA, default=None, return_dtype=pl.String),
            pl.col("coroner").replace_strict(CORONER_LA, default=None, return_dtype=pl.String),
        ),
        age_at_death=_age(pl.col("best_date_of_birth"), pl.col("best_date_of_death")),
        match_probability=pl.when(pl.col("n_records") == 1).then(1.0).otherwise(pl.col("match_probability")),
        police_report_id=pl.coalesce("police_report_id", "cited_report_id"),
        _has_police_record=pl.col("police_classification").is_not_null()
        | pl.col("police_report_id").is_not_null(),
    )
    disagreements = _disagreements(deceased, register)
    services = _known_to_services(records, clusters, details, deceased, register)
    register = (
        register.join(disagreements, on="death_group", how="left")
        .join(services, on="death_group", how="left")
        .with_columns(
            pl.col("disagreements").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("known_to_services").fill_null(pl.lit([], pl.List(pl.String))),
        )
    )
    return (
        register.rename({"best_date_of_death": "date_of_death", "best_sex": "sex"})
        .select(list(DEATH_REGISTER_SCHEMA))
        .cast(DEATH_REGISTER_SCHEMA)
        .sort(["date_of_death", "death_id"], nulls_last=True)
    )


def load_frames(folder: Path, names: Sequence[str]) -> tuple[dict[str, pl.DataFrame], dict[str, Any]] | None:
    """The frames and meta :func:`save_frames` wrote; None when missing, unreadable or of
    another :data:`STATE_FORMAT`."""
    return _load_frames(folder, names, STATE_FORMAT)


class _HeldFrames:
    """Frames an incremental linkage asset holds between runs (one Parquet file per dataclass
    field) and ``meta``: saved and loaded by field name. Subclasses are dataclasses."""

    #: how the subclass's ``inputs`` are named when they change shape
    inputs_words: ClassVar[str] = "the inputs"
    inputs: pl.DataFrame
    meta: dict[str, Any]

    def save(self, folder: Path) -> None:
        frames = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
        save_frames(folder, frames, self.meta)

    @classmethod
    def load(cls, folder: Path):
        names = [f.name for f in fields(cls) if f.name != "meta"]
        got = load_frames(folder, names)
        return None if got is None else cls(**got[0], meta=got[1])

    def whole_because(self, inputs: pl.DataFrame, code_version: str) -> str | None:
        """Why these held frames cannot be updated in place (None when they can)."""
        if self.meta.get("code_version") != code_version:
            return "the linkage code changed"
        if self.inputs.schema != inputs.schema:
            return f"{self.inputs_words} changed shape"
        return None


@dataclass
class RegisterState(_HeldFrames):
    """What ``linkage/death_register`` holds between runs: per record, everything the
    register reads of it (``inputs``: the person record, its person key and strongest link,
    its feed details), the linked pairs (``links``), the register they made and the code
    version (``meta``)."""

    inputs_words: ClassVar[str] = "the register's inputs"
    inputs: pl.DataFrame
    links: pl.DataFrame
    register: pl.DataFrame
    meta: dict[str, Any]


@dataclass
class ClusterState(_HeldFrames):
    """What ``linkage/person_clusters`` holds between runs: per record what clustering reads
    of it (``inputs``), the linked pairs (``links``), the clusters they made, and ``meta``."""

    inputs_words: ClassVar[str] = "the clustering inputs"
    inputs: pl.DataFrame
    links: pl.DataFrame
    clusters: pl.DataFrame
    meta: dict[str, Any]


def _changed_keys(now: pl.DataFrame, before: pl.DataFrame) -> pl.Series:
    """Record keys new, changed or removed between two frames with a ``record_key``."""
    cols = now.columns
    return pl.concat(
        [
            now.join(before, on=cols, how="anti", nulls_equal=True)["record_key"],
            before.join(now.select("record_key"), on="record_key", how="anti")["record_key"],
        ]
    )


def _moved_link_keys(links: pl.DataFrame, before: pl.DataFrame) -> pl.Series:
    """Record keys at either end of a linked pair gained, lost or rescored."""
    cols = links.columns
    moved = pl.concat(
        [
            links.join(before, on=cols, how="anti", nulls_equal=True),
            before.join(links, on=cols, how="anti", nulls_equal=True),
        ]
    )
    return pl.concat([moved["record_key_l"], moved["record_key_r"]])


def _linked_pairs(matches: pl.DataFrame) -> pl.DataFrame:
    return (
        matches.filter(pl.col("linked"))
        .select("record_key_l", "record_key_r", "match_probability")
        .sort("record_key_l", "record_key_r")
    )


@dataclass
class ClusterUpdate:
    """Person clusters, whether made whole or only for the clusters touched
    (``records_reclustered``: their records, None when whole) and why; ``state`` to hold."""

    clusters: pl.DataFrame
    records_reclustered: int | None
    reason: str
    state: ClusterState


def update_person_clusters(
    records: pl.DataFrame,
    matches: pl.DataFrame,
    key: bytes,
    previous: ClusterState | None = None,
) -> ClusterUpdate:
    """:func:`cluster_people`, clustering again only the clusters touched since ``previous``.

    A cluster is a connected component of the linked pairs; its rows read only its own
    records (first received, keys) and pairs. The records touched are those new, changed
    or removed and those at either end of a linked pair gained, lost or rescored; they and
    every record of their clusters before are clustered again (no unchanged pair leaves
    that set, so it is whole components), the other rows are kept. The result equals
    :func:`cluster_people` on everything (``test_linkage_incremental``).
    """
    code_version = linkage_code_version()
    inputs = records.select("record_key", "feed", "partner_id", "role", "extract_date").sort("record_key")
    links = _linked_pairs(matches)
    meta = {"format": STATE_FORMAT, "code_version": code_version}
    reason = "no clusters held" if previous is None else previous.whole_because(inputs, code_version)
    if reason is not None:
        clusters = cluster_people(records, matches, key)
        return ClusterUpdate(clusters, None, reason, ClusterState(inputs, links, clusters, meta))
    touched = pl.concat([_changed_keys(inputs, previous.inputs), _moved_link_keys(links, previous.links)]).unique()
    old_keys = previous.clusters.filter(pl.col("record_key").is_in(touched.implode()))["person_key"].unique()
    again = pl.concat(
        [touched, previous.clusters.filter(pl.col("person_key").is_in(old_keys.implode()))["record_key"]]
    ).unique()
    again = again.filter(again.is_in(inputs["record_key"].implode()))
    part = cluster_people(
        records.filter(pl.col("record_key").is_in(again.implode())),
        matches.filter(pl.col("linked") & pl.col("record_key_l").is_in(again.implode())),
        key,
    )
    kept = previous.clusters.filter(
        ~pl.col("record_key").is_in(again.implode()) & pl.col("record_key").is_in(inputs["record_key"].implode())
    )
    clusters = pl.concat([kept.cast(PERSON_CLUSTER_SCHEMA), part.cast(PERSON_CLUSTER_SCHEMA)]).sort("record_key")
    return ClusterUpdate(
        clusters, again.len(), f"{again.len()} records clustered again", ClusterState(inputs, links, clusters, meta)
    )


@dataclass
class RegisterUpdate:
    """The death register, whether it was rebuilt whole or only for the persons touched
    (``persons_rebuilt``: their number, None when whole) and why; ``state`` to hold."""

    register: pl.DataFrame
    persons_rebuilt: int | None
    reason: str
    state: RegisterState


def _register_inputs(records: pl.DataFrame, clusters: pl.DataFrame, details: pl.DataFrame) -> pl.DataFrame:
    return (
        records.select(list(PERSON_COLUMNS))
        .join(clusters.select("record_key", "person_key", "match_probability"), on="record_key", how="left")
        .join(details, on="record_key", how="left")
        .sort("record_key")
    )


def update_death_register(
    staged: Mapping[str, pl.DataFrame | None],
    records: pl.DataFrame,
    clusters: pl.DataFrame,
    matches: pl.DataFrame,
    key: bytes,
    previous: RegisterState | None = None,
) -> RegisterUpdate:
    """:func:`build_death_register`, rebuilding only the deaths of the persons touched
    since ``previous`` (the :class:`RegisterState` of an earlier run).

    A register row is made from the records of one person (``person_key``): its deceased
    records, their feed details and linked pairs, and its safeguarding contacts. So the
    rows of every person none of whose records changed (values, person key, strongest
    link, feed details) or gained or lost a linked pair are kept; the persons, before and
    after, of the records that did are rebuilt from their records alone. The result equals
    :func:`build_death_register` on everything (``test_linkage_incremental``).
    ``matches`` are the linked pairs.
    """
    code_version = linkage_code_version()
    details = _feed_details(staged)
    inputs = _register_inputs(records, clusters, details)
    links = _linked_pairs(matches.with_columns(linked=pl.lit(True)) if "linked" not in matches.columns else matches)
    meta = {"format": STATE_FORMAT, "code_version": code_version}
    reason = "no register held" if previous is None else previous.whole_because(inputs, code_version)
    if reason is not None:
        register = build_death_register(staged, records, clusters, matches, key, details=details)
        return RegisterUpdate(register, None, reason, RegisterState(inputs, links, register, meta))
    touched = pl.concat([_changed_keys(inputs, previous.inputs), _moved_link_keys(links, previous.links)]).unique()
    persons = (
        pl.concat(
            [
                inputs.filter(pl.col("record_key").is_in(touched.implode()))["person_key"],
                previous.inputs.filter(pl.col("record_key").is_in(touched.implode()))["person_key"],
            ]
        )
        .drop_nulls()
        .unique()
    )
    again = pl.col("person_key").is_in(persons.implode())
    sub_keys = inputs.filter(again)["record_key"]
    if sub_keys.len():
        sub = build_death_register(
            staged,
            records.filter(pl.col("record_key").is_in(sub_keys.implode())),
            clusters.filter(pl.col("record_key").is_in(sub_keys.implode())),
            matches.filter(pl.col("record_key_l").is_in(sub_keys.implode())),
            key,
            details=details.filter(pl.col("record_key").is_in(sub_keys.implode())),
        )
    else:
        sub = pl.DataFrame(schema=DEATH_REGISTER_SCHEMA)
    gone = pl.concat([touched, sub_keys]).implode()
    kept = previous.register.filter(
        ~again & ~pl.col("source_records").list.eval(pl.element().is_in(gone)).list.any()
    )
    register = (
        pl.concat([kept.cast(DEATH_REGISTER_SCHEMA), sub.cast(DEATH_REGISTER_SCHEMA)])
        .sort(["date_of_death", "death_id"], nulls_last=True)
    )
    return RegisterUpdate(
        register, persons.len(), f"{persons.len()} persons rebuilt", RegisterState(inputs, links, register, meta)
    )


def _age(dob: pl.Expr, dod: pl.Expr) -> pl.Expr:
    before_birthday = (dod.dt.month() < dob.dt.month()) | (
        (dod.dt.month() == dob.dt.month()) & (dod.dt.day() < dob.dt.day())
    )
    return (dod.dt.year() - dob.dt.year() - before_birthday.cast(pl.Int64)).cast(pl.Int64)


DETAIL_SCHEMA = {
    "record_key": pl.String,
    "classification": pl.String,
    "incident_la": pl.String,
    "incident_postcode_la": pl.String,
    "conclusion": pl.String,
    "icd10_underlying": pl.String,
    "referred_to_coroner": pl.Boolean,
    "me_concern": pl.Boolean,
    "place_of_death_type": pl.String,
    "service": pl.String,
    "first_contact_date": pl.Date,
}


def _feed_details(staged: Mapping[str, pl.DataFrame | None]) -> pl.DataFrame:
    """Per record, what the register needs beyond the person: police classification and
    incident place, inquest conclusion, the medical examiner's cause, referral and concern,
    and a safeguarding contact's service and first contact date."""
    parts = []
    frame = staged.get("death_reports")
    if frame is not None and not frame.is_empty():
        la = la_of_points(
            frame["incident_lat"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
            frame["incident_lon"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
        )
        parts.append(
            frame.select(
                "record_key",
                pl.col("classification").cast(pl.String),
                pl.Series("incident_la", la.tolist(), dtype=pl.String),
                _district_la(_col(frame, "incident_postcode", pl.String)).alias("incident_postcode_la"),
            )
        )
    frame = staged.get("inquests")
    if frame is not None and not frame.is_empty():
        parts.append(frame.select("record_key", pl.col("conclusion").cast(pl.String)))
    frame = staged.get("me_deaths")
    if frame is not None and not frame.is_empty():
        parts.append(
            frame.select(
                "record_key",
                *[
                    _col(frame, c, t).alias(c)
                    for c, t in DETAIL_SCHEMA.items()
                    if c in ("icd10_underlying", "referred_to_coroner", "me_concern", "place_of_death_type")
                ],
            )
        )
    frame = staged.get("safeguarding_contacts")
    if frame is not None and not frame.is_empty():
        parts.append(
            frame.select(
                "record_key",
                *[
                    _col(frame, c, t).alias(c)
                    for c, t in DETAIL_SCHEMA.items()
                    if c in ("service", "first_contact_date")
                ],
            )
        )
    schema = DETAIL_SCHEMA
    if not parts:
        return pl.DataFrame(schema=schema)
    details = pl.concat(parts, how="diagonal_relaxed")
    return details.select([_col(details, c, t).alias(c) for c, t in schema.items()])


def _is_external_cause(code: pl.Expr) -> pl.Expr:
    """ICD-10 chapter XX, external causes of morbidity and mortality (V01-Y98)."""
    return code.str.slice(0, 1).is_in(["V", "W", "X", "Y"])


def _is_assault_code(code: pl.Expr) -> pl.Expr:
    """ICD-10 X85-Y09: assault."""
    letter, number = code.str.slice(0, 1), code.str.slice(1, 2).cast(pl.Int64, strict=False)
    return ((letter == "X") & (number >= 85)) | ((letter == "Y") & (number <= 9))


def _disagreements(deceased: pl.DataFrame, register: pl.DataFrame) -> pl.DataFrame:
    """Plain-text disagreements per death."""
    # Dates of death more than a day apart between sources.
    dated = deceased.filter(pl.col("date_of_death").is_not_null()).with_columns(
        source=pl.concat_str(
            [
                pl.col("feed").replace_strict(FEED_WORDS, default=pl.col("feed")),
                pl.lit(" ("),
                pl.col("partner_id"),
                pl.lit(") "),
                pl.col("date_of_death").dt.strftime("%Y-%m-%d"),
            ]
        )
    )
    spread = (
        dated.sort(["date_of_death", "record_key"])
        .group_by("death_group")
        .agg(
            pl.col("date_of_death").min().alias("_first"),
            pl.col("date_of_death").max().alias("_last"),
            pl.col("source").unique(maintain_order=True).alias("_sources"),
        )
        .with_columns(days=(pl.col("_last") - pl.col("_first")).dt.total_days())
        .filter(pl.col("days") > DATE_OF_DEATH_TOLERANCE_DAYS)
        .select(
            "death_group",
            pl.concat_str(
                [
                    pl.lit("Dates of death differ by "),
                    pl.col("days").cast(pl.String),
                    pl.lit(" days: "),
                    pl.col("_sources").list.join(", "),
                ]
            ).alias("text"),
        )
    )
    r = register
    police = pl.col("police_classification")
    conclusion = pl.col("inquest_conclusion")
    texts = [
        pl.when(conclusion.eq("unlawful_killing") & police.is_in(list(NOT_HOMICIDE))).then(
            pl.concat_str(
                [
                    pl.lit("Police classified the death as "),
                    police.str.replace_all("_", " "),
                    pl.lit(" but the inquest concluded unlawful killing"),
                ]
            )
        ),
        pl.when(
            conclusion.is_in(["natural_causes", "suicide", "accident_misadventure"])
            & police.is_in(list(HOMICIDE))
        ).then(
            pl.concat_str(
                [
                    pl.lit("Police classified the death as "),
                    police.str.replace_all("_", " "),
                    pl.lit(" but the inquest concluded "),
                    conclusion.str.replace_all("_", " "),
                ]
            )
        ),
        pl.when(
            _is_assault_code(pl.col("icd10_underlying")).fill_null(False) & police.is_in(list(NOT_HOMICIDE))
        ).then(
            pl.concat_str(
                [
                    pl.lit("The medical examiner's underlying cause "),
                    pl.col("icd10_underlying"),
                    pl.lit(" is an assault but police classified the death as "),
                    police.str.replace_all("_", " "),
                ]
            )
        ),
        pl.when(pl.col("police_classification").is_null() & pl.col("cited_report_id").is_not_null()).then(
            pl.concat_str(
                [
                    pl.lit("The inquest cites police report "),
                    pl.col("cited_report_id"),
                    pl.lit(" but the force has not delivered it"),
                ]
            )
        ),
    ]
    rows = r.select(
        "death_group", pl.concat_list([t.alias(f"t{i}") for i, t in enumerate(texts)]).alias("text")
    )
    rows = rows.explode("text").filter(pl.col("text").is_not_null())
    # A death the NHS or a coroner knows of that police would be expected to know of too:
    # an external cause of death (ICD-10 V01-Y98), a medical examiner's concern, or an
    # inquest concluding other than natural causes. Natural deaths (even those referred to
    # a coroner, most of which are) need no police.
    expected = (
        pl.col("me_concern").fill_null(False)
        | _is_external_cause(pl.col("icd10_underlying")).fill_null(False)
        | pl.col("conclusion").is_in(list(UNNATURAL_CONCLUSIONS)).fill_null(False)
    )
    policed = register.filter(pl.col("_has_police_record"))["death_group"].implode()
    unpoliced = deceased.filter(~pl.col("death_group").is_in(policed)).with_columns(
        _expected=expected,
        _who=pl.concat_str(
            [
                pl.col("feed").replace_strict(FEED_WORDS, default=pl.col("feed")),
                pl.lit(" ("),
                pl.col("partner_id"),
                pl.lit(")"),
            ]
        ),
    )
    no_police = (
        unpoliced.group_by("death_group")
        .agg(pl.col("_expected").any(), pl.col("_who").unique().sort())
        .filter(pl.col("_expected"))
        .select(
            "death_group",
            pl.concat_str(
                [
                    pl.lit("Known to the "),
                    pl.col("_who").list.join(" and the "),
                    pl.lit(" with no police death report"),
                ]
            ).alias("text"),
        )
    )
    everything = pl.concat([rows, spread, no_police], how="vertical_relaxed")
    return everything.group_by("death_group").agg(pl.col("text").sort().alias("disagreements"))


def _known_to_services(
    records: pl.DataFrame,
    clusters: pl.DataFrame,
    details: pl.DataFrame,
    deceased: pl.DataFrame,
    register: pl.DataFrame,
) -> pl.DataFrame:
    """Services whose contact with the person began before the death (or undated)."""
    contacts_frame = records.filter(pl.col("feed") == "safeguarding_contacts")
    schema = {"death_group": pl.String, "known_to_services": pl.List(pl.String)}
    if contacts_frame.is_empty():
        return pl.DataFrame(schema=schema)
    contacts = contacts_frame.join(clusters.select("record_key", "person_key"), on="record_key").join(
        details.select("record_key", "service", "first_contact_date"), on="record_key", how="left"
    )
    persons = register.select("death_group", "person_key", "best_date_of_death")
    # Deaths of the same person through any of its records' clusters.
    via_records = deceased.select("death_group", "person_key").unique()
    persons = (
        pl.concat([persons.select("death_group", "person_key"), via_records])
        .unique()
        .join(register.select("death_group", "best_date_of_death"), on="death_group")
    )
    return (
        contacts.select("record_key", "person_key", "service", "first_contact_date")
        .join(persons, on="person_key")
        .filter(
            pl.col("first_contact_date").is_null()
            | pl.col("best_date_of_death").is_null()
            | (pl.col("first_contact_date") <= pl.col("best_date_of_death"))
        )
        .group_by("death_group")
        .agg(pl.col("service").drop_nulls().unique().sort().alias("known_to_services"))
    )


# --------------------------------------------------------------------------------------
# Everything at once


@dataclass
class PlatformLinkage:
    records: pl.DataFrame
    matches: pl.DataFrame
    clusters: pl.DataFrame
    death_register: pl.DataFrame
    model: dict[str, Any]
    training_notes: list[str]


def link_platform(
    staged: Mapping[str, pl.DataFrame | None],
    key: bytes,
    *,
    threshold: float = CLUSTER_THRESHOLD,
    backend: Backend = "duckdb",
    spark_session: Any | None = None,
    seed: int | None = None,
) -> PlatformLinkage:
    """Person matches, person clusters and the death register from the staged feeds."""
    records = person_records(staged)
    matching = match_people(
        records, threshold=threshold, backend=backend, spark_session=spark_session, seed=seed
    )
    clusters = cluster_people(records, matching.matches, key)
    register = build_death_register(staged, records, clusters, matching.matches.filter(pl.col("linked")), key)
    return PlatformLinkage(
        records, matching.matches, clusters, register, matching.model, matching.training_notes
    )
