"""Schema changes are Alembic migrations (hub/migrations/versions), for SQLite and PostgreSQL.

    upgrade(engine)                       # `kiosk hub migrate --db URL`
    require_current(engine, "postgresql://hub@db/hub")   # a hub refuses a database that is behind
"""
from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic import command

HERE = Path(__file__).resolve().parent


class SchemaBehind(RuntimeError):
    """The database's schema is older (or newer) than this hub's code."""


def _config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine) -> None:
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")


def require_current(engine, name: str) -> None:
    found, wanted = current(engine), head()
    if found != wanted:
        state = "empty" if found is None else f"at schema {found}, this hub needs {wanted}"
        raise SchemaBehind(f"the database {name} is {state}: run `kiosk hub migrate --db {name}`")
