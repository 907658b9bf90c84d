"""Test fixtures: a real PostgreSQL server, a fresh migrated database per session.

Server choice, in order: HUB_TEST_DATABASE_URL; with CI=true the server on
127.0.0.1:5432 (user postgres); else the embedded pgserver under `.hub/test`.
Each session creates its own databases (hub and dagster) and drops them at the end, so
tests never touch the demo's data.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from hub import db, embedded_pg, migrate, schema
from hub.crypto import generate_key

CI_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_terminal_summary(terminalreporter, config):
    """Repeat pytest-randomly's seed after the results: `-q` hides the header that shows it,
    and a failure that depends on the order is replayed only with that seed
    (`--randomly-seed=N`)."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None:
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")


@pytest.fixture(autouse=True)
def _forget_accounts_given_up():
    """The transport remembers, per process, accounts whose requests gave up in an outage
    (hub/providers/transport.py GIVEN_UP); tests share the emulators' account ids, so a test that
    exhausts retries must not make a later test's calls fail without calling."""
    yield
    from hub.providers.transport import GIVEN_UP

    GIVEN_UP.clear()


@pytest.fixture(scope="session")
def server_url():
    """The server's URL; an embedded server started here is stopped at the end."""
    raw = os.environ.get("HUB_TEST_DATABASE_URL") or (CI_SERVER if os.environ.get("CI") == "true" else None)
    if raw:
        yield db.parse_url(raw, "HUB_TEST_DATABASE_URL")
        return
    os.environ.setdefault("HUB_STATE_DIR", str(Path(__file__).resolve().parent.parent / ".hub" / "test"))
    was_running = embedded_pg.is_running()
    yield embedded_pg.start()
    if not was_running:
        embedded_pg.stop()


@pytest.fixture(scope="session")
def database_url(server_url: URL):
    """A new database migrated to head; HUB_DATABASE_URL points at it for the session."""
    url = server_url.set(database=f"hub_test_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    migrate.upgrade(url)
    previous = os.environ.get("HUB_DATABASE_URL")
    os.environ["HUB_DATABASE_URL"] = url.render_as_string(hide_password=False)
    yield url
    if previous is None:
        os.environ.pop("HUB_DATABASE_URL", None)
    else:
        os.environ["HUB_DATABASE_URL"] = previous
    db.engine(url).dispose()
    db.drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url):
    return db.engine(database_url)


@pytest.fixture
def clean_db(engine):
    """Empty every hub table after the test (identities restart)."""
    yield engine
    names = ", ".join(t.name for t in schema.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
def secret_keys(monkeypatch):
    """A fresh single-key keyring in HUB_SECRET_KEYS; returns the key list."""
    keys = [generate_key()]
    monkeypatch.setenv("HUB_SECRET_KEYS", ",".join(keys))
    return keys


@pytest.fixture(scope="session")
def dagster_pg_url(server_url: URL):
    """A Dagster storage database on the same server (psycopg2 driver, as dagster.yaml)."""
    url = server_url.set(database=f"dagster_test_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    yield url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    db.drop_database(url)


@pytest.fixture(scope="session")
def dagster_instance(dagster_pg_url):
    """A Dagster instance on PostgreSQL storage, like the demo's."""
    import dagster as dg

    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": dagster_pg_url}}}) as instance:
        yield instance


def count(engine, table: sa.Table, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def run_async(coro):
    """`asyncio.run(coro)` in a thread of its own: in a worker that ran a browser test first,
    Playwright's sync API keeps an event loop running in the main thread, where asyncio.run
    refuses to start (the suite's order is random)."""
    import asyncio
    import threading

    outcome: dict = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-asyncio")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
