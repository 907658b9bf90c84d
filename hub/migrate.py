"""Schema migrations (Alembic) run programmatically against a given database URL.

A downgrade that would lose data refuses unless forced. Rather than trusting each revision
to declare what its downgrade drops, the downgrade is run for real inside one transaction
(PostgreSQL DDL is transactional) between two inventories of the data: rows of every table,
values (not NULL) of every column. Whatever the downgrade takes away shows up as a
difference: a dropped table's rows, a dropped column's values, rows deleted from a table that
stays. If anything was lost and the caller did not force it, the transaction is rolled back,
so nothing changed, and `DataLossRefused` names every loss. Changes of values inside columns
that stay (a narrowed type, an UPDATE) are not seen; no revision's downgrade makes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from hub import db
from hub.errors import HubError

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


@dataclass(frozen=True)
class Loss:
    """Data a downgrade takes away: `count` rows of a table, or values of a column."""

    table: str
    column: str | None  # None: whole rows
    count: int
    how: str  # "table dropped", "column dropped", "rows deleted"

    def __str__(self) -> str:
        if self.column is None:
            return f"{self.count} row(s) of {self.table} ({self.how})"
        return f"{self.count} value(s) of {self.table}.{self.column} ({self.how})"


class DataLossRefused(HubError):
    """A downgrade would lose data and was not forced; nothing was changed."""

    def __init__(self, revision: str, losses: list[Loss]):
        self.losses = losses
        super().__init__(f"a downgrade to {revision} would lose data: {'; '.join(map(str, losses))}. Nothing was changed; "
                         "back the data up, then run it again with --force to downgrade anyway")


@dataclass(frozen=True)
class Downgraded:
    revision: str | None  # where the database is now
    lost: list[Loss]  # what a forced downgrade took away (empty when nothing was lost)


def _inventory(conn) -> dict[str, tuple[int, dict[str, int]]]:
    """Per table: its row count and, per column, how many rows hold a value (one scan each).
    UNLOGGED tables are left out: they hold nothing worth keeping (a crash empties them; the
    shared rate budget's counts, migration 0011)."""
    found: dict[str, tuple[int, dict[str, int]]] = {}
    inspector = sa.inspect(conn)
    unlogged = set(conn.execute(sa.text(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relpersistence = 'u' "
        "AND relnamespace = current_schema()::regnamespace")).scalars())
    for table in inspector.get_table_names():
        if table == "alembic_version" or table in unlogged:
            continue
        columns = [c["name"] for c in inspector.get_columns(table)]
        quote = conn.dialect.identifier_preparer.quote
        counts = conn.execute(sa.text(
            f"SELECT count(*), {', '.join(f'count({quote(c)})' for c in columns)} FROM {quote(table)}")).one()
        found[table] = (counts[0], dict(zip(columns, counts[1:])))
    return found


def _losses(before: dict, after: dict) -> list[Loss]:
    losses = []
    for table, (rows, values) in sorted(before.items()):
        if table not in after:
            if rows:
                losses.append(Loss(table, None, rows, "table dropped"))
            continue
        rows_after, values_after = after[table]
        if rows_after < rows:
            losses.append(Loss(table, None, rows - rows_after, "rows deleted"))
        for column, count in sorted(values.items()):
            if column not in values_after and count:
                losses.append(Loss(table, column, count, "column dropped"))
    return losses


def downgrade_report(url: URL | str | None = None, revision: str = "base", *, force: bool = False) -> Downgraded:
    """Downgrade to `revision`; refuse (DataLossRefused, nothing changed) if that would lose
    data, unless `force`, and then report what was lost."""
    engine = db.engine(url)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            before = _inventory(conn)
            command.downgrade(_config(conn), revision)
            losses = _losses(before, _inventory(conn))
            if losses and not force:
                raise DataLossRefused(revision, losses)
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()
    return Downgraded(current(url), losses)


def downgrade(url: URL | str | None = None, revision: str = "base", *, force: bool = False) -> str | None:
    """Downgrade to `revision`, refusing to lose data unless `force` (see `downgrade_report`)."""
    return downgrade_report(url, revision, force=force).revision


def current(url: URL | str | None = None) -> str | None:
    with db.engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    return ScriptDirectory.from_config(_config(None)).get_current_head()


def autogenerate(url: URL | str, message: str) -> None:
    """Developer helper: write a new revision from the difference to hub.schema."""
    with db.engine(url).begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
