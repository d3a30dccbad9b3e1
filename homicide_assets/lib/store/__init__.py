"""The SQLModel store: deliveries ledger, quarantine, alerts and the other operational tables.

SQLite at ``<data dir>/platform.db`` by default; ``HOMICIDE_DATABASE_URL`` selects another
database (PostgreSQL in production). Each domain declares its tables in a module of this
package; :func:`init_db` imports them all so one ``create_all`` builds the schema.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

#: Modules holding SQLModel tables; add a domain's module here.
MODEL_MODULES = ("homicide_assets.lib.store.ingest", "homicide_assets.lib.store.lessons", "homicide_assets.lib.store.alerts")


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per database URL (SQLite gets WAL and a busy timeout for concurrent runs)."""
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


def init_db(url: str) -> Engine:
    """Create every table that does not yet exist and return the engine."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    engine = get_engine(url)
    SQLModel.metadata.create_all(engine)
    return engine


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    engine = init_db(url)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
