"""Fixtures for provider clients against the emulators over real HTTP on loopback."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from emulators.serve import serve
from hub.providers.ratebudget import RateBudget
from hub.providers.tokens import MemoryTokenStore, OAuthClient, Tokens
from hub.providers.transport import RetrySettings, Transport

CLIENT_ID, CLIENT_SECRET = "hub-demo", "hub-demo-secret"

# fast retries for tests: the behaviour is the same, the waits are short
FAST = RetrySettings(max_attempts=8, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, timeout_s=5.0)


@contextmanager
def running(emulator):
    with serve(emulator.app) as base_url:
        yield base_url


def transport_for(emulator, base_url: str, dialect, token_path: str, subject: dict, *, store=None, retry=FAST, limits=()):
    """A Transport with a refresh token granted by the emulator, as after a user's Connect."""
    if store is None:
        refresh = emulator.core.oauth.issue_refresh_token(CLIENT_ID, subject)
        store = MemoryTokenStore(Tokens(refresh_token=refresh))
    return Transport(
        dialect=dialect,
        base_url=base_url,
        budget=RateBudget(dialect.name, limits, max_wait_s=5.0),
        token_store=store,
        oauth=OAuthClient(dialect.name, base_url + token_path, CLIENT_ID, CLIENT_SECRET),
        retry=retry,
    )


@pytest.fixture
def no_secrets_in_logs(caplog):
    """Collect every log record (httpx included) so a test can assert no secret leaked."""
    caplog.set_level("DEBUG")
    return caplog


def qbo_rows(emulator, entity: str) -> dict[str, dict]:
    """Every row of a QuickBooks emulator's entity (retired ones too), by Id, read from its state."""
    rows, position = {}, 1
    while True:
        found = emulator.state.query(f"SELECT * FROM {entity} WHERE Active IN (true, false) STARTPOSITION {position} MAXRESULTS 1000").get(entity, [])
        rows.update({r["Id"]: r for r in found})
        if len(found) < 1000:
            return rows
        position += 1000
