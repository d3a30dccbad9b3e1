"""The SQLModel store: deliveries ledger, quarantine, alerts and the other operational tables.

SQLite at ``<data dir>/platform.db`` by default; ``HOMICIDE_DATABASE_URL`` selects another
database (PostgreSQL in production). Each domain declares its tables in a module of this
package; :func:`init_db` imports them all. On SQLite one ``create_all`` builds the schema;
on PostgreSQL the schema is Alembic's (``migrations/``): ``init_db`` runs ``upgrade head``
once per process, under an advisory lock so concurrent processes never race, and refuses
to go on when a model has no migration yet.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import MetaData, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from homicide_assets.lib.settings import REPO_ROOT

#: Alembic scripts for the store, and the table that records the applied revision (not
#: ``alembic_version``, which Dagster's own PostgreSQL storage uses).
MIGRATIONS_DIR = REPO_ROOT / "migrations"
VERSION_TABLE = "homicide_alembic_version"
#: pg_advisory_xact_lock key held while migrating (any fixed 64-bit number).
_MIGRATION_LOCK = 0x486F6D6963696465  # "Homicide"

#: Modules holding SQLModel tables; add a domain's module here.
MODEL_MODULES = ("homicide_assets.lib.store.ingest", "homicide_assets.lib.store.lessons", "homicide_assets.lib.store.alerts", "homicide_assets.lib.store.series")


class StoreUnavailable(ConnectionError):
    """The SQL store cannot be reached; the message names the database (password hidden)."""


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3, not installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:  # pragma: no cover - unparsable URL: say so without echoing it
        return "<unparsable database URL>"


def _is_unavailable(err: OperationalError) -> bool:
    message = str(getattr(err, "orig", err)).lower()
    return bool(getattr(err, "connection_invalidated", False)) or any(
        marker in message for marker in (
            "could not connect", "connection refused", "connection to server", "server closed the connection",
            "the database system is", "terminating connection", "does not exist", "unable to open database file",
            "timeout expired", "could not translate host name",
        )
    )


def _unavailable(url: str, err: OperationalError) -> StoreUnavailable:
    first_line = str(getattr(err, "orig", err)).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return StoreUnavailable(
        f"the platform's SQL store {describe_url(url)} is unavailable ({first_line}); "
        "nothing was recorded, so the same command can be retried when it is back"
    )


def import_models() -> MetaData:
    """Import every module in :data:`MODEL_MODULES`; return the metadata they declare."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return SQLModel.metadata


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per database URL (SQLite gets WAL and a busy timeout for concurrent runs)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def alembic_config(url: str):
    """An Alembic ``Config`` for the store at ``url`` (what ``alembic.ini`` at the root sets)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """``alembic upgrade head`` on ``url``, serialised across processes by an advisory lock.

    Raises when a model declares a table that no migration creates, naming the tables and
    the command that writes the missing migration.
    """
    from alembic import command

    engine = get_engine(url)
    config = alembic_config(url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        missing = sorted(set(import_models().tables) - set(inspect(connection).get_table_names()))
    if missing:
        raise RuntimeError(
            f"the SQL store {describe_url(url)} is at the newest migration but lacks the tables "
            f"{', '.join(missing)}: a model was added without a migration. Write one with "
            "`alembic revision --autogenerate --rev-id <next> -m '<what changed>'` and commit it."
        )


_created: set[str] = set()


def _sqlite_file_exists(url: str) -> bool:
    """False when a SQLite file created earlier in this process has since been removed."""
    path = url.split("///", 1)[-1] if "///" in url else ""
    return not path or path == ":memory:" or os.path.exists(path)


def init_db(url: str) -> Engine:
    """Bring the store's schema up to date and return the engine.

    SQLite (the embedded default): create every table that does not yet exist. PostgreSQL:
    Alembic ``upgrade head``, once per URL per process. An unreachable database raises
    :class:`StoreUnavailable` naming it.
    """
    import_models()
    engine = get_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            if url not in _migrated:
                with _migrate_lock:
                    if url not in _migrated:
                        migrate(url)
                        _migrated.add(url)
        elif url not in _created or not _sqlite_file_exists(url):
            # once per URL per process: create_all inspects every table, and every session
            # passes through here (the ledger opens thousands in a large build)
            SQLModel.metadata.create_all(engine)
            _created.add(url)
    except OperationalError as err:
        if _is_unavailable(err):
            raise _unavailable(url, err) from err
        raise
    return engine


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    engine = init_db(url)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as err:
            try:
                session.rollback()
            except Exception:  # the connection is gone: nothing to roll back
                pass
            if _is_unavailable(err):
                raise _unavailable(url, err) from err
            raise
        except Exception:
            session.rollback()
            raise
