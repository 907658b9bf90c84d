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

import json
from dataclasses import dataclass
from typing import Generator

import psycopg

from hub.orders.events import InboundEventData

_EVENT_SQL = """
INSERT INTO inbound_event (integration_id, provider, event_id, event_type, payload, processed_at)
VALUES (%s, %s, %s, %s, %s::jsonb, CASE WHEN %s THEN now() END)
ON CONFLICT (integration_id, event_id) DO NOTHING
RETURNING id
"""
_ORDER_SQL = """
INSERT INTO external_order (integration_id, external_id, raw_data, status, status_history)
VALUES (%s, %s, %s::jsonb, 'received', jsonb_build_array(jsonb_build_object(
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


def _json(event: InboundEventData) -> str:
    """The event's JSON text: as received when the parser kept it, else serialized."""
    return event.raw if event.raw is not None else json.dumps(event.payload)


def _plan(batch: list[Delivery]) -> Generator[tuple[str, list[tuple]], list[bool], list[IngestResult]]:
    """What storing `batch` takes, as a conversation with a driver: yields (statement, rows)
    and is sent back, per row, whether it inserted a new row. One place for the logic; the
    drivers (`store_batch`, `store_batch_async`) only run the statements."""
    flat = [(index, event) for index, delivery in enumerate(batch) for event in delivery.events]
    results = [IngestResult() for _ in batch]
    inserted = yield _EVENT_SQL, [
        (batch[i].integration_id, batch[i].provider, e.event_id, e.event_type, _json(e), e.creates_order) for i, e in flat]
    stored = []
    for (index, event), new in zip(flat, inserted):
        if new:
            results[index].stored += 1
            stored.append((index, event))
        else:
            results[index].duplicates += 1
    orders = [(i, e) for i, e in stored if e.creates_order and e.order_id]
    if orders:
        inserted = yield _ORDER_SQL, [(batch[i].integration_id, e.order_id, _json(e), e.event_type) for i, e in orders]
        for (index, _), new in zip(orders, inserted):
            results[index].orders += new
    return results


def store_batch(conn: psycopg.Connection, batch: list[Delivery]) -> list[IngestResult]:
    """Store every delivery of `batch` in the caller's transaction; one result per delivery."""
    plan = _plan(batch)
    try:
        statement, rows = next(plan)
        with conn.cursor() as cur:
            while True:
                cur.executemany(statement, rows, returning=True)
                inserted = []
                for _ in rows:
                    inserted.append(cur.fetchone() is not None)
                    cur.nextset()
                statement, rows = plan.send(inserted)
    except StopIteration as done:
        return done.value


async def store_batch_async(conn: psycopg.AsyncConnection, batch: list[Delivery]) -> list[IngestResult]:
    """`store_batch` on an asyncio connection (the receiver's group-commit writers)."""
    plan = _plan(batch)
    try:
        statement, rows = next(plan)
        async with conn.cursor() as cur:
            while True:
                await cur.executemany(statement, rows, returning=True)
                inserted = []
                for _ in rows:
                    inserted.append(await cur.fetchone() is not None)
                    cur.nextset()
                statement, rows = plan.send(inserted)
    except StopIteration as done:
        return done.value
