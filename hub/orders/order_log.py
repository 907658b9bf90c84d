"""The orders a marketplace sent, as the settings page lists them: newest first, paged, each
with its status history (external_order.status_history, appended to by every path that
moves the order: the webhook, the order job, status events, the kitchen).

Every read is scoped by the company through the integration, so another company's order id
reads as no order at all. The order is `created_at DESC, id DESC`: orders that arrived in the
same instant keep one order from page to page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.schema import external_order, integration, pos_order

PAGE_SIZE = 20


@dataclass(frozen=True)
class OrderPage:
    rows: list[sa.Row]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Timeline:
    order: sa.Row
    entries: list[dict[str, Any]] = field(default_factory=list)  # oldest first, as recorded


def _owned(company_id: int, integration_id: int):
    return sa.and_(external_order.c.integration_id == integration_id,
                   external_order.c.integration_id.in_(
                       sa.select(integration.c.id).where(integration.c.company_id == company_id)))


def _columns():
    return (external_order.c.id, external_order.c.external_id, external_order.c.status, external_order.c.created_at,
            external_order.c.synced_at, pos_order.c.order_number, pos_order.c.status.label("pos_status"),
            pos_order.c.total_cents, pos_order.c.currency,
            sa.func.jsonb_array_length(external_order.c.status_history).label("changes"))


def page_number(value: Any) -> int:
    """A page number from the query string; anything else is page 1."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return 1
    return number if 1 <= number <= 1_000_000 else 1


def recent_orders(conn: Connection, company_id: int, integration_id: int, page: int = 1, size: int = PAGE_SIZE) -> OrderPage:
    owned = _owned(company_id, integration_id)
    total = conn.scalar(sa.select(sa.func.count()).select_from(external_order).where(owned)) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    rows = conn.execute(
        sa.select(*_columns()).select_from(external_order.outerjoin(pos_order, pos_order.c.id == external_order.c.order_id))
        .where(owned).order_by(external_order.c.created_at.desc(), external_order.c.id.desc())
        .limit(size).offset((page - 1) * size)).all()
    return OrderPage(rows, page, pages, total)


def order_timeline(conn: Connection, company_id: int, integration_id: int, order_id: int) -> Timeline | None:
    """One order and its status history, or None when it is not this integration's."""
    row = conn.execute(
        sa.select(*_columns(), external_order.c.status_history)
        .select_from(external_order.outerjoin(pos_order, pos_order.c.id == external_order.c.order_id))
        .where(_owned(company_id, integration_id), external_order.c.id == order_id)).first()
    if row is None:
        return None
    entries = [e for e in row.status_history if isinstance(e, dict)]
    return Timeline(row, entries)
