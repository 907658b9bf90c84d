"""OAuth 2.0 tokens: exchanging a refresh token, and keeping the rotated one safe.

Providers rotate refresh tokens (Procore and QuickBooks invalidate the old one at once), so
two runs refreshing at the same moment must never both spend the same refresh token: the
second would get `invalid_grant` and the integration would need reconnecting. The
database store therefore refreshes under a row lock on the integration:

1. `SELECT ... FOR UPDATE` the integration row and decrypt its credentials;
2. if the stored tokens differ from the stale ones the caller holds, someone else already
   refreshed: use theirs, do not call the provider;
3. otherwise exchange the refresh token, store the new pair encrypted, commit.

The access token and its expiry are stored too, so a new process reuses a live token
instead of refreshing. Why not Authlib's OAuth2Client: its automatic refresh spends the
refresh token outside any lock we hold; the exchange itself is one form POST, done here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.crypto import Keyring, mask
from hub.integrations import CREDENTIALS_PURPOSE
from hub.providers.errors import ConfigurationProblem, NeedsReauthentication, TransientProblem
from hub.schema import integration

EXPIRY_SKEW_S = 60  # refresh this long before the provider's expiry


@dataclass(frozen=True)
class Tokens:
    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0  # epoch seconds

    def fresh(self, now: float | None = None) -> bool:
        return bool(self.access_token) and self.expires_at - EXPIRY_SKEW_S > (now if now is not None else time.time())

    def __repr__(self) -> str:
        return f"Tokens(access={mask(self.access_token)}, refresh={mask(self.refresh_token)}, expires_at={self.expires_at:.0f})"


@dataclass(frozen=True)
class OAuthClient:
    """Where and how to refresh: the provider's token URL and our client credentials."""

    provider: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    auth_method: str = "basic"  # basic (Authorization header) | form (client_secret in the body)
    grant_type: str = "refresh_token"  # or client_credentials (Uber Eats: no user, no refresh token)
    scope: str | None = None


def exchange_refresh_token(http: httpx.Client, client: OAuthClient, refresh_token: str) -> Tokens:
    """POST to the token endpoint (refresh_token or client_credentials grant); map the
    provider's answer to tokens or a typed error."""
    if client.grant_type == "client_credentials":
        data = {"grant_type": "client_credentials", **({"scope": client.scope} if client.scope else {})}
    else:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = None
    if client.auth_method == "basic":
        auth = (client.client_id, client.client_secret)
    else:
        data.update(client_id=client.client_id, client_secret=client.client_secret)
    try:
        response = http.post(client.token_url, data=data, auth=auth, headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise TransientProblem(client.provider, f"token endpoint unreachable ({type(exc).__name__})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientProblem(client.provider, "token endpoint unavailable", status=response.status_code)
    body = _json(response)
    if response.status_code == 400 and body.get("error") == "invalid_grant":
        raise NeedsReauthentication(
            client.provider,
            "the refresh token was refused; reconnect the integration",
            status=400,
            code="invalid_grant",
            detail=body.get("error_description"),
        )
    if response.status_code in (400, 401) and body.get("error") == "invalid_client":
        raise ConfigurationProblem(client.provider, "the OAuth client id or secret is wrong", status=response.status_code, code="invalid_client")
    if response.status_code != 200 or "access_token" not in body:
        raise NeedsReauthentication(client.provider, "token refresh failed", status=response.status_code, code=body.get("error"))
    return Tokens(
        refresh_token=body.get("refresh_token") or refresh_token,  # some grants keep the old one
        access_token=body["access_token"],
        expires_at=time.time() + float(body.get("expires_in", 3600)),
    )


def _json(response: httpx.Response) -> dict:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


Exchange = Callable[[str], Tokens]


class TokenStore(Protocol):
    def load(self) -> Tokens: ...

    def refresh(self, stale: Tokens, exchange: Exchange) -> Tokens:
        """New tokens: someone else's if they already refreshed past `stale`, else exchange."""
        ...


class MemoryTokenStore:
    """Tokens kept in this process only (tests, one-off scripts); a lock stands in for the row lock."""

    def __init__(self, tokens: Tokens):
        self._tokens = tokens
        self._lock = threading.Lock()

    def load(self) -> Tokens:
        return self._tokens

    def refresh(self, stale: Tokens, exchange: Exchange) -> Tokens:
        with self._lock:
            current = self._tokens
            if _someone_else_refreshed(current, stale):
                return current
            self._tokens = exchange(current.refresh_token)
            return self._tokens


class DatabaseTokenStore:
    """Tokens in the integration's encrypted credentials, refreshed under a row lock."""

    def __init__(self, engine: Engine, keyring: Keyring, integration_id: int):
        self.engine, self.keyring, self.integration_id = engine, keyring, integration_id

    def _select(self, lock: bool):
        query = sa.select(integration.c.credentials).where(integration.c.id == self.integration_id)
        # NO KEY UPDATE: we change credentials, never the key, so inserts that reference the
        # integration (webhooks writing orders) are not held up by a refresh
        return query.with_for_update(key_share=True) if lock else query

    def load(self) -> Tokens:
        with self.engine.connect() as conn:
            envelope = conn.execute(self._select(lock=False)).scalar_one()
        return _tokens_from(self.keyring.decrypt(envelope, CREDENTIALS_PURPOSE))

    def refresh(self, stale: Tokens, exchange: Exchange) -> Tokens:
        with self.engine.begin() as conn:
            credentials = self.keyring.decrypt(conn.execute(self._select(lock=True)).scalar_one(), CREDENTIALS_PURPOSE)
            current = _tokens_from(credentials)
            if _someone_else_refreshed(current, stale):
                return current
            new = exchange(current.refresh_token)
            credentials.update(refresh_token=new.refresh_token, access_token=new.access_token, access_token_expires_at=new.expires_at)
            conn.execute(
                sa.update(integration)
                .where(integration.c.id == self.integration_id)
                .values(credentials=self.keyring.encrypt(credentials, CREDENTIALS_PURPOSE), updated_at=sa.func.now())
            )
            return new


def _tokens_from(credentials: dict) -> Tokens:
    return Tokens(
        refresh_token=credentials.get("refresh_token", ""),
        access_token=credentials.get("access_token"),
        expires_at=float(credentials.get("access_token_expires_at") or 0),
    )


def _someone_else_refreshed(current: Tokens, stale: Tokens) -> bool:
    """The stored tokens moved on since the caller read them, and are usable."""
    moved = current.refresh_token != stale.refresh_token or (current.access_token != stale.access_token and current.access_token)
    return bool(moved) and current.fresh()


def expired(tokens: Tokens) -> Tokens:
    """The same tokens marked expired (after a 401), so the next refresh goes through."""
    return replace(tokens, expires_at=0.0)
