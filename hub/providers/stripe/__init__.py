"""Stripe (payment).

What the hub does with it: the hub's operator bills each company through its Stripe account
(capability `billing`, hub/billing/): the client is Stripe's own SDK (client.py), its
webhooks are received (scheme `stripe`, signed with the endpoint's webhook secret), stored
and deduplicated like any provider's, then applied to the billing mirror. The emulator is
emulators/stripe/.

Here: inbound.py (webhook verification), client.py (the SDK client and its errors). Tests:
tests/test_webhook_verify.py, tests/test_webhook_receiver_schemes.py, tests/test_billing.py.
"""

from hub.providers.spec import AuthSpec, CompanyPage, FieldSpec, InboundWebhook, ProviderSpec
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
    capabilities=("billing",),
    company_page=CompanyPage("/settings/integrations/stripe", "Billing", "Open billing",
                             "The subscription to the hub, through Stripe: plan, invoices, card."),
)
