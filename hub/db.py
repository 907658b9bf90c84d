"""Connections to the hub database (PostgreSQL only).

`HUB_DATABASE_URL` names a server; when it is unset the embedded server is started.
A bare `postgresql://` URL is given the psycopg 3 driver explicitly. Dagster's own
storage lives on the same server in its own database (`dagster`), through psycopg2,
because dagster-postgres 0.29 breaks on psycopg 3 (see dagster.yaml).
"""

from __future__ import annotations

import os
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from hub import embedded_pg
from hub.errors import ConfigurationError
from hub.settings import DAGSTER_PG_URL_VAR, DATABASE_URL_VAR

HUB_DB_NAME = "hub"
DAGSTER_DB_NAME = "dagster"


def parse_url(raw: str, source: str = DATABASE_URL_VAR) -> URL:
    """Parse a PostgreSQL URL and pin the psycopg 3 driver; reject anything else."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigurationError(f"{source} is not a valid database URL") from None
    backend = url.get_backend_name()
    if backend != "postgresql":
        raise ConfigurationError(f"{source} must name a PostgreSQL server (postgresql://...), not '{backend}'")
    return url.set(drivername="postgresql+psycopg")


def hub_url() -> URL:
    """URL of the hub database: the configured server, or the embedded one."""
    raw = os.environ.get(DATABASE_URL_VAR)
    if raw:
        return parse_url(raw)
    server = embedded_pg.start()
    url = server.set(database=HUB_DB_NAME)
    ensure_database(url)
    return url


def dagster_url(hub: URL | None = None) -> str:
    """URL for Dagster's instance storage: `DAGSTER_PG_URL`, else database `dagster` beside
    the hub's, which is created if missing (the demo calls this before `dagster dev`)."""
    raw = os.environ.get(DAGSTER_PG_URL_VAR)
    if raw:
        return raw
    url = (hub or hub_url()).set(drivername="postgresql+psycopg2", database=DAGSTER_DB_NAME)
    ensure_database(url.set(drivername="postgresql+psycopg"))
    return url.render_as_string(hide_password=False)


def ensure_database(url: URL) -> None:
    """Create the database `url` names if it does not exist (connects to `postgres`)."""
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    finally:
        admin.dispose()


def drop_database(url: URL) -> None:
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        admin.dispose()


@lru_cache(maxsize=8)
def _engine_for(url_text: str) -> Engine:
    return sa.create_engine(url_text, pool_pre_ping=True, pool_size=5, max_overflow=5)


def engine(url: URL | str | None = None) -> Engine:
    """A pooled engine, one per URL per process."""
    if url is None:
        url = hub_url()
    elif isinstance(url, str):
        url = parse_url(url)
    return _engine_for(url.render_as_string(hide_password=False))


_SECRET_QUERY_KEYS = {"password", "sslpassword", "passfile", "sslkey"}


def safe_url(url: URL | str) -> str:
    """A URL fit for logs and messages: the password is hidden, in the userinfo and in
    libpq query parameters (`?password=...` is a valid way to pass one)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparsable database URL>"
    hidden = {k: "***" for k in parsed.query if k.lower() in _SECRET_QUERY_KEYS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True)
