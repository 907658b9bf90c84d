"""Demo data: two companies with a few integrations each, so a newcomer sees partitions,
an inventory and sync history in the Dagster UI. Idempotent: run it on every demo start.

Credentials here are demo values for the bundled emulators, not real secrets; they are
still stored encrypted like any others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.auth import users
from hub.connect import oauth_flow
from hub.connection_check import check_connection
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.providers import registry
from hub.providers.spec import OAUTH_KINDS
from hub.integrations import CREDENTIALS_PURPOSE
from hub.outbound.endpoints import add_endpoint, get_endpoint, list_endpoints, update_endpoint
from hub.schema import integration
from hub.inbound.provider_endpoints import create_inbound

# The bundled emulators (`python -m emulators run --port-base N`, started by `make demo`), by module as
# the provider specs name them, at their offset from the first port: the order of emulators/registry.py
# (the hub does not import it; tests/test_provider_registry.py checks the two agree).
EMULATOR_OFFSETS = {
    "emulators.quickbooks": 0, "emulators.xero": 1, "emulators.procore": 2, "emulators.ubereats": 3,
    "emulators.doordash": 4, "emulators.slack": 5, "emulators.sendgrid": 6, "emulators.twilio": 7,
    "emulators.webhook_sink": 8,  # a customer's endpoint, for the outbound webhooks
    "emulators.stripe": 9,  # the hub operator's own Stripe account (platform billing), not a company's integration
    "emulators.openai_chat": 10,  # an OpenAI-compatible chat API: the AI assist's optional external model
}
DEFAULT_PORT_BASE = 8101  # each emulator's own port in emulators/registry.py
DEFAULT_WEB_PORT = 8000


@dataclass(frozen=True)
class DemoPorts:
    """Where one demo's services listen: the emulators from `base` on, the hub web app on
    `web`. scripts/demo.sh starts them there (HUB_DEMO_PORT_BASE, HUB_WEB_PORT) and the demo
    commands point the integrations at them, so two demos can run side by side."""

    base: int = DEFAULT_PORT_BASE
    web: int = DEFAULT_WEB_PORT

    def emulator_url(self, module: str) -> str:
        return f"http://127.0.0.1:{self.base + EMULATOR_OFFSETS[module]}"

    @property
    def emulator_urls(self) -> dict[str, str]:
        """Provider name -> base URL of its emulator."""
        return {provider: self.emulator_url(module) for provider, module in registry.emulated().items()}

    @property
    def sink_url(self) -> str:
        return self.emulator_url("emulators.webhook_sink")

    @property
    def hub_web_url(self) -> str:
        return f"http://127.0.0.1:{self.web}"


DEFAULT_PORTS = DemoPorts()
EMULATED = tuple(registry.emulated())  # providers the demo connects to an emulator
# an emulator serves its provider's token endpoint at the same path as the real one
TOKEN_PATHS = {name: urlsplit(spec.auth.token_url).path for name, spec in registry.providers().items()
               if spec.auth.kind in OAUTH_KINDS and spec.auth.token_url and name in EMULATED}
# providers whose demo connection needs a user's grant
OAUTH_GRANTS = tuple(name for name in EMULATED if registry.get(name).auth.kind == "oauth_refresh")
# where each emulator is told the hub's inbound webhook URL (providers that call the hub back)
WEBHOOK_SETTINGS = {"ubereats": "/_emulator/webhook", "doordash": "/_emulator/webhook", "sendgrid": "/_emulator/event_webhook"}
_OAUTH_DEMO = {"client_id": "hub-demo", "client_secret": "hub-demo-secret", "refresh_token": "granted-by-demo-connect"}


def _emulator_config(provider: str, ports: DemoPorts) -> dict[str, str]:
    """The config keys that point an integration at its emulator on these ports."""
    base = ports.emulator_urls[provider]
    return {"base_url": base, **({"token_url": base + TOKEN_PATHS[provider]} if provider in TOKEN_PATHS else {})}


# company -> (provider, name, config, credentials); seed() adds where the emulator runs
DEMO = {
    ("Acme Builders", "America/New_York"): [
        ("quickbooks", "QuickBooks (Acme)", {"realm_id": "9130350000000001"}, _OAUTH_DEMO),
        ("procore", "Procore (Acme)", {"company_id": "562949953421312"}, _OAUTH_DEMO),
        ("slack", "Slack (Acme)", {"default_channel": "#ops"},
         {"bot_token": "xoxb-demo-token-000000", "signing_secret": "demo-slack-signing-secret"}),
        ("sendgrid", "SendGrid (Acme)", {"from_email": "noreply@acme-builders.example"},
         {"api_key": "SG.demo-key-000000000000.demo-sendgrid-secret-00000000000000000001",
          "webhook_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmenYXz6vJF438f3IHrFDlz5kmhReAu9WltjYFGtTI/93Ku0kpCHP+Sxt68czI/p8qx7IGAgP2pj+3vWaUhi9RA=="}),
    ],
    ("Bella Pizza", "America/Chicago"): [
        ("xero", "Xero (Bella)", {"tenant_id": "a3b1c5d7-0000-4000-8000-000000000001"}, _OAUTH_DEMO),
        ("doordash", "DoorDash (Bella)", {"store_id": "601135"},
         {"developer_id": "demo-dev", "key_id": "demo-key", "signing_secret": "ZGVtby1zaWduaW5nLXNlY3JldA", "webhook_token": "demo-webhook-token-0001"}),
        ("ubereats", "Uber Eats (Bella)", {"store_id": "bella-001"}, {"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"}),
        ("twilio", "Twilio (Bella)", {"from_number": "+15005550006"}, {"account_sid": "AC" + "0" * 32, "auth_token": "demo-auth-token-000001"}),
    ],
}


# logins for the settings pages: an admin and a viewer per demo company, and one admin of
# both (the company switcher). A demo password, printed by `hub demo seed` and scripts/demo.sh.
DEMO_PASSWORD = "demo-password-2026"
DEMO_USERS = (
    ("admin@acme.example", (("Acme Builders", "admin"),)),
    ("viewer@acme.example", (("Acme Builders", "viewer"),)),
    ("admin@bella.example", (("Bella Pizza", "admin"),)),
    ("viewer@bella.example", (("Bella Pizza", "viewer"),)),
    ("owner@demo.example", (("Acme Builders", "admin"), ("Bella Pizza", "admin"))),
)


def seed(engine: Engine, keyring: Keyring, ports: DemoPorts = DEFAULT_PORTS) -> Iterator[str]:
    yield from _seed_companies(engine, keyring, ports)
    yield from _seed_users(engine)


def _seed_users(engine: Engine) -> Iterator[str]:
    """The demo logins (idempotent: an existing user keeps its password)."""
    with engine.begin() as conn:
        for email, roles in DEMO_USERS:
            existing = users.find_user(conn, email)
            user_id = existing.id if existing else users.create_user(conn, email, DEMO_PASSWORD)
            for company_name, role in roles:
                users.grant(conn, user_id, store.find_company(conn, company_name).id, role)
            yield (f"login {email} ({', '.join(f'{role} of {name}' for name, role in roles)})"
                   + ("" if existing else f", password {DEMO_PASSWORD}"))


def _seed_companies(engine: Engine, keyring: Keyring, ports: DemoPorts) -> Iterator[str]:
    with engine.begin() as conn:
        for (company_name, timezone), items in DEMO.items():
            try:
                company_id = store.find_company(conn, company_name).id
                yield f"company '{company_name}' already present ({company_id})"
                yield from _repoint(conn, keyring, company_id, items, ports)
                continue
            except NotFoundError:
                company_id = store.create_company(conn, company_name, timezone)
            for provider, name, config, credentials in items:
                new_id = store.add_integration(
                    conn, keyring, company_id=company_id, provider=provider, name=name,
                    config={**config, **_emulator_config(provider, ports)}, credentials=credentials
                )
                yield f"{company_name}: {name} -> integration {new_id}"


def emulator_base(item) -> str | None:
    """The integration's base URL when it points at a loopback emulator (the demo's own),
    else None: the demo steps leave an integration someone pointed elsewhere alone."""
    base = str(item.config.get("base_url", ""))
    return base if base.startswith(("http://127.0.0.1", "http://localhost")) else None


def _repoint(conn, keyring: Keyring, company_id: int, items, ports: DemoPorts) -> Iterator[str]:
    """A demo started again on other ports: its integrations still pointed at a loopback
    emulator follow the emulators to the ports they run on now."""
    names = {name: provider for provider, name, _, _ in items}
    for row in store.list_integrations(conn, company_id=company_id):
        if names.get(row.name) != row.provider:
            continue
        item = store.get_integration(conn, keyring, row.id)
        if emulator_base(item) is None:
            continue
        wanted = _emulator_config(row.provider, ports)
        if any(item.config.get(key) != value for key, value in wanted.items()):
            store.update_config(conn, keyring, row.id, wanted)
            yield f"{row.name}: now pointed at the emulator at {wanted['base_url']}"


def _grant_subject(provider: str, config: dict) -> dict:
    """What the emulated user connected: the account the grant reaches."""
    return {"quickbooks": {"realmId": config.get("realm_id")}, "xero": {"tenantId": config.get("tenant_id")},
            "procore": {"company_id": config.get("company_id")}}[provider]


def connect_emulated(engine: Engine, keyring: Keyring, hub_web_url: str = DEFAULT_PORTS.hub_web_url) -> Iterator[str]:
    """For every integration pointed at a loopback emulator that an admin has not disabled
    (active, or new and not yet active): for OAuth providers, ask the emulator for a refresh
    token (as if the user clicked "Connect") and store it encrypted; for delivery
    marketplaces, create the hub's inbound webhook endpoint and tell the emulator to send its
    order webhooks there. The emulators keep their state in memory, so the demo does this on
    every start. A new integration becomes active when its connection check then passes
    (`hub integration check`, run by scripts/demo.sh after this)."""
    with engine.connect() as conn:
        rows = store.list_integrations(conn)
    for row in rows:
        if row.provider not in EMULATED or not (row.is_active or row.status == "pending"):
            continue
        with engine.begin() as conn:
            item = store.get_integration(conn, keyring, row.id)
            base = emulator_base(item)
            if base is None:
                continue
            if item.provider not in OAUTH_GRANTS:
                endpoint_id = create_inbound(conn, keyring, item.id)
                target = f"{hub_web_url}/webhooks/{item.provider}/{endpoint_id}"
                setting = WEBHOOK_SETTINGS.get(item.provider)
                if setting is None:  # Twilio: the status callback URL goes with each message
                    yield f"{item.name}: uses the emulator at {base}; callbacks to {target}"
                    continue
                try:
                    httpx.post(f"{base}{setting}", json={"url": target}, timeout=5).raise_for_status()
                except httpx.HTTPError as exc:
                    yield f"{item.name}: emulator at {base} not reachable ({type(exc).__name__}); skipped"
                    continue
                yield f"{item.name}: the emulator at {base} now sends its webhooks to {target}"
                continue
            try:
                response = httpx.post(f"{base}/_emulator/oauth/grant", timeout=5, json={
                    "client_id": item.credentials["client_id"], "subject": _grant_subject(item.provider, dict(item.config))})
                response.raise_for_status()
            except httpx.HTTPError as exc:
                yield f"{item.name}: emulator at {base} not reachable ({type(exc).__name__}); skipped"
                continue
            credentials = {**item.credentials.reveal(), "refresh_token": response.json()["refresh_token"]}
            credentials.pop("access_token", None)
            credentials.pop("access_token_expires_at", None)
            conn.execute(sa.update(integration).where(integration.c.id == item.id)
                         .values(credentials=keyring.encrypt(credentials, CREDENTIALS_PURPOSE)))
            yield f"{item.name}: connected to the {item.provider} emulator at {base}"


# the hub's OAuth app at each emulated provider the pages connect (a developer registers one
# per provider); the emulators know "hub-demo" already, `register_oauth_apps` adds the redirect URI
DEMO_APP = ("hub-demo", "hub-demo-secret")
DEMO_APP_CREDENTIALS = {"signing_secret": "demo-slack-signing-secret"}  # app-level credentials (Slack's signing secret)


def oauth_app_env(ports: DemoPorts = DEFAULT_PORTS) -> dict[str, str]:
    """The environment that gives the demo's web app its OAuth apps (hub/connect/oauth_flow.py):
    client id and secret, app-level credentials and the emulator's origin, per provider the
    settings pages connect. scripts/demo.sh exports it (`hub demo oauth-env`)."""
    env = {}
    for name in EMULATED:
        spec = registry.get(name)
        if not oauth_flow.connectable(spec):
            continue
        env[oauth_flow.env_var(spec, "client_id")], env[oauth_flow.env_var(spec, "client_secret")] = DEMO_APP
        env[oauth_flow.env_var(spec, "base_url")] = ports.emulator_urls[name]
        for field in spec.auth.connect.app_credentials:
            env[oauth_flow.env_var(spec, field)] = DEMO_APP_CREDENTIALS[field]
    return env


def register_oauth_apps(ports: DemoPorts = DEFAULT_PORTS) -> Iterator[str]:
    """Register the hub's callback as the demo app's redirect URI at each emulator, as a
    developer does in the provider's console: from then on its authorize path shows the
    consent page (Approve / Deny) for that exact URI. The emulators keep this in memory, so
    the demo does it on every start."""
    callback = ports.hub_web_url + oauth_flow.CALLBACK_PATH
    for name in EMULATED:
        if not oauth_flow.connectable(registry.get(name)):
            continue
        base = ports.emulator_urls[name]
        try:
            httpx.post(f"{base}/_emulator/oauth/clients", timeout=5, json={
                "client_id": DEMO_APP[0], "client_secret": DEMO_APP[1], "redirect_uris": [callback]}).raise_for_status()
        except httpx.HTTPError as exc:
            yield f"{name}: emulator at {base} not reachable ({type(exc).__name__}); its Connect button will not work"
            continue
        yield f"{name}: Connect on the settings pages goes to the consent page at {base} and back to {callback}"


def check_all(engine: Engine, keyring: Keyring) -> Iterator[str]:
    """Check the connection of every integration an admin has not disabled, as an admin would
    after connecting it: a passing check makes a new integration active (so the demo's
    integrations are active because their connections work, not by default); a failing one
    stays inactive with the provider's reason."""
    with engine.connect() as conn:
        rows = store.list_integrations(conn)
    for row in rows:
        if row.status == "disconnected" and not row.is_active:
            continue
        try:
            result = check_connection(engine, keyring, row.id)
        except Exception as exc:  # recorded in sync_log and on the integration; the demo goes on
            yield f"{row.name}: connection check failed ({type(exc).__name__}); see `hub integration show {row.id}`"
            continue
        yield f"{row.name}: connected" + ("; now active" if result.activated else "")


