"""SendGrid's event webhook: how it is verified (scheme `sendgrid`, registered on the spec as
`inbound.verify`: an ECDSA signature over ``{timestamp}{body}``, 600 s freshness window),
and what an event says about a message the hub sent (shared/reference/providers.md 5.2):
its delivery status, read by hub/notify/status.py through the spec's
`inbound.delivery_status`, and what a delivery must look like to be stored (`check_envelope`,
the spec's `inbound.envelope`). The rules every scheme follows are in hub/inbound/verify.py."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, Field, TypeAdapter

from hub.inbound.verify import (
    Context,
    InboundRequest,
    VerificationError,
    check_fresh,
    decode_base64,
    parse_timestamp,
    require_header,
)
from hub.notify.status_report import StatusReport

# SendGrid's delivery events -> our message statuses (engagement events keep None: history only)
STATUS = {"processed": "processed", "deferred": "deferred", "delivered": "delivered", "bounce": "bounced", "dropped": "dropped"}


class _Event(BaseModel):
    event: str = Field(min_length=1)
    sg_event_id: str = Field(min_length=1)


# SendGrid posts a JSON array of events (every one with its type and its id, the dedupe key)
_ENVELOPE = TypeAdapter(list[_Event])


def check_envelope(payload: Any) -> None:
    """Raises pydantic's ValidationError (a ValueError) unless the payload is an array of events."""
    _ENVELOPE.validate_python(payload)


def delivery_status(payload: Any) -> StatusReport | None:
    """The report of one event, or None when it is not one. `sg_message_id` starts with the
    send's X-Message-Id, shared by every recipient of the send."""
    if not isinstance(payload, dict) or not payload.get("event"):
        return None
    event = str(payload["event"])
    detail = None
    if event == "bounce":
        kind = payload.get("type") or "bounce"
        detail = f"{kind}: {payload.get('status') or ''} {payload.get('reason') or ''}".strip()
    elif event in ("dropped", "deferred"):
        detail = str(payload.get("reason") or payload.get("response") or "") or None
    sg_id = str(payload.get("sg_message_id") or "")
    at = payload.get("timestamp")
    return StatusReport(STATUS.get(event), event, str(payload.get("email") or "").lower() or None,
                        sg_id.split(".", 1)[0] or None,
                        str(payload["hub_message_id"]) if payload.get("hub_message_id") else None, detail and detail[:500],
                        dt.datetime.fromtimestamp(at, dt.timezone.utc) if isinstance(at, (int, float)) else None,
                        id_covers_recipients=True)


# ---- verification ----------------------------------------------------------------------------

TOLERANCE_S = 600  # wider than the HMAC schemes' 300 s: see `verify`


@functools.lru_cache(maxsize=64)
def _public_key(secret: str) -> ec.EllipticCurvePublicKey:
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


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """SendGrid Event Webhook: ECDSA P-256 / SHA-256 over ``{timestamp}{body}``.

    ``secret`` is the verification (public) key from Mail Settings. SendGrid's own helper
    checks no freshness at all, so a captured batch could be replayed forever; we add a
    window, 600 s by default: wider than the 300 s of the HMAC schemes because SendGrid
    batches events and retries for hours, and each retry is signed anew, so only clock
    skew and queueing have to fit in the window.
    """
    header = require_header(request, _SG_SIGNATURE)
    ts_text = require_header(request, _SG_TIMESTAMP)
    timestamp = parse_timestamp(ts_text, _SG_TIMESTAMP)
    signature = decode_base64(header, _SG_SIGNATURE)
    key = _public_key(secret)
    try:
        key.verify(signature, ts_text.encode("ascii") + request.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("bad_signature", f"{_SG_SIGNATURE} does not verify") from None
    check_fresh(timestamp, ctx, _SG_TIMESTAMP)
