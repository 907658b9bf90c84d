"""Twilio Programmable Messaging (communication).

What the hub does with it:
- sends notification SMS from a number or a Messaging Service (hub/notify/: routes of kind
  `sms`, sender.py);
- receives its status callbacks (scheme `twilio`, signed over the URL with the auth token;
  verified and parsed by inbound.py, applied by hub/notify/status.py);
- authenticates with HTTP Basic (account SID and auth token) set on the HTTP client.

Here: client.py (REST API 2010-04-01 over the shared transport), inbound.py (verification of
its callbacks and their statuses), setup.py (the from-number check of `hub notify check` and
add-route). Emulator: emulators/twilio.py. Tests: tests/providers/test_messaging_clients.py,
tests/emulators/test_messaging_emulators.py, tests/test_notify_*.py.
"""

from hub.providers.spec import AuthSpec, ClientFactory, FieldSpec, InboundWebhook, MessagingSpec, ProviderSpec
from hub.providers.twilio import client, inbound, setup

SPEC = ProviderSpec(
    name="twilio",
    display_name="Twilio",
    category="communication",
    auth=AuthSpec("basic", credential_fields=("account_sid", "auth_token")),
    credentials=(
        FieldSpec("account_sid", "Account SID"),
        FieldSpec("auth_token", "Auth token", secret=True, help="also signs Twilio's status callbacks"),
    ),
    config=(FieldSpec("from_number", "From number", help="E.164, e.g. +15005550006"),),
    account_field="account_sid",
    account_in="credentials",
    rate_limits=client.LIMITS,
    client=ClientFactory(client.TwilioClient, client.TwilioDialect(), client.DEFAULT_BASE_URL,
                         options=("from_number", "messaging_service_sid")),
    inbound=InboundWebhook("twilio", "auth_token", inbound.verify, signs_url=True, delivery_status=inbound.delivery_status,
                           envelope=inbound.check_envelope),
    capabilities=("messaging",),
    messaging=MessagingSpec(setup.check_setup, 201,
                            "delivery status: each SMS asks Twilio to call back {url}"),
    emulator="emulators.twilio",
    pages=("overview", "connection", "numbers", "formatting", "deliveries"),
)
