"""Scoring linkage against the synthetic generator's ground truth.

Benchmarks and tests call these; the platform never does (it never reads ground truth).
All scores are pairwise: two records are a predicted pair when linkage puts them in the
same cluster, a true pair when the truth gives them the same person (or death).

Functions (used by ``make bench`` through :func:`evaluate_linkage`, and by
``scripts/linkage_bench.py``):

- :func:`pairwise_scores`: precision, recall and F1 of two sets of pairs;
- :func:`cluster_scores`: the same for two clusterings, computed from cluster sizes (no
  pair enumeration, so a large wrong cluster cannot blow up memory);
- :func:`score_person_clusters`: ``linkage/person_clusters`` against the true persons;
- :func:`score_person_matches`: the linked pairs of ``linkage/person_matches`` as edges;
- :func:`score_death_clusters`: ``linkage/death_register`` against the true deaths;
- :func:`score_death_fields`: how often the register's best date of death, local
  authority, sex and age equal the truth;
- :func:`worst_death_errors`: the ten worst false merges and missed links, each with its
  cause in words;
- :func:`load_ground_truth` and :func:`evaluate_linkage`: everything above as one dict;
- :func:`evaluate_data_dir`: the same on a data directory the graph has built.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl


def pairwise_scores(predicted: Iterable[tuple], truth: Iterable[tuple]) -> dict[str, float]:
    """Precision, recall and F1 of predicted unordered pairs against true pairs."""
    pred = {tuple(sorted(p)) for p in predicted}
    true = {tuple(sorted(p)) for p in truth}
    tp = len(pred & true)
    return _scores(tp, len(pred), len(true))


def _scores(tp: int, predicted: int, true: int) -> dict[str, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "true_positives": int(tp),
        "false_positives": int(predicted - tp),
        "false_negatives": int(true - tp),
    }


def _pairs(n: pl.Expr) -> pl.Expr:
    return (n * (n - 1) / 2).cast(pl.Int64)


def cluster_scores(frame: pl.DataFrame, predicted: str, truth: str) -> dict[str, float]:
    """Pairwise precision, recall and F1 of the clustering ``predicted`` against ``truth``.

    ``frame`` has one row per record with its predicted and true cluster labels (rows with
    a null label in either are left out).
    """
    f = frame.filter(pl.col(predicted).is_not_null() & pl.col(truth).is_not_null())
    tp = f.group_by(predicted, truth).len().select(_pairs(pl.col("len")).sum()).item() or 0
    pred = f.group_by(predicted).len().select(_pairs(pl.col("len")).sum()).item() or 0
    true = f.group_by(truth).len().select(_pairs(pl.col("len")).sum()).item() or 0
    out = _scores(tp, pred, true)
    out["records"] = f.height
    out["predicted_clusters"] = f[predicted].n_unique()
    out["true_clusters"] = f[truth].n_unique()
    return out


def load_ground_truth(directory: str | Path) -> dict[str, pl.DataFrame]:
    """``persons``, ``deaths`` and ``source_records`` from a generator's ``ground_truth/``."""
    directory = Path(directory)
    if (directory / "ground_truth").is_dir():
        directory = directory / "ground_truth"
    return {
        name: pl.read_parquet(directory / f"{name}.parquet")
        for name in ("persons", "deaths", "source_records")
        if (directory / f"{name}.parquet").exists()
    }


def score_person_clusters(clusters: pl.DataFrame, source_records: pl.DataFrame) -> dict[str, float]:
    """``linkage/person_clusters`` (``record_key``, ``person_key``) against the true persons."""
    joined = clusters.select("record_key", "person_key").join(
        source_records.select("record_key", "person_id"), on="record_key", how="inner"
    )
    return cluster_scores(joined, "person_key", "person_id")


def score_person_matches(matches: pl.DataFrame, source_records: pl.DataFrame) -> dict[str, float]:
    """Linked pairs of ``linkage/person_matches`` as edges, against all true same-person pairs
    among the scored records (so recall counts pairs only joined through a chain as missed)."""
    truth = source_records.select("record_key", "person_id").drop_nulls()
    linked = matches.filter(pl.col("linked")).select("record_key_l", "record_key_r")
    person = dict(zip(truth["record_key"].to_list(), truth["person_id"].to_list(), strict=True))
    tp = sum(1 for a, b in linked.iter_rows() if a in person and b in person and person[a] == person[b])
    scored = linked.filter(
        pl.col("record_key_l").is_in(truth["record_key"].implode())
        & pl.col("record_key_r").is_in(truth["record_key"].implode())
    ).height
    true = truth.group_by("person_id").len().select(_pairs(pl.col("len")).sum()).item() or 0
    return _scores(tp, scored, true)


