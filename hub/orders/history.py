"""An external order's status history, only ever appended to, and the announcement of each
change: every path that moves an order (order job, status events, the kitchen) records it
here and emits `order.status_changed` to the outbox in the same transaction, so outgoing
webhooks and notifications (hub/outbound) see exactly the changes that committed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hub.outbound.outbox import emit
from hub.schema import external_order


def with_history(entry: dict[str, Any]) -> sa.ColumnElement:
    """`status_history || [entry]`, for an UPDATE's values."""
    return external_order.c.status_history.op("||")(sa.cast([entry], external_order.c.status_history.type))


def announce(conn, company_id: int, *, external_order_id: int | None, pos_order_id: int | None, provider: str | None,
             external_id: str | None, status: str, previous: str, source: str, of: str = "external_order") -> None:
    """Emit `order.status_changed` in the caller's transaction; `of` says whose status
    changed: the marketplace order's ("external_order") or the POS order's ("pos_order")."""
    emit(conn, company_id, "order.status_changed", {
        "of": of, "external_order_id": external_order_id, "pos_order_id": pos_order_id, "provider": provider,
        "external_id": external_id, "status": status, "previous_status": previous, "source": source,
    })
