"""The receiver fuzzed with signed bodies (issue 15 item 9), for every inbound scheme, over real
HTTP and real PostgreSQL: whatever a verified sender posts (arbitrary JSON with NUL, lone
surrogates, byte order marks, NaN, Infinity, 1e400, 5,000-digit integers, deep nesting, long
strings, ids of any type; bytes that are not JSON or not UTF-8), the receiver never answers
5xx (the database is healthy here, so nothing is transient), and every request ends
accounted for:

- a 4xx (400, or 422 for data the database refused) left the exact body in a dead letter (a
  new one, or one more attempt on the one already holding that body), and no event;
- a 200 left no dead letter; a body shaped like the provider's event, with ids fresh to this
  request, stored all of its events (k rows for k events: never a half);
- such a body is stored (200) whatever stray characters it holds (NUL, lone surrogates, a byte
  order mark, bytes that are not UTF-8) unless it holds something the receiver may refuse
  (NaN, Infinity, a number beyond a double or Python's digits, nesting near the limit).

Bounded: about 30 examples per scheme (300 requests), no deadline; HUB_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.inbound.provider_endpoints import open_inbound
from hub.inbound.verify import sign_hmac_base64
from hub.providers.ubereats.inbound import sign_ubereats
from hub.web.app import create_app
from tests.test_webhook_receiver_schemes import PROVIDERS, _signed

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "30"))
FRESH = "FRESHID"  # replaced, in the encoded body, by an id no other request has
ALL = {**PROVIDERS,
       "ubereats": ({"store_id": "s-1"}, {"client_id": "ue", "client_secret": "ue-fuzz-secret"}),
       "doordash": ({"store_id": "601135"}, {"developer_id": "d", "key_id": "k", "signing_secret": "c2VjcmV0", "webhook_token": "dd-fuzz-token"}),
       "xero": ({"tenant_id": "t"}, {"client_id": "c", "client_secret": "s", "refresh_token": "r", "webhook_key": "xero-fuzz-key"}),
       "custom": ({}, {})}
SCHEMES = sorted(ALL)

# ---- what a sender might put in a JSON body ----------------------------------------------------
# literals json.dumps cannot write, spliced into the text after encoding
RAW = {"RAWNUM0": "1e400", "RAWNUM1": "-1e400", "RAWNUM2": "9" * 5000, "RAWNUM3": "1E+2", "RAWNUM4": "-0",
       "RAWNUM5": "9" * 4000, "RAWNUM6": "NaN", "RAWNUM7": "-Infinity"}
_RAW = re.compile(r'"(RAWNUM\d|RAWDEEP\d+)"')

weird_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\ud83d\ude00", "\ufeff", "\u2028", "é", "x" * 3000, ""]),
)
leaf = st.one_of(
    st.none(), st.booleans(), weird_text,
    st.integers(), st.integers(min_value=10**18, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(sorted(RAW)),
    st.integers(min_value=1, max_value=3000).map(lambda n: f"RAWDEEP{n}"),
)
json_value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(weird_text, inner, max_size=4), max_leaves=12)
kind = st.one_of(st.sampled_from(["orders.notification", "OrderCreate", "invoice.paid", "delivered", "x"]), weird_text)


def envelopes(provider: str):
    """(payload, events it holds) shaped like the provider's event, ids FRESH, anything else weird."""
    if provider == "ubereats":
        return st.builds(lambda t, s, x: ({"event_id": FRESH, "event_type": t, "meta": {"resource_id": FRESH, "status": s}, "x": x}, 1),
                         st.one_of(st.just("orders.notification"), kind), leaf, json_value)
    if provider == "doordash":
        return st.builds(lambda t, s, x: ({"event": {"type": t, "status": s}, "order": {"id": FRESH, "special_instructions": x}}, 1),
                         st.sampled_from(["OrderCreate", "OrderCancel", "DASHER_PICKED_UP"]), leaf, json_value)
    if provider == "stripe":
        return st.builds(lambda t, x: ({"id": "evt_" + FRESH, "object": "event", "type": t, "data": {"object": {"x": x}}}, 1),
                         st.text(min_size=1, max_size=20), json_value)
    if provider == "slack":
        return st.builds(lambda e, x: ({"type": "event_callback", "event_id": "Ev" + FRESH, "event": {"type": "message", "text": e}, "x": x}, 1),
                         leaf, json_value)
    if provider == "sendgrid":
        return st.lists(st.builds(lambda e, x: {"sg_event_id": FRESH, "event": e, "email": x}, st.text(min_size=1, max_size=10), leaf),
                        min_size=1, max_size=3).map(lambda items: (items, len(items)))
    if provider == "xero":
        return st.builds(lambda x: ({"events": [{"resourceId": FRESH, "eventType": "UPDATE", "x": x}], "firstEventSequence": 1}, 1), json_value)
    if provider == "custom":
        return st.builds(lambda t, x: ({"type": t, "data": x}, 1), st.text(min_size=1, max_size=50), json_value)
    if provider == "twilio":
        return st.builds(lambda s, x: ({"MessageSid": "SM" + FRESH, "MessageStatus": s, "x": x}, 1), st.text(min_size=1, max_size=10), json_value)
    return st.builds(lambda x: ({"id": FRESH, "x": x}, 1), json_value)  # quickbooks, procore: the generic parser


REFUSED_RAW = {"RAWNUM0", "RAWNUM1", "RAWNUM2", "RAWNUM6", "RAWNUM7"}  # not JSON, or beyond a double or Python's digits


