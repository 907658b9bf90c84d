"""Poison webhooks (issue 15 item 9): correctly signed bodies that retrying can never fix,
sent over real HTTP to the receiver on real PostgreSQL.

The rule proven here: 503 only for what a retry can fix (database unreachable or too slow:
tests/test_webhook_receiver.py); a stray character never loses an event (NUL, a lone
surrogate, bytes that are not UTF-8 are stored with the text made storable, and the exact
body kept as bytes beside it); everything else gets a 4xx and is kept, whole, in
`inbound_dead_letter` (provider, integration, reason, the raw body, the headers without the
credential), which `hub webhooks dead-letters` shows; nothing of a refused request is stored
as an event.

Before this change (main at 0bb9730) these bodies got: 100,000 levels of nesting -> 500
(RecursionError); NUL or a lone surrogate -> 503 (PostgreSQL refuses them in jsonb), so the
provider retried forever; NaN / Infinity / 1e400 -> 503 or 200 depending on the provider's
parser; an event or order id of 20,000 characters -> 503 (index row too large); a
`meta.resource_id` given as a list -> 503; a 5,000-digit integer or bytes that are not
UTF-8 -> 400 with nothing kept.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

from hub.schema import external_order, inbound_dead_letter, inbound_event
from tests.conftest import count, run_async
from tests.test_webhook_receiver import DD_TOKEN, post_uber, receiver, uber_event  # noqa: F401 (fixture)
from tests.test_webhook_receiver_schemes import served  # noqa: F401 (fixture)


def uber(**changes) -> dict:
    event = json.loads(uber_event(order_id=f"o-{uuid.uuid4().hex[:8]}"))
    event.update(changes)
    return event


def dead_letters(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(inbound_dead_letter)).mappings()]


def assert_dead_lettered(engine, response, body: bytes, reason: str, status: int = 400) -> dict:
    """Refused with a 4xx, nothing stored as an event, the body kept whole in one dead letter."""
    assert response.status_code == status, (response.status_code, response.text)
    assert count(engine, inbound_event) == 0 and count(engine, external_order) == 0
    [letter] = dead_letters(engine)
    assert bytes(letter["body"]) == body
    assert letter["reason"] == reason
    assert letter["received_at"] is not None
    return letter


# ---- refused, and kept as a dead letter ---------------------------------------------------------

def test_a_body_nested_30000_levels_deep_is_400_and_dead_lettered(receiver):
    url, endpoints, engine = receiver
    body = b'{"event_id": "e", "event_type": "x", "deep": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"  # under max_body
    letter = assert_dead_lettered(engine, post_uber(url, endpoints["ubereats"], body), body, "too_deep")
    assert (letter["provider"], letter["integration_id"]) == ("ubereats", _integration(engine, endpoints["ubereats"]))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_nan_infinity_and_out_of_range_numbers_are_400_and_dead_lettered(receiver, literal):
    url, endpoints, engine = receiver
    body = uber_event().replace(b'"event_time": 1727976000', b'"event_time": ' + literal)
    assert literal in body
    assert_dead_lettered(engine, post_uber(url, endpoints["ubereats"], body), body, "not_json")


def test_an_integer_of_5000_digits_is_400_and_dead_lettered(receiver):
    url, endpoints, engine = receiver
    body = uber_event().replace(b'"event_time": 1727976000', b'"event_time": ' + b"9" * 5000)
    assert_dead_lettered(engine, post_uber(url, endpoints["ubereats"], body), body, "not_json")


@pytest.mark.parametrize("field", ["event_id", "resource_id"])
def test_an_id_of_20000_characters_is_400_and_dead_lettered(receiver, field):
    url, endpoints, engine = receiver
    event = uber()
    if field == "event_id":
        event["event_id"] = "e" * 20_000
    else:
        event["meta"]["resource_id"] = "o" * 20_000
    body = json.dumps(event).encode()
    assert_dead_lettered(engine, post_uber(url, endpoints["ubereats"], body), body, "bad_id")


@pytest.mark.parametrize("value", [["a", "b"], {"id": 1}, True, 2.5])
def test_an_order_id_that_is_not_a_string_or_integer_is_400_and_dead_lettered(receiver, value):
    url, endpoints, engine = receiver
    event = uber()
    event["meta"]["resource_id"] = value
    body = json.dumps(event).encode()
    assert_dead_lettered(engine, post_uber(url, endpoints["ubereats"], body), body, "bad_id")


def test_an_integer_order_id_is_stored_as_its_digits(receiver):
    url, endpoints, engine = receiver
    event = uber()
    event["meta"]["resource_id"] = 12345
    assert post_uber(url, endpoints["ubereats"], json.dumps(event).encode()).status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(sa.select(external_order.c.external_id)) == "12345"
    assert dead_letters(engine) == []


def test_malformed_json_and_a_body_that_is_not_the_envelope_are_dead_lettered_too(receiver):
    url, endpoints, engine = receiver
    for n, (body, reason) in enumerate([(b"{not json", "not_json"), (b'["a list"]', "not_envelope")], start=1):
        assert post_uber(url, endpoints["ubereats"], body).status_code == 400
        assert len(dead_letters(engine)) == n
        assert reason in {d["reason"] for d in dead_letters(engine)}
    assert count(engine, inbound_event) == 0


def test_a_dead_letter_keeps_the_headers_but_not_the_credential(receiver):
    url, endpoints, engine = receiver
    body = json.dumps({"event": {"type": "OrderCreate"}, "order": {"id": "dd-nan", "subtotal": 1}}).encode().replace(b"1}", b"NaN}")
    response = httpx.post(f"{url}/webhooks/doordash/{endpoints['doordash']}", content=body,
                          headers={"Authorization": DD_TOKEN, "Content-Type": "application/json", "X-Request-Id": "req-7"})
    letter = assert_dead_lettered(engine, response, body, "not_json")
    headers = {k.lower(): v for k, v in letter["headers"].items()}
    assert headers["x-request-id"] == "req-7" and headers["content-type"] == "application/json"
    assert "authorization" not in headers and DD_TOKEN not in json.dumps(letter["headers"])


def test_a_provider_retrying_a_refused_body_adds_attempts_not_rows(receiver):
    url, endpoints, engine = receiver
    body = b'{"event_id": "e", "event_type": "x", "n": NaN}'
    assert [post_uber(url, endpoints["ubereats"], body).status_code for _ in range(3)] == [400, 400, 400]
    [letter] = dead_letters(engine)
    assert (letter["attempts"], bytes(letter["body"])) == (3, body)
    assert letter["last_received_at"] >= letter["received_at"]
    assert post_uber(url, endpoints["ubereats"], body + b" ").status_code == 400  # another body: another letter
    assert len(dead_letters(engine)) == 2


def test_an_unsigned_poison_body_is_401_and_not_kept(receiver):
    """Only a verified sender's refusals are kept: anyone else's bytes are not ours to store."""
    url, endpoints, engine = receiver
    body = b"[" * 100_000
    response = httpx.post(f"{url}/webhooks/ubereats/{endpoints['ubereats']}", content=body, headers={"X-Uber-Signature": "0" * 64})
    assert response.status_code in (401, 413)
    assert dead_letters(engine) == []


# ---- a stray character loses nothing ------------------------------------------------------------

def test_a_doordash_order_with_a_nul_in_its_special_instructions_is_stored(receiver):
    url, endpoints, engine = receiver
    body = json.dumps({"event": {"type": "OrderCreate", "status": "NEW"},
                       "order": {"id": "dd-nul", "special_instructions": "ring twice\u0000 please"}}).encode()
    assert b"\\u0000" in body
    response = httpx.post(f"{url}/webhooks/doordash/{endpoints['doordash']}", content=body,
                          headers={"Authorization": DD_TOKEN, "Content-Type": "application/json"})
    assert response.status_code == 200
    with engine.connect() as conn:
        order = conn.execute(sa.select(external_order)).mappings().one()
        event = conn.execute(sa.select(inbound_event)).mappings().one()
    assert order["external_id"] == "dd-nul"
    assert order["raw_data"]["order"]["special_instructions"] == "ring twice\ufffd please"
    assert bytes(event["raw_body"]) == body  # the exact bytes, beside the storable text
    assert dead_letters(engine) == []


@pytest.mark.parametrize("text,stored", [("\ud800", "\ufffd"), ("a\udfffb", "a\ufffdb"), ("\u0000\u0000", "\ufffd\ufffd")])
def test_a_lone_surrogate_or_nul_anywhere_is_made_storable_and_the_body_kept(receiver, text, stored):
    url, endpoints, engine = receiver
    event = uber(note={"deep": [text], text: "key"})
    body = json.dumps(event).encode()  # ensure_ascii: \ud800 and \u0000 escapes, valid JSON text
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(inbound_event)).mappings().one()
    assert row["payload"]["note"] == {"deep": [stored], stored: "key"}
    assert bytes(row["raw_body"]) == body
    assert count(engine, external_order) == 1


@pytest.mark.parametrize("raw,stored", [(b"p\xff\xfeos", "p\ufffd\ufffdos"),
                                        (b"p\xed\xa0\x80os", "p\ufffdos")])  # a surrogate encoded: Python's decoder lets it through
def test_bytes_that_are_not_utf8_in_a_string_are_made_storable_and_the_body_kept(receiver, raw, stored):
    url, endpoints, engine = receiver
    body = uber_event().replace(b'"status": "pos"', b'"status": "' + raw + b'"')
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(inbound_event)).mappings().one()
    assert row["payload"]["meta"]["status"] == stored and bytes(row["raw_body"]) == body


def test_a_redelivered_body_with_a_nul_is_one_event(receiver):
    url, endpoints, engine = receiver
    body = json.dumps(uber(note="\u0000")).encode()
    assert [post_uber(url, endpoints["ubereats"], body).status_code for _ in range(3)] == [200, 200, 200]
    assert count(engine, inbound_event) == 1 and count(engine, external_order) == 1


def test_a_clean_body_keeps_no_copy_of_its_bytes(receiver):
    url, endpoints, engine = receiver
    assert post_uber(url, endpoints["ubereats"], uber_event()).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(inbound_event.c.raw_body)).scalar_one() is None


def test_a_long_string_in_an_ordinary_field_is_stored(receiver):
    url, endpoints, engine = receiver
    body = json.dumps(uber(note="x" * 60_000)).encode()
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    assert count(engine, inbound_event) == 1 and dead_letters(engine) == []


def test_a_huge_integer_within_pythons_limit_is_stored(receiver):
    url, endpoints, engine = receiver
    body = uber_event().replace(b'"event_time": 1727976000', b'"event_time": ' + b"9" * 4000)
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(sa.select(inbound_event.c.payload["event_time"].astext)) == "9" * 4000


def _integration(engine, endpoint_id: int) -> int:
    from hub.schema import webhook_endpoint
    with engine.connect() as conn:
        return conn.scalar(sa.select(webhook_endpoint.c.integration_id).where(webhook_endpoint.c.id == endpoint_id))



# ---- a writer of the group commit survives a bug ------------------------------------------------

def test_a_group_commit_writer_survives_an_unexpected_error(receiver):
    """On main a `meta.resource_id` given as a list reached the writer, whose TypeError (after
    the commit) ended the writer task: two such webhooks and every later one got 503. Read
    now refuses such ids first; a bug of that kind must still fail only its own requests."""
    import asyncio

    import psycopg

    from hub.inbound.events import InboundEventData
    from hub.web.group_commit import GroupCommitter, conninfo_from_url

    url, endpoints, engine = receiver
    integration_id = _integration(engine, endpoints["ubereats"])

    async def run() -> list:
        committer = GroupCommitter(conninfo_from_url(engine.url), writers=1)
        outcomes = []
        try:
            for n in range(3):
                bad = InboundEventData(f"e-bad-{n}", "orders.notification", {}, order_id=["a"], creates_order=True)  # type: ignore[arg-type]
                try:
                    outcomes.append(await asyncio.wait_for(committer.submit(integration_id, "ubereats", [bad]), 10))
                except (psycopg.Error, TypeError) as exc:
                    outcomes.append(type(exc).__name__)
            good = InboundEventData("e-good", "orders.notification", {"ok": 1}, order_id="o-good", creates_order=True)
            outcomes.append((await asyncio.wait_for(committer.submit(integration_id, "ubereats", [good]), 10)).stored)
        finally:
            await committer.close()
        return outcomes

    outcomes = run_async(run())
    assert outcomes == ["TypeError"] * 3 + [1]


def test_a_list_as_order_id_three_times_then_a_clean_order_is_stored(receiver):
    url, endpoints, engine = receiver
    for _ in range(3):
        event = uber()
        event["meta"]["resource_id"] = ["a"]
        assert post_uber(url, endpoints["ubereats"], json.dumps(event).encode()).status_code == 400
    assert post_uber(url, endpoints["ubereats"], uber_event(order_id="after")).status_code == 200
    assert count(engine, external_order) == 1 and len(dead_letters(engine)) == 3


# ---- what an operator sees and does: hub webhooks dead-letters ----------------------------------

def _cli(*args):
    from typer.testing import CliRunner

    from hub.cli import app
    return CliRunner().invoke(app, list(args))


def test_the_cli_lists_dead_letters_newest_first_by_integration_and_limit(receiver):
    url, endpoints, engine = receiver
    uber_id = _integration(engine, endpoints["ubereats"])
    bodies = [b"{not json", json.dumps(uber(event_id="e" * 600)).encode()]
    for body in bodies:
        assert post_uber(url, endpoints["ubereats"], body).status_code == 400
    listing = _cli("webhooks", "dead-letters", "--integration", str(uber_id))
    assert listing.exit_code == 0, listing.output
    lines = [line for line in listing.output.splitlines()[1:] if line.strip()]
    assert len(lines) == 2 and all("ubereats" in line for line in lines)
    assert "bad_id" in lines[0] and "not_json" in lines[1]  # newest first
    one = _cli("webhooks", "dead-letters", "--limit", "1", "--body")
    assert one.exit_code == 0 and "bad_id" in one.output and "not_json" not in one.output and "eeee" in one.output
    other = _cli("webhooks", "dead-letters", "--integration", str(_integration(engine, endpoints["doordash"])))
    assert other.exit_code == 0 and "no dead letters" in other.output
    missing = _cli("webhooks", "dead-letters", "--integration", "999999")
    assert missing.exit_code == 1 and "no integration 999999" in missing.output


def test_a_dead_letter_replayed_after_a_fix_is_stored_once(receiver, monkeypatch):
    from hub.inbound import payload

    url, endpoints, engine = receiver
    event = uber()
    event["note"] = json.loads("[" * 70 + "]" * 70)  # deeper than the receiver takes today
    body = json.dumps(event).encode()
    assert post_uber(url, endpoints["ubereats"], body).status_code == 400
    [letter] = dead_letters(engine)
    assert letter["reason"] == "too_deep"

    still = _cli("webhooks", "dead-letters", "replay", str(letter["id"]))
    assert still.exit_code == 1 and "still refused: too_deep" in still.output
    assert count(engine, inbound_event) == 0

    monkeypatch.setattr(payload, "MAX_DEPTH", 100)  # the fix
    done = _cli("webhooks", "dead-letters", "replay", str(letter["id"]))
    assert done.exit_code == 0 and "1 event(s) stored" in done.output, done.output
    again = _cli("webhooks", "dead-letters", "replay", str(letter["id"]))
    assert again.exit_code == 0 and "0 event(s) stored, 1 already stored" in again.output
    assert count(engine, inbound_event) == 1 and count(engine, external_order) == 1
    [letter] = dead_letters(engine)
    assert letter["replayed_at"] is not None and "already stored" in letter["replay_result"]
    listing = _cli("webhooks", "dead-letters")
    assert "already stored" in listing.output


def test_a_twilio_status_callback_with_a_nul_in_a_form_field_is_stored(served):
    """Form bodies too: `%00` decodes to a NUL, which PostgreSQL refused (503 on main)."""
    from tests.test_webhook_receiver_schemes import _signed

    base, endpoints, engine = served
    url = f"{base}/webhooks/twilio/{endpoints['twilio']}"
    body = urlencode({"MessageSid": "SM-nul", "MessageStatus": "delivered", "Body": "hi\x00there"}).encode()
    assert b"%00" in body
    response = httpx.post(url, content=body, headers=_signed("twilio", url, body, "application/x-www-form-urlencoded"))
    assert response.status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(inbound_event)).mappings().one()
    assert row["payload"]["Body"] == "hi\ufffdthere" and bytes(row["raw_body"]) == body
    assert dead_letters(engine) == []


def test_the_headers_kept_leave_out_every_credential():
    from hub.inbound.dead_letters import public_headers

    headers = {"authorization": "Bearer t", "x-my-cred": "static", "x-api-key": "k", "cookie": "c", "x-auth-token": "a",
               "stripe-signature": "t=1,v1=ab", "content-type": "application/json", "user-agent": "Stripe/1.0"}
    assert public_headers(headers, credential_header="X-My-Cred") == {
        "stripe-signature": "t=1,v1=ab", "content-type": "application/json", "user-agent": "Stripe/1.0"}


def test_a_batch_with_one_unusable_event_stores_none_of_it(served):
    """SendGrid posts events in arrays: one it cannot key on refuses the delivery whole (no half
    of it stored), and the whole body is the dead letter."""
    from tests.test_webhook_receiver_schemes import _signed

    base, endpoints, engine = served
    url = f"{base}/webhooks/sendgrid/{endpoints['sendgrid']}"
    body = json.dumps([{"sg_event_id": "sg-ok", "event": "delivered"}, {"sg_event_id": "x" * 20_000, "event": "open"}]).encode()
    response = httpx.post(url, content=body, headers=_signed("sendgrid", url, body))
    assert response.status_code == 400
    assert count(engine, inbound_event) == 0
    [letter] = dead_letters(engine)
    assert (bytes(letter["body"]), letter["reason"], letter["provider"]) == (body, "bad_id", "sendgrid")
