"""Storing verified inbound events: dedupe on the provider's event id, orders into
`external_order`, all in one transaction before the 2xx.

Dedupe is the unique index `inbound_event (integration_id, event_id)` with
`ON CONFLICT DO NOTHING`, never check-then-insert: fifty concurrent deliveries of one event
make one row, and several receiver replicas need no coordination. A new order is also a
row in `external_order` (unique `(integration_id, external_id)`), which is the work item
the order sensor picks up; status events stay in `inbound_event` (`processed_at` NULL)
until the order job applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.orders.events import InboundEventData
from hub.schema import external_order, inbound_event


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    orders: int = 0


def store_events(conn: Connection, integration_id: int, provider: str, events: list[InboundEventData]) -> IngestResult:
    result = IngestResult()
    now = datetime.now(timezone.utc)
    for event in events:
        new_id = conn.execute(
            insert(inbound_event)
            .values(
                integration_id=integration_id,
                provider=provider,
                event_id=event.event_id,
                event_type=event.event_type,
                payload=event.payload,
                processed_at=now if event.creates_order else None,
            )
            .on_conflict_do_nothing(index_elements=["integration_id", "event_id"])
            .returning(inbound_event.c.id)
        ).scalar()
        if new_id is None:
            result.duplicates += 1
            continue
        result.stored += 1
        if event.creates_order and event.order_id:
            history = [{"status": "received", "applied": True, "why": "webhook", "source": event.event_type, "at": now.isoformat()}]
            created = conn.execute(
                insert(external_order)
                .values(integration_id=integration_id, external_id=event.order_id, raw_data=event.payload, status="received", status_history=history)
                .on_conflict_do_nothing(index_elements=["integration_id", "external_id"])
                .returning(external_order.c.id)
            ).scalar()
            result.orders += created is not None
    return result
