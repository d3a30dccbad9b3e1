"""The production path: PostgreSQL for the Dagster instance and for the SQLModel store.

Needs the PostgreSQL server at 127.0.0.1:5432 (on this machine and in CI); elsewhere every
test here skips with a reason naming what is missing. ``HOMICIDE_TEST_PG_ADMIN_URL``
points the tests at another server (a role that may create databases). Each test gets
throwaway databases, dropped afterwards.

The helpers (:func:`postgres_missing`, :func:`throwaway_database`, :func:`use_postgres_instance`)
are imported by the fault tests.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Column, Integer, MetaData, inspect
from sqlalchemy.engine import make_url
from sqlmodel import select

from homicide_assets.lib.settings import REPO_ROOT, DataDir
from homicide_assets.lib.store import (
    VERSION_TABLE,
    alembic_config,
    get_engine,
    import_models,
    init_db,
    session_scope,
)
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt
from homicide_assets_tests.deliveries import csv_bytes, death_report, drop, person

ADMIN_URL = os.environ.get("HOMICIDE_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
POSTGRES_DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.postgres.yaml"

pytestmark = pytest.mark.postgres


def postgres_missing() -> str | None:
    """None when the test server answers, else why not (used as the skip reason)."""
    import psycopg2

    url = make_url(ADMIN_URL)
    try:
        conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                dbname=url.database, connect_timeout=3)
    except psycopg2.OperationalError as err:
        return (f"PostgreSQL is not reachable at {url.host}:{url.port or 5432} as {url.username!r} "
                f"({str(err).strip().splitlines()[0]}); start it or set HOMICIDE_TEST_PG_ADMIN_URL")
    conn.close()
    return None


def _admin_execute(sql: str) -> None:
    import psycopg2

    url = make_url(ADMIN_URL)
    conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                            dbname=url.database, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextmanager
def throwaway_database(label: str) -> Iterator[str]:
    """A new, empty database on the test server; yields its URL; dropped on exit."""
    name = f"homicide_t_{label}_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from homicide_assets.lib import store

        store._migrated.difference_update({u for u in store._migrated if make_url(store.normalise_url(u)).database == name})
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_definitions_first() -> None:
    """Import ``homicide_assets.definitions`` before a test sets ``HOMICIDE_DATABASE_URL``.

    ``definitions.py`` turns the variables that are set when it is first imported into
    ``EnvVar``s resolved at run time; imported while a test had the variable set, every later
    test without it would fail to resolve it. Importing it first keeps tests order-independent
    (the store URL is read from the environment by ``DataDir.database_url()`` either way).
    """
    import homicide_assets.definitions  # noqa: F401


def use_postgres_instance(home: Path, dagster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``home`` a DAGSTER_HOME whose dagster.yaml is deploy/dagster.postgres.yaml on ``dagster_url``."""
    url = make_url(dagster_url)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(POSTGRES_DAGSTER_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    return ADMIN_URL


@pytest.fixture
def store_url(postgres_server) -> Iterator[str]:
    with throwaway_database("store") as url:
        yield url


@pytest.fixture
def postgres_platform(postgres_server, data_dir: DataDir, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataDir]:
    """The platform on PostgreSQL only: the store and the Dagster instance, each a fresh database."""
    from homicide_assets_tests.conftest import TEST_KEY

    load_definitions_first()
    with throwaway_database("store") as store, throwaway_database("dagster") as dagster:
        monkeypatch.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
        monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
        monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE", raising=False)
        monkeypatch.setenv("HOMICIDE_DATABASE_URL", store)
        use_postgres_instance(data_dir.root / "dagster_home", dagster, monkeypatch)
        yield data_dir


# ----------------------------------------------------------------------------- schema


def schema_differences(url: str, metadata: MetaData | None = None) -> list:
    """What ``alembic revision --autogenerate`` would write for ``url`` (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from homicide_assets.lib.store import normalise_url

    metadata = metadata if metadata is not None else import_models()

    def include_object(obj, name, type_, reflected, compare_to):
        return not (type_ == "table" and reflected and compare_to is None)

    with get_engine(normalise_url(url)).connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True, "version_table": VERSION_TABLE,
            "include_object": include_object, "target_metadata": metadata,
        })
        return compare_metadata(context, metadata)


def _summarise(diff: list) -> list[str]:
    """One short line per difference (table, index or column name), not the whole Table repr."""
    out = []
    for item in diff:
        entries = item if isinstance(item, list) else [item]
        for entry in entries:
            op, *args = entry
            names = [getattr(a, "name", a) for a in args if isinstance(a, str) or hasattr(a, "name")]
            out.append(f"{op} {' '.join(str(n) for n in names if n)}")
    return out


def test_alembic_upgrade_head_builds_exactly_the_models_schema(store_url):
    """`alembic upgrade head` on an empty database gives SQLModel.metadata, nothing missing or extra.

    A model changed or added without a migration makes the autogenerate diff non-empty and
    fails this test; the second half proves the comparison sees such a change.
    """
    from alembic import command

    command.upgrade(alembic_config(store_url), "head")
    diff = schema_differences(store_url)
    assert diff == [], (
        "models and migrations disagree; write a migration with "
        "`.venv/bin/alembic revision --autogenerate --rev-id <next> -m '<what changed>'` against a "
        f"PostgreSQL database at head: {_summarise(diff)}"
    )
    tables = set(inspect(get_engine(store_url)).get_table_names())
    assert set(import_models().tables) <= tables and VERSION_TABLE in tables
    assert "alembic_version" not in tables  # Dagster's name stays free for a shared database

    # the same comparison flags a model column that no migration adds
    changed = MetaData()
    for table in import_models().tables.values():
        table.to_metadata(changed)
    changed.tables["deliveries"].append_column(Column("added_without_migration", Integer))
    assert any("added_without_migration" in str(d) for d in schema_differences(store_url, changed))

    # and the migrations run backwards to nothing and forwards again
    command.downgrade(alembic_config(store_url), "base")
    assert set(inspect(get_engine(store_url)).get_table_names()) == {VERSION_TABLE}
    command.upgrade(alembic_config(store_url), "head")
    assert schema_differences(store_url) == []


def _init_in_child(url: str, queue) -> None:
    try:
        from homicide_assets.lib.store import get_engine, init_db

        get_engine.cache_clear()  # a forked engine's pool must not be shared
        init_db(url)
        queue.put("ok")
    except Exception as err:  # reported to the parent, which fails the test
        queue.put(f"{type(err).__name__}: {err}")


def test_init_db_migrates_a_fresh_postgres_store_once_under_concurrency(store_url):
    """Four processes opening a fresh store at once all succeed; the schema is at head, once."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_init_in_child, args=(store_url, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    results = [queue.get(timeout=5) for _ in workers]
    assert results == ["ok"] * 4, results
    assert schema_differences(store_url) == []
    with get_engine(store_url).connect() as conn:
        from sqlalchemy import text

        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    from alembic.script import ScriptDirectory

    assert versions == [ScriptDirectory.from_config(alembic_config(store_url)).get_current_head()]


def test_store_round_trip_through_session_scope(store_url):
    """The ledger tables work on PostgreSQL through the same session_scope the platform uses."""
    init_db(store_url)
    with session_scope(store_url) as s:
        s.add(Receipt(file_name="f.csv", partner_folder="wmp", outcome="quarantined", reason="test"))
    with session_scope(store_url) as s:
        assert [r.file_name for r in s.exec(select(Receipt))] == ["f.csv"]


# ----------------------------------------------------------------------------- end to end


def _deliveries(landing: Path) -> None:
    drop(landing, "wmp", "wmp__death_reports__20260105.csv",
         csv_bytes("death_reports", [death_report(1), death_report(2), death_report(3, classification="murder")]))
    drop(landing, "wmp", "wmp__death_reports__20260106.csv",
         csv_bytes("death_reports", [death_report(1, investigation_status="charged"), death_report(4)], bom=True))
    drop(landing, "wmp", "wmp__death_report_persons__20260106.csv",
         csv_bytes("death_report_persons", [person(1, 1), person(2, 1, role="Reporting_Person"), person(77, 1)]))
    drop(landing, "wmp", "wmp__death_reports__20260107.csv", b"")  # empty: quarantined whole


@pytest.mark.slow
def test_build_on_postgres_records_ledger_and_stages(postgres_platform):
    """`homicide-assets build` (a process of its own, configured by environment alone) with
    the Dagster instance and the SQL store both on PostgreSQL builds the whole graph:
    ledger, quarantine and staged tables are right, runs and materialisations are in the
    PostgreSQL instance, the full report is written, no SQLite file appears anywhere, and a
    re-delivery is recorded as a duplicate receipt in the PostgreSQL ledger."""
    import subprocess
    import sys

    from dagster import AssetKey, DagsterInstance

    from homicide_assets.cli import take_landing

    data_dir = postgres_platform
    _deliveries(data_dir.landing)
    build = subprocess.run([sys.executable, "-m", "homicide_assets.cli", "build"], env=dict(os.environ),
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-6000:]
    assert "landing: 4 new deliveries" in build.stdout

    staged = pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"]))
    assert sorted(staged["report_id"]) == ["DR-2026-000001", "DR-2026-000002", "DR-2026-000004"]
    assert staged.filter(pl.col("report_id") == "DR-2026-000001")["investigation_status"][0] == "charged"
    persons = pl.read_parquet(data_dir.warehouse_file(["staged", "death_report_persons"]))
    assert sorted(persons["report_id"]) == ["DR-2026-000001", "DR-2026-000002"]

    url = os.environ["HOMICIDE_DATABASE_URL"]
    with session_scope(url) as s:
        deliveries = {d.file_name: d for d in s.exec(select(Delivery))}
        rules = sorted((q.kind, q.rule) for q in s.exec(select(QuarantineEntry)))
    assert len(deliveries) == 4
    first = deliveries["wmp__death_reports__20260105.csv"]
    assert (first.rows_read, first.rows_staged, first.rows_quarantined, first.rows_superseded) == (3, 1, 1, 1)
    assert deliveries["wmp__death_reports__20260107.csv"].status == "quarantined"
    assert all(d.status == "staged" for n, d in deliveries.items() if not n.endswith("0107.csv"))
    for d in deliveries.values():
        assert d.rows_read == d.rows_staged + d.rows_quarantined + d.rows_superseded
    assert rules == [("file", "empty_file"), ("row", "enum"), ("row", "report_exists")]

    instance = DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert instance.get_latest_materialization_event(AssetKey(["staged", "death_reports"])) is not None
    runs = instance.get_runs()
    assert {r.job_name for r in runs} >= {"ingest_death_reports", "ingest_death_report_persons", "refresh_all"}
    assert all(r.is_success for r in runs)
    report = AssetKey(["report", "death_investigations_report"])
    if instance.get_latest_materialization_event(report) is not None or list(data_dir.reports.glob("*/*.html")):
        assert list(data_dir.reports.glob("*/death_investigations_report.html")), "the report was not written"
    assert not list(data_dir.root.rglob("*.db")), "a SQLite file was written: PostgreSQL was not used throughout"

    drop(data_dir.landing, "wmp", "wmp__death_reports__20260105.csv",
         csv_bytes("death_reports", [death_report(1), death_report(2), death_report(3, classification="murder")]))
    outcome, _ = take_landing(data_dir)
    assert (len(outcome.accepted), len(outcome.duplicates)) == (0, 1)
    with session_scope(url) as s:
        assert len(s.exec(select(Delivery)).all()) == 4
        assert [r.outcome for r in s.exec(select(Receipt).where(Receipt.outcome == "duplicate"))] == ["duplicate"]
