"""An Uber Eats webhook: how it is verified (scheme `ubereats`, registered on the spec as
`inbound.verify`: ``X-Uber-Signature``, a hex HMAC-SHA256 of the body), and what it says
(shared/reference/providers.md 4.3): its event id, the order it concerns
(`meta.resource_id`), whether it announces a new order, and the order status a cancel or
failure means. The receiver calls them through the spec's `inbound.verify` and
`inbound.parse`; the rules every scheme follows are in hub/inbound/verify.py."""

from __future__ import annotations

import hmac
from typing import Any

from hub.inbound.events import InboundEventData, MalformedEvent, body_text
from hub.inbound.verify import (
    Context,
    InboundRequest,
    VerificationError,
    body_hmac,
    decode_hex,
    digest_length,
    require_header,
)

NEW_ORDER = ("orders.notification", "orders.scheduled.notification")


def parse(payload: Any, body: bytes) -> list[InboundEventData]:
    try:
        event_type, meta = str(payload["event_type"]), payload.get("meta") or {}
        event_id = str(payload["event_id"])
        order_id = meta.get("resource_id")
    except (KeyError, TypeError, AttributeError):
        raise MalformedEvent("Uber Eats event without event_id/event_type/meta") from None
    if event_type.startswith("orders.") and not order_id:
        raise MalformedEvent("Uber Eats order event without meta.resource_id")
    status = {"orders.cancel": "cancelled", "orders.failure": "cancelled"}.get(event_type)
    own = meta.get("status") if isinstance(meta, dict) else None  # Uber's own word, e.g. "pos"; else the event type
    own = own if isinstance(own, str) and own else event_type
    return [InboundEventData(event_id, event_type, payload, order_id, event_type in NEW_ORDER, status, body_text(body), own)]


def sign_ubereats(secret: str, body: bytes) -> str:
    """The ``X-Uber-Signature`` value: lower-case hex HMAC-SHA256 of the body."""
    return body_hmac(secret, body).hex()


def verify(request: InboundRequest, secret: str, ctx: Context) -> None:
    """Uber Eats: ``X-Uber-Signature``, hex HMAC-SHA256 of the body with the client secret.

    Uber documents lower-case hex; upper-case is accepted too because the signature is
    compared as decoded digest bytes, and the letter case of an encoding carries no
    authentication (it cannot turn a wrong MAC into a right one). No timestamp is signed:
    replays are absorbed by deduplication on ``event_id``.
    """
    header = require_header(request, "X-Uber-Signature")
    candidate = digest_length(decode_hex(header, "X-Uber-Signature"), 32, "X-Uber-Signature")
    if not hmac.compare_digest(candidate, body_hmac(secret, request.body)):
        raise VerificationError("bad_signature", "X-Uber-Signature does not match")
