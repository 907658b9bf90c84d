"""Schema migrations (Alembic) run programmatically against a given database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from hub import db

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: URL | str | None = None, revision: str = "head") -> str | None:
    """Upgrade to `revision`; return the revision the database is at afterwards."""
    with db.engine(url).begin() as conn:
        command.upgrade(_config(conn), revision)
    return current(url)


def downgrade(url: URL | str | None = None, revision: str = "base") -> str | None:
    with db.engine(url).begin() as conn:
        command.downgrade(_config(conn), revision)
    return current(url)


def current(url: URL | str | None = None) -> str | None:
    with db.engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    return ScriptDirectory.from_config(_config(None)).get_current_head()


def autogenerate(url: URL | str, message: str) -> None:
    """Developer helper: write a new revision from the difference to hub.schema."""
    with db.engine(url).begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
