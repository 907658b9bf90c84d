"""A Xero webhook beyond its events: how it is verified (scheme `xero`, registered on the spec
as `inbound.verify`: ``x-xero-signature``, a base64 HMAC-SHA256 of the body with the webhook
key), and whether it is Xero's intent-to-receive probe.

Xero validates a new webhook by posting batches with an empty ``events`` list, some correctly
and some wrongly signed; it expects 200 with an empty body for the first and 401 for the
second. The receiver (hub/web/receiver.py, through the spec's `inbound.handshake`)
answers a verified probe with an empty 200 and stores nothing; `verify` reports a wrongly
signed one as a ``handshake``. The rules every scheme follows are in hub/inbound/verify.py."""

from __future__ import annotations

import json
from typing import Any

from hub.inbound.verify import Context, InboundRequest, VerificationError, verify_body_base64

_verify_signature = verify_body_base64("x-xero-signature")


def handshake(payload: Any) -> bytes | None:
    """The empty body answering a (verified) batch without events, the intent-to-receive
    probe; None for a batch with events."""
    return b"" if isinstance(payload, dict) and not payload.get("events") else None


def is_xero_intent_to_receive(body: bytes) -> bool:
    """True for Xero's intent-to-receive probe: a body whose ``events`` list is empty (read
    from the raw bytes, before anything is verified or parsed)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("events") == []


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """Xero: ``x-xero-signature``, base64 HMAC-SHA256 of the body with the webhook key
    (signed with `hub.inbound.verify.sign_hmac_base64`).

    A failed intent-to-receive probe is reported with reason ``handshake`` instead of
    ``bad_signature``/``malformed_signature``: Xero sends wrongly signed probes on purpose,
    so these are expected during set-up and must not look like an attack in the logs.
    The HTTP answer is the same 401.
    """
    try:
        _verify_signature(request, secret, ctx)
    except VerificationError as exc:
        if exc.reason in ("bad_signature", "malformed_signature") and is_xero_intent_to_receive(request.body):
            raise VerificationError("handshake", "Xero intent-to-receive probe with a wrong signature") from None
        raise
