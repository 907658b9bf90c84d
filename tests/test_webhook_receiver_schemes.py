"""Every provider the receiver accepts webhooks from, over real HTTP: a correctly signed
delivery is stored once and acknowledged, an unsigned or wrongly signed one is refused, a
correctly signed one that is not the provider's event envelope is refused with 400, and
Slack's url_verification probe is answered with its challenge."""

import base64
import hashlib
import json
import time
from urllib.parse import parse_qsl, urlencode

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
        body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}).encode()
        return body, {"Stripe-Signature": sign_stripe("whsec_stripe_test_secret", now, body)}, 1
    if provider == "slack":
        body = json.dumps({"event_id": "Ev1", "type": "event_callback", "event": {"type": "app_mention", "text": "hi"}}).encode()
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
            integration_id = store.add_integration(conn, keyring, company_id=company_id, provider=provider, config=config, credentials=credentials, active=True)
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


def _signed(provider: str, url: str, body: bytes, content_type: str = "application/json") -> dict[str, str]:
    """Headers that sign `body` correctly for `provider` (Twilio signs form fields, so a
    non-form body goes with the bodySHA256 it would carry)."""
    now = int(time.time())
    if provider == "stripe":
        return {"Stripe-Signature": sign_stripe("whsec_stripe_test_secret", now, body), "Content-Type": content_type}
    if provider == "slack":
        return {"X-Slack-Signature": sign_slack("slack-signing-secret-1", now, body), "X-Slack-Request-Timestamp": str(now),
                "Content-Type": content_type}
    if provider == "sendgrid":
        return {"X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(SENDGRID_KEY, now, body),
                "X-Twilio-Email-Event-Webhook-Timestamp": str(now), "Content-Type": content_type}
    assert provider == "twilio"
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {"X-Twilio-Signature": sign_twilio("twilio-auth-token-1", url, dict(parse_qsl(body.decode(), keep_blank_values=True))), "Content-Type": content_type}
    return {"X-Twilio-Signature": sign_twilio("twilio-auth-token-1", url), "Content-Type": content_type}


NOT_ENVELOPES = {
    "stripe": [b"[1,2,3]", b'"a string"', b"{}", b"null",
               json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode(),  # no object/data
               json.dumps({"id": "in_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}).encode(),
               json.dumps({"id": "evt_1", "object": "invoice", "type": "invoice.paid", "data": {"object": {}}}).encode(),
               json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": [1]}).encode()],
    "slack": [b"[1,2,3]", b'"a string"', b"{}",
              json.dumps({"type": "event_callback", "event": {"type": "message"}}).encode(),  # no event_id
              json.dumps({"type": "event_callback", "event_id": "Ev1"}).encode(),  # no event
              json.dumps({"type": "block_actions", "event_id": "Ev1", "event": {}}).encode(),
              json.dumps({"type": "url_verification"}).encode()],  # a probe without its challenge
    "twilio": [b"[1,2,3]", b'"a string"', b"{}", json.dumps({"MessageSid": "SM1"}).encode()],
    "sendgrid": [b"[1,2,3]", b'"a string"', b"{}", json.dumps({"sg_event_id": "sg1", "event": "delivered"}).encode(),  # not in an array
                 json.dumps([{"sg_event_id": "sg1", "event": "delivered"}, {"event": "open"}]).encode()],  # one without its id
}


@pytest.mark.parametrize("provider,body", [(p, b) for p, bodies in NOT_ENVELOPES.items() for b in bodies])
def test_a_signed_body_that_is_not_the_event_envelope_is_refused_and_not_stored(served, provider, body):
    base, endpoints, engine = served
    url = f"{base}/webhooks/{provider}/{endpoints[provider]}"
    if provider == "twilio":
        url += "?bodySHA256=" + hashlib.sha256(body).hexdigest()  # how Twilio signs a JSON body
    response = httpx.post(url, content=body, headers=_signed(provider, url, body))
    assert response.status_code == 400, (response.status_code, response.text)
    assert count(engine, inbound_event) == 0


@pytest.mark.parametrize("form", [{"MessageSid": "SM1"}, {"MessageStatus": "delivered"}, {"MessageSid": "", "MessageStatus": "sent"}, {}])
def test_a_signed_twilio_form_without_sid_and_status_is_refused(served, form):
    base, endpoints, engine = served
    url = f"{base}/webhooks/twilio/{endpoints['twilio']}"
    body = urlencode(form).encode()
    response = httpx.post(url, content=body, headers=_signed("twilio", url, body, "application/x-www-form-urlencoded"))
    assert response.status_code == 400
    assert count(engine, inbound_event) == 0


def test_slack_url_verification_is_answered_with_its_challenge_and_not_stored(served):
    base, endpoints, engine = served
    url = f"{base}/webhooks/slack/{endpoints['slack']}"
    body = json.dumps({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"}).encode()
    response = httpx.post(url, content=body, headers=_signed("slack", url, body))
    assert response.status_code == 200
    assert response.text == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert response.headers["content-type"].startswith("text/plain")
    assert count(engine, inbound_event) == 0
    # wrongly signed, the probe is refused like any other request
    forged = _signed("slack", url, body) | {"X-Slack-Signature": sign_slack("another-secret", int(time.time()), body)}
    assert httpx.post(url, content=body, headers=forged).status_code == 401
    # the events that follow are stored as before
    event, _, _ = signed_request("slack", url)
    assert httpx.post(url, content=event, headers=_signed("slack", url, event)).status_code == 200
    assert count(engine, inbound_event) == 1


def test_a_json_twilio_status_callback_is_stored(served):
    base, endpoints, engine = served
    body = json.dumps({"MessageSid": "SM9", "MessageStatus": "sent"}).encode()
    url = f"{base}/webhooks/twilio/{endpoints['twilio']}?bodySHA256=" + hashlib.sha256(body).hexdigest()
    assert httpx.post(url, content=body, headers=_signed("twilio", url, body)).status_code == 200
    assert count(engine, inbound_event) == 1
