"""Building a provider client for a stored integration: one place that knows which
client, base URL, auth, credentials and rate budget go together.

An integration's config may override the provider's public endpoints (`base_url`,
`token_url`): that is how the demo and the tests point the hub at the emulators.

Auth kinds: `oauth_refresh` and `client_credentials` (tokens kept in the integration's
encrypted credentials), `jwt` (DoorDash, made per request), `static_bearer` (an API token
from the credentials sent as a bearer: Slack, SendGrid) and `basic` (HTTP Basic from two
credential fields, set on the HTTP client so it never sits in a header dict: Twilio).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers import doordash, procore, quickbooks, sendgrid, slack, twilio, ubereats, xero
from hub.providers.ratebudget import budget_for
from hub.providers.tokens import DatabaseTokenStore, OAuthClient
from hub.providers.transport import RetrySettings, Transport, http_client


@dataclass(frozen=True)
class ClientSpec:
    module: ModuleType  # NAME, DEFAULT_BASE_URL, LIMITS, [DEFAULT_TOKEN_URL, SCOPE]
    account_field: str  # the field naming the remote account (in config, or in credentials: account_in)
    client_class: type
    dialect: Any
    auth: str  # oauth_refresh | client_credentials | jwt | static_bearer | basic
    credential_fields: tuple[str, ...] = ()  # static_bearer: (token,); basic: (user, password)
    options: tuple[str, ...] = ()  # config fields passed to the client by name when set
    account_in: str = "config"  # config | credentials


CLIENTS: dict[str, ClientSpec] = {
    "quickbooks": ClientSpec(quickbooks, "realm_id", quickbooks.QuickBooksClient, quickbooks.QuickBooksDialect(), "oauth_refresh"),
    "xero": ClientSpec(xero, "tenant_id", xero.XeroClient, xero.XeroDialect(), "oauth_refresh"),
    "procore": ClientSpec(procore, "company_id", procore.ProcoreClient, procore.ProcoreDialect(), "oauth_refresh"),
    "ubereats": ClientSpec(ubereats, "store_id", ubereats.UberEatsClient, ubereats.UberEatsDialect(), "client_credentials"),
    "doordash": ClientSpec(doordash, "store_id", doordash.DoorDashClient, doordash.DoorDashDialect(), "jwt"),
    "slack": ClientSpec(slack, "default_channel", slack.SlackClient, slack.SlackDialect(), "static_bearer", ("bot_token",)),
    "sendgrid": ClientSpec(sendgrid, "from_email", sendgrid.SendGridClient, sendgrid.SendGridDialect(), "static_bearer",
                           ("api_key",), options=("from_name",)),
    "twilio": ClientSpec(twilio, "account_sid", twilio.TwilioClient, twilio.TwilioDialect(), "basic", ("account_sid", "auth_token"),
                         options=("from_number", "messaging_service_sid"), account_in="credentials"),
}


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
    spec = CLIENTS.get(item.provider)
    if spec is None:
        raise ValidationError(f"{item.provider} has no API client (yet)")
    account = str((item.credentials if spec.account_in == "credentials" else item.config)[spec.account_field])
    options = {name: item.config[name] for name in spec.options if item.config.get(name) not in (None, "")}
    settings = retry or RetrySettings()
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
    elif spec.auth == "static_bearer":
        auth["bearer_factory"] = _StaticToken(str(item.credentials[spec.credential_fields[0]]))
    elif spec.auth == "basic":
        user, password = (str(item.credentials[name]) for name in spec.credential_fields)
        auth["http"] = http_client(auth=httpx.BasicAuth(user, password), timeout=settings.timeout_s)
    transport = Transport(
        dialect=spec.dialect,
        base_url=str(item.config.get("base_url") or spec.module.DEFAULT_BASE_URL).rstrip("/"),
        budget=budget_for(item.provider, account, spec.module.LIMITS),
        retry=settings,
        **auth,
    )
    return spec.client_class(transport, account, **options)
