"""Building a provider client for a stored integration: one place that knows which
client, base URL, token URL, credentials and rate budget go together.

An integration's config may override the provider's public endpoints (`base_url`,
`token_url`): that is how the demo and the tests point the hub at the emulators.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers import procore, quickbooks, xero
from hub.providers.ratebudget import budget_for
from hub.providers.tokens import DatabaseTokenStore, OAuthClient
from hub.providers.transport import RetrySettings, Transport

# provider -> (module, config field naming the remote account, client class)
CLIENTS: dict[str, tuple[Any, str, type]] = {
    "quickbooks": (quickbooks, "realm_id", quickbooks.QuickBooksClient),
    "xero": (xero, "tenant_id", xero.XeroClient),
    "procore": (procore, "company_id", procore.ProcoreClient),
}
DIALECTS = {"quickbooks": quickbooks.QuickBooksDialect(), "xero": xero.XeroDialect(), "procore": procore.ProcoreDialect()}


def open_client(engine: Engine, keyring: Keyring, integration_id: int, retry: RetrySettings | None = None):
    """The provider client of an integration, with its tokens in the database."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    if item.provider not in CLIENTS:
        raise ValidationError(f"{item.provider} has no API client (yet)")
    module, account_field, client_class = CLIENTS[item.provider]
    account = str(item.config[account_field])
    transport = Transport(
        dialect=DIALECTS[item.provider],
        base_url=str(item.config.get("base_url") or module.DEFAULT_BASE_URL).rstrip("/"),
        budget=budget_for(item.provider, account, module.LIMITS),
        token_store=DatabaseTokenStore(engine, keyring, integration_id),
        oauth=OAuthClient(
            provider=item.provider,
            token_url=str(item.config.get("token_url") or module.DEFAULT_TOKEN_URL),
            client_id=item.credentials["client_id"],
            client_secret=item.credentials["client_secret"],
        ),
        retry=retry or RetrySettings(),
    )
    return client_class(transport, account)
