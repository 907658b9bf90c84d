"""Demo data: two companies with a few integrations each, so a newcomer sees partitions,
an inventory and sync history in the Dagster UI. Idempotent: run it on every demo start.

Credentials here are demo values for the bundled emulators, not real secrets; they are
still stored encrypted like any others.
"""

from __future__ import annotations

from typing import Iterator

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import NotFoundError

_OAUTH_DEMO = {"client_id": "demo-client", "client_secret": "demo-client-secret-0001", "refresh_token": "demo-refresh-0001"}

DEMO = {
    ("Acme Builders", "America/New_York"): [
        ("quickbooks", "QuickBooks (Acme)", {"realm_id": "9130350000000001"}, _OAUTH_DEMO),
        ("procore", "Procore (Acme)", {"company_id": "562949953421312"}, _OAUTH_DEMO),
        ("slack", "Slack (Acme)", {"default_channel": "#ops"}, {"bot_token": "xoxb-demo-token-000000", "signing_secret": "demo-slack-signing-secret"}),
    ],
    ("Bella Pizza", "America/Chicago"): [
        ("xero", "Xero (Bella)", {"tenant_id": "a3b1c5d7-0000-4000-8000-000000000001"}, _OAUTH_DEMO),
        ("doordash", "DoorDash (Bella)", {"store_id": "601135"},
         {"developer_id": "demo-dev", "key_id": "demo-key", "signing_secret": "ZGVtby1zaWduaW5nLXNlY3JldA", "webhook_token": "demo-webhook-token-0001"}),
        ("ubereats", "Uber Eats (Bella)", {"store_id": "bella-001"}, {"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"}),
        ("twilio", "Twilio (Bella)", {"from_number": "+15005550006"}, {"account_sid": "AC" + "0" * 32, "auth_token": "demo-auth-token-000001"}),
    ],
}


def seed(engine: Engine, keyring: Keyring) -> Iterator[str]:
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
