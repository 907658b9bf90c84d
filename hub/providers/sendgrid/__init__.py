"""Twilio SendGrid (communication).

What the hub does with it:
- sends notification e-mail, plain or with dynamic templates, from a verified sender
  (hub/notify/: routes of kind `email`, sender.py; templates.py here);
- receives its event webhook (scheme `sendgrid`, ECDSA-signed; verified and delivery statuses
  parsed by inbound.py, applied by hub/notify/status.py);
- authenticates with a static API key sent as a bearer.

Here: client.py (v3 API over the shared transport), inbound.py (verification of its delivery
events and their statuses), setup.py (the verified-sender and template checks of `hub notify
check` and add-route), templates.py (its dynamic templates pulled into the hub). Emulator:
emulators/sendgrid.py. Tests: tests/providers/test_messaging_clients.py,
tests/emulators/test_messaging_emulators.py, tests/test_notify_*.py.
"""

from hub.providers.sendgrid import client, inbound, setup
from hub.providers.spec import AuthSpec, ClientFactory, FieldSpec, InboundWebhook, MessagingSpec, ProviderSpec

SPEC = ProviderSpec(
    name="sendgrid",
    display_name="SendGrid",
    category="communication",
    auth=AuthSpec("static_bearer", credential_fields=("api_key",)),
    credentials=(
        FieldSpec("api_key", "API key", secret=True),
        FieldSpec("webhook_public_key", "Event webhook public key", required=False,
                  help="verifies the signature of SendGrid's event webhook"),
    ),
    config=(FieldSpec("from_email", "From address", help="a verified sender"),),
    account_field="from_email",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.SendGridClient, client.SendGridDialect(), client.DEFAULT_BASE_URL, options=("from_name",)),
    inbound=InboundWebhook("sendgrid", "webhook_public_key", inbound.verify, tolerance_s=inbound.TOLERANCE_S,
                           delivery_status=inbound.delivery_status, envelope=inbound.check_envelope),
    capabilities=("messaging",),
    messaging=MessagingSpec(setup.check_setup, 202,
                            "delivery events: set SendGrid's Event Webhook (signed) to POST to {url}"),
    emulator="emulators.sendgrid",
    pages=("overview", "connection", "senders", "templates", "deliveries"),
)
