"""Building a provider client for a stored integration from its provider's spec
(hub/providers/<name>/__init__.py): client class, base URL, auth, credentials and rate
budget (shared by every process through the database: hub/providers/shared_budget.py), put
together in one place.

An integration's config may override the provider's public endpoints (`base_url`,
`token_url`): that is how the demo and the tests point the hub at the emulators.

Auth kinds: `oauth_refresh` and `client_credentials` (tokens kept in the integration's
encrypted credentials), `jwt` (DoorDash, made per request), `static_bearer` (an API token
from the credentials sent as a bearer: Slack, SendGrid) and `basic` (HTTP Basic from two
credential fields, set on the HTTP client so it never sits in a header dict: Twilio).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers import registry
from hub.providers.shared_budget import shared_budget_for
from hub.providers.tokens import DatabaseTokenStore, OAuthClient
from hub.providers.transport import RetrySettings, Transport, http_client


class _StaticToken:
    """A stored API token handed to the transport as its bearer; its repr shows nothing."""

    __slots__ = ("_token",)

    def __init__(self, token: str):
        self._token = token

    def __call__(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "_StaticToken(****)"


def open_client(engine: Engine, keyring: Keyring, integration_id: int, retry: RetrySettings | None = None):
    """The provider client of an integration; OAuth tokens live in its encrypted credentials."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    spec = registry.get(item.provider)
    factory = spec.client
    if factory is None:
        raise ValidationError(f"{item.provider} has no API client (yet)")
    account = str((item.credentials if spec.account_in == "credentials" else item.config)[spec.account_field])
    options = {name: item.config[name] for name in factory.options if item.config.get(name) not in (None, "")}
    settings = retry or RetrySettings()
    auth: dict[str, Any] = {}
    kind = spec.auth.kind
    if kind in ("oauth_refresh", "client_credentials"):
        auth["token_store"] = DatabaseTokenStore(engine, keyring, integration_id)
        auth["oauth"] = OAuthClient(
            provider=item.provider,
            token_url=str(item.config.get("token_url") or spec.auth.token_url),
            client_id=item.credentials["client_id"],
            client_secret=item.credentials["client_secret"],
            grant_type="client_credentials" if kind == "client_credentials" else "refresh_token",
            scope=spec.auth.scope,  # sent only with a client-credentials grant (a refresh keeps the user's)
        )
    elif kind == "jwt":
        auth["bearer_factory"] = partial(spec.auth.signer, *(item.credentials[name] for name in spec.auth.credential_fields))
    elif kind == "static_bearer":
        auth["bearer_factory"] = _StaticToken(str(item.credentials[spec.auth.credential_fields[0]]))
    elif kind == "basic":
        user, password = (str(item.credentials[name]) for name in spec.auth.credential_fields)
        auth["http"] = http_client(auth=httpx.BasicAuth(user, password), timeout=settings.timeout_s)
    transport = Transport(
        dialect=factory.dialect,
        base_url=str(item.config.get("base_url") or factory.base_url).rstrip("/"),
        budget=shared_budget_for(engine, item.provider, account, spec.rate_limits),  # one budget per account across processes
        retry=settings,
        account=f"{item.provider}:{account}",
        **auth,
    )
    return factory.client_class(transport, account, **options)
