"""What an Uber Eats webhook says (shared/reference/providers.md 4.3): its event id, the
order it concerns (`meta.resource_id`), whether it announces a new order, and the order
status a cancel or failure means. The receiver calls it through the spec's `inbound.parse`."""

from __future__ import annotations

from typing import Any

from hub.inbound.events import InboundEventData, MalformedEvent, body_text

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
    return [InboundEventData(event_id, event_type, payload, order_id, event_type in NEW_ORDER, status, body_text(body))]
