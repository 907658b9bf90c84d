"""How a Stripe webhook is verified (scheme `stripe`, registered on the spec as
`inbound.verify`): ``Stripe-Signature`` with an HMAC-SHA256 of ``{t}.{body}`` and a 300 s
freshness window. The rules every scheme follows are in hub/inbound/verify.py. What a
delivery must look like to be stored is `EventEnvelope` (the spec's `inbound.envelope`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from hub.inbound.verify import (
    HEX,
    Context,
    InboundRequest,
    VerificationError,
    check_fresh,
    hmac_sha256,
    matches_any,
    parse_timestamp,
    require_header,
    utf8_secret,
)

TOLERANCE_S = 300


class _EventData(BaseModel):
    object: dict[str, Any]


class EventEnvelope(BaseModel):
    """A Stripe event (https://docs.stripe.com/api/events/object): one object per delivery,
    whose `id` is the dedupe key. Only what the hub relies on is required; other fields pass."""

    id: str = Field(pattern=r"^evt_\w+$")
    type: str = Field(min_length=1)
    object: Literal["event"]
    data: _EventData


def check_envelope(payload: Any) -> None:
    """Raises pydantic's ValidationError (a ValueError) unless the payload is a Stripe event."""
    EventEnvelope.model_validate(payload)


def _digest(secret: str, timestamp: int | str, body: bytes) -> bytes:
    # Stripe's key is the whole `whsec_...` string as UTF-8, prefix included.
    return hmac_sha256(utf8_secret(secret), f"{timestamp}.".encode() + body)


def sign_stripe(secret: str, timestamp: int, body: bytes) -> str:
    """The full ``Stripe-Signature`` header value: ``t=<ts>,v1=<hex>``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body).hex()}"


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """Stripe: ``Stripe-Signature: t=..,v1=..[,v1=..]``, HMAC-SHA256 hex of ``{t}.{body}``.

    Several ``v1`` entries appear while a secret is being rolled; any match is enough.
    ``v0`` (test-mode legacy) and unknown entries are ignored. Stripe's own library only
    refuses timestamps that are too old; we also refuse ones more than the tolerance in
    the future, as every other timestamped scheme here does (a future timestamp is a bad
    clock or a pre-signed request), and Stripe's servers sign with their current time.
    """
    header = require_header(request, "Stripe-Signature")
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            timestamps.append(value)
        elif name == "v1" and len(value) == 64 and HEX.fullmatch(value):
            candidates.append(bytes.fromhex(value))
    if len(timestamps) != 1:
        raise VerificationError("malformed_signature", "Stripe-Signature must carry exactly one t= entry")
    timestamp = parse_timestamp(timestamps[0], "Stripe-Signature t=")
    if not candidates:
        raise VerificationError("malformed_signature", "Stripe-Signature has no valid v1 entry")
    expected = _digest(secret, timestamps[0], request.body)
    if not matches_any(candidates, [expected]):
        raise VerificationError("bad_signature", "no v1 entry of Stripe-Signature matches")
    check_fresh(timestamp, ctx, "Stripe-Signature t=")
