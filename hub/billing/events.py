"""Stripe's billing webhooks, applied: the receiver stored them (verified, deduplicated by
event id) as `inbound_event` rows of the operator's Stripe integration; here each pending
one names a customer, and that customer is re-read from the API (hub/billing/mirror.py).

Several events about one customer in a batch cost one refresh. An event whose refresh fails
(Stripe unreachable, 5xx) stays pending for the next pass; one about a customer the hub did
not make is marked done and left alone. Rows are claimed with SKIP LOCKED, so two workers
never apply the same event at once; applying one twice would be harmless anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.billing import mirror, settings as billing
from hub.billing.plans import catalog
from hub.crypto import Keyring
from hub.errors import HubError
from hub.redact import redact
from hub.schema import inbound_event

# the event types that can change what the mirror shows (others are marked done unread)
HANDLED = ("checkout.session.completed", "customer.subscription.", "invoice.", "payment_method.attached", "customer.")


@dataclass
class Applied:
    events: int = 0
    customers: int = 0
    skipped: int = 0
    left_pending: int = 0
    errors: list[str] = field(default_factory=list)
    dunning: list[int] = field(default_factory=list)  # companies that just went past due


def apply_pending(engine: Engine, keyring: Keyring, limit: int = 200) -> Applied:
    """Apply up to `limit` pending Stripe events of the operator's integration."""
    report = Applied()
    with engine.begin() as conn:
        found = billing.current(conn)
        if found is None:
            return report
        client = billing.client(conn, keyring)
        rows = conn.execute(
            sa.select(inbound_event.c.id, inbound_event.c.event_type, inbound_event.c.payload)
            .where(inbound_event.c.integration_id == found.stripe_integration_id, inbound_event.c.processed_at.is_(None))
            .order_by(inbound_event.c.id).limit(limit).with_for_update(skip_locked=True)).all()
        by_customer: dict[str, list[int]] = {}
        done: list[int] = []
        for row in rows:
            customer = mirror.customer_of_event(row.payload) if row.event_type.startswith(HANDLED) else None
            if customer is None:
                report.skipped += 1
                done.append(row.id)
            else:
                by_customer.setdefault(customer, []).append(row.id)
        plans = catalog()
        for customer, ids in sorted(by_customer.items()):
            try:
                with conn.begin_nested():
                    refreshed = mirror.refresh_customer(conn, client, customer, plans)
            except HubError as exc:
                report.left_pending += len(ids)
                report.errors.append(f"{customer}: {redact(str(exc))}")
                continue
            report.customers += 1
            report.events += len(ids)
            if refreshed.entered_dunning and refreshed.company_id is not None:
                report.dunning.append(refreshed.company_id)
            done.extend(ids)
        if done:
            conn.execute(sa.update(inbound_event).where(inbound_event.c.id.in_(done)).values(processed_at=sa.func.now()))
    return report


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        found = billing.current(conn)
        if found is None:
            return 0
        return conn.scalar(sa.select(sa.func.count()).select_from(inbound_event).where(
            inbound_event.c.integration_id == found.stripe_integration_id, inbound_event.c.processed_at.is_(None)))
