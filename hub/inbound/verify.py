"""Signature verification of inbound provider webhooks: what every scheme shares, and the
dispatch to each one.

Every provider proves a delivery came from it in its own way (see
`shared/reference/webhooks.md` section (c)); each way is one function with one contract:
return ``None`` for an authentic, fresh request, raise `VerificationError` with a
machine-friendly ``reason`` otherwise. The receiver maps every reason to HTTP 401 (Xero's
intent-to-receive requires exactly that) and logs the reason. A provider's own verifier
lives in its folder (hub/providers/<name>/inbound.py) and is registered on its spec
(`InboundWebhook.verify`, with the scheme's freshness window and whether it takes a header
name or signs the URL); `verify` dispatches by scheme through a table built once from the
registry. What stays here is shared: the request and error types, the decoding, MAC and
freshness helpers, the verifiers several providers use (a body HMAC in a base64 header, a
static credential in a header), and the built-in schemes any sender may use (Standard
Webhooks, which the `custom` provider declares for a company's own systems; GitHub).

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

Signing helpers (`sign_standard`, `sign_hmac_base64`, and each provider's own beside its
verifier) share the MAC code with the verifiers, so the emulators and tests sign exactly
what the verifiers check.

Nothing here imports Dagster or the database: the receiver calls `verify` in the request
path and it must stay cheap and dependency-free.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from hub.providers import registry

__all__ = [
    "DEFAULT_STATIC_HEADER",
    "HEX",
    "REASONS",
    "Context",
    "InboundRequest",
    "VerificationError",
    "Verifier",
    "body_hmac",
    "check_fresh",
    "decode_base64",
    "decode_hex",
    "digest_length",
    "generate_standard_secret",
    "hmac_sha256",
    "matches_any",
    "parse_timestamp",
    "require_header",
    "schemes",
    "sign_github",
    "sign_hmac_base64",
    "sign_standard",
    "signs_url",
    "standard_message_id",
    "utf8_secret",
    "verify",
    "verify_body_base64",
    "verify_standard",
    "verify_static_credential",
]

REASONS = frozenset({"missing_signature", "bad_signature", "stale_timestamp", "malformed_signature", "handshake"})

# Only ASCII digits: `str.isdigit` would also accept e.g. Arabic-Indic digits, and `int()`
# accepts signs, underscores and surrounding spaces. Fifteen digits is far past year 9999.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
HEX = re.compile(r"[0-9a-fA-F]+")
DEFAULT_STATIC_HEADER = "Authorization"  # where a static credential is sent unless an endpoint names another header

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
class Context:
    """What a verifier is told besides the request and the secret: the time, the freshness
    window of its timestamp (if it signs one) and the header a static credential comes in
    (if the endpoint names one)."""

    now: float
    tolerance_s: int
    header_name: str | None


Verifier = Callable[[InboundRequest, str, Context], None]
# what `verify` takes: one secret, or the secrets accepted at once during a rotation's grace
# period (the schemes that take several, Standard Webhooks, are marked on their `_Scheme`)
Secrets = str | Sequence[str]


@dataclass(frozen=True)
class _Scheme:
    verify: Verifier
    # Freshness window used when the caller passes no tolerance; None: no timestamp signed.
    default_tolerance_s: int | None = None
    # Whether `header_name` means anything for this scheme (static credentials only).
    takes_header_name: bool = False
    # Whether the signature covers the URL called (only then does the receiver rebuild it).
    signs_url: bool = False
    # Whether the verifier takes several secrets at once (a rotation's grace period).
    takes_several_secrets: bool = False


# --------------------------------------------------------------------------- helpers


def require_header(request: InboundRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise VerificationError("missing_signature", f"missing {name} header")
    return value


def parse_timestamp(value: str, what: str) -> int:
    if not _TIMESTAMP.fullmatch(value):
        raise VerificationError("malformed_signature", f"{what} is not a Unix timestamp in seconds")
    return int(value)


def check_fresh(timestamp: int, ctx: Context, what: str) -> None:
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


def decode_base64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VerificationError("malformed_signature", f"{what} is not valid base64") from None


def decode_hex(value: str, what: str) -> bytes:
    if not HEX.fullmatch(value) or len(value) % 2:
        raise VerificationError("malformed_signature", f"{what} is not valid hex")
    return bytes.fromhex(value)


def digest_length(digest: bytes, expected: int, what: str) -> bytes:
    if len(digest) != expected:
        raise VerificationError("malformed_signature", f"{what} has the wrong length for its algorithm")
    return digest


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def utf8_secret(secret: str) -> bytes:
    if not secret:
        raise ValueError("webhook secret is empty")
    return secret.encode("utf-8")


def matches_any(candidates: list[bytes], expected: list[bytes]) -> bool:
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
    return hmac_sha256(_standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body)


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` entry (``v1,<base64>``) for one message."""
    return "v1," + base64.b64encode(_standard_digest(secret, msg_id, timestamp, body)).decode("ascii")


