"""The providers the hub knows, declared once.

Each entry says what category a provider belongs to and which credential and config
fields a connection needs. The CLI validates input against it, the settings views list
it, and later issues add each provider's streams beside it. Adding a provider is one
entry here, not new code paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hub.errors import ValidationError
from hub.schema import INTEGRATION_TYPES


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    display_name: str
    integration_type: str
    required_credentials: tuple[str, ...]
    required_config: tuple[str, ...] = ()
    auth: str = "api_key"  # oauth2 | api_key | signing_secret | none
    # inbound webhooks: the verification scheme (hub.webhooks.verify) and which credential
    # holds its secret; None when the provider sends us nothing
    webhook_scheme: str | None = None
    webhook_secret_field: str | None = None

    @property
    def public_config(self) -> tuple[str, ...]:
        """Config fields that are identifiers, shown in clear; any other config is masked."""
        return self.required_config

    def __post_init__(self) -> None:
        assert self.integration_type in INTEGRATION_TYPES, self.integration_type


_OAUTH = ("client_id", "client_secret", "refresh_token")

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("quickbooks", "QuickBooks Online", "accounting", _OAUTH, ("realm_id",), auth="oauth2",
                     webhook_scheme="quickbooks", webhook_secret_field="webhook_verifier_token"),
        ProviderSpec("xero", "Xero", "accounting", _OAUTH, ("tenant_id",), auth="oauth2",
                     webhook_scheme="xero", webhook_secret_field="webhook_key"),
        ProviderSpec("procore", "Procore", "project_management", _OAUTH, ("company_id",), auth="oauth2",
                     webhook_scheme="procore", webhook_secret_field="webhook_token"),
        ProviderSpec(
            "doordash", "DoorDash Marketplace", "delivery",
            ("developer_id", "key_id", "signing_secret", "webhook_token"), ("store_id",), auth="signing_secret",
            webhook_scheme="doordash", webhook_secret_field="webhook_token",
        ),
        ProviderSpec("ubereats", "Uber Eats", "delivery", ("client_id", "client_secret"), ("store_id",), auth="oauth2",
                     webhook_scheme="ubereats", webhook_secret_field="client_secret"),
        ProviderSpec("slack", "Slack", "communication", ("bot_token", "signing_secret"), ("default_channel",),
                     webhook_scheme="slack", webhook_secret_field="signing_secret"),
        ProviderSpec("sendgrid", "SendGrid", "communication", ("api_key",), ("from_email",),
                     webhook_scheme="sendgrid", webhook_secret_field="webhook_public_key"),
        ProviderSpec("twilio", "Twilio", "communication", ("account_sid", "auth_token"), ("from_number",),
                     webhook_scheme="twilio", webhook_secret_field="auth_token"),
        ProviderSpec("stripe", "Stripe", "payment", ("api_key", "webhook_secret"),
                     webhook_scheme="stripe", webhook_secret_field="webhook_secret"),
        ProviderSpec("ai_assist", "AI assist (local)", "productivity", (), (), auth="none"),
    )
}


def get(provider: str) -> ProviderSpec:
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise ValidationError(f"unknown provider '{provider}'; known providers: {', '.join(sorted(PROVIDERS))}")
    return spec


def validate(provider: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> ProviderSpec:
    """Check that a connection has every field its provider needs; names only in errors."""
    spec = get(provider)
    for kind, required, given in (
        ("credential", spec.required_credentials, credentials),
        ("config", spec.required_config, config),
    ):
        missing = [f for f in required if given.get(f) in (None, "")]
        if missing:
            raise ValidationError(
                f"{spec.display_name} needs {kind} field(s) {', '.join(missing)} (required: {', '.join(required)})"
            )
    return spec
