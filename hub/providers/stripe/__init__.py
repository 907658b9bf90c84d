"""Stripe (payment).

What the hub does with it: receives its webhooks (scheme `stripe`, signed with the
endpoint's webhook secret), stored and deduplicated like any provider's. There is no API
client yet, and no emulator.

Here: inbound.py (webhook verification). Tests: tests/test_webhook_verify.py,
tests/test_webhook_receiver_schemes.py.
"""

from hub.providers.spec import AuthSpec, FieldSpec, InboundWebhook, ProviderSpec
from hub.providers.stripe import inbound

SPEC = ProviderSpec(
    name="stripe",
    display_name="Stripe",
    category="payment",
    auth=AuthSpec("static_bearer", credential_fields=("api_key",)),
    credentials=(
        FieldSpec("api_key", "API key", secret=True),
        FieldSpec("webhook_secret", "Webhook signing secret", secret=True, help="whsec_..."),
    ),
    inbound=InboundWebhook("stripe", "webhook_secret", inbound.verify, tolerance_s=inbound.TOLERANCE_S,
                           envelope=inbound.check_envelope),
)
