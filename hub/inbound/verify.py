"""Signature verification of inbound provider webhooks.

Every provider proves a delivery came from it in its own way (see
`shared/reference/webhooks.md` section (c)); this module turns each way into one function
with one contract: return ``None`` for an authentic, fresh request, raise
`VerificationError` with a machine-friendly ``reason`` otherwise. The receiver maps every
reason to HTTP 401 (Xero's intent-to-receive requires exactly that) and logs the reason.

Rules that hold for every scheme, because each one is a way webhook verifiers get broken:

* MACs are computed over the **exact raw body bytes** as received. Re-serialising parsed
  JSON changes whitespace and key order and breaks (or, worse, weakens) verification.
  Twilio is the one exception by design: it signs decoded form parameters, not bytes.
* Every comparison of a secret-derived value uses `hmac.compare_digest`, so the time taken
  does not reveal how many leading bytes of a guess were right.
* Encoded signatures are decoded strictly (base64 with ``validate=True``, hex through
  `bytes.fromhex`) and compared as raw digests; junk is reported as ``malformed_signature``
  rather than silently compared.
* The signature is checked before the timestamp, so ``stale_timestamp`` is only ever
  reported for an authentic request: it means "a replay (or a bad clock)", which is the
  log line worth alerting on, and a forgery with an old timestamp reads as a forgery.
* Error messages name headers and reasons only: never the secret, the expected signature,
  or the signature the caller sent (attacker-controlled text stays out of logs).

Signing helpers (`sign_standard`, `sign_stripe`, ...) share the MAC code with the verifiers,
so the emulators and tests sign exactly what the verifiers check.

Nothing here imports Dagster or the database: the receiver calls `verify` in the request
path and it must stay cheap and dependency-free.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qs, parse_qsl, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "REASONS",
    "SCHEMES",
    "InboundRequest",
    "VerificationError",
    "generate_standard_secret",
    "is_xero_intent_to_receive",
    "sign_github",
    "sign_hmac_base64",
    "sign_sendgrid",
    "sign_slack",
    "sign_standard",
    "sign_stripe",
    "sign_twilio",
    "sign_ubereats",
    "verify",
]

REASONS = frozenset({"missing_signature", "bad_signature", "stale_timestamp", "malformed_signature", "handshake"})

# Only ASCII digits: `str.isdigit` would also accept e.g. Arabic-Indic digits, and `int()`
# accepts signs, underscores and surrounding spaces. Fifteen digits is far past year 9999.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX = re.compile(r"[0-9a-fA-F]+")


class VerificationError(Exception):
    """A delivery failed verification; ``reason`` says why in one stable word.

    ``reason`` is one of `REASONS` so the receiver can count and log failures by kind
    without parsing text. The message is for a person and is built only from header names
    and numbers, so it is safe to log: it never holds the secret or any signature.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown verification failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __repr__(self) -> str:
        return f"VerificationError(reason={self.reason!r}, message={str(self)!r})"


@dataclass(frozen=True)
class InboundRequest:
    """What a verifier may look at: the raw body, the headers and the URL that was called.

    Headers are stored with lower-case names because HTTP header names are
    case-insensitive and providers (and proxies) vary the case; when two spellings of one
    name are given, the later one wins. ``body`` must be the bytes exactly as received:
    a ``str`` is refused because decoding and re-encoding may not give those bytes back.
    ``url`` is the full public URL the provider called (scheme, host, port, path and
    query), which Twilio signs; behind a proxy it must be the configured public URL, not
    the one the app sees.
    """

    body: bytes
    headers: Mapping[str, str]
    url: str = ""
    content_type: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.body, (bytearray, memoryview)):
            object.__setattr__(self, "body", bytes(self.body))
        elif not isinstance(self.body, bytes):
            raise TypeError("InboundRequest.body must be the raw body bytes")
        lowered = {str(name).lower(): str(value) for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(lowered))

    def header(self, name: str) -> str | None:
        """The header's value without surrounding whitespace; None if absent or empty."""
        value = self.headers.get(name.lower())
        if value is None:
            return None
        value = value.strip()
        return value or None


@dataclass(frozen=True)
class _Context:
    now: float
    tolerance_s: int
    header_name: str | None


