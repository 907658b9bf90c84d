"""The custom inbound source: a company's own system sends signed events (Standard Webhooks)
to the hub. Deliveries are signed here with the official `standardwebhooks` package, as the
sender would, and posted over real HTTP to the hub web app.

Proven: the hub makes the secret (whsec_ + base64 of 24+ random bytes) and shows it once;
a signed event is stored once under its webhook-id and listed by `hub webhooks inbound
events`; a wrong signature, an old (or future) timestamp and a malformed body are each
refused with their status and store nothing, and a replayed message id is acknowledged
without storing it again; after a rotation both secrets verify during the grace period,
and only the new one after it."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from emulators.serve import serve
from hub import integrations as store
from hub.cli import app as cli
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.inbound.provider_endpoints import load_inbound, open_inbound, rotate_inbound_secret
from hub.inbound.verify import InboundRequest, VerificationError, generate_standard_secret, sign_standard, verify
from hub.providers import registry
from hub.schema import inbound_event, webhook_endpoint
from hub.web.app import create_app
from tests.conftest import count

runner = CliRunner()

# the official Standard Webhooks test vector (shared/reference/webhooks.md)
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID, SW_TS, SW_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def event(kind: str = "invoice.approved", **data) -> bytes:
    return json.dumps({"type": kind, "timestamp": "2026-12-07T12:00:00Z", "data": data or {"id": "INV-1"}}).encode()


def headers(secrets: str | list[str], body: bytes, msg_id: str | None = None, at: float | None = None) -> dict[str, str]:
    """The sender's headers, signed by the official library with each secret (a sender in
    the middle of a rotation signs with both: the signatures go space-separated)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=timezone.utc)
    signatures = [Webhook(s).sign(msg_id, when, body) for s in ([secrets] if isinstance(secrets, str) else secrets)]
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": " ".join(signatures), "content-type": "application/json"}


class Source:
    def __init__(self, engine, keyring: Keyring, integration_id: int, endpoint_id: int, secret: str):
        self.engine, self.keyring, self.integration_id, self.endpoint_id, self.secret = engine, keyring, integration_id, endpoint_id, secret

    def post(self, body: bytes, hdrs: dict[str, str]) -> httpx.Response:
        """One delivery to a freshly started app (its endpoint cache starts empty, so a
        rotation made just before is what it sees)."""
        with serve(create_app(self.engine)) as url:
            return httpx.post(f"{url}/webhooks/custom/{self.endpoint_id}", content=body, headers=hdrs)

    def stored(self) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(inbound_event).where(inbound_event.c.integration_id == self.integration_id)))


@pytest.fixture
def source(clean_db, secret_keys) -> Source:
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        integration_id = store.add_integration(conn, keyring, company_id=company_id, provider="custom", name="ERP events", active=True)
        endpoint_id, secret = open_inbound(conn, keyring, integration_id)
    return Source(clean_db, keyring, integration_id, endpoint_id, secret)


def test_the_spec_declares_standard_webhooks_and_no_client():
    spec = registry.get("custom")
    assert (spec.category, spec.pages, spec.client, spec.streams) == ("productivity", ("overview",), None, ())
    assert spec.inbound.scheme == "standard" and spec.inbound.generate_secret is not None and spec.inbound.secret_field is None


def test_the_hub_makes_the_secret_and_shows_it_once(source):
    assert source.secret.startswith("whsec_")
    assert len(base64.b64decode(source.secret.removeprefix("whsec_"))) >= 24
    assert generate_standard_secret() != generate_standard_secret()
    with source.engine.begin() as conn:
        again = open_inbound(conn, source.keyring, source.integration_id)
        stored = conn.scalar(sa.select(webhook_endpoint.c.secret).where(webhook_endpoint.c.id == source.endpoint_id))
        endpoint = load_inbound(conn, source.keyring, source.endpoint_id)
    assert again == (source.endpoint_id, None)  # the same endpoint; the secret is not given again
    assert source.secret not in json.dumps(stored) and source.secret.removeprefix("whsec_") not in json.dumps(stored)
    assert endpoint.secret == source.secret and endpoint.accepted_secrets() == source.secret
    assert source.secret not in repr(endpoint)