def _death_membership(register: pl.DataFrame) -> pl.DataFrame:
    return (
        register.select("death_id", "source_records")
        .explode("source_records")
        .rename({"source_records": "record_key", "death_id": "predicted_death"})
    )


def score_death_clusters(register: pl.DataFrame, source_records: pl.DataFrame) -> dict[str, float]:
    """``linkage/death_register`` against the true deaths, pairwise over the records behind
    the register's deaths (every staged record of a death)."""
    joined = _death_membership(register).join(
        source_records.select("record_key", pl.col("death_id").alias("true_death")),
        on="record_key",
        how="inner",
    )
    out = cluster_scores(joined, "predicted_death", "true_death")
    out["records_without_truth"] = int(
        _death_membership(register)
        .join(source_records.select("record_key"), on="record_key", how="anti")
        .height
    )
    return out


def score_death_fields(register: pl.DataFrame, source_records: pl.DataFrame, deaths: pl.DataFrame) -> dict:
    """Share of register deaths whose best values equal the truth: date of death, local
    authority, sex, age at death. Each register death is compared with the true death
    most of its records belong to; a null on either side is left out of that field."""
    majority = (
        _death_membership(register)
        .join(source_records.select("record_key", pl.col("death_id").alias("true_death")), on="record_key")
        .group_by("predicted_death", "true_death")
        .len()
        .sort(["predicted_death", "len", "true_death"], descending=[False, True, False])
        .group_by("predicted_death", maintain_order=True)
        .agg(pl.col("true_death").first())
    )
    truth_cols = {
        "date_of_death": "date_of_death",
        "la_code": "la_code",
        "sex": "sex",
        "age_at_death": "age_at_death",
    }
    truth = deaths.select(
        "death_id", *[pl.col(c).alias(f"true_{c}") for c in truth_cols.values() if c in deaths.columns]
    )
    joined = (
        register.rename({"death_id": "predicted_death"})
        .join(majority, on="predicted_death")
        .join(truth, left_on="true_death", right_on="death_id")
    )
    out = {}
    for field in truth_cols:
        if f"true_{field}" not in joined.columns:
            continue
        both = joined.filter(pl.col(field).is_not_null() & pl.col(f"true_{field}").is_not_null())
        agree = both.filter(pl.col(field).cast(pl.String) == pl.col(f"true_{field}").cast(pl.String)).height
        out[field] = {
            "accuracy": round(agree / both.height, 5) if both.height else None,
            "compared": both.height,
            "missing": joined.height - both.height,
        }
    return out


def _describe_difference(a: dict, b: dict) -> str:
    parts = []
    for field in ("forename", "surname", "date_of_birth", "date_of_death", "sex", "postcode"):
        va, vb = a.get(field), b.get(field)
        if va is None or vb is None:
            if va is not None or vb is not None:
                parts.append(f"{field.replace('_', ' ')} missing on one side")
            continue
        if str(va).strip().lower() != str(vb).strip().lower():
            parts.append(f"{field.replace('_', ' ')} {va!s} vs {vb!s}")
    if (a.get("nhs_number") and b.get("nhs_number")) and a["nhs_number"] != b["nhs_number"]:
        parts.append("different NHS numbers")
    return "; ".join(parts) or "records agree on every compared field"


