"""What a provider is, declared once: the ProviderSpec every registry of the hub is derived
from (the CLI's choices and validation, open_client, the sync engine's streams, the
pipelines' assets, partitions, jobs and schedules, the demo's emulators, the webhook
receiver's scheme).

Each provider package (hub/providers/<name>/) exposes one `SPEC`; hub/providers/registry.py
collects them. Everything here is a frozen dataclass of plain facts and callables, so a
spec can be read without opening a connection or importing an emulator: the emulator is
named by its module path as a string, because the hub never imports its test doubles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from hub.providers.ratebudget import Limit
from hub.schema import INTEGRATION_TYPES
from hub.sync.stream_spec import StreamSpec

# how the hub authenticates to the provider's API; one vocabulary for validation and open_client
AUTH_KINDS = (
    "oauth_refresh",  # a user's grant: refresh token kept (rotated) in the encrypted credentials
    "client_credentials",  # OAuth 2.0 client credentials: no user, no refresh token
    "jwt",  # a short-lived token the hub signs itself for each request (DoorDash)
    "static_bearer",  # an API token from the credentials sent as a bearer (Slack, SendGrid)
    "basic",  # HTTP Basic from two credential fields, set on the HTTP client (Twilio)
    "none",  # nothing to authenticate (a local feature)
)
OAUTH_KINDS = ("oauth_refresh", "client_credentials")
CAPABILITIES = ("accounting", "project", "delivery", "messaging", "billing")  # billing: the operator bills companies through it (hub/billing)


@dataclass(frozen=True)
class FieldSpec:
    """One config or credential field of a connection, as its settings page shows it. A config
    field that is not `secret` is an identifier, shown in clear; anything else is masked."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class OAuthConnect:
    """How the settings pages connect an account of this provider by the authorization-code
    flow (hub/connect/oauth_flow.py; the calls in hub/providers/oauth_calls.py and the
    provider's oauth.py). The hub's app at the provider comes from the environment:
    HUB_OAUTH_<NAME>_CLIENT_ID / _CLIENT_SECRET (+ one variable per `app_credentials` field,
    + _BASE_URL for an emulator)."""

    account_config: str  # the config field the connected account's id is stored in
    account_label: str  # what a person calls that account: company, organisation, workspace
    # (hub.providers.oauth_calls.ConnectCall) -> [RemoteAccount]: the accounts the new grant reaches
    accounts: Callable[..., list]
    # (hub.providers.oauth_calls.RevokeCall) -> None: end the grant at the provider (ConnectFailed if it could not)
    revoke: Callable[..., None]
    pkce: bool = False  # send an S256 code challenge (RFC 7636)
    client_auth: str = "basic"  # token endpoint client authentication: basic | form
    revoke_url: str | None = None
    scope_separator: str = " "
    app_credentials: tuple[str, ...] = ()  # credential fields that belong to the hub's app, from the environment
    # the token answer -> config fields it fixes (Slack: the incoming-webhook channel as default_channel)
    config_from_token: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class AuthSpec:
    kind: str  # one of AUTH_KINDS
    authorize_url: str | None = None  # where a user grants access (oauth_refresh)
    token_url: str | None = None  # the provider's token endpoint (OAuth kinds); config `token_url` overrides it
    scopes: tuple[str, ...] = ()
    # the credential fields the kind reads: static_bearer (token,), basic (user, password),
    # jwt (the arguments of `signer`, in order); OAuth kinds read client_id/client_secret
    credential_fields: tuple[str, ...] = ()
    signer: Callable[..., str] | None = None  # jwt: makes a fresh token from the credential fields
    connect: OAuthConnect | None = None  # connected from the settings pages by the authorization-code flow

    def __post_init__(self) -> None:
        assert self.kind in AUTH_KINDS, self.kind

    @property
    def scope(self) -> str | None:
        """The scopes as OAuth sends them (space-separated), or None."""
        return " ".join(self.scopes) or None


@dataclass(frozen=True)
class ClientFactory:
    """How open_client builds the provider's API client over the shared transport."""

    client_class: type
    dialect: Any  # the provider's error/limit dialect for the transport
    base_url: str  # the public API; config `base_url` overrides it (the demo and tests: emulators)
    options: tuple[str, ...] = ()  # config fields passed to the client by name when set
    check: str = "check"  # the client method that makes the connection check's live call


@dataclass(frozen=True)
class InboundWebhook:
    """What the provider sends us: its scheme (the name hub.inbound.verify dispatches on), how
    a delivery is verified, which credential holds the secret, and the parser of its events
    where the hub has one."""

    scheme: str
    # the credential holding the secret the provider signs with (copied, encrypted, onto the
    # inbound endpoint); None when the hub makes the secret itself (`generate_secret`)
    secret_field: str | None
    # (hub.inbound.verify.InboundRequest, secret, hub.inbound.verify.Context) -> None, raising
    # VerificationError: the provider's own (its inbound.py) or a shared one of hub.inbound.verify
    verify: Callable[..., None]
    tolerance_s: int | None = None  # freshness window of a signed timestamp unless the caller sets one; None: none signed
    # no signature: a static credential sent back in a header, whose name each endpoint may
    # set (hub.inbound.verify.verify_static_credential; default Authorization)
    static_header: bool = False
    signs_url: bool = False  # the signature covers the URL called (Twilio): the receiver rebuilds the public URL
    parse: Callable[..., Any] | None = None  # (payload, body) -> its events (hub.inbound.events.InboundEventData)
    # payload -> None, raising ValueError (pydantic's ValidationError is one) when the payload
    # is not the provider's event envelope: refused with 400 before anything is stored
    envelope: Callable[[Any], Any] | None = None
    # payload -> a message's delivery status (hub.notify.status_report.StatusReport) or None (messaging)
    delivery_status: Callable[[Any], Any] | None = None
    # payload -> the body answering a verified set-up probe with 200, nothing stored (Xero's
    # intent to receive: empty; Slack's url_verification: the challenge), or None for an event
    handshake: Callable[[Any], bytes | None] | None = None
    # () -> a new secret: the hub makes the endpoint's secret, shows it once and rotates it
    # with a grace period during which both are accepted (a sender of the company's own,
    # which signs with whatever secret we give it), instead of copying `secret_field`
    generate_secret: Callable[[], str] | None = None
    # request (hub.inbound.verify.InboundRequest) -> the delivery's own message id, the
    # dedupe key of its event instead of an id found in the body (Standard Webhooks' webhook-id)
    message_id: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        assert (self.secret_field is None) == (self.generate_secret is not None), self.scheme