def test_a_signed_event_is_stored_once_under_its_message_id(source):
    body = event(amount="12.50")
    first = headers(source.secret, body, msg_id="msg_order_42")
    assert Webhook(source.secret).verify(body, first) is not None  # what the official verifier accepts
    response = source.post(body, first)
    assert response.status_code == 200, response.text
    # the sender's retry: the same message id, a new timestamp and signature
    assert source.post(body, headers(source.secret, body, msg_id="msg_order_42", at=time.time() + 1)).status_code == 200
    rows = source.stored()
    assert [(r.event_id, r.event_type, r.provider) for r in rows] == [("msg_order_42", "invoice.approved", "custom")]
    assert rows[0].payload == json.loads(body)


def test_a_replayed_message_id_is_acknowledged_and_not_stored_again(source):
    """The message id is signed with the body, so a second delivery under the same id comes
    from the sender (a retry, Standard Webhooks' idempotency key): 200, so it stops
    retrying, and the first body is what stays stored, even if the replay says otherwise."""
    first = event(status="approved")
    assert source.post(first, headers(source.secret, first, msg_id="msg_1")).status_code == 200
    other = event(status="rejected")
    assert source.post(other, headers(source.secret, other, msg_id="msg_1")).status_code == 200
    assert [r.payload["data"]["status"] for r in source.stored()] == ["approved"]


def _wrong_secret(source, body):
    return headers(generate_standard_secret(), body)


def _tampered(source, body):
    return headers(source.secret, body.replace(b"INV-1", b"INV-2"))  # signed over another body


def _old(source, body):
    return headers(source.secret, body, at=time.time() - 301)


# (well past the 300 s tolerance: a loaded machine may take seconds to deliver, which brings a future stamp closer)
def _future(source, body):
    return headers(source.secret, body, at=time.time() + 600)


def _unsigned(source, body):
    return {k: v for k, v in headers(source.secret, body).items() if k != "webhook-signature"}


def _garbled(source, body):
    return {**headers(source.secret, body), "webhook-signature": "v1,not-base64!"}


def _bad_timestamp(source, body):
    return {**headers(source.secret, body), "webhook-timestamp": "yesterday"}


@pytest.mark.parametrize("forge", [_wrong_secret, _tampered, _old, _future, _unsigned, _garbled, _bad_timestamp])
def test_an_unauthentic_or_stale_delivery_is_refused_with_401_and_nothing_stored(source, forge):
    body = event()
    response = source.post(body, forge(source, body))
    assert response.status_code == 401
    assert source.stored() == []


@pytest.mark.parametrize("body", [b"not json", b"[1,2,3]", b'"a string"', b"null", b"{}", b'{"type": ""}', b'{"type": 5}',
                                  b'{"data": {"id": 1}}'])
def test_a_signed_body_that_is_not_an_event_is_refused_with_400_and_nothing_stored(source, body):
    response = source.post(body, headers(source.secret, body))
    assert response.status_code == 400
    assert source.stored() == []


def test_a_signed_message_id_too_long_to_be_a_key_is_refused_with_400(source):
    body = event()
    response = source.post(body, headers(source.secret, body, msg_id="msg_" + secrets.token_urlsafe(2400)))  # 3,200 random characters
    assert response.status_code == 400  # not 503: a retry cannot fix it
    assert source.stored() == []


def test_rotation_accepts_both_secrets_during_the_grace_period_and_the_new_one_only_after(source):
    old = source.secret
    with source.engine.begin() as conn:
        new, until = rotate_inbound_secret(conn, source.keyring, source.integration_id, grace_s=2)
    assert new != old and new.startswith("whsec_") and until == pytest.approx(time.time() + 2, abs=1)
    with source.engine.connect() as conn:
        shown = conn.execute(sa.select(webhook_endpoint.c.secret_rotated_at, webhook_endpoint.c.previous_secret_until)
                             .where(webhook_endpoint.c.id == source.endpoint_id)).one()
    assert shown.secret_rotated_at is not None and shown.previous_secret_until.timestamp() == pytest.approx(until)
    during = {"old only": old, "new only": new, "both": [new, old]}
    for n, (label, secrets) in enumerate(during.items()):
        body = event(n=n)
        assert source.post(body, headers(secrets, body)).status_code == 200, label
    stranger = event(n=9)
    assert source.post(stranger, headers(generate_standard_secret(), stranger)).status_code == 401
    assert len(source.stored()) == 3

    time.sleep(max(0.0, until - time.time()) + 0.2)  # the grace period is over
    late = event(n=10)
    assert source.post(late, headers(old, late)).status_code == 401
    assert source.post(late, headers(new, late)).status_code == 200
    assert len(source.stored()) == 4