def worst_death_errors(
    register: pl.DataFrame,
    source_records: pl.DataFrame,
    records: pl.DataFrame,
    matches: pl.DataFrame,
    *,
    threshold: float,
    n: int = 10,
) -> pl.DataFrame:
    """The ``n`` worst death-linkage errors with their cause in words.

    ``kind`` is ``false_merge`` (two records of different true deaths in one register
    death) or ``missed_link`` (two records of one true death in different register deaths).
    Worst first: false merges linked most confidently, missed links scored lowest. ``cause``
    gives the model's evidence for the pair when it was scored, otherwise what differs
    between the two records (or that they were joined through other records).
    """
    membership = _death_membership(register).join(
        source_records.select(
            "record_key", pl.col("death_id").alias("true_death"), pl.col("person_id").alias("true_person")
        ),
        on="record_key",
        how="inner",
    )
    scored = pl.concat(
        [
            matches.select("record_key_l", "record_key_r", "match_probability", "evidence"),
            matches.select(
                pl.col("record_key_r").alias("record_key_l"),
                pl.col("record_key_l").alias("record_key_r"),
                "match_probability",
                "evidence",
            ),
        ]
    )
    a, b = membership.rename(lambda c: f"{c}_l"), membership.rename(lambda c: f"{c}_r")
    merges = (
        a.join(b, left_on="predicted_death_l", right_on="predicted_death_r")
        .filter(
            (pl.col("record_key_l") < pl.col("record_key_r"))
            & (pl.col("true_death_l") != pl.col("true_death_r"))
        )
        .with_columns(kind=pl.lit("false_merge"))
    )
    missed = (
        a.join(b, left_on="true_death_l", right_on="true_death_r")
        .filter(
            (pl.col("record_key_l") < pl.col("record_key_r"))
            & (pl.col("predicted_death_l") != pl.col("predicted_death_r"))
        )
        .with_columns(kind=pl.lit("missed_link"))
    )
    cols = ["kind", "record_key_l", "record_key_r"]
    errors = pl.concat([merges.select(cols), missed.select(cols)]).join(
        scored, on=["record_key_l", "record_key_r"], how="left"
    )
    errors = (
        errors.with_columns(
            severity=pl.when(pl.col("kind") == "false_merge")
            .then(pl.col("match_probability").fill_null(0.5))
            .otherwise(1.0 - pl.col("match_probability").fill_null(0.0))
        )
        .sort(["severity", "record_key_l", "record_key_r"], descending=[True, False, False])
        .head(n)
    )
    by_key = {r["record_key"]: r for r in records.iter_rows(named=True)}
    causes = []
    for row in errors.iter_rows(named=True):
        ra, rb = by_key.get(row["record_key_l"], {}), by_key.get(row["record_key_r"], {})
        p = row["match_probability"]
        if row["kind"] == "false_merge":
            if p is not None and p >= threshold:
                cause = f"linked at {p:.3f} on {row['evidence']}: {_describe_difference(ra, rb)}"
            else:
                cause = f"joined through other records; directly: {_describe_difference(ra, rb)}"
            if ra.get("feed") == rb.get("feed") == "death_reports":
                cause = "two police reports, " + cause
        else:
            if p is not None:
                cause = f"scored {p:.3f} (< {threshold}) on {row['evidence']}: {_describe_difference(ra, rb)}"
            else:
                cause = f"not a candidate pair or scored under 0.5: {_describe_difference(ra, rb)}"
        causes.append(cause)
    return errors.with_columns(cause=pl.Series(causes, dtype=pl.String)).select(
        "kind", "record_key_l", "record_key_r", "match_probability", "cause"
    )


def evaluate_linkage(
    records: pl.DataFrame,
    matches: pl.DataFrame,
    clusters: pl.DataFrame,
    register: pl.DataFrame,
    ground_truth: dict[str, pl.DataFrame],
    *,
    threshold: float,
) -> dict:
    """Every score as one JSON-ready dict: person matches (edges), person clusters, death
    clusters, and the ten worst death errors with their causes."""
    truth = ground_truth["source_records"]
    return {
        "person_matches": score_person_matches(matches, truth),
        "person_clusters": score_person_clusters(clusters, truth),
        "death_clusters": score_death_clusters(register, truth),
        "death_fields": score_death_fields(register, truth, ground_truth["deaths"])
        if "deaths" in ground_truth
        else {},
        "deaths_registered": register.height,
        "deaths_true": int(
            truth.filter(pl.col("record_key").is_in(_death_membership(register)["record_key"].implode()))[
                "death_id"
            ].n_unique()
        ),
        "worst_errors": worst_death_errors(register, truth, records, matches, threshold=threshold).to_dicts(),
    }


def evaluate_data_dir(
    data_dir: str | Path, ground_truth_dir: str | Path, *, threshold: float | None = None
) -> dict:
    """:func:`evaluate_linkage` on a built data directory: reads ``warehouse/staged/*`` and
    ``warehouse/linkage/{person_matches,person_clusters,death_register}`` (what ``make bench``
    builds) and the generator's ``ground_truth/``."""
    from homicide_assets.lib.linkage_register import CLUSTER_THRESHOLD, PERSON_FEEDS, person_records
    from homicide_assets.lib.settings import DataDir

    data = DataDir(Path(data_dir).resolve())
    staged = {}
    for feed in PERSON_FEEDS:
        path = data.warehouse_file(["staged", feed])
        staged[feed] = pl.read_parquet(path) if path.exists() else None
    linkage = {
        name: pl.read_parquet(data.warehouse_file(["linkage", name]))
        for name in ("person_matches", "person_clusters", "death_register")
    }
    return evaluate_linkage(
        person_records(staged),
        linkage["person_matches"],
        linkage["person_clusters"],
        linkage["death_register"],
        load_ground_truth(ground_truth_dir),
        threshold=CLUSTER_THRESHOLD if threshold is None else threshold,
    )
