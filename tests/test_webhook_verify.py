"""Unit tests of inbound webhook signature verification (`hub.inbound.verify`).

Pure and fast: no database, no HTTP. The known-answer vectors come from
`shared/reference/webhooks.md` section (c); the rest checks, for every scheme, that a
tampered body, a wrong secret, a missing or malformed header and a stale timestamp are all
refused with the right reason, and that no error message gives away a secret or signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import unquote_plus, urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.inbound import verify as verify_mod
from hub.inbound.verify import (
    InboundRequest,
    VerificationError,
    generate_standard_secret,
    schemes,
    sign_github,
    sign_hmac_base64,
    sign_standard,
    verify,
)
from hub.providers.sendgrid.inbound import sign_sendgrid
from hub.providers.slack.inbound import sign_slack
from hub.providers.stripe.inbound import sign_stripe
from hub.providers.twilio.inbound import sign_twilio
from hub.providers.ubereats.inbound import sign_ubereats
from hub.providers.xero.inbound import is_xero_intent_to_receive

SCHEMES = schemes()

# ----------------------------------------------------------------------------- vectors

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
TWILIO_SIG = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
TWILIO_SIG_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="
TWILIO_SIG_HTTP_80 = "0ZXoZLH/DfblKGATFgpif+LLRf4="
TWILIO_DUP_SIG = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
TWILIO_JSON_BODY = b'{"property": "value", "boolean": true}'
TWILIO_BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
TWILIO_JSON_SIG = "a9nBmqA0ju/hNViExpshrM61xv4="

SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SG_TS = "1600112502"
# sendgrid-python test/unit/test_eventwebhook.py: the same JSON, sort_keys + compact, then CRLF.
SG_BODY = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()
# From the same test file: another key and another signature, both must fail.
SG_OTHER_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SG_OTHER_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="
)

ORDER_BODY = b'{"event_id":"e1","event_type":"orders.notification"}'
XERO_ITR_BODY = b'{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}'

SG_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SG_TS_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def _public_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


# Our own P-256 key pairs, for SendGrid cases the official vector cannot cover (stale, too new).
SG_KEY = ec.generate_private_key(ec.SECP256R1())
SG_KEY_2 = ec.generate_private_key(ec.SECP256R1())
SG_PRIVATE = {_public_b64(SG_KEY): SG_KEY, _public_b64(SG_KEY_2): SG_KEY_2}

# ----------------------------------------------------------------------------- known answers


def test_standard_webhooks_official_vector():
    assert sign_standard(SW_SECRET, SW_ID, SW_TS, SW_BODY) == SW_SIG
    request = InboundRequest(
        SW_BODY, {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG}
    )
    verify("standard", request, SW_SECRET, now=SW_TS)


def test_svix_docs_vector_with_svix_headers():
    secret, msg_id, ts = "whsec_plJ3nmyCDGBKInavdOK15jsl", "msg_loFOjxBNrRLzqYUf", 1731705121
    body = b'{"event_type":"ping","data":{"success":true}}'
    expected = "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0="
    assert sign_standard(secret, msg_id, ts, body) == expected
    request = InboundRequest(body, {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": expected})
    verify("standard", request, secret, now=ts + 10)


def test_slack_official_vector():
    assert sign_slack(SLACK_SECRET, SLACK_TS, SLACK_BODY) == SLACK_SIG
    request = InboundRequest(
        SLACK_BODY, {"X-Slack-Signature": SLACK_SIG, "X-Slack-Request-Timestamp": str(SLACK_TS)}
    )
    verify("slack", request, SLACK_SECRET, now=SLACK_TS)


def _twilio_request(url: str, signature: str, params=TWILIO_PARAMS) -> InboundRequest:
    return InboundRequest(
        urlencode(params, doseq=True).encode(),
        {"X-Twilio-Signature": signature},
        url=url,
        content_type="application/x-www-form-urlencoded",
    )


def test_twilio_official_vectors_compute():
    assert sign_twilio(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_SIG
    with_443 = TWILIO_URL.replace(".com", ".com:443")
    assert sign_twilio(TWILIO_TOKEN, with_443, TWILIO_PARAMS) == TWILIO_SIG_443
    http_80 = TWILIO_URL.replace("https", "http").replace(".com", ".com:80")
    assert sign_twilio(TWILIO_TOKEN, http_80, TWILIO_PARAMS) == TWILIO_SIG_HTTP_80


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (TWILIO_URL, TWILIO_SIG),  # as signed
        (TWILIO_URL.replace(".com", ".com:443"), TWILIO_SIG),  # we see :443, Twilio signed without
        (TWILIO_URL, TWILIO_SIG_443),  # we see no port, Twilio signed with :443
        (TWILIO_URL.replace(".com", ".com:443"), TWILIO_SIG_443),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", TWILIO_SIG_HTTP_80),  # port 80 added
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", TWILIO_SIG_HTTP_80),
    ],
)
def test_twilio_form_vectors_verify_with_and_without_default_port(url, signature):
    verify("twilio", _twilio_request(url, signature), TWILIO_TOKEN)


def test_twilio_non_default_port_is_not_stripped():
    url = TWILIO_URL.replace(".com", ".com:8443")
    with pytest.raises(VerificationError) as err:
        verify("twilio", _twilio_request(url, TWILIO_SIG), TWILIO_TOKEN)
    assert err.value.reason == "bad_signature"
    # but a signature over that exact URL is fine
    verify("twilio", _twilio_request(url, sign_twilio(TWILIO_TOKEN, url, TWILIO_PARAMS)), TWILIO_TOKEN)


def test_twilio_duplicate_parameters_vector():
    params = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]}
    assert sign_twilio(TWILIO_TOKEN, TWILIO_URL, params) == TWILIO_DUP_SIG
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
    request = InboundRequest(body, {"X-Twilio-Signature": TWILIO_DUP_SIG}, url=TWILIO_URL)
    verify("twilio", request, TWILIO_TOKEN)
    # values in the other order give the same signature (they are sorted)
    swapped = InboundRequest(body.replace(b"5678", b"XXXX").replace(b"1234", b"5678").replace(b"XXXX", b"1234"),
                             {"X-Twilio-Signature": TWILIO_DUP_SIG}, url=TWILIO_URL)
    verify("twilio", swapped, TWILIO_TOKEN)


def test_twilio_json_body_vector():
    assert hashlib.sha256(TWILIO_JSON_BODY).hexdigest() == TWILIO_BODY_HASH
    url = f"{TWILIO_URL}&bodySHA256={TWILIO_BODY_HASH}"
    assert sign_twilio(TWILIO_TOKEN, url) == TWILIO_JSON_SIG
    request = InboundRequest(
        TWILIO_JSON_BODY, {"X-Twilio-Signature": TWILIO_JSON_SIG}, url=url, content_type="application/json"
    )
    verify("twilio", request, TWILIO_TOKEN)


def test_twilio_json_body_tampered_fails_on_hash():
    url = f"{TWILIO_URL}&bodySHA256={TWILIO_BODY_HASH}"
    request = InboundRequest(
        TWILIO_JSON_BODY.replace(b"value", b"valuE"),
        {"X-Twilio-Signature": TWILIO_JSON_SIG},
        url=url,
        content_type="application/json",
    )
    expect_failure("twilio", request, TWILIO_TOKEN, "bad_signature", forbidden=[TWILIO_JSON_SIG, TWILIO_BODY_HASH])


def test_twilio_json_body_without_body_hash_is_refused():
    request = InboundRequest(
        TWILIO_JSON_BODY,
        {"X-Twilio-Signature": sign_twilio(TWILIO_TOKEN, TWILIO_URL)},
        url=TWILIO_URL,
        content_type="application/json",
    )
    expect_failure("twilio", request, TWILIO_TOKEN, "malformed_signature")


def test_twilio_two_body_hashes_are_refused():
    url = f"{TWILIO_URL}&bodySHA256={TWILIO_BODY_HASH}&bodySHA256={TWILIO_BODY_HASH}"
    request = InboundRequest(
        TWILIO_JSON_BODY, {"X-Twilio-Signature": sign_twilio(TWILIO_TOKEN, url)}, url=url,
        content_type="application/json",
    )
    expect_failure("twilio", request, TWILIO_TOKEN, "malformed_signature")


def test_twilio_blank_values_and_encoding_are_signed_decoded():
    params = {"Body": "hello world & more", "Empty": "", "MediaUrl0": "https://x.test/a?b=c"}
    body = urlencode(params).encode()
    request = InboundRequest(
        body, {"X-Twilio-Signature": sign_twilio(TWILIO_TOKEN, TWILIO_URL, params)}, url=TWILIO_URL,
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    verify("twilio", request, TWILIO_TOKEN)
    # dropping the blank parameter changes what was signed
    dropped = InboundRequest(
        urlencode({k: v for k, v in params.items() if v}).encode(),
        dict(request.headers), url=TWILIO_URL,
    )
    expect_failure("twilio", dropped, TWILIO_TOKEN, "bad_signature")


def test_twilio_needs_url():
    with pytest.raises(ValueError):
        verify("twilio", InboundRequest(b"", {"X-Twilio-Signature": TWILIO_SIG}), TWILIO_TOKEN)


def test_sendgrid_official_vector():
    request = InboundRequest(SG_BODY, {SG_HEADER: SG_SIGNATURE, SG_TS_HEADER: SG_TS})
    verify("sendgrid", request, SG_PUBLIC_KEY, now=int(SG_TS) + 5)


def test_sendgrid_official_negative_vectors():
    good = {SG_HEADER: SG_SIGNATURE, SG_TS_HEADER: SG_TS}
    now = int(SG_TS)
    expect_failure("sendgrid", InboundRequest(SG_BODY, good), SG_OTHER_PUBLIC_KEY, "bad_signature", now=now)
    expect_failure("sendgrid", InboundRequest(b"payload", good), SG_PUBLIC_KEY, "bad_signature", now=now)
    expect_failure("sendgrid", InboundRequest(SG_BODY.rstrip(b"\r\n"), good), SG_PUBLIC_KEY, "bad_signature", now=now)
    other_sig = {SG_HEADER: SG_OTHER_SIGNATURE, SG_TS_HEADER: SG_TS}
    expect_failure("sendgrid", InboundRequest(SG_BODY, other_sig), SG_PUBLIC_KEY, "bad_signature", now=now)
    bad_ts = {SG_HEADER: SG_SIGNATURE, SG_TS_HEADER: "timestamp"}
    expect_failure("sendgrid", InboundRequest(SG_BODY, bad_ts), SG_PUBLIC_KEY, "malformed_signature", now=now)
    # the official signature is eleven minutes old by now + 660: beyond our 600 s window
    expect_failure("sendgrid", InboundRequest(SG_BODY, good), SG_PUBLIC_KEY, "stale_timestamp", now=now + 660)


def test_sendgrid_own_key_pair_round_trip():
    public = _public_b64(SG_KEY)
    signature = sign_sendgrid(SG_KEY, 1_700_000_000, ORDER_BODY)
    headers = {SG_HEADER: signature, SG_TS_HEADER: "1700000000"}
    verify("sendgrid", InboundRequest(ORDER_BODY, headers), public, now=1_700_000_000)
    expect_failure("sendgrid", InboundRequest(ORDER_BODY + b" ", headers), public, "bad_signature", now=1_700_000_000)


def test_sendgrid_key_must_be_p256_public_key():
    request = InboundRequest(SG_BODY, {SG_HEADER: SG_SIGNATURE, SG_TS_HEADER: SG_TS})
    with pytest.raises(ValueError):
        verify("sendgrid", request, "not a key", now=int(SG_TS))
    p384 = _public_b64(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError):
        verify("sendgrid", request, p384, now=int(SG_TS))


def test_github_vector():
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign_github(secret, body) == expected
    verify("github", InboundRequest(body, {"X-Hub-Signature-256": expected}), secret)


def test_stripe_computed_vector():
    expected = "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
    assert sign_stripe("whsec_test_secret", 1700000000, b'{"id":"evt_1"}') == expected
    verify("stripe", InboundRequest(b'{"id":"evt_1"}', {"Stripe-Signature": expected}), "whsec_test_secret",
           now=1700000000)


def test_uber_intuit_xero_computed_vectors():
    uber = "b7eede98359c93c067e09d6438c8535bdc4229debbe453cee9ba640b3ba5e819"
    assert sign_ubereats("client_secret_123", ORDER_BODY) == uber
    verify("ubereats", InboundRequest(ORDER_BODY, {"X-Uber-Signature": uber}), "client_secret_123")

    intuit = "OD/log+l7pxzcpkL5lDg7+XjeUu2rsnYxfekNcMXWas="
    assert sign_hmac_base64("verifier_token_123", ORDER_BODY) == intuit
    verify("quickbooks", InboundRequest(ORDER_BODY, {"intuit-signature": intuit}), "verifier_token_123")

    xero = "1FVsprtXIkG+obYtNExXu3yIDFSV+SrHjVpypZVL32I="
    assert sign_hmac_base64("webhook_key_123", XERO_ITR_BODY) == xero
    verify("xero", InboundRequest(XERO_ITR_BODY, {"x-xero-signature": xero}), "webhook_key_123")


def test_whsec_means_different_keys_for_standard_and_stripe():
    """Stripe keys the HMAC with the whole whsec_ string; Standard Webhooks decodes it."""
    std = sign_standard(SW_SECRET, "msg_1", 1700000000, b"{}")
    raw_key = base64.b64decode(SW_SECRET[len("whsec_"):])
    assert std[3:] == base64.b64encode(hmac.new(raw_key, b"msg_1.1700000000.{}", hashlib.sha256).digest()).decode()
    stripe = sign_stripe(SW_SECRET, 1700000000, b"{}")
    assert stripe.endswith(hmac.new(SW_SECRET.encode(), b"1700000000.{}", hashlib.sha256).hexdigest())


# ----------------------------------------------------------------------------- per-scheme matrix

NOW = 1_700_000_000
FORM_BODY = b"CallSid=CA1&From=%2B14155550100&Body=hello+world"

SECRET = {
    "standard": SW_SECRET,
    "stripe": "whsec_test_secret",
    "slack": SLACK_SECRET,
    "twilio": TWILIO_TOKEN,
    "sendgrid": _public_b64(SG_KEY),
    "ubereats": "client_secret_123",
    "quickbooks": "verifier_token_123",
    "xero": "webhook_key_123",
    "github": "It's a Secret to Everybody",
    "doordash": "Bearer dd-static-credential-1",
    "procore": "Bearer procore-static-credential-2",
}
OTHER_SECRET = {
    "standard": "whsec_plJ3nmyCDGBKInavdOK15jsl",
    "stripe": "whsec_other_secret",
    "slack": "0000000000000000abcd99yyyzzz85a5",
    "twilio": "54321",
    "sendgrid": _public_b64(SG_KEY_2),
    "ubereats": "client_secret_456",
    "quickbooks": "verifier_token_456",
    "xero": "webhook_key_456",
    "github": "another secret",
    "doordash": "Bearer dd-static-credential-X",
    "procore": "Bearer procore-static-credential-X",
}
HEADERS_REQUIRED = {
    "standard": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "stripe": ["Stripe-Signature"],
    "slack": ["X-Slack-Signature", "X-Slack-Request-Timestamp"],
    "twilio": ["X-Twilio-Signature"],
    "sendgrid": [SG_HEADER, SG_TS_HEADER],
    "ubereats": ["X-Uber-Signature"],
    "quickbooks": ["intuit-signature"],
    "xero": ["x-xero-signature"],
    "github": ["X-Hub-Signature-256"],
    "doordash": ["Authorization"],
    "procore": ["Authorization"],
}
TIMESTAMPED = {"standard": 300, "stripe": 300, "slack": 300, "sendgrid": 600}
SIGNED_BODY = sorted(SCHEMES - {"doordash", "procore"})


def signed_request(scheme: str, secret: str, body: bytes | None = None, ts: int = NOW) -> InboundRequest:
    """A correctly signed request for `scheme`, as the provider would send it."""
    if body is None:
        body = FORM_BODY if scheme == "twilio" else ORDER_BODY
    if scheme == "standard":
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts),
                   "webhook-signature": sign_standard(secret, "msg_1", ts, body)}
    elif scheme == "stripe":
        headers = {"Stripe-Signature": sign_stripe(secret, ts, body)}
    elif scheme == "slack":
        headers = {"X-Slack-Signature": sign_slack(secret, ts, body), "X-Slack-Request-Timestamp": str(ts)}
    elif scheme == "twilio":
        params: dict[str, list[str]] = {}
        for pair in body.decode().split("&"):
            name, _, value = pair.partition("=")
            params.setdefault(unquote_plus(name), []).append(unquote_plus(value))
        headers = {"X-Twilio-Signature": sign_twilio(secret, TWILIO_URL, params)}
        return InboundRequest(body, headers, url=TWILIO_URL, content_type="application/x-www-form-urlencoded")
    elif scheme == "sendgrid":
        headers = {SG_HEADER: sign_sendgrid(SG_PRIVATE[secret], ts, body), SG_TS_HEADER: str(ts)}
    elif scheme == "ubereats":
        headers = {"X-Uber-Signature": sign_ubereats(secret, body)}
    elif scheme == "quickbooks":
        headers = {"intuit-signature": sign_hmac_base64(secret, body)}
    elif scheme == "xero":
        headers = {"x-xero-signature": sign_hmac_base64(secret, body)}
    elif scheme == "github":
        headers = {"X-Hub-Signature-256": sign_github(secret, body)}
    else:
        headers = {"Authorization": secret}
    return InboundRequest(body, headers, url="https://hub.example.com/webhooks/x/y", content_type="application/json")


def secret_derived_strings(scheme: str, request: InboundRequest, secret: str) -> list[str]:
    """Strings an error message must never contain: the secret and the correct signatures."""
    correct = signed_request(scheme, secret, request.body)
    out = [secret]
    if scheme == "standard":
        out.append(base64.b64decode(secret.removeprefix("whsec_") + "==").hex())
    for value in correct.headers.values():
        if not value.isdigit():
            out.append(value)
            out.append(value.split(",")[-1].partition("=")[2])  # the bare hex after t=..,v1=
            out.append(value.partition(",")[2])  # the bare base64 after v1,
    return [piece for piece in out if len(piece) >= 16]


def expect_failure(scheme, request, secret, reason, *, forbidden=(), **kwargs) -> VerificationError:
    with pytest.raises(VerificationError) as err:
        verify(scheme, request, secret, **kwargs)
    assert err.value.reason == reason, str(err.value)
    text = f"{err.value} {err.value!r} {err.value.args}"
    leaks = [secret, *forbidden]
    if scheme in SCHEMES and scheme != "sendgrid" and request.url != "":
        try:
            leaks += secret_derived_strings(scheme, request, secret)
        except Exception:  # an unsignable request (e.g. bad form) has no correct signature
            pass
    for leak in leaks:
        assert leak not in text, f"error message leaks {leak!r}: {text}"
    return err.value


def with_headers(request: InboundRequest, **changes) -> InboundRequest:
    headers = dict(request.headers)
    for name, value in changes.items():
        name = name.replace("_", "-").lower()
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return InboundRequest(request.body, headers, url=request.url, content_type=request.content_type)


def test_schemes_registry():
    assert SCHEMES == {"standard", "stripe", "slack", "twilio", "sendgrid", "ubereats", "quickbooks", "xero",
                       "doordash", "procore", "github"}
    assert isinstance(SCHEMES, frozenset)
    with pytest.raises(ValueError):
        verify("svix-legacy", signed_request("ubereats", SECRET["ubereats"]), "x")


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_valid_request_accepted(scheme):
    verify(scheme, signed_request(scheme, SECRET[scheme]), SECRET[scheme], now=NOW)


@pytest.mark.parametrize("scheme", SIGNED_BODY)
def test_tampered_body_rejected(scheme):
    request = signed_request(scheme, SECRET[scheme])
    body = request.body[:-1] + bytes([request.body[-1] ^ 1])
    tampered = InboundRequest(body, request.headers, url=request.url, content_type=request.content_type)
    expect_failure(scheme, tampered, SECRET[scheme], "bad_signature", now=NOW)


@pytest.mark.parametrize("scheme", [s for s in SIGNED_BODY if s != "twilio"])  # Twilio: JSON vector test
def test_reserialised_json_body_rejected(scheme):
    """Verification is on raw bytes: the same JSON with other whitespace must not pass."""
    request = signed_request(scheme, SECRET[scheme])
    pretty = json.dumps(json.loads(request.body), indent=1).encode()
    changed = InboundRequest(pretty, request.headers, url=request.url, content_type=request.content_type)
    expect_failure(scheme, changed, SECRET[scheme], "bad_signature", now=NOW)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_wrong_secret_rejected(scheme):
    request = signed_request(scheme, OTHER_SECRET[scheme])
    expect_failure(scheme, request, SECRET[scheme], "bad_signature", now=NOW,
                   forbidden=[OTHER_SECRET[scheme]] if scheme in {"doordash", "procore"} else [])


@pytest.mark.parametrize(
    ("scheme", "header"), [(s, h) for s in sorted(SCHEMES) for h in HEADERS_REQUIRED[s]]
)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_missing_header_rejected(scheme, header, how):
    request = signed_request(scheme, SECRET[scheme])
    headers = {k: v for k, v in request.headers.items() if k != header.lower()}
    if how == "empty":
        headers[header] = "  "
    stripped = InboundRequest(request.body, headers, url=request.url, content_type=request.content_type)
    expect_failure(scheme, stripped, SECRET[scheme], "missing_signature", now=NOW)


def _b64_of_hex(scheme: str) -> str:
    return base64.b64encode(hmac.new(SECRET[scheme].encode(), ORDER_BODY, hashlib.sha256).digest()).decode()


def _hex_of_b64(scheme: str) -> str:
    return hmac.new(SECRET[scheme].encode(), ORDER_BODY, hashlib.sha256).hexdigest()


MALFORMED = [
    # Standard Webhooks
    ("standard", "webhook-signature", "v1,not*base64!"),
    ("standard", "webhook-signature", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),  # no v1, prefix
    ("standard", "webhook-signature", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),  # only other versions
    ("standard", "webhook-signature", "v1=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ("standard", "webhook-timestamp", "abc"),
    ("standard", "webhook-timestamp", "-1700000000"),
    ("standard", "webhook-timestamp", "1700000000.5"),
    ("standard", "webhook-timestamp", "\u0661\u0667"),  # Arabic-Indic digits
    # Stripe
    ("stripe", "Stripe-Signature", "garbage"),
    ("stripe", "Stripe-Signature", "t=abc,v1=" + "0" * 64),
    ("stripe", "Stripe-Signature", "v1=" + "0" * 64),  # no t
    ("stripe", "Stripe-Signature", "t=1700000000"),  # no v1
    ("stripe", "Stripe-Signature", "t=1700000000,v1=" + "z" * 64),  # bad hex
    ("stripe", "Stripe-Signature", "t=1700000000,v1=" + "ab" * 16),  # wrong length
    ("stripe", "Stripe-Signature", "t=1700000000,v0=" + "0" * 64),  # only v0
    ("stripe", "Stripe-Signature", "t=1700000000,t=1700000001,v1=" + "0" * 64),
    # Slack
    ("slack", "X-Slack-Signature", "v1=" + "0" * 64),
    ("slack", "X-Slack-Signature", "0" * 64),  # no prefix
    ("slack", "X-Slack-Signature", "v0=" + "zz" * 32),
    ("slack", "X-Slack-Signature", "v0=" + "0" * 63),  # odd length
    ("slack", "X-Slack-Signature", "v0=" + "00" * 20),  # wrong length
    ("slack", "X-Slack-Request-Timestamp", "yesterday"),
    ("slack", "X-Slack-Request-Timestamp", "1e9"),
    # Twilio
    ("twilio", "X-Twilio-Signature", "not base64!!"),
    ("twilio", "X-Twilio-Signature", "ab" * 20),  # hex of a SHA-1 digest instead of base64
    ("twilio", "X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8"),  # lost its padding
    # SendGrid
    ("sendgrid", SG_HEADER, "not base64!!"),
    ("sendgrid", SG_TS_HEADER, "timestamp"),
    # Uber Eats
    ("ubereats", "X-Uber-Signature", "zz" * 32),
    ("ubereats", "X-Uber-Signature", "sha256=" + "00" * 32),
    ("ubereats", "X-Uber-Signature", "0" * 63),
    ("ubereats", "X-Uber-Signature", "00" * 20),
    # QuickBooks and Xero: base64 expected
    ("quickbooks", "intuit-signature", "not base64!!"),
    ("xero", "x-xero-signature", "not base64!!"),
    # GitHub
    ("github", "X-Hub-Signature-256", "sha1=" + "00" * 20),
    ("github", "X-Hub-Signature-256", "sha256=" + "zz" * 32),
]


@pytest.mark.parametrize(("scheme", "header", "value"), MALFORMED)
def test_malformed_header_rejected(scheme, header, value):
    request = with_headers(signed_request(scheme, SECRET[scheme]), **{header: value})
    expect_failure(scheme, request, SECRET[scheme], "malformed_signature", now=NOW)


@pytest.mark.parametrize(
    ("scheme", "header"),
    [("ubereats", "X-Uber-Signature"), ("quickbooks", "intuit-signature"), ("xero", "x-xero-signature")],
)
def test_wrong_encoding_rejected(scheme, header):
    """A correct MAC in the other encoding (hex vs base64) is not accepted."""
    value = _b64_of_hex(scheme) if scheme == "ubereats" else _hex_of_b64(scheme)
    request = with_headers(signed_request(scheme, SECRET[scheme]), **{header: value})
    expect_failure(scheme, request, SECRET[scheme], "malformed_signature", now=NOW)


def test_uber_upper_case_hex_accepted():
    request = signed_request("ubereats", SECRET["ubereats"])
    upper = with_headers(request, X_Uber_Signature=request.headers["x-uber-signature"].upper())
    verify("ubereats", upper, SECRET["ubereats"])


@pytest.mark.parametrize("scheme", sorted(TIMESTAMPED))
@pytest.mark.parametrize("direction", [-1, 1], ids=["too_old", "too_new"])
def test_stale_timestamp_rejected(scheme, direction):
    tolerance = TIMESTAMPED[scheme]
    request = signed_request(scheme, SECRET[scheme], ts=NOW + direction * (tolerance + 1))
    err = expect_failure(scheme, request, SECRET[scheme], "stale_timestamp", now=NOW)
    assert str(tolerance) in str(err)


@pytest.mark.parametrize("scheme", sorted(TIMESTAMPED))
@pytest.mark.parametrize("direction", [-1, 1], ids=["old_edge", "new_edge"])
def test_timestamp_at_tolerance_edge_accepted(scheme, direction):
    tolerance = TIMESTAMPED[scheme]
    request = signed_request(scheme, SECRET[scheme], ts=NOW + direction * tolerance)
    verify(scheme, request, SECRET[scheme], now=NOW)


def test_tolerance_is_configurable():
    request = signed_request("sendgrid", SECRET["sendgrid"], ts=NOW - 400)
    verify("sendgrid", request, SECRET["sendgrid"], now=NOW)  # default 600 s
    expect_failure("sendgrid", request, SECRET["sendgrid"], "stale_timestamp", now=NOW, tolerance_s=300)
    old_slack = signed_request("slack", SECRET["slack"], ts=NOW - 400)
    verify("slack", old_slack, SECRET["slack"], now=NOW, tolerance_s=500)


def test_forged_and_stale_reads_as_forged():
    request = signed_request("stripe", OTHER_SECRET["stripe"], ts=NOW - 10_000)
    expect_failure("stripe", request, SECRET["stripe"], "bad_signature", now=NOW)


def test_uses_current_time_by_default():
    request = signed_request("slack", SECRET["slack"], ts=NOW)
    expect_failure("slack", request, SECRET["slack"], "stale_timestamp")  # NOW is in 2023


# ----------------------------------------------------------------------------- scheme specifics


def _sw_request(signature_header: str) -> InboundRequest:
    return InboundRequest(
        SW_BODY, {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": signature_header}
    )


def test_standard_rotation_either_signature_accepted():
    old_secret, new_secret = SW_SECRET, generate_standard_secret()
    old_sig = sign_standard(old_secret, SW_ID, SW_TS, SW_BODY)
    new_sig = sign_standard(new_secret, SW_ID, SW_TS, SW_BODY)
    for header in (f"{old_sig} {new_sig}", f"{new_sig} {old_sig}"):
        verify("standard", _sw_request(header), old_secret, now=SW_TS)
        verify("standard", _sw_request(header), new_secret, now=SW_TS)
    third = generate_standard_secret()
    expect_failure("standard", _sw_request(f"{old_sig} {new_sig}"), third, "bad_signature", now=SW_TS)


def test_standard_ignores_other_versions_and_garbage_entries():
    header = f"v2,{SW_SIG[3:]} v1a,xyz v1,not*base64 garbage {SW_SIG}"
    verify("standard", _sw_request(header), SW_SECRET, now=SW_TS)


@pytest.mark.parametrize("key_len", [24, 23, 22, 32, 64])  # 0, 1 and 2 padding characters
@pytest.mark.parametrize("prefix", ["whsec_", ""])
def test_standard_unpadded_and_unprefixed_secrets(key_len, prefix):
    key = bytes(range(key_len))
    padded = base64.b64encode(key).decode()
    signature = sign_standard("whsec_" + padded, SW_ID, SW_TS, SW_BODY)
    expected = base64.b64encode(hmac.new(key, f"{SW_ID}.{SW_TS}.".encode() + SW_BODY, hashlib.sha256).digest())
    assert signature == "v1," + expected.decode()
    verify("standard", _sw_request(signature), prefix + padded.rstrip("="), now=SW_TS)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not*base64"])
def test_standard_unusable_secret_is_a_configuration_error(secret):
    with pytest.raises(ValueError) as err:
        verify("standard", _sw_request(SW_SIG), secret, now=SW_TS)
    assert "not*base64" not in str(err.value)


def test_generate_standard_secret():
    secret = generate_standard_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_"):], validate=True)) == 24
    assert secret != generate_standard_secret()
    sig = sign_standard(secret, "msg_2", NOW, b"{}")
    verify("standard", InboundRequest(b"{}", {"webhook-id": "msg_2", "webhook-timestamp": str(NOW),
                                               "webhook-signature": sig}), secret, now=NOW)


def test_standard_prefers_webhook_headers_over_svix():
    request = InboundRequest(
        SW_BODY,
        {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG,
         "svix-id": "other", "svix-timestamp": "1", "svix-signature": "v1,AAAA"},
    )
    verify("standard", request, SW_SECRET, now=SW_TS)


def test_standard_signed_id_matters():
    request = InboundRequest(
        SW_BODY, {"webhook-id": SW_ID + "x", "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG}
    )
    expect_failure("standard", request, SW_SECRET, "bad_signature", now=SW_TS, forbidden=[SW_SIG[3:]])


def test_stripe_any_v1_matches_and_v0_ignored():
    good = sign_stripe("whsec_test_secret", NOW, ORDER_BODY)
    ts, v1 = good.split(",")
    header = f"{ts},v1={'0' * 64},{v1},v0={'1' * 64}"
    verify("stripe", InboundRequest(ORDER_BODY, {"Stripe-Signature": header}), "whsec_test_secret", now=NOW)
    header = f"{ts},v1={'0' * 64},v0={v1[3:]}"  # the right MAC under v0 does not count
    expect_failure("stripe", InboundRequest(ORDER_BODY, {"Stripe-Signature": header}), "whsec_test_secret",
                   "bad_signature", now=NOW)


def test_stripe_signed_timestamp_matters():
    good = sign_stripe("whsec_test_secret", NOW, ORDER_BODY)
    moved = good.replace(f"t={NOW}", f"t={NOW + 1}")
    expect_failure("stripe", InboundRequest(ORDER_BODY, {"Stripe-Signature": moved}), "whsec_test_secret",
                   "bad_signature", now=NOW)


def test_slack_signed_timestamp_matters():
    request = signed_request("slack", SECRET["slack"])
    moved = with_headers(request, X_Slack_Request_Timestamp=str(NOW + 1))
    expect_failure("slack", moved, SECRET["slack"], "bad_signature", now=NOW)


def test_sendgrid_signed_timestamp_matters():
    request = signed_request("sendgrid", SECRET["sendgrid"])
    moved = with_headers(request, **{SG_TS_HEADER: str(NOW + 1)})
    expect_failure("sendgrid", moved, SECRET["sendgrid"], "bad_signature", now=NOW)


def test_xero_intent_to_receive():
    key = "webhook_key_123"
    good = InboundRequest(XERO_ITR_BODY, {"x-xero-signature": sign_hmac_base64(key, XERO_ITR_BODY)})
    verify("xero", good, key)
    assert is_xero_intent_to_receive(XERO_ITR_BODY)
    assert not is_xero_intent_to_receive(b'{"events":[{"resourceId":"x"}]}')
    assert not is_xero_intent_to_receive(b"not json")
    bad = InboundRequest(XERO_ITR_BODY, {"x-xero-signature": sign_hmac_base64("wrong", XERO_ITR_BODY)})
    expect_failure("xero", bad, key, "handshake", forbidden=[sign_hmac_base64(key, XERO_ITR_BODY)])
    garbled = InboundRequest(XERO_ITR_BODY, {"x-xero-signature": "###"})
    expect_failure("xero", garbled, key, "handshake")
    missing = InboundRequest(XERO_ITR_BODY, {})
    expect_failure("xero", missing, key, "missing_signature")


@pytest.mark.parametrize("scheme", ["doordash", "procore"])
def test_static_credential(scheme):
    secret = SECRET[scheme]
    verify(scheme, InboundRequest(b"anything", {"authorization": secret}), secret)
    for wrong in (secret + " ", secret.lower(), secret[:-1], "Basic " + secret, secret.upper()):
        expect_failure(scheme, InboundRequest(b"{}", {"Authorization": wrong}), secret, "bad_signature")
    # a custom header name, looked up case-insensitively
    verify(scheme, InboundRequest(b"{}", {"x-procore-token": "tok-123"}), "tok-123", header_name="X-Procore-Token")
    expect_failure(scheme, InboundRequest(b"{}", {"Authorization": "tok-123"}), "tok-123", "missing_signature",
                   header_name="X-Procore-Token")


def test_static_credential_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError):
        verify("doordash", InboundRequest(b"{}", {"Authorization": "x"}), "")


def test_header_name_refused_for_signed_schemes():
    with pytest.raises(ValueError):
        verify("ubereats", signed_request("ubereats", SECRET["ubereats"]), SECRET["ubereats"], header_name="X-Sig")


def test_negative_tolerance_refused():
    with pytest.raises(ValueError):
        verify("slack", signed_request("slack", SECRET["slack"]), SECRET["slack"], now=NOW, tolerance_s=-1)


# ----------------------------------------------------------------------------- plumbing


def test_inbound_request_headers_are_case_insensitive_and_body_is_bytes():
    request = InboundRequest(bytearray(b"x"), {"X-Uber-Signature": "AB", "Content-Type": "a/b"})
    assert request.body == b"x"
    assert request.header("x-uber-signature") == "AB"
    assert request.header("X-UBER-SIGNATURE") == "AB"
    assert request.header("missing") is None
    with pytest.raises(TypeError):
        InboundRequest("text body", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        request.headers["new"] = "x"  # type: ignore[index]


def test_verification_error_reason():
    err = VerificationError("bad_signature", "no match")
    assert err.reason == "bad_signature" and str(err) == "no match"
    with pytest.raises(ValueError):
        VerificationError("nope", "x")


@pytest.mark.parametrize("scheme", sorted(SCHEMES - {"sendgrid"}))
def test_comparisons_are_constant_time(scheme, monkeypatch):
    """Every scheme decides through `hmac.compare_digest` (SendGrid uses ECDSA verify)."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(verify_mod.hmac, "compare_digest", spy)
    verify(scheme, signed_request(scheme, SECRET[scheme]), SECRET[scheme], now=NOW)
    assert calls
    calls.clear()
    with pytest.raises(VerificationError):
        verify(scheme, signed_request(scheme, OTHER_SECRET[scheme]), SECRET[scheme], now=NOW)
    assert calls
