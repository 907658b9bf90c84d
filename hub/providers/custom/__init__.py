"""Custom source (productivity): a company's own systems sending the hub signed events.

What the hub does with it: receives its webhooks, verified by Standard Webhooks (the
built-in scheme `standard`: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`,
HMAC-SHA256 of `{id}.{timestamp}.{body}`, 300 s freshness window). The hub makes the
secret (`whsec_` + base64 of 24 random bytes) when the endpoint is created and shows it
once; rotating it keeps the old one accepted for a grace period (default one day), so the
sender can switch at its own pace, signing with either or both meanwhile. Each delivery
must be a JSON object with a `type` (Standard Webhooks' payload shape); its `webhook-id`
is the event's dedupe key, so a retried message is stored once. Events are stored like
any provider's and listed by `hub webhooks inbound events`. No API client, no streams,
no emulator: the tests sign with the official `standardwebhooks` package.

Here: inbound.py (the event envelope). Tests: tests/test_custom_inbound.py.
"""

from hub.inbound.verify import generate_standard_secret, standard_message_id, verify_standard
from hub.providers.custom import inbound
from hub.providers.spec import AuthSpec, InboundWebhook, ProviderSpec

SPEC = ProviderSpec(
    name="custom",
    display_name="Custom source (Standard Webhooks)",
    category="productivity",
    auth=AuthSpec("none"),
    inbound=InboundWebhook("standard", None, verify_standard, envelope=inbound.check_envelope,
                           generate_secret=generate_standard_secret, message_id=standard_message_id),
    pages=("overview",),
)