def test_a_rotation_without_grace_refuses_the_old_secret_at_once(source):
    with source.engine.begin() as conn:
        new, until = rotate_inbound_secret(conn, source.keyring, source.integration_id, grace_s=0)
    assert until is None
    body = event()
    assert source.post(body, headers(source.secret, body)).status_code == 401
    assert source.post(body, headers(new, body)).status_code == 200


def test_rotation_is_for_secrets_the_hub_made(clean_db, secret_keys, source):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Bella")
        stripe = store.add_integration(conn, keyring, company_id=company_id, provider="stripe",
                                       credentials={"api_key": "sk_test_1", "webhook_secret": "whsec_stripe_own"})
        open_inbound(conn, keyring, stripe)
        with pytest.raises(ValidationError, match="secret of its own"):
            rotate_inbound_secret(conn, keyring, stripe)
        fresh = store.add_integration(conn, keyring, company_id=company_id, provider="custom")
        with pytest.raises(NotFoundError, match="no inbound endpoint yet"):
            rotate_inbound_secret(conn, keyring, fresh)
        with pytest.raises(ValidationError, match="rotation grace"):
            rotate_inbound_secret(conn, keyring, source.integration_id, grace_s=30 * 86400)


def test_several_secrets_verify_standard_webhooks_only():
    request = InboundRequest(body=SW_BODY, headers={"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG})
    other = generate_standard_secret()
    verify("standard", request, [other, SW_SECRET], now=SW_TS)  # the official vector, under either secret of a rotation
    verify("standard", request, (SW_SECRET,), now=SW_TS)
    with pytest.raises(VerificationError) as refused:
        verify("standard", request, [other, generate_standard_secret()], now=SW_TS)
    assert refused.value.reason == "bad_signature"
    both = sign_standard(other, SW_ID, SW_TS, SW_BODY) + " " + SW_SIG  # a sender signing with both
    verify("standard", InboundRequest(body=SW_BODY, headers={**request.headers, "webhook-signature": both}), other, now=SW_TS)
    with pytest.raises(ValueError, match="takes one secret"):
        verify("github", request, ["a", "b"])


def test_the_cli_shows_the_secret_once_rotates_it_and_lists_the_events(source, clean_db, secret_keys):
    added = runner.invoke(cli, ["integration", "add", "--company", "Acme", "--provider", "custom", "--name", "Warehouse", "--enable"])
    assert added.exit_code == 0, added.output
    integration_id = added.output.split()[1]
    first = runner.invoke(cli, ["webhooks", "inbound", "--integration", integration_id])
    assert first.exit_code == 0, first.output
    secret = next(line.split(": ", 1)[1] for line in first.output.splitlines() if line.startswith("signing secret (shown only now)"))
    assert secret.startswith("whsec_") and "/webhooks/custom/" in first.output
    again = runner.invoke(cli, ["webhooks", "inbound", "--integration", integration_id])
    assert again.exit_code == 0 and "whsec_" not in again.output and "rotate-secret" in again.output

    endpoint_id = int(first.output.split()[2])
    body = event("shipment.sent", id="SHP-7")
    with serve(create_app(clean_db)) as url:
        sent = httpx.post(f"{url}/webhooks/custom/{endpoint_id}", content=body, headers=headers(secret, body, msg_id="msg_shp_7"))
    assert sent.status_code == 200
    listed = runner.invoke(cli, ["webhooks", "inbound", "events", "--integration", integration_id, "--payload"])
    assert listed.exit_code == 0, listed.output
    assert "msg_shp_7" in listed.output and "shipment.sent" in listed.output and "SHP-7" in listed.output
    assert secret not in listed.output
    other = runner.invoke(cli, ["webhooks", "inbound", "events", "--integration", str(source.integration_id)])
    assert other.exit_code == 0 and "no events received" in other.output  # another integration's events are its own

    rotated = runner.invoke(cli, ["webhooks", "inbound", "rotate-secret", "--integration", integration_id, "--grace", "3600"])
    assert rotated.exit_code == 0, rotated.output
    assert "new signing secret (shown only now): whsec_" in rotated.output and secret not in rotated.output
    assert "accepted too until" in rotated.output
    refused = runner.invoke(cli, ["webhooks", "inbound", "rotate-secret", "--integration", "999999"])
    assert refused.exit_code == 1 and "no inbound endpoint yet" in refused.output
