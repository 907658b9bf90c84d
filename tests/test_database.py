"""Database URL handling and the embedded PostgreSQL lifecycle."""

import pytest
import sqlalchemy as sa

from hub import db, embedded_pg
from hub.errors import ConfigurationError


@pytest.mark.parametrize(
    "raw, message",
    [("sqlite:///hub.db", "must name a PostgreSQL server"), ("mysql://u@h/db", "must name a PostgreSQL server"), ("::::", "not a valid database URL")],
)
def test_only_postgresql_urls(raw, message):
    with pytest.raises(ConfigurationError, match=message):
        db.parse_url(raw)


def test_bare_postgresql_url_gets_psycopg3():
    assert db.parse_url("postgresql://u:pw@h:5432/hub").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "raw",
    ["postgresql://u:S3CRET@h:5432/hub", "postgresql://u@h/hub?password=S3CRET", "postgresql://u@h/hub?sslpassword=S3CRET&sslmode=require"],
)
def test_safe_url_hides_every_password_form(raw):
    shown = db.safe_url(raw)
    assert "S3CRET" not in shown and "h" in shown


def test_dagster_url_beside_the_hub_database(monkeypatch, server_url):
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    url = db.dagster_url(server_url.set(database="hub"))
    assert url.startswith("postgresql+psycopg2://") and url.split("?")[0].endswith("/dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://x@y/z")
    assert db.dagster_url(server_url) == "postgresql+psycopg2://x@y/z"


def test_embedded_server_starts_persists_and_stops(tmp_path, monkeypatch):
    """Unset HUB_DATABASE_URL -> embedded server in the state dir; reused across starts."""
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    try:
        url = db.hub_url()
        assert url.database == "hub" and str(tmp_path) in url.query["host"]
        with sa.create_engine(url).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE kept (v text)")
            conn.exec_driver_sql("INSERT INTO kept VALUES ('still here')")
        assert embedded_pg.is_running()
        assert embedded_pg.stop() is True
        assert not embedded_pg.is_running()
        assert embedded_pg.stop() is False  # stopping twice is harmless

        again = db.hub_url()  # starts the same data folder again
        engine = sa.create_engine(again)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT v FROM kept")) == "still here"
        engine.dispose()
    finally:
        embedded_pg.stop()
