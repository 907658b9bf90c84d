"""DoorDash Marketplace (delivery).

What the hub does with it:
- receives orders whole in its webhooks (scheme `doordash`: a static token in a header,
  checked by hub/inbound/verify.py's shared verifier;
  events parsed by inbound.py) and confirms or fails them, marks them ready or
  cancels them (hub/orders/, the order job);
- requests carry a JWT the hub signs itself for each request (client.make_jwt);
- opens and closes the store (client.py `store_status` / `set_store_open`: Get Store
  Information and the store status PUT; the settings page's store tab).

Here: client.py (order API over the shared transport), inbound.py (its webhook events),
orders.py (its order as a POS order; its refusal and cancel reason codes, what it is told).
Emulator: emulators/doordash.py. Tests: tests/emulators/test_delivery_emulators.py,
tests/test_order_flow.py, tests/test_order_events_and_links.py, tests/test_pos_status.py,
tests/emulators/test_store_status_emulators.py, tests/browser/test_procore_delivery_pages.py.
"""

from hub.inbound.verify import verify_static_credential
from hub.providers.doordash import client, inbound, orders
from hub.providers.spec import AuthSpec, ClientFactory, DeliverySpec, FieldSpec, InboundWebhook, ProviderSpec

SPEC = ProviderSpec(
    name="doordash",
    display_name="DoorDash Marketplace",
    category="delivery",
    auth=AuthSpec("jwt", credential_fields=("developer_id", "key_id", "signing_secret"), signer=client.make_jwt),
    credentials=(
        FieldSpec("developer_id", "Developer ID"),
        FieldSpec("key_id", "Key ID"),
        FieldSpec("signing_secret", "Signing secret", secret=True, help="base64url; signs the JWT of each request"),
        FieldSpec("webhook_token", "Webhook token", secret=True,
                  help="the static token DoorDash sends in a header of each webhook"),
    ),
    config=(FieldSpec("store_id", "Store ID"),),
    account_field="store_id",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.DoorDashClient, client.DoorDashDialect(), client.DEFAULT_BASE_URL),
    inbound=InboundWebhook("doordash", "webhook_token", verify_static_credential, static_header=True,
                           parse=inbound.parse),
    capabilities=("delivery",),
    delivery=DeliverySpec(orders.to_pos_draft, orders.REFUSAL_CODES, orders.PUSHED, orders.CANCEL_REASONS),
    emulator="emulators.doordash",
    pages=("overview", "connection", "store", "menu", "orders"),
)