def refusable(value) -> bool:
    """Whether `value` holds something the receiver may refuse (no JSON number, nesting that may
    pass its limit); a body without any must be stored: a stray character never loses it."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and (node != node or node in (float("inf"), float("-inf"))):
            return True
        if isinstance(node, str) and (node in REFUSED_RAW or (node.startswith("RAWDEEP") and int(node[7:]) > 40)):
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def encode(value, ascii_only: bool, bom: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    text = _RAW.sub(lambda m: RAW.get(m[1]) or "[" * int(m[1][7:]) + "]" * int(m[1][7:]), text)
    text = re.sub(FRESH, lambda _: uuid.uuid4().hex, text)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", errors="surrogatepass")  # lone surrogates: not UTF-8


def requests(provider: str):
    """(body, content type, events a stored body holds or None when the test cannot know,
    whether it must be stored: the provider's shape, fresh ids, nothing refusable)."""
    shaped = st.builds(lambda pair, a, b: (encode(pair[0], a, b), "application/json", pair[1], not refusable(pair[0])),
                       envelopes(provider), st.booleans(), st.booleans())
    anything = st.builds(lambda v, a, b: (encode(v, a, b), "application/json", None, False), json_value, st.booleans(), st.booleans())
    raw = st.binary(max_size=300).map(lambda b: (b, "application/json", None, False))
    choices = [shaped, shaped, anything, raw]
    if provider == "twilio":
        # Twilio signs decoded form fields, so what it sends is UTF-8 (NUL and all)
        text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(["\x00", "a\x00b", "x" * 3000])
        form = st.dictionaries(text, text, max_size=4).map(
            lambda d: (urlencode({"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": "sent", **d}).encode(),
                       "application/x-www-form-urlencoded", None, False))
        choices.append(form)
    return st.one_of(*choices)


# ---- signing, as each provider does ------------------------------------------------------------

def signed(provider: str, url: str, body: bytes, content_type: str, custom_secret: str) -> tuple[str, dict[str, str]]:
    """(the URL to post to, headers signing `body` correctly)."""
    if provider == "ubereats":
        return url, {"X-Uber-Signature": sign_ubereats("ue-fuzz-secret", body), "Content-Type": content_type}
    if provider == "doordash":
        return url, {"Authorization": "dd-fuzz-token", "Content-Type": content_type}
    if provider == "procore":
        return url, {"Authorization": "Bearer procore-static-1", "Content-Type": content_type}
    if provider == "xero":
        return url, {"x-xero-signature": sign_hmac_base64("xero-fuzz-key", body), "Content-Type": content_type}
    if provider == "quickbooks":
        return url, {"intuit-signature": sign_hmac_base64("intuit-verifier-1", body), "Content-Type": content_type}
    if provider == "custom":
        msg_id, when = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
        return url, {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                     "webhook-signature": Webhook(custom_secret).sign(msg_id, when, body), "Content-Type": content_type}
    if provider == "twilio" and not content_type.startswith("application/x-www-form-urlencoded"):
        url += "?bodySHA256=" + hashlib.sha256(body).hexdigest()  # how Twilio signs a JSON body
    return url, _signed(provider, url, body, content_type)


@pytest.fixture
def served(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Fuzz")
        endpoints, custom_secret = {}, None
        for provider, (config, credentials) in ALL.items():
            integration_id = store.add_integration(conn, keyring, company_id=company_id, provider=provider, config=config,
                                                   credentials=credentials, active=True)
            endpoints[provider], made = open_inbound(conn, keyring, integration_id)
            custom_secret = made or custom_secret
    with serve(create_app(clean_db)) as url, httpx.Client(timeout=30) as client, \
            clean_db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield url, endpoints, custom_secret, client, conn


_TALLY = sa.text("SELECT (SELECT count(*) FROM inbound_event), (SELECT count(*) FROM inbound_dead_letter), "
                 "(SELECT coalesce(sum(attempts), 0) FROM inbound_dead_letter WHERE body_sha256 = :h AND body = :b)")


@pytest.mark.parametrize("provider", SCHEMES)
def test_a_signed_body_is_stored_or_dead_lettered_never_5xx(served, provider):
    url, endpoints, custom_secret, client, conn = served
    target = f"{url}/webhooks/{provider}/{endpoints[provider]}"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=requests(provider))
    def check(request):
        body, content_type, holds, must_store = request
        post_url, headers = signed(provider, target, body, content_type, custom_secret)
        key = {"h": hashlib.sha256(body).digest(), "b": body}
        events, letters, tries = conn.execute(_TALLY, key).one()
        response = client.post(post_url, content=body, headers=headers)
        events_after, letters_after, tries_after = conn.execute(_TALLY, key).one()
        assert response.status_code < 500, (response.status_code, body[:300])
        if must_store:
            assert response.status_code == 200, (response.status_code, body[:300])
        if response.status_code == 200:
            assert letters_after == letters, body[:300]
            assert events_after >= events
            if holds is not None:  # fresh ids: every event is new, so all of them are stored
                assert events_after - events == holds, (holds, body[:300])
        else:
            assert response.status_code in (400, 422), (response.status_code, body[:300])
            # kept: a new dead letter, or one more attempt of the same body's
            assert (tries_after - tries, events_after - events) == (1, 0), body[:300]
            assert letters_after - letters == (1 if tries == 0 else 0)

    started = time.monotonic()
    check()
    assert time.monotonic() - started < 60  # bounded: a slow receiver is a finding too