@dataclass(frozen=True)
class AccountingSpec:
    """What two-way accounting sync (hub/sync/) needs of a provider besides its client and
    streams: its side of an export, and which vendor fields go both ways."""

    export_side: Callable[[Any], Any]  # its client -> its side of an export (hub.sync.export.ExportSide)
    vendor_fields: tuple[str, ...]  # the vendor fields synced both ways (of hub.sync.vendors.FIELDS)
    # fields not synced but taken from the remote when a vendor is first met, if the local row has none
    first_contact_fields: tuple[str, ...] = ()
    # the customer fields synced both ways (receivables: of hub.sync.vendors.FIELDS, a customer
    # has a vendor's shape); first_contact_fields apply to customers too
    customer_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliverySpec:
    """What the order job and the kitchen need of a marketplace besides its client: how its
    order becomes a POS order, and its own codes for the hub's reasons. The reasons are the
    hub's vocabulary (hub/orders/pos_mapping.py `REFUSALS`, hub/orders/kitchen.py
    `CANCEL_REASONS`); each marketplace maps every one of them."""

    to_pos_draft: Callable[[dict[str, Any]], Any]  # the provider's order -> hub.orders.pos_mapping.PosDraft
    refusal_codes: Mapping[str, str] = field(hash=False)  # why the hub refuses an order -> the provider's code
    pushed: tuple[str, ...] = ()  # marketplace statuses it is told about when the kitchen sets them
    cancel_reasons: Mapping[str, str] = field(default_factory=dict, hash=False)  # why the kitchen cancels -> its code


@dataclass(frozen=True)
class MessagingSpec:
    """What the notifications (hub/notify/) need of a messaging provider besides its client:
    its own set-up checks (`hub notify check`), what it answers a send, and where its
    delivery status comes back. Its name is also the URL scheme of its routes."""

    # (engine, keyring, integration, its routes, client, report, attempt): appends what it
    # finds to report.lines and what makes sending fail to report.problems; `attempt(what,
    # fn, *args)` calls fn and records its error as a problem instead of raising
    check_setup: Callable[..., None]
    accepted_status: int  # the HTTP status it answers a send it took (the delivery log shows it)
    # the line saying where delivery status is sent, with {url}; None: none comes back
    status_hint: str | None = None


@dataclass(frozen=True)
class CompanyPage:
    """A provider that is the company's own page rather than an integration to connect (the
    subscription to the hub, the AI assist): the hub page shows it as a card leading there."""

    path: str
    title: str
    link: str  # the link's text
    about: str  # one line under the title


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    display_name: str
    category: str  # integration.integration_type
    auth: AuthSpec
    credentials: tuple[FieldSpec, ...] = ()
    config: tuple[FieldSpec, ...] = ()
    account_field: str | None = None  # the field naming the remote account (rate budget, client)
    account_in: str = "config"  # config | credentials
    rate_limits: tuple[Limit, ...] = ()
    client: ClientFactory | None = None  # None: no API client (yet)
    streams: tuple[StreamSpec, ...] = ()  # pull streams (assets <name>/<stream>); empty: no sync
    reconciles: bool = False  # has a nightly reconciliation asset (hub/sync/reconcile.py)
    inbound: InboundWebhook | None = None
    capabilities: tuple[str, ...] = ()  # outbound: what the hub does through it (CAPABILITIES)
    accounting: AccountingSpec | None = None  # capability "accounting": its export side and vendor fields
    delivery: DeliverySpec | None = None  # capability "delivery": its orders and reason codes
    messaging: MessagingSpec | None = None  # capability "messaging": its set-up checks
    emulator: str | None = None  # the emulator's module, e.g. "emulators.xero" (never imported by hub)
    # the tabs of its settings page, in order: keys of hub/web/sections/registry.py
    pages: tuple[str, ...] = ("overview",)
    company_page: CompanyPage | None = None  # the hub page's card leads there instead of to a connect

    def __post_init__(self) -> None:
        assert self.category in INTEGRATION_TYPES, self.category
        assert set(self.capabilities) <= set(CAPABILITIES), self.capabilities
        assert all(s.provider == self.name for s in self.streams), self.name
        assert (self.accounting is not None) == ("accounting" in self.capabilities), self.name
        assert (self.delivery is not None) == ("delivery" in self.capabilities), self.name
        assert (self.messaging is not None) == ("messaging" in self.capabilities), self.name

    @property
    def required_credentials(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.required)

    @property
    def required_config(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.config if f.required)

    @property
    def public_config(self) -> tuple[str, ...]:
        """Config fields that are identifiers, shown in clear; any other config is masked."""
        return tuple(f.name for f in self.config if not f.secret)

    @property
    def secret_credentials(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.secret)

    @property
    def syncs(self) -> bool:
        return bool(self.streams)
