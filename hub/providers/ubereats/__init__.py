"""Uber Eats (delivery).

What the hub does with it:
- receives order notifications in its webhooks (scheme `ubereats`, signed with the client
  secret; verified and events parsed by inbound.py), reads each order whole and accepts or
  denies it, or cancels it later (hub/orders/, the order job);
- authenticates with OAuth 2.0 client credentials (no user, no refresh token);
- opens and pauses the store (client.py `store_status` / `set_store_open`: Get / Set
  Restaurant Status, scope eats.store.status.write; the settings page's store tab).

Here: client.py (order API over the shared transport), inbound.py (verification and its
webhook events), orders.py (its order as a POS order; its refusal and cancel reason codes,
what it is told). Emulator: emulators/ubereats.py. Tests:
tests/emulators/test_delivery_emulators.py, tests/test_order_flow.py,
tests/test_order_events_and_links.py, tests/test_pos_status.py,
tests/emulators/test_store_status_emulators.py, tests/browser/test_procore_delivery_pages.py.
"""

from hub.providers.spec import AuthSpec, ClientFactory, DeliverySpec, FieldSpec, InboundWebhook, ProviderSpec
from hub.providers.ubereats import client, inbound, orders

SPEC = ProviderSpec(
    name="ubereats",
    display_name="Uber Eats",
    category="delivery",
    auth=AuthSpec("client_credentials", token_url=client.DEFAULT_TOKEN_URL, scopes=tuple(client.SCOPE.split())),
    credentials=(
        FieldSpec("client_id", "Client ID"),
        FieldSpec("client_secret", "Client secret", secret=True, help="also signs Uber's webhooks"),
    ),
    config=(FieldSpec("store_id", "Store ID"),),
    account_field="store_id",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.UberEatsClient, client.UberEatsDialect(), client.DEFAULT_BASE_URL),
    inbound=InboundWebhook("ubereats", "client_secret", inbound.verify, parse=inbound.parse),
    capabilities=("delivery",),
    delivery=DeliverySpec(orders.to_pos_draft, orders.REFUSAL_CODES, orders.PUSHED, orders.CANCEL_REASONS),
    emulator="emulators.ubereats",
    pages=("overview", "connection", "store", "menu", "orders"),
)
