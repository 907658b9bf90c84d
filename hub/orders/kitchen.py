"""The POS side of a delivery order: the kitchen starts it, finishes it, or cancels it, and
the marketplace hears about it.

`set_pos_status` moves a `pos_order` along its own life (open -> in_progress -> ready ->
completed, or cancelled before completion) and, for an order that came from a marketplace,
moves the linked `external_order` along the seed's state machine in the same transaction
(in_progress -> preparing, ready -> ready, cancelled -> cancelled; "completed" means the
courier took it, which the marketplace itself reports as picked_up).

What the marketplace must be told is not sent from here (a kitchen screen must not wait on a
provider): the order is flagged unprocessed, and the order job (`processing.py`) makes the
call on its next run, retrying while the provider is down, exactly like an accept.
Which statuses a marketplace is told, and its code for each cancel reason, are its spec's
`delivery` (hub/providers/<name>/orders.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.orders.history import announce, with_history
from hub.orders.state_machine import advance
from hub.providers import registry
from hub.schema import POS_ORDER_STATUSES, external_order, integration, pos_order

POS_NEXT = {
    "open": ("in_progress", "ready", "completed", "cancelled"),
    "in_progress": ("ready", "completed", "cancelled"),
    "ready": ("completed", "cancelled"),
    "completed": (),
    "cancelled": (),
}
TO_MARKETPLACE = {"in_progress": "preparing", "ready": "ready", "cancelled": "cancelled"}
# why the kitchen cancels; each marketplace has its own code for each (its spec's
# `delivery.cancel_reasons`), and its spec's `delivery.pushed` says which statuses it is told
CANCEL_REASONS = ("out_of_items", "kitchen_closed", "too_busy", "other")


@dataclass(frozen=True)
class PosChange:
    pos_order_id: int
    before: str
    after: str
    marketplace_status: str | None  # the external order's status afterwards, if it has one
    push: str | None  # what the order job will tell the marketplace, if anything


def set_pos_status(conn: Connection, pos_order_id: int, status: str, reason: str = "other") -> PosChange:
    if status not in POS_ORDER_STATUSES:
        raise ValidationError(f"unknown POS status '{status}'; one of {', '.join(POS_ORDER_STATUSES)}")
    if reason not in CANCEL_REASONS:
        raise ValidationError(f"unknown cancel reason '{reason}'; one of {', '.join(CANCEL_REASONS)}")
    row = conn.execute(sa.select(pos_order.c.id, pos_order.c.status, pos_order.c.company_id)
                       .where(pos_order.c.id == pos_order_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no POS order {pos_order_id}")
    if status == row.status:
        return PosChange(pos_order_id, row.status, status, None, None)
    if status not in POS_NEXT[row.status]:
        raise ValidationError(f"POS order {pos_order_id} is {row.status}; it can go to {', '.join(POS_NEXT[row.status]) or 'nothing (final)'}")
    conn.execute(sa.update(pos_order).where(pos_order.c.id == pos_order_id).values(status=status))
    linked = conn.execute(
        sa.select(external_order.c.id, external_order.c.status, external_order.c.external_id, integration.c.provider)
        .join(integration, integration.c.id == external_order.c.integration_id)
        .where(external_order.c.order_id == pos_order_id)
        .with_for_update(of=external_order)
    ).first()
    announce(conn, row.company_id, external_order_id=linked.id if linked else None, pos_order_id=pos_order_id,
             provider=linked.provider if linked else None, external_id=linked.external_id if linked else None,
             status=status, previous=row.status, source="pos", of="pos_order")
    target = TO_MARKETPLACE.get(status)
    if linked is None or target is None:
        return PosChange(pos_order_id, row.status, status, linked.status if linked else None, None)
    step = advance(linked.status, target)
    delivery = registry.get(linked.provider).delivery
    push = target if step.applied and target in delivery.pushed else None
    entry = step.history_entry("pos", at=datetime.now(timezone.utc), event_status=target, pos_status=status,
                               **({"push": "pending", "reason": delivery.cancel_reasons[reason]} if push else {}))
    values = {"status": step.after, "status_history": with_history(entry)}
    if push:
        values["processed"] = False  # the order job tells the marketplace
    conn.execute(sa.update(external_order).where(external_order.c.id == linked.id).values(**values))
    if step.applied:
        announce(conn, row.company_id, external_order_id=linked.id, pos_order_id=pos_order_id, provider=linked.provider,
                 external_id=linked.external_id, status=step.after, previous=step.before, source="pos")
    return PosChange(pos_order_id, row.status, status, step.after, push)


# The demo's kitchen: how long after it arrived a POS order reaches each status.
DEMO_KITCHEN = (("in_progress", 15), ("ready", 45), ("completed", 120))


def demo_kitchen_pass(engine, now: datetime | None = None) -> list[PosChange]:
    """One pass of the demo's simulated kitchen: every open order moves along DEMO_KITCHEN as
    it ages, so the demo shows ready signals reaching DoorDash. Not used outside the demo."""
    now = now or datetime.now(timezone.utc)
    changes = []
    with engine.begin() as conn:
        rows = conn.execute(sa.select(pos_order.c.id, pos_order.c.status, pos_order.c.created_at)
                            .where(pos_order.c.status.in_(("open", "in_progress", "ready"))).order_by(pos_order.c.id)).all()
        for row in rows:
            age = (now - row.created_at).total_seconds()
            due = [status for status, after in DEMO_KITCHEN if age >= after]
            if due and due[-1] != row.status and due[-1] in POS_NEXT[row.status]:
                changes.append(set_pos_status(conn, row.id, due[-1]))
    return changes
