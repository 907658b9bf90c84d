"""Building a provider client for a stored integration: one place that knows which
client, base URL, auth, credentials and rate budget go together.

An integration's config may override the provider's public endpoints (`base_url`,
`token_url`): that is how the demo and the tests point the hub at the emulators.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers import doordash, procore, quickbooks, ubereats, xero
from hub.providers.ratebudget import budget_for
from hub.providers.tokens import DatabaseTokenStore, OAuthClient
from hub.providers.transport import RetrySettings, Transport


@dataclass(frozen=True)
class ClientSpec:
    module: ModuleType  # NAME, DEFAULT_BASE_URL, LIMITS, [DEFAULT_TOKEN_URL, SCOPE]
    account_field: str  # the config field naming the remote account
    client_class: type
    dialect: Any
    auth: str  # oauth_refresh | client_credentials | jwt


CLIENTS: dict[str, ClientSpec] = {
    "quickbooks": ClientSpec(quickbooks, "realm_id", quickbooks.QuickBooksClient, quickbooks.QuickBooksDialect(), "oauth_refresh"),
    "xero": ClientSpec(xero, "tenant_id", xero.XeroClient, xero.XeroDialect(), "oauth_refresh"),
    "procore": ClientSpec(procore, "company_id", procore.ProcoreClient, procore.ProcoreDialect(), "oauth_refresh"),
    "ubereats": ClientSpec(ubereats, "store_id", ubereats.UberEatsClient, ubereats.UberEatsDialect(), "client_credentials"),
    "doordash": ClientSpec(doordash, "store_id", doordash.DoorDashClient, doordash.DoorDashDialect(), "jwt"),
}


def open_client(engine: Engine, keyring: Keyring, integration_id: int, retry: RetrySettings | None = None):
    """The provider client of an integration; OAuth tokens live in its encrypted credentials."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    spec = CLIENTS.get(item.provider)
    if spec is None:
        raise ValidationError(f"{item.provider} has no API client (yet)")
    account = str(item.config[spec.account_field])
    auth: dict[str, Any] = {}
    if spec.auth in ("oauth_refresh", "client_credentials"):
        auth["token_store"] = DatabaseTokenStore(engine, keyring, integration_id)
        auth["oauth"] = OAuthClient(
            provider=item.provider,
            token_url=str(item.config.get("token_url") or spec.module.DEFAULT_TOKEN_URL),
            client_id=item.credentials["client_id"],
            client_secret=item.credentials["client_secret"],
            grant_type="client_credentials" if spec.auth == "client_credentials" else "refresh_token",
            scope=getattr(spec.module, "SCOPE", None),
        )
    elif spec.auth == "jwt":
        credentials = item.credentials
        auth["bearer_factory"] = partial(
            doordash.make_jwt, credentials["developer_id"], credentials["key_id"], credentials["signing_secret"]
        )
    transport = Transport(
        dialect=spec.dialect,
        base_url=str(item.config.get("base_url") or spec.module.DEFAULT_BASE_URL).rstrip("/"),
        budget=budget_for(item.provider, account, spec.module.LIMITS),
        retry=retry or RetrySettings(),
        **auth,
    )
    return spec.client_class(transport, account)