@dataclass(frozen=True)
class _Scheme:
    verify: Callable[[InboundRequest, str, _Context], None]
    # Freshness window used when the caller passes no tolerance; None: no timestamp signed.
    default_tolerance_s: int | None = None
    # Whether `header_name` means anything for this scheme (static credentials only).
    takes_header_name: bool = False


# --------------------------------------------------------------------------- helpers


def _require(request: InboundRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise VerificationError("missing_signature", f"missing {name} header")
    return value


def _parse_timestamp(value: str, what: str) -> int:
    if not _TIMESTAMP.fullmatch(value):
        raise VerificationError("malformed_signature", f"{what} is not a Unix timestamp in seconds")
    return int(value)


def _check_fresh(timestamp: int, ctx: _Context, what: str) -> None:
    """Reject timestamps outside ``now ± tolerance``.

    Too old is a replay of a captured delivery; too new is either a clock far off or a
    request signed ahead of time to be replayed later, so both directions are refused.
    """
    age = ctx.now - timestamp
    if age > ctx.tolerance_s:
        raise VerificationError(
            "stale_timestamp", f"{what} is {int(age)} s old, beyond the {ctx.tolerance_s} s tolerance"
        )
    if -age > ctx.tolerance_s:
        raise VerificationError(
            "stale_timestamp", f"{what} is {int(-age)} s in the future, beyond the {ctx.tolerance_s} s tolerance"
        )


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VerificationError("malformed_signature", f"{what} is not valid base64") from None


def _hexdecode(value: str, what: str) -> bytes:
    if not _HEX.fullmatch(value) or len(value) % 2:
        raise VerificationError("malformed_signature", f"{what} is not valid hex")
    return bytes.fromhex(value)


def _digest_length(digest: bytes, expected: int, what: str) -> bytes:
    if len(digest) != expected:
        raise VerificationError("malformed_signature", f"{what} has the wrong length for its algorithm")
    return digest


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _utf8_secret(secret: str) -> bytes:
    if not secret:
        raise ValueError("webhook secret is empty")
    return secret.encode("utf-8")


def _matches_any(candidates: list[bytes], expected: list[bytes]) -> bool:
    """True if any candidate equals any expected digest.

    Every pair is compared (no early exit), so timing depends only on the counts,
    not on which entry matched.
    """
    found = False
    for candidate in candidates:
        for digest in expected:
            found |= hmac.compare_digest(candidate, digest)
    return found


# --------------------------------------------------------------------------- Standard Webhooks


def _standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    Standard Webhooks (and Svix) strip ``whsec_`` and base64-decode the rest; this is NOT
    what Stripe does with its own ``whsec_`` secrets (the whole string is the key there).
    Secrets are sometimes stored without base64 padding, so padding is restored first.
    """
    if not secret:
        raise ValueError("webhook secret is empty")
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    if not raw:
        raise ValueError("Standard Webhooks secret has no key after the whsec_ prefix")
    raw = raw + "=" * (-len(raw) % 4)
    try:
        key = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("Standard Webhooks secret is not base64 (after an optional whsec_ prefix)") from None
    if not key:
        raise ValueError("Standard Webhooks secret decodes to an empty key")
    return key


def _standard_digest(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    return _hmac_sha256(_standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body)


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` entry (``v1,<base64>``) for one message."""
    return "v1," + base64.b64encode(_standard_digest(secret, msg_id, timestamp, body)).decode("ascii")


def generate_standard_secret() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes (192 bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _verify_standard(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Standard Webhooks / Svix: HMAC-SHA256 of ``{id}.{timestamp}.{body}``.

    The ``webhook-*`` headers are read, or the ``svix-*`` ones when no
    ``webhook-signature`` is present (Svix sends the older names). The signature header is
    a space-separated list so a sender can sign with the old and the new secret during a
    rotation; any ``v1`` entry that matches is enough, other versions are ignored.
    """
    prefix = "webhook-" if request.header("webhook-signature") is not None else "svix-"
    msg_id = _require(request, prefix + "id")
    ts_text = _require(request, prefix + "timestamp")
    sig_header = _require(request, prefix + "signature")
    timestamp = _parse_timestamp(ts_text, prefix + "timestamp")
    key = _standard_key(secret)

    candidates: list[bytes] = []
    for entry in sig_header.split():
        version, sep, value = entry.partition(",")
        if version != "v1" or not sep:
            continue
        try:
            candidates.append(base64.b64decode(value.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            continue  # one garbled entry must not hide a good one next to it
    if not candidates:
        raise VerificationError("malformed_signature", f"{prefix}signature has no valid v1 entry")

    # Sign the timestamp text as sent (not a re-formatted int), like every other input.
    expected = _hmac_sha256(key, f"{msg_id}.{ts_text}.".encode() + request.body)
    if not _matches_any(candidates, [expected]):
        raise VerificationError("bad_signature", f"no v1 entry of {prefix}signature matches")
    _check_fresh(timestamp, ctx, prefix + "timestamp")


# --------------------------------------------------------------------------- Stripe


def _stripe_digest(secret: str, timestamp: int | str, body: bytes) -> bytes:
    # Stripe's key is the whole `whsec_...` string as UTF-8, prefix included.
    return _hmac_sha256(_utf8_secret(secret), f"{timestamp}.".encode() + body)


def sign_stripe(secret: str, timestamp: int, body: bytes) -> str:
    """The full ``Stripe-Signature`` header value: ``t=<ts>,v1=<hex>``."""
    return f"t={timestamp},v1={_stripe_digest(secret, timestamp, body).hex()}"


def _verify_stripe(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Stripe: ``Stripe-Signature: t=..,v1=..[,v1=..]``, HMAC-SHA256 hex of ``{t}.{body}``.

    Several ``v1`` entries appear while a secret is being rolled; any match is enough.
    ``v0`` (test-mode legacy) and unknown entries are ignored. Stripe's own library only
    refuses timestamps that are too old; we also refuse ones more than the tolerance in
    the future, as every other timestamped scheme here does (a future timestamp is a bad
    clock or a pre-signed request), and Stripe's servers sign with their current time.
    """
    header = _require(request, "Stripe-Signature")
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            timestamps.append(value)
        elif name == "v1" and len(value) == 64 and _HEX.fullmatch(value):
            candidates.append(bytes.fromhex(value))
    if len(timestamps) != 1:
        raise VerificationError("malformed_signature", "Stripe-Signature must carry exactly one t= entry")
    timestamp = _parse_timestamp(timestamps[0], "Stripe-Signature t=")
    if not candidates:
        raise VerificationError("malformed_signature", "Stripe-Signature has no valid v1 entry")
    expected = _stripe_digest(secret, timestamps[0], request.body)
    if not _matches_any(candidates, [expected]):
        raise VerificationError("bad_signature", "no v1 entry of Stripe-Signature matches")
    _check_fresh(timestamp, ctx, "Stripe-Signature t=")


# --------------------------------------------------------------------------- Slack


def _slack_digest(secret: str, timestamp: int | str, body: bytes) -> bytes:
    return _hmac_sha256(_utf8_secret(secret), f"v0:{timestamp}:".encode() + body)


def sign_slack(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Slack-Signature`` value: ``v0=<hex>`` of ``v0:{timestamp}:{body}``."""
    return "v0=" + _slack_digest(secret, timestamp, body).hex()


def _verify_slack(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Slack: ``X-Slack-Signature: v0=<hex>`` with ``X-Slack-Request-Timestamp``; ±300 s."""
    header = _require(request, "X-Slack-Signature")
    ts_text = _require(request, "X-Slack-Request-Timestamp")
    timestamp = _parse_timestamp(ts_text, "X-Slack-Request-Timestamp")
    if not header.startswith("v0="):
        raise VerificationError("malformed_signature", "X-Slack-Signature does not start with v0=")
    candidate = _digest_length(_hexdecode(header[3:], "X-Slack-Signature"), 32, "X-Slack-Signature")
    expected = _slack_digest(secret, ts_text, request.body)
    if not hmac.compare_digest(candidate, expected):
        raise VerificationError("bad_signature", "X-Slack-Signature does not match")
    _check_fresh(timestamp, ctx, "X-Slack-Request-Timestamp")


# --------------------------------------------------------------------------- Twilio


def _twilio_digest(auth_token: str, url: str, params: Mapping[str, str | list[str]] | None) -> bytes:
    """HMAC-SHA1 of the URL followed by ``name + value`` for each parameter.

    Names are sorted, and the values of a repeated name are sorted too (Twilio's own
    validator does the same; the duplicate-parameter vector depends on it).
    """
    text = url
    for name in sorted(params or {}):
        values = params[name]  # type: ignore[index]
        if isinstance(values, str):
            values = [values]
        for value in sorted(values):
            text += name + value
    return hmac.new(_utf8_secret(auth_token), text.encode("utf-8"), hashlib.sha1).digest()


def sign_twilio(auth_token: str, url: str, params: Mapping[str, str | list[str]] | None = None) -> str:
    """The ``X-Twilio-Signature`` value (base64 HMAC-SHA1) for a URL and POST parameters."""
    return base64.b64encode(_twilio_digest(auth_token, url, params)).decode("ascii")


_DEFAULT_PORTS = {"https": "443", "http": "80"}


def _twilio_urls(url: str) -> list[str]:
    """The URL as given plus the variant with the default port added or removed.

    Twilio sometimes signs ``https://host/...`` and sometimes ``https://host:443/...`` for
    the same endpoint, so both are tried. Only the scheme's default port (443/80) is
    added or removed: a non-default port names a different endpoint, so unlike
    twilio-python (which strips any port) we do not drop it.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.netloc:
        return [url]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: the port comes after the bracket
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
    else:
        host, sep, port_text = hostport.rpartition(":")
        if not sep:
            host, port = hostport, None
        else:
            port = port_text
    if port is None:
        new_hostport = f"{host}:{default}"
    elif port == default:
        new_hostport = host
    else:
        return [url]
    # Replace the authority in place rather than re-assembling the URL, which could
    # normalise the rest of it (an empty "?" or "#") and change the signed string.
    marker = "//" + parts.netloc
    return [url, url.replace(marker, "//" + userinfo + at + new_hostport, 1)]


def _twilio_form_params(request: InboundRequest) -> dict[str, list[str]]:
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("malformed_signature", "Twilio form body is not valid UTF-8 form data") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _verify_twilio(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Twilio: ``X-Twilio-Signature``, base64 HMAC-SHA1 of URL + sorted POST parameters.

    Twilio signs decoded form parameters, not the raw body, so the body is parsed as form
    data. JSON bodies are not form data: Twilio then puts ``bodySHA256=<hex sha256(body)>``
    in the URL (which is signed) and signs with no parameters; the hash must equal the
    SHA-256 of the exact raw body. A non-form body without ``bodySHA256`` is refused,
    since nothing would cover its bytes. There is no timestamp: replays are caught by
    deduplication on the message/call SID, not here.
    """
    header = _require(request, "X-Twilio-Signature")
    candidate = _digest_length(_b64decode(header, "X-Twilio-Signature"), 20, "X-Twilio-Signature")
    if not request.url:
        raise ValueError("Twilio verification needs the full public URL the provider called")

    body_hashes = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get("bodySHA256")
    params: Mapping[str, list[str]] | None
    if body_hashes is not None:
        if len(body_hashes) != 1:
            raise VerificationError("malformed_signature", "URL must carry exactly one bodySHA256")
        body_ok = hmac.compare_digest(
            hashlib.sha256(request.body).hexdigest().encode("ascii"), body_hashes[0].encode("utf-8")
        )
        params = None
    else:
        media_type = request.content_type.split(";", 1)[0].strip().lower()
        if request.body and media_type and media_type != "application/x-www-form-urlencoded":
            raise VerificationError(
                "malformed_signature", "Twilio request with a non-form body has no bodySHA256 in its URL"
            )
        body_ok = True
        params = _twilio_form_params(request)

    expected = [_twilio_digest(secret, url, params) for url in _twilio_urls(request.url)]
    signature_ok = _matches_any([candidate], expected)
    if not (signature_ok and body_ok):
        raise VerificationError("bad_signature", "X-Twilio-Signature or bodySHA256 does not match")


# --------------------------------------------------------------------------- SendGrid


@functools.lru_cache(maxsize=64)
def _sendgrid_public_key(secret: str) -> ec.EllipticCurvePublicKey:
    """Parse (once per key) the base64 DER SubjectPublicKeyInfo from SendGrid's settings."""
    if not secret:
        raise ValueError("SendGrid verification key is empty")
    try:
        key = serialization.load_der_public_key(base64.b64decode(secret.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("SendGrid verification key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("SendGrid verification key is not an ECDSA P-256 public key")
    return key


def sign_sendgrid(private_key: ec.EllipticCurvePrivateKey, timestamp: int, body: bytes) -> str:
    """The ``X-Twilio-Email-Event-Webhook-Signature`` value for a body (emulators, tests).

    SendGrid signs with its private key; we only ever hold our own test key pairs.
    """
    signature = private_key.sign(f"{timestamp}".encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


_SG_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
_SG_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def _verify_sendgrid(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """SendGrid Event Webhook: ECDSA P-256 / SHA-256 over ``{timestamp}{body}``.

    ``secret`` is the verification (public) key from Mail Settings. SendGrid's own helper
    checks no freshness at all, so a captured batch could be replayed forever; we add a
    window, 600 s by default: wider than the 300 s of the HMAC schemes because SendGrid
    batches events and retries for hours, and each retry is signed anew, so only clock
    skew and queueing have to fit in the window.
    """
    header = _require(request, _SG_SIGNATURE)
    ts_text = _require(request, _SG_TIMESTAMP)
    timestamp = _parse_timestamp(ts_text, _SG_TIMESTAMP)
    signature = _b64decode(header, _SG_SIGNATURE)
    key = _sendgrid_public_key(secret)
    try:
        key.verify(signature, ts_text.encode("ascii") + request.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("bad_signature", f"{_SG_SIGNATURE} does not verify") from None
    _check_fresh(timestamp, ctx, _SG_TIMESTAMP)


# --------------------------------------------------------------------------- body-only HMACs


def _body_hmac(secret: str, body: bytes) -> bytes:
    return _hmac_sha256(_utf8_secret(secret), body)


def sign_ubereats(secret: str, body: bytes) -> str:
    """The ``X-Uber-Signature`` value: lower-case hex HMAC-SHA256 of the body."""
    return _body_hmac(secret, body).hex()


def sign_hmac_base64(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the body: ``intuit-signature`` (QuickBooks), ``x-xero-signature``."""
    return base64.b64encode(_body_hmac(secret, body)).decode("ascii")


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=<hex>``."""
    return "sha256=" + _body_hmac(secret, body).hex()


def _verify_ubereats(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Uber Eats: ``X-Uber-Signature``, hex HMAC-SHA256 of the body with the client secret.

    Uber documents lower-case hex; upper-case is accepted too because the signature is
    compared as decoded digest bytes, and the letter case of an encoding carries no
    authentication (it cannot turn a wrong MAC into a right one). No timestamp is signed:
    replays are absorbed by deduplication on ``event_id``.
    """
    header = _require(request, "X-Uber-Signature")
    candidate = _digest_length(_hexdecode(header, "X-Uber-Signature"), 32, "X-Uber-Signature")
    if not hmac.compare_digest(candidate, _body_hmac(secret, request.body)):
        raise VerificationError("bad_signature", "X-Uber-Signature does not match")


def _verify_body_base64(header_name: str) -> Callable[[InboundRequest, str, _Context], None]:
    def verify_base64(request: InboundRequest, secret: str, ctx: _Context) -> None:
        header = _require(request, header_name)
        candidate = _digest_length(_b64decode(header, header_name), 32, header_name)
        if not hmac.compare_digest(candidate, _body_hmac(secret, request.body)):
            raise VerificationError("bad_signature", f"{header_name} does not match")

    return verify_base64


_verify_quickbooks_signature = _verify_body_base64("intuit-signature")
_verify_xero_signature = _verify_body_base64("x-xero-signature")


def _verify_quickbooks(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """QuickBooks Online: ``intuit-signature``, base64 HMAC-SHA256 of the body.

    The key is the app's *verifier token*, not its OAuth client secret. No timestamp:
    replays are absorbed by deduplication.
    """
    _verify_quickbooks_signature(request, secret, ctx)


def is_xero_intent_to_receive(body: bytes) -> bool:
    """True for Xero's intent-to-receive probe: a payload with an empty ``events`` list.

    Xero validates a new webhook by posting such probes, some correctly and some wrongly
    signed; it expects 200 with an empty body for the first and 401 for the second. The
    receiver answers a verified probe with an empty 200 and stores nothing.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("events") == []


def _verify_xero(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """Xero: ``x-xero-signature``, base64 HMAC-SHA256 of the body with the webhook key.

    A failed intent-to-receive probe is reported with reason ``handshake`` instead of
    ``bad_signature``/``malformed_signature``: Xero sends wrongly signed probes on purpose,
    so these are expected during set-up and must not look like an attack in the logs.
    The HTTP answer is the same 401.
    """
    try:
        _verify_xero_signature(request, secret, ctx)
    except VerificationError as exc:
        if exc.reason in ("bad_signature", "malformed_signature") and is_xero_intent_to_receive(request.body):
            raise VerificationError("handshake", "Xero intent-to-receive probe with a wrong signature") from None
        raise


def _verify_github(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` of the body. No timestamp."""
    header = _require(request, "X-Hub-Signature-256")
    if not header.startswith("sha256="):
        raise VerificationError("malformed_signature", "X-Hub-Signature-256 does not start with sha256=")
    candidate = _digest_length(_hexdecode(header[7:], "X-Hub-Signature-256"), 32, "X-Hub-Signature-256")
    if not hmac.compare_digest(candidate, _body_hmac(secret, request.body)):
        raise VerificationError("bad_signature", "X-Hub-Signature-256 does not match")


# --------------------------------------------------------------------------- static credentials


def _verify_static(request: InboundRequest, secret: str, ctx: _Context) -> None:
    """DoorDash and Procore do not sign: they send back a credential we configured.

    The header (``Authorization`` unless configured otherwise) must equal the configured
    value exactly. Both sides are hashed before `hmac.compare_digest` so that not even the
    credential's length leaks through timing. Nothing ties the credential to the body, so
    this only proves the sender knows it; replays are absorbed by deduplication.
    """
    name = ctx.header_name or "Authorization"
    secret_bytes = _utf8_secret(secret)
    value = request.headers.get(name.lower())
    if value is None or not value.strip():
        raise VerificationError("missing_signature", f"missing {name} header")
    # Exact match: no stripping, a credential with different whitespace is a different one.
    if not hmac.compare_digest(
        hashlib.sha256(value.encode("utf-8")).digest(), hashlib.sha256(secret_bytes).digest()
    ):
        raise VerificationError("bad_signature", f"{name} header does not match the configured credential")


# --------------------------------------------------------------------------- dispatch

_REGISTRY: Mapping[str, _Scheme] = MappingProxyType(
    {
        "standard": _Scheme(_verify_standard, default_tolerance_s=300),
        "stripe": _Scheme(_verify_stripe, default_tolerance_s=300),
        "slack": _Scheme(_verify_slack, default_tolerance_s=300),
        "twilio": _Scheme(_verify_twilio),
        "sendgrid": _Scheme(_verify_sendgrid, default_tolerance_s=600),
        "ubereats": _Scheme(_verify_ubereats),
        "quickbooks": _Scheme(_verify_quickbooks),
        "xero": _Scheme(_verify_xero),
        "github": _Scheme(_verify_github),
        "doordash": _Scheme(_verify_static, takes_header_name=True),
        "procore": _Scheme(_verify_static, takes_header_name=True),
    }
)

SCHEMES: frozenset[str] = frozenset(_REGISTRY)


def verify(
    scheme: str,
    request: InboundRequest,
    secret: str,
    *,
    now: float | None = None,
    tolerance_s: int | None = None,
    header_name: str | None = None,
) -> None:
    """Verify one delivery; return None if authentic (and fresh), else raise.

    ``tolerance_s`` is the freshness window of timestamped schemes; None uses the scheme's
    default (300 s for standard/stripe/slack, 600 s for sendgrid). Schemes without a signed
    timestamp ignore it. ``header_name`` names the credential header of the static
    schemes (doordash, procore; default ``Authorization``) and is refused elsewhere so a
    misconfiguration is not silently ignored. ``now`` exists for tests.

    Raises `VerificationError` for a request that must be refused (HTTP 401) and
    `ValueError` for a configuration problem (unknown scheme, empty or unusable secret).
    """
    entry = _REGISTRY.get(scheme)
    if entry is None:
        raise ValueError(f"unknown webhook verification scheme {scheme!r}; known: {', '.join(sorted(SCHEMES))}")
    if header_name is not None and not entry.takes_header_name:
        raise ValueError(f"scheme {scheme!r} does not take a header_name")
    if tolerance_s is None:
        tolerance_s = entry.default_tolerance_s or 0
    elif tolerance_s < 0:
        raise ValueError("tolerance_s must not be negative")
    ctx = _Context(now=time.time() if now is None else now, tolerance_s=tolerance_s, header_name=header_name)
    entry.verify(request, secret, ctx)
