"""Demo data: two companies with a few integrations each, so a newcomer sees partitions,
an inventory and sync history in the Dagster UI. Idempotent: run it on every demo start.

Credentials here are demo values for the bundled emulators, not real secrets; they are
still stored encrypted like any others.
"""

from __future__ import annotations

from typing import Iterator
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.auth import users
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.providers import registry
from hub.providers.spec import OAUTH_KINDS
from hub.integrations import CREDENTIALS_PURPOSE
from hub.outbound.endpoints import add_endpoint, get_endpoint, list_endpoints
from hub.schema import integration
from hub.inbound.provider_endpoints import create_inbound

# The bundled emulators (`python -m emulators run`, started by `make demo`), by module as the provider
# specs name them, at their default ports (emulators/registry.py; the hub does not import it).
EMULATOR_PORTS = {
    "emulators.quickbooks": 8101, "emulators.xero": 8102, "emulators.procore": 8103, "emulators.ubereats": 8104,
    "emulators.doordash": 8105, "emulators.slack": 8106, "emulators.sendgrid": 8107, "emulators.twilio": 8108,
}
EMULATOR_URLS = {provider: f"http://127.0.0.1:{EMULATOR_PORTS[module]}" for provider, module in registry.emulated().items()}
# an emulator serves its provider's token endpoint at the same path as the real one
TOKEN_PATHS = {name: urlsplit(spec.auth.token_url).path for name, spec in registry.providers().items()
               if spec.auth.kind in OAUTH_KINDS and spec.auth.token_url and name in EMULATOR_URLS}
# providers whose demo connection needs a user's grant
OAUTH_GRANTS = tuple(name for name in EMULATOR_URLS if registry.get(name).auth.kind == "oauth_refresh")
# where each emulator is told the hub's inbound webhook URL (providers that call the hub back)
WEBHOOK_SETTINGS = {"ubereats": "/_emulator/webhook", "doordash": "/_emulator/webhook", "sendgrid": "/_emulator/event_webhook"}
HUB_WEB_URL = "http://127.0.0.1:8000"
_OAUTH_DEMO = {"client_id": "hub-demo", "client_secret": "hub-demo-secret", "refresh_token": "granted-by-demo-connect"}


def _emulated(provider: str, **config: str) -> dict[str, str]:
    base = EMULATOR_URLS[provider]
    return {**config, "base_url": base, **({"token_url": base + TOKEN_PATHS[provider]} if provider in TOKEN_PATHS else {})}


DEMO = {
    ("Acme Builders", "America/New_York"): [
        ("quickbooks", "QuickBooks (Acme)", _emulated("quickbooks", realm_id="9130350000000001"), _OAUTH_DEMO),
        ("procore", "Procore (Acme)", _emulated("procore", company_id="562949953421312"), _OAUTH_DEMO),
        ("slack", "Slack (Acme)", _emulated("slack", default_channel="#ops"),
         {"bot_token": "xoxb-demo-token-000000", "signing_secret": "demo-slack-signing-secret"}),
        ("sendgrid", "SendGrid (Acme)", _emulated("sendgrid", from_email="noreply@acme-builders.example"),
         {"api_key": "SG.demo-key-000000000000.demo-sendgrid-secret-00000000000000000001",
          "webhook_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmenYXz6vJF438f3IHrFDlz5kmhReAu9WltjYFGtTI/93Ku0kpCHP+Sxt68czI/p8qx7IGAgP2pj+3vWaUhi9RA=="}),
    ],
    ("Bella Pizza", "America/Chicago"): [
        ("xero", "Xero (Bella)", _emulated("xero", tenant_id="a3b1c5d7-0000-4000-8000-000000000001"), _OAUTH_DEMO),
        ("doordash", "DoorDash (Bella)", _emulated("doordash", store_id="601135"),
         {"developer_id": "demo-dev", "key_id": "demo-key", "signing_secret": "ZGVtby1zaWduaW5nLXNlY3JldA", "webhook_token": "demo-webhook-token-0001"}),
        ("ubereats", "Uber Eats (Bella)", _emulated("ubereats", store_id="bella-001"), {"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"}),
        ("twilio", "Twilio (Bella)", _emulated("twilio", from_number="+15005550006"), {"account_sid": "AC" + "0" * 32, "auth_token": "demo-auth-token-000001"}),
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


def seed(engine: Engine, keyring: Keyring) -> Iterator[str]:
    yield from _seed_companies(engine, keyring)
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


def _seed_companies(engine: Engine, keyring: Keyring) -> Iterator[str]:
    with engine.begin() as conn:
        for (company_name, timezone), items in DEMO.items():
            try:
                company_id = store.find_company(conn, company_name).id
                yield f"company '{company_name}' already present ({company_id})"
                continue
            except NotFoundError:
                company_id = store.create_company(conn, company_name, timezone)
            for provider, name, config, credentials in items:
                new_id = store.add_integration(
                    conn, keyring, company_id=company_id, provider=provider, name=name, config=config, credentials=credentials
                )
                yield f"{company_name}: {name} -> integration {new_id}"


def _grant_subject(provider: str, config: dict) -> dict:
    """What the emulated user connected: the account the grant reaches."""
    return {"quickbooks": {"realmId": config.get("realm_id")}, "xero": {"tenantId": config.get("tenant_id")},
            "procore": {"company_id": config.get("company_id")}}[provider]


def connect_emulated(engine: Engine, keyring: Keyring, hub_web_url: str = HUB_WEB_URL) -> Iterator[str]:
    """For every active integration pointed at a loopback emulator: for OAuth providers, ask
    the emulator for a refresh token (as if the user clicked "Connect") and store it
    encrypted; for delivery marketplaces, create the hub's inbound webhook endpoint and tell
    the emulator to send its order webhooks there. The emulators keep their state in
    memory, so the demo does this on every start."""
    with engine.connect() as conn:
        rows = store.list_integrations(conn, active_only=True)
    for row in rows:
        if row.provider not in EMULATOR_URLS:
            continue
        with engine.begin() as conn:
            item = store.get_integration(conn, keyring, row.id)
            base = str(item.config.get("base_url", ""))
            if not base.startswith(("http://127.0.0.1", "http://localhost")):
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


SINK_URL = "http://127.0.0.1:8109"  # emulators/webhook_sink.py: a customer's endpoint
DEMO_ENDPOINTS = {  # company -> (endpoint name, sink hook, events)
    "Acme Builders": ("Acme ERP webhook", "acme", ["invoice.status_changed", "order.status_changed"]),
    "Bella Pizza": ("Bella ops webhook", "bella", ["order.status_changed"]),
}


def connect_outbound(engine: Engine, keyring: Keyring, sink_url: str = SINK_URL) -> Iterator[str]:
    """An outbound webhook endpoint per demo company, pointed at the bundled customer sink,
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
        try:
            httpx.post(f"{sink_url}/_emulator/secrets/{hook}", json={"secret": secret}, timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            yield f"{company_name}: webhook sink at {sink_url} not reachable ({type(exc).__name__}); skipped"
            continue
        yield f"{company_name}: outbound webhook {endpoint_id} ({', '.join(events)}) -> {sink_url}/hooks/{hook}"
