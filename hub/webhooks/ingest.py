"""Storing verified inbound events: dedupe on the provider's event id, orders into
`external_order`, inside the caller's transaction (the receiver's group commit).

Dedupe is the unique index `inbound_event (integration_id, event_id)` with
`ON CONFLICT DO NOTHING`, never check-then-insert: fifty concurrent deliveries of one event
make one row, and several receiver replicas need no coordination. A new order is also a
row in `external_order` (unique `(integration_id, external_id)`), which is the work item
the order sensor picks up; status events stay in `inbound_event` (`processed_at` NULL)
until the order job applies them.

The statements of a whole batch are pipelined (`executemany` with `returning`), so a batch
costs a few round trips, not two per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from hub.orders.events import InboundEventData

_EVENT_SQL = """
INSERT INTO inbound_event (integration_id, provider, event_id, event_type, payload, processed_at)
VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)
ON CONFLICT (integration_id, event_id) DO NOTHING
RETURNING id
"""
_ORDER_SQL = """
INSERT INTO external_order (integration_id, external_id, raw_data, status, status_history)
VALUES (%s, %s, %s, 'received', jsonb_build_array(jsonb_build_object(
    'status', 'received', 'applied', true, 'why', 'webhook', 'source', %s::text, 'at', now())))
ON CONFLICT (integration_id, external_id) DO NOTHING
RETURNING id
"""


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    orders: int = 0


@dataclass(frozen=True)
class Delivery:
    """The events of one verified request, for one integration."""

    integration_id: int
    provider: str
    events: list[InboundEventData]


def store_batch(conn: psycopg.Connection, batch: list[Delivery]) -> list[IngestResult]:
    """Store every delivery of `batch` in the caller's transaction; one result per delivery."""
    flat = [(index, event) for index, delivery in enumerate(batch) for event in delivery.events]
    results = [IngestResult() for _ in batch]
    with conn.cursor() as cur:
        cur.executemany(
            _EVENT_SQL,
            [(batch[i].integration_id, batch[i].provider, e.event_id, e.event_type, Jsonb(e.payload), e.creates_order) for i, e in flat],
            returning=True,
        )
        stored = []
        for index, event in flat:
            if cur.fetchone() is None:
                results[index].duplicates += 1
            else:
                results[index].stored += 1
                stored.append((index, event))
            cur.nextset()
        orders = [(i, e) for i, e in stored if e.creates_order and e.order_id]
        if orders:
            cur.executemany(
                _ORDER_SQL,
                [(batch[i].integration_id, e.order_id, Jsonb(e.payload), e.event_type) for i, e in orders],
                returning=True,
            )
            for index, _ in orders:
                results[index].orders += cur.fetchone() is not None
                cur.nextset()
    return results
