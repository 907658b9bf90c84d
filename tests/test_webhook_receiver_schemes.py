"""Every provider the receiver accepts webhooks from, over real HTTP: a correctly signed
delivery is stored once and acknowledged, an unsigned or wrongly signed one is refused."""

import base64
import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import inbound_event
from hub.web.app import create_app
from hub.inbound.provider_endpoints import create_inbound
from hub.inbound.verify import sign_hmac_base64
from hub.providers.sendgrid.inbound import sign_sendgrid
from hub.providers.slack.inbound import sign_slack
from hub.providers.stripe.inbound import sign_stripe
from hub.providers.twilio.inbound import sign_twilio
from tests.conftest import count

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()

PROVIDERS = {
    "stripe": ({}, {"api_key": "sk_test_1", "webhook_secret": "whsec_stripe_test_secret"}),
    "slack": ({"default_channel": "#ops"}, {"bot_token": "xoxb-1", "signing_secret": "slack-signing-secret-1"}),
    "twilio": ({"from_number": "+15005550006"}, {"account_sid": "AC" + "0" * 32, "auth_token": "twilio-auth-token-1"}),
    "sendgrid": ({"from_email": "ops@example.com"}, {"api_key": "SG.1", "webhook_public_key": SENDGRID_PUBLIC}),
    "quickbooks": ({"realm_id": "1"}, {"client_id": "c", "client_secret": "s", "refresh_token": "r", "webhook_verifier_token": "intuit-verifier-1"}),
    "procore": ({"company_id": "1"}, {"client_id": "c", "client_secret": "s", "refresh_token": "r", "webhook_token": "Bearer procore-static-1"}),
}


def signed_request(provider: str, url: str) -> tuple[bytes, dict[str, str], int]:
    """(body, headers, events expected) for one correctly authenticated delivery."""
    now = int(time.time())
    if provider == "stripe":
        body = json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode()
        return body, {"Stripe-Signature": sign_stripe("whsec_stripe_test_secret", now, body)}, 1
    if provider == "slack":
        body = json.dumps({"event_id": "Ev1", "type": "event_callback"}).encode()
        return body, {"X-Slack-Signature": sign_slack("slack-signing-secret-1", now, body), "X-Slack-Request-Timestamp": str(now)}, 1
    if provider == "twilio":
        params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15005550006"}
        return urlencode(params).encode(), {"X-Twilio-Signature": sign_twilio("twilio-auth-token-1", url, params),
                                            "Content-Type": "application/x-www-form-urlencoded"}, 1
    if provider == "sendgrid":
        body = json.dumps([{"sg_event_id": "sg1", "event": "delivered"}, {"sg_event_id": "sg2", "event": "open"}]).encode() + b"\r\n"
        return body, {"X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(SENDGRID_KEY, now, body),
                      "X-Twilio-Email-Event-Webhook-Timestamp": str(now)}, 2
    if provider == "quickbooks":
        body = json.dumps({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [{"name": "Vendor", "id": "5", "operation": "Update"}]}}]}).encode()
        return body, {"intuit-signature": sign_hmac_base64("intuit-verifier-1", body)}, 1
    body = json.dumps({"id": 77, "resource_name": "RFIs", "event_type": "update", "resource_id": 9}).encode()
    return body, {"Authorization": "Bearer procore-static-1"}, 1


@pytest.fixture
def served(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        endpoints = {}
        for provider, (config, credentials) in PROVIDERS.items():
            integration_id = store.add_integration(conn, keyring, company_id=company_id, provider=provider, config=config, credentials=credentials)
            endpoints[provider] = create_inbound(conn, keyring, integration_id)
    with serve(create_app(clean_db)) as url:
        yield url, endpoints, clean_db


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_signed_delivery_is_stored_once_and_unsigned_is_refused(served, provider):
    base, endpoints, engine = served
    url = f"{base}/webhooks/{provider}/{endpoints[provider]}"
    body, headers, expected = signed_request(provider, url)
    assert httpx.post(url, content=body, headers={k: v for k, v in headers.items() if k == "Content-Type"}).status_code == 401
    assert count(engine, inbound_event) == 0
    for _ in range(2):  # a redelivery adds nothing
        response = httpx.post(url, content=body, headers=headers)
        assert response.status_code == 200, response.text
    assert count(engine, inbound_event) == expected
    tampered = body.replace(b"1", b"2", 1)
    assert httpx.post(url, content=tampered, headers=headers).status_code == (200 if provider == "procore" else 401)
