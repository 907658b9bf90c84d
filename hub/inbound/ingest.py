"""Storing verified inbound events: dedupe on the provider's event id, orders into
`external_order`, in ONE statement per batch (the receiver's group commit).

Dedupe is the unique index `inbound_event (integration_id, event_id)` with
`ON CONFLICT DO NOTHING`, never check-then-insert: fifty concurrent deliveries of one event
make one row, and several receiver replicas need no coordination. A new order is also a
row in `external_order` (unique `(integration_id, external_id)`), which is the work item
the order sensor picks up, with `received_at` the moment its webhook was stored (the same as
its event's); status events stay in `inbound_event` (`processed_at` NULL)
until the order job applies them.

A whole batch is one statement: the events go in as arrays (`unnest`), the order rows are
inserted by a second data-modifying CTE from the events the first one actually stored, and
the statement returns the keys it inserted. One round trip, one Bind/Execute, whatever the
batch size (binary parameters: text arrays of JSON bodies cost ten times as much CPU to
quote); on an autocommit connection the statement is its own transaction, and the
driver returns only after the server's ReadyForQuery, i.e. after the commit. Rows are
inserted in key order so that two writers never take the unique-index locks of the same
events in opposite orders (no deadlock between concurrent batches).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from hub.inbound.events import InboundEventData

_BATCH_SQL = """
WITH input AS MATERIALIZED (  -- each body parsed into jsonb once, for both tables
    SELECT integration_id, provider, event_id, event_type, payload::jsonb AS payload, creates_order, order_id, raw_body, ord
    FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bool[], %b::text[], %b::bytea[])
        WITH ORDINALITY AS t(integration_id, provider, event_id, event_type, payload, creates_order, order_id, raw_body, ord)
), event AS (
    INSERT INTO inbound_event (integration_id, provider, event_id, event_type, payload, raw_body, processed_at)
    SELECT integration_id, provider, event_id, event_type, payload, raw_body, CASE WHEN creates_order THEN now() END
    FROM input ORDER BY integration_id, event_id
    ON CONFLICT (integration_id, event_id) DO NOTHING
    RETURNING integration_id, event_id, received_at
), new_order AS (
    INSERT INTO external_order (integration_id, external_id, raw_data, status, received_at, status_history)
    SELECT i.integration_id, i.order_id, i.payload, 'received', e.received_at, jsonb_build_array(jsonb_build_object(
        'status', 'received', 'applied', true, 'why', 'webhook', 'source', i.event_type, 'at', now()))
    FROM input i JOIN event e ON e.integration_id = i.integration_id AND e.event_id = i.event_id
    WHERE i.creates_order AND i.order_id IS NOT NULL
    ORDER BY i.integration_id, i.order_id, i.ord  -- the first event of an order wins, as one by one
    ON CONFLICT (integration_id, external_id) DO NOTHING
    RETURNING integration_id, external_id
)
SELECT false, integration_id, event_id FROM event
UNION ALL
SELECT true, integration_id, external_id FROM new_order
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


def _params(batch: list[Delivery]) -> tuple[list, ...]:
    """The statement's arrays: one element per distinct (integration, event id) of the batch,
    the first delivery's (a later copy in the same batch is a duplicate, as it would be one
    statement later)."""
    seen: set[tuple[int, str]] = set()
    columns: tuple[list, ...] = ([], [], [], [], [], [], [], [])
    integration_ids, providers, event_ids, event_types, payloads, creates, order_ids, raw_bodies = columns
    for delivery in batch:
        for event in delivery.events:
            key = (delivery.integration_id, event.event_id)
            if key in seen:
                continue
            seen.add(key)
            integration_ids.append(delivery.integration_id)
            providers.append(delivery.provider)
            event_ids.append(event.event_id)
            event_types.append(event.event_type)
            payloads.append(_json(event))
            creates.append(event.creates_order)
            order_ids.append(event.order_id)
            raw_bodies.append(event.raw_body)
    return columns


def _results(batch: list[Delivery], inserted: list[tuple[bool, int, str]]) -> list[IngestResult]:
    """Per delivery, from the keys the statement inserted: the first copy of a stored event
    counts as stored, every other copy as a duplicate; a new order counts for the first stored
    event that creates it."""
    new_events = {(iid, key) for is_order, iid, key in inserted if not is_order}
    new_orders = {(iid, key) for is_order, iid, key in inserted if is_order}
    results = [IngestResult() for _ in batch]
    for result, delivery in zip(results, batch):
        iid = delivery.integration_id
        for event in delivery.events:
            key = (iid, event.event_id)
            if key in new_events:
                new_events.discard(key)
                result.stored += 1
                if event.creates_order and event.order_id and (iid, event.order_id) in new_orders:
                    new_orders.discard((iid, event.order_id))
                    result.orders += 1
            else:
                result.duplicates += 1
    return results


def store_batch(conn: psycopg.Connection, batch: list[Delivery]) -> list[IngestResult]:
    """Store every delivery of `batch` in one statement (in the caller's transaction, or its
    own on an autocommit connection); one result per delivery."""
    params = _params(batch)
    if not params[0]:
        return [IngestResult() for _ in batch]
    return _results(batch, conn.execute(_BATCH_SQL, params).fetchall())


async def store_batch_async(conn: psycopg.AsyncConnection, batch: list[Delivery]) -> list[IngestResult]:
    """`store_batch` on an asyncio connection (the receiver's group-commit writers)."""
    params = _params(batch)
    if not params[0]:
        return [IngestResult() for _ in batch]
    cur = await conn.execute(_BATCH_SQL, params)
    return _results(batch, await cur.fetchall())


# SQLSTATE classes of an error about the data itself, which no retry changes: data exception
# (22: a NUL in text, an invalid escape in jsonb), integrity constraint violation (23), program
# limit exceeded (54: an index row too large). Anything else (a lost connection, a statement or
# lock timeout, a shutdown, a serialization failure) may pass on a retry.
_DATA_CLASSES = ("22", "23", "54")


def refused_data(exc: BaseException) -> bool:
    """True when the database refused a statement for the data it was given (a retry cannot
    fix it: the request is refused and kept as a dead letter), False for anything a retry may fix."""
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.Error) and isinstance(sqlstate, str) and sqlstate[:2] in _DATA_CLASSES