DEMO_ENDPOINTS = {  # company -> (endpoint name, sink hook, events)
    "Acme Builders": ("Acme ERP webhook", "acme", ["invoice.status_changed", "order.status_changed"]),
    "Bella Pizza": ("Bella ops webhook", "bella", ["order.status_changed"]),
}


def connect_outbound(engine: Engine, keyring: Keyring, sink_url: str = DEFAULT_PORTS.sink_url) -> Iterator[str]:
    """An outbound webhook endpoint per demo company, pointed at the bundled customer sink
    (emulators/webhook_sink.py: a customer's endpoint),
    whose signing secret is handed to the sink (as a customer would store it) so it verifies
    every delivery. Needs HUB_OUTBOUND_ALLOW to admit the loopback sink."""
    for company_name, (name, hook, events) in DEMO_ENDPOINTS.items():
        with engine.begin() as conn:
            try:
                company_id = store.find_company(conn, company_name).id
            except NotFoundError:
                continue
            existing = next((e for e in list_endpoints(conn, company_id) if e.name == name), None)
            if existing is None:
                try:
                    endpoint_id, secret = add_endpoint(conn, keyring, company_id=company_id, name=name,
                                                       url=f"{sink_url}/hooks/{hook}", events=events)
                except ValidationError as exc:  # the SSRF guard: loopback needs HUB_OUTBOUND_ALLOW
                    yield f"{company_name}: {exc} (set HUB_OUTBOUND_ALLOW=127.0.0.1/32 for the demo)"
                    continue
            else:
                endpoint_id = existing.id
                secret = get_endpoint(conn, endpoint_id, keyring).secrets.current
                if existing.url != f"{sink_url}/hooks/{hook}":  # the demo runs on other ports this time
                    update_endpoint(conn, endpoint_id, url=f"{sink_url}/hooks/{hook}")
        try:
            httpx.post(f"{sink_url}/_emulator/secrets/{hook}", json={"secret": secret}, timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            yield f"{company_name}: webhook sink at {sink_url} not reachable ({type(exc).__name__}); skipped"
            continue
        yield f"{company_name}: outbound webhook {endpoint_id} ({', '.join(events)}) -> {sink_url}/hooks/{hook}"
