"""What a DoorDash webhook says (shared/reference/providers.md 4.1; webhooks.md "Provider
delivery behaviour"): the order it concerns, whether it creates it, the order status it
means, and an event id DoorDash does not send. The receiver calls it through the spec's
`inbound.parse`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hub.inbound.events import InboundEventData, MalformedEvent, body_text

# DoorDash Marketplace order events, and Drive's delivery events, to our order statuses
STATUS = {
    "OrderCancel": "cancelled",
    "DASHER_CONFIRMED_PICKUP_ARRIVAL": "ready",
    "DASHER_PICKED_UP": "picked_up",
    "DASHER_DROPPED_OFF": "delivered",
    "DELIVERY_CANCELLED": "cancelled",
}


def parse(payload: Any, body: bytes) -> list[InboundEventData]:
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
    # the provider's own word for the order's state: Marketplace events carry one
    # (`event.status`, "NEW"); Drive's event names are the delivery state itself
    own = event.get("status") if isinstance(event, dict) else None
    return [InboundEventData(event_id, str(event_type), payload, str(order_id), event_type == "OrderCreate",
                             STATUS.get(event_type), body_text(body), _text(own) or str(event_type))]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
