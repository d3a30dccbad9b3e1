"""Alembic environment for the platform's SQLModel store.

The target schema is ``SQLModel.metadata`` with every module in
``homicide_assets.lib.store.MODEL_MODULES`` imported, so a model added or changed without a
migration shows up as an autogenerate difference (``homicide_assets_tests/test_postgres.py``
fails on it). Only the platform's own tables are compared: tables of other tenants of the
same database (Dagster's run storage, if an operator shares one database) are ignored, and
the version is kept in ``homicide_alembic_version`` so it never collides with Dagster's own
``alembic_version``.

The URL comes, in order, from a connection handed over by ``init_db``
(``config.attributes["connection"]``), ``-x url=...``, ``sqlalchemy.url`` in the config,
then ``HOMICIDE_DATABASE_URL`` / the embedded SQLite default.
"""

from __future__ import annotations

from alembic import context

from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.store import VERSION_TABLE, get_engine, import_models, normalise_url

config = context.config
target_metadata = import_models()


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or DataDir.from_env().database_url()
    )


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    # a table in the database that no model declares belongs to someone else: leave it alone
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=True,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=normalise_url(_url()), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = get_engine(_url())
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