def generate_standard_secret() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes (192 bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _standard_prefix(request: InboundRequest) -> str:
    """``webhook-`` headers, or the older ``svix-`` ones when no ``webhook-signature`` came."""
    return "webhook-" if request.header("webhook-signature") is not None else "svix-"


def standard_message_id(request: InboundRequest) -> str | None:
    """The delivery's message id (``webhook-id``, or ``svix-id``): the same on every retry of
    one message, so it is the dedupe key of the event it carries (the signature covers it)."""
    return request.header(_standard_prefix(request) + "id")


def verify_standard(request: InboundRequest, secret: Secrets, ctx: Context) -> None:
    """Standard Webhooks / Svix: HMAC-SHA256 of ``{id}.{timestamp}.{body}``.

    The ``webhook-*`` headers are read, or the ``svix-*`` ones when no
    ``webhook-signature`` is present (Svix sends the older names). The signature header is
    a space-separated list so a sender can sign with the old and the new secret during a
    rotation; any ``v1`` entry that matches is enough, other versions are ignored.
    `secret` may also be several secrets (the receiving side of a rotation: the new one and,
    during its grace period, the old one): an entry matching any of them is enough, so a
    sender that still signs with the old secret only, or already with the new one only, or
    with both, is accepted until the grace period ends.
    """
    prefix = _standard_prefix(request)
    msg_id = require_header(request, prefix + "id")
    ts_text = require_header(request, prefix + "timestamp")
    sig_header = require_header(request, prefix + "signature")
    timestamp = parse_timestamp(ts_text, prefix + "timestamp")
    keys = [_standard_key(s) for s in ([secret] if isinstance(secret, str) else secret)]
    if not keys:
        raise ValueError("no Standard Webhooks secret to verify with")

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
    signed = f"{msg_id}.{ts_text}.".encode() + request.body
    if not matches_any(candidates, [hmac_sha256(key, signed) for key in keys]):
        raise VerificationError("bad_signature", f"no v1 entry of {prefix}signature matches")
    check_fresh(timestamp, ctx, prefix + "timestamp")


# --------------------------------------------------------------------------- body-only HMACs


def body_hmac(secret: str, body: bytes) -> bytes:
    return hmac_sha256(utf8_secret(secret), body)


def sign_hmac_base64(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the body: ``intuit-signature`` (QuickBooks), ``x-xero-signature``."""
    return base64.b64encode(body_hmac(secret, body)).decode("ascii")


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=<hex>``."""
    return "sha256=" + body_hmac(secret, body).hex()


def verify_body_base64(header_name: str) -> Verifier:
    """A verifier of a base64 HMAC-SHA256 of the body in `header_name`, with no timestamp
    (QuickBooks' ``intuit-signature``, Xero's ``x-xero-signature``)."""

    def verify_base64(request: InboundRequest, secret: str, ctx: Context) -> None:
        header = require_header(request, header_name)
        candidate = digest_length(decode_base64(header, header_name), 32, header_name)
        if not hmac.compare_digest(candidate, body_hmac(secret, request.body)):
            raise VerificationError("bad_signature", f"{header_name} does not match")

    return verify_base64


# --------------------------------------------------------------------------- GitHub


def _verify_github(request: InboundRequest, secret: str, ctx: Context) -> None:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` of the body. No timestamp."""
    header = require_header(request, "X-Hub-Signature-256")
    if not header.startswith("sha256="):
        raise VerificationError("malformed_signature", "X-Hub-Signature-256 does not start with sha256=")
    candidate = digest_length(decode_hex(header[7:], "X-Hub-Signature-256"), 32, "X-Hub-Signature-256")
    if not hmac.compare_digest(candidate, body_hmac(secret, request.body)):
        raise VerificationError("bad_signature", "X-Hub-Signature-256 does not match")


# --------------------------------------------------------------------------- static credentials


def verify_static_credential(request: InboundRequest, secret: str, ctx: Context) -> None:
    """For providers that do not sign but send back a credential we configured (DoorDash,
    Procore: their spec's `inbound.static_header`).

    The header (``Authorization`` unless configured otherwise) must equal the configured
    value exactly. Both sides are hashed before `hmac.compare_digest` so that not even the
    credential's length leaks through timing. Nothing ties the credential to the body, so
    this only proves the sender knows it; replays are absorbed by deduplication.
    """
    name = ctx.header_name or DEFAULT_STATIC_HEADER
    secret_bytes = utf8_secret(secret)
    value = request.headers.get(name.lower())
    if value is None or not value.strip():
        raise VerificationError("missing_signature", f"missing {name} header")
    # Exact match: no stripping, a credential with different whitespace is a different one.
    if not hmac.compare_digest(
        hashlib.sha256(value.encode("utf-8")).digest(), hashlib.sha256(secret_bytes).digest()
    ):
        raise VerificationError("bad_signature", f"{name} header does not match the configured credential")


# --------------------------------------------------------------------------- dispatch

# the built-in schemes: any sender may use them; a provider may declare one as it is (custom)
_BUILT_IN: Mapping[str, _Scheme] = MappingProxyType(
    {
        "standard": _Scheme(verify_standard, default_tolerance_s=300, takes_several_secrets=True),
        "github": _Scheme(_verify_github),
    }
)


@functools.cache
def _schemes() -> Mapping[str, _Scheme]:
    """Every scheme by name: the built-in ones and each provider's (its spec's `inbound`).
    Built on first use, once: the receiver looks a scheme up per request, and the provider
    packages, whose verifiers use this module's helpers, cannot be walked while it loads."""
    table = dict(_BUILT_IN)
    for spec in registry.providers().values():
        inbound = spec.inbound
        if inbound is not None and inbound.scheme in _BUILT_IN:
            # a provider using a built-in scheme as it is (the `custom` source: Standard Webhooks)
            built_in = _BUILT_IN[inbound.scheme]
            assert inbound.verify is built_in.verify, f"{spec.name}: scheme {inbound.scheme!r} is built in, with its own verifier"
            assert inbound.tolerance_s in (None, built_in.default_tolerance_s), f"{spec.name}: {inbound.scheme!r} has its own window"
        elif inbound is not None:
            assert inbound.scheme not in table, f"{spec.name}: scheme {inbound.scheme!r} is already taken"
            table[inbound.scheme] = _Scheme(inbound.verify, default_tolerance_s=inbound.tolerance_s,
                                            takes_header_name=inbound.static_header, signs_url=inbound.signs_url)
    return MappingProxyType(table)


def schemes() -> frozenset[str]:
    """The names `verify` accepts."""
    return frozenset(_schemes())


def signs_url(scheme: str) -> bool:
    """Whether the scheme's signature covers the URL called (Twilio's): only then must the
    receiver rebuild the public URL for the verifier. False for an unknown scheme, which
    `verify` refuses."""
    entry = _schemes().get(scheme)
    return entry is not None and entry.signs_url


def verify(
    scheme: str,
    request: InboundRequest,
    secret: Secrets,
    *,
    now: float | None = None,
    tolerance_s: int | None = None,
    header_name: str | None = None,
) -> None:
    """Verify one delivery; return None if authentic (and fresh), else raise.

    ``tolerance_s`` is the freshness window of timestamped schemes; None uses the scheme's
    default (300 s for standard, a provider's from its spec: 300 s for stripe and slack,
    600 s for sendgrid). Schemes without a signed timestamp ignore it. ``header_name``
    names the credential header of the static schemes (doordash, procore; default
    ``Authorization``) and is refused elsewhere so a misconfiguration is not silently
    ignored. ``now`` exists for tests.

    ``secret`` is one secret, or a sequence of the secrets accepted at once (a rotation's
    grace period) for the schemes that take several (Standard Webhooks); a sequence of one
    is that one secret for any scheme.

    Raises `VerificationError` for a request that must be refused (HTTP 401) and
    `ValueError` for a configuration problem (unknown scheme, empty or unusable secret,
    several secrets for a scheme that takes one).
    """
    entry = _schemes().get(scheme)
    if entry is None:
        raise ValueError(f"unknown webhook verification scheme {scheme!r}; known: {', '.join(sorted(_schemes()))}")
    if header_name is not None and not entry.takes_header_name:
        raise ValueError(f"scheme {scheme!r} does not take a header_name")
    if tolerance_s is None:
        tolerance_s = entry.default_tolerance_s or 0
    elif tolerance_s < 0:
        raise ValueError("tolerance_s must not be negative")
    if not isinstance(secret, str) and not entry.takes_several_secrets:
        if len(secret) != 1:
            raise ValueError(f"scheme {scheme!r} takes one secret, not {len(secret)}")
        secret = secret[0]
    ctx = Context(now=time.time() if now is None else now, tolerance_s=tolerance_s, header_name=header_name)
    entry.verify(request, secret, ctx)
