"""Splink's Spark backend behind the linkage switch (``backend="spark"``), on local Spark.

National-scale linkage runs ``link_people`` on Spark instead of DuckDB; the model and
rules are the same, so on the same people both must find the same pairs. Skips, saying
what is missing, unless ``pyspark`` and Java 17 are there. ``make test`` runs this file a
second time in ``.venv-spark`` (``requirements-spark.lock``: the main lock plus pyspark),
because pyspark must stay out of the main environment (see the ``spark`` extra in
pyproject.toml); in the main environment it skips. Local Spark is tuned for a tiny input: one partition, no adaptive planning and
no code generation, which takes the test from minutes to well under one.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from homicide_assets.lib.linkage import link_people
from homicide_assets_tests.test_linkage import non_uk_people, pairwise_scores, true_pairs

pytestmark = pytest.mark.slow


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return (
            "pyspark is not in this environment (kept out of the main one on purpose; "
            "`make test` runs this file in .venv-spark)"
        )
    if shutil.which("java") is None:
        return "no java on the PATH (local Spark needs Java 17)"
    return None


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    reason = _spark_missing()
    if reason:
        pytest.skip(reason)
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    scratch = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("homicide_assets.tests.linkage")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.driver.memory", "1g")
        .config("spark.jars", similarity_jar_location())  # Splink's string-similarity UDFs
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .getOrCreate()
    )
    session.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    yield session
    session.stop()


def test_link_people_on_spark_finds_the_same_pairs_as_duckdb(spark):
    """The same 40 people (some recorded two or three times with typos, swapped dates and
    missing values) deduplicated on local Spark and on DuckDB: the same pairs, and every
    true duplicate found with no false match."""
    people = non_uk_people(40)
    on_spark = link_people(people.drop("person"), backend="spark", spark_session=spark)
    on_duckdb = link_people(people.drop("person"))
    spark_pairs = {tuple(sorted(p)) for p in on_spark.select("id_l", "id_r").iter_rows()}
    duckdb_pairs = {tuple(sorted(p)) for p in on_duckdb.select("id_l", "id_r").iter_rows()}
    assert spark_pairs, "Spark found no pairs"
    assert spark_pairs == duckdb_pairs
    scores = pairwise_scores(spark_pairs, true_pairs(people))
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.9, scores


def test_incremental_person_matching_on_spark_equals_a_full_rescoring(spark):
    """The held model on Spark (rules narrowed to the changed records, in Spark's SQL): one
    record changed and one removed, the incremental matches equal scoring every pair again
    with the same held model."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from homicide_assets.lib.linkage_register import LinkageState, match_people, person_records
    from homicide_assets_tests.test_linkage import hand_built_staged

    records = person_records(hand_built_staged())
    first = match_people(records, backend="spark", spark_session=spark)
    assert first.estimated and first.matches.filter(pl.col("linked")).height >= 8
    changed_key = first.matches.filter(pl.col("linked"))["record_key_l"][0]
    removed_key = records.filter(pl.col("record_key") != changed_key)["record_key"][-1]
    after = records.filter(pl.col("record_key") != removed_key).with_columns(
        forename=pl.when(pl.col("record_key") == changed_key).then(pl.col("forename") + "a").otherwise("forename")
    )
    kwargs = {"backend": "spark", "spark_session": spark, "reestimate_fraction": 1.0}
    incremental = match_people(after, previous=first.state, **kwargs)
    assert not incremental.estimated and incremental.rescored.to_list() == [changed_key]
    held = first.state
    full = match_people(after, previous=LinkageState(held.model, held.records, None, held.meta), **kwargs)
    assert not full.estimated and full.rescored.len() == after.height
    assert_frame_equal(incremental.matches, full.matches)
