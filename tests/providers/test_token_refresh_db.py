"""Refresh tokens kept in the encrypted store: two concurrent runs never spend the same
refresh token, the rotated one is persisted, and nothing secret reaches the logs."""

import threading

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from emulators.procore import create_emulator
from hub import integrations as store
from hub.cli import app
from hub.crypto import Keyring
from hub.providers.connect import open_client
from hub.providers.errors import NeedsReauthentication
from hub.schema import integration, sync_log
from tests.providers.conftest import CLIENT_ID, CLIENT_SECRET, running

COMPANY = 562949953421312


@pytest.fixture(scope="module")
def emulator():
    return create_emulator(projects=1, rfis_per_project=10)


@pytest.fixture(scope="module")
def base_url(emulator):
    with running(emulator) as url:
        yield url


@pytest.fixture
def connected(clean_db, secret_keys, emulator, base_url):
    """A Procore integration whose refresh token the emulator granted."""
    keyring = Keyring(secret_keys)
    refresh = emulator.core.oauth.issue_refresh_token(CLIENT_ID, {"company_id": COMPANY})
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        integration_id = store.add_integration(
            conn, keyring, company_id=company_id, provider="procore",
            config={"company_id": str(COMPANY), "base_url": base_url, "token_url": base_url + "/oauth/token"},
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": refresh}, active=True
        )
    return clean_db, keyring, integration_id, refresh


def _stored(engine, keyring, integration_id):
    with engine.connect() as conn:
        return store.get_integration(conn, keyring, integration_id).credentials.reveal()


def test_two_concurrent_runs_refresh_once_and_both_work(connected, emulator, no_secrets_in_logs):
    engine, keyring, integration_id, original = connected
    before = emulator.core.oauth.refreshes
    clients = [open_client(engine, keyring, integration_id) for _ in range(2)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(client):
        barrier.wait()
        try:
            results.append(client.check())
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    assert emulator.core.oauth.refreshes == before + 1  # the single-use token was spent once
    stored = _stored(engine, keyring, integration_id)
    assert stored["refresh_token"] != original and stored["access_token"]
    # a later run starts from the stored access token: no refresh at all
    later = open_client(engine, keyring, integration_id)
    later.check()
    assert emulator.core.oauth.refreshes == before + 1
    for client in (*clients, later):
        client.transport.close()
    logged = "\n".join(r.getMessage() for r in no_secrets_in_logs.records)
    for secret in (original, stored["refresh_token"], stored["access_token"], CLIENT_SECRET):
        assert secret not in logged


def _spend_elsewhere(base_url: str, refresh_token: str) -> None:
    """Another installation spends the refresh token at the provider."""
    response = httpx.post(base_url + "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                          auth=(CLIENT_ID, CLIENT_SECRET))
    assert response.status_code == 200


def test_a_spent_refresh_token_needs_reauthentication(connected, base_url):
    engine, keyring, integration_id, original = connected
    _spend_elsewhere(base_url, original)
    client = open_client(engine, keyring, integration_id)
    with pytest.raises(NeedsReauthentication, match="reconnect"):
        client.check()
    client.transport.close()
    assert _stored(engine, keyring, integration_id)["refresh_token"] == original  # nothing overwritten


def test_cli_check(connected):
    engine, keyring, integration_id, _ = connected
    result = CliRunner().invoke(app, ["integration", "check", str(integration_id)])
    assert result.exit_code == 0, result.output
    assert "connected" in result.output and "api_calls" in result.output and "token_refreshes        1" in result.output
    assert CLIENT_SECRET not in result.output
    status, error, log = _check_recorded(engine, integration_id)  # the same record as the connection_check asset
    assert (status, error) == ("connected", None) and (log.sync_type, log.action, log.status) == ("connection", "verify_connection", "completed")


def test_cli_check_bad_token_is_one_line(connected, base_url):
    engine, keyring, integration_id, original = connected
    _spend_elsewhere(base_url, original)
    result = CliRunner().invoke(app, ["integration", "check", str(integration_id)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: procore: the refresh token was refused; reconnect the integration")
    status, error, log = _check_recorded(engine, integration_id)
    assert status == "error" and "reconnect" in error and log.status == "failed"


def _check_recorded(engine, integration_id):
    with engine.connect() as conn:
        status, error = conn.execute(sa.select(integration.c.status, integration.c.error_message)
                                     .where(integration.c.id == integration_id)).one()
        log = conn.execute(sa.select(sync_log).where(sync_log.c.integration_id == integration_id)
                           .order_by(sync_log.c.id.desc()).limit(1)).one()
    return status, error, log
