"""What an inbound webhook says, per provider: its event id (the dedupe key), and for
delivery marketplaces which order it concerns and what it means for the order's status.

Payload shapes follow shared/reference/providers.md (4.1 DoorDash, 4.3 Uber Eats) and
webhooks.md ("Provider delivery behaviour"). A provider without a parser here still gets
its events stored and deduplicated: the fallback uses the usual id fields, else a hash of
the body (a retried delivery has the same body).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class InboundEventData:
    event_id: str
    event_type: str
    payload: Any
    order_id: str | None = None  # the provider's order id, for delivery events
    creates_order: bool = False
    order_status: str | None = None  # our status the event reports (state machine input)
    # the payload's JSON text as received, when the event is the whole body: stored as is,
    # which spares serializing the parsed payload again (CPU on the receiver's hot path)
    raw: str | None = None


def _body_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:  # valid JSON in another encoding: stored re-serialized
        return None


class MalformedEvent(ValueError):
    """The body is JSON but not the provider's event shape."""


UBER_NEW_ORDER = ("orders.notification", "orders.scheduled.notification")


def _uber(payload: Any, body: bytes) -> list[InboundEventData]:
    try:
        event_type, meta = str(payload["event_type"]), payload.get("meta") or {}
        event_id = str(payload["event_id"])
        order_id = meta.get("resource_id")
    except (KeyError, TypeError, AttributeError):
        raise MalformedEvent("Uber Eats event without event_id/event_type/meta") from None
    if event_type.startswith("orders.") and not order_id:
        raise MalformedEvent("Uber Eats order event without meta.resource_id")
    status = {"orders.cancel": "cancelled", "orders.failure": "cancelled"}.get(event_type)
    return [InboundEventData(event_id, event_type, payload, order_id, event_type in UBER_NEW_ORDER, status, _body_text(body))]


# DoorDash Marketplace order events, and Drive's delivery events, to our order statuses
_DOORDASH_STATUS = {
    "OrderCancel": "cancelled",
    "DASHER_CONFIRMED_PICKUP_ARRIVAL": "ready",
    "DASHER_PICKED_UP": "picked_up",
    "DASHER_DROPPED_OFF": "delivered",
    "DELIVERY_CANCELLED": "cancelled",
}


def _doordash(payload: Any, body: bytes) -> list[InboundEventData]:
    try:
        event = payload.get("event") or {}
        event_type = event.get("type") or payload.get("event_name")
        order = payload.get("order") or {}
        order_id = order.get("id") or payload.get("external_delivery_id")
    except AttributeError:
        raise MalformedEvent("DoorDash event is not an object") from None
    if not event_type or not order_id:
        raise MalformedEvent("DoorDash event without type or order id")
    # DoorDash sends no event id. An order is created and cancelled once, so type and order
    # name those; anything else (adjustments, delivery updates) may come several times per
    # order, so its exact content names it (a retry resends the same content).
    if event_type in ("OrderCreate", "OrderCancel"):
        event_id = f"{event_type}:{order_id}"
    else:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
        event_id = f"{event_type}:{order_id}:{digest}"
    return [InboundEventData(event_id, str(event_type), payload, str(order_id), event_type == "OrderCreate",
                             _DOORDASH_STATUS.get(event_type), _body_text(body))]


_ID_FIELDS = ("event_id", "id", "sg_event_id", "eventId", "MessageSid", "resourceId")


def _generic(payload: Any, body: bytes) -> list[InboundEventData]:
    items = payload if isinstance(payload, list) else [payload]  # SendGrid posts an array
    events = []
    for item in items:
        found = next((str(item[k]) for k in _ID_FIELDS if isinstance(item, dict) and item.get(k)), None)
        if isinstance(item, dict) and item.get("MessageSid") and item.get("MessageStatus"):
            found = f"{item['MessageSid']}:{item['MessageStatus']}"  # Twilio: one callback per status
        event_id = found or "sha256:" + hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        event_type = str(item.get("type") or item.get("event") or item.get("event_type") or "event") if isinstance(item, dict) else "event"
        events.append(InboundEventData(event_id, event_type, item))
    return events


PARSERS: dict[str, Callable[[Any, bytes], list[InboundEventData]]] = {"ubereats": _uber, "doordash": _doordash}


def parse(provider: str, payload: Any, body: bytes) -> list[InboundEventData]:
    return PARSERS.get(provider, _generic)(payload, body)
