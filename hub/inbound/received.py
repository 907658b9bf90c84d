"""What an integration has received: its stored inbound events, newest first, for
`hub webhooks inbound events`. Reads `inbound_event` only (never an endpoint's secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.schema import inbound_event, integration

MAX_LIMIT = 1000


@dataclass(frozen=True)
class ReceivedEvent:
    id: int
    event_id: str
    event_type: str
    received_at: datetime
    processed_at: datetime | None
    payload: Any


def recent_events(conn: Connection, integration_id: int, limit: int = 20, event_type: str | None = None) -> list[ReceivedEvent]:
    """The integration's newest events (received_at, then id, descending: a stable order),
    at most `limit` (1..1000), of one type if `event_type` is given."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1..{MAX_LIMIT}")
    if conn.scalar(sa.select(integration.c.id).where(integration.c.id == integration_id)) is None:
        raise NotFoundError(f"no integration {integration_id}")
    query = (sa.select(inbound_event.c.id, inbound_event.c.event_id, inbound_event.c.event_type, inbound_event.c.received_at,
                       inbound_event.c.processed_at, inbound_event.c.payload)
             .where(inbound_event.c.integration_id == integration_id)
             .order_by(inbound_event.c.received_at.desc(), inbound_event.c.id.desc()).limit(limit))
    if event_type is not None:
        query = query.where(inbound_event.c.event_type == event_type)
    return [ReceivedEvent(*row) for row in conn.execute(query)]
