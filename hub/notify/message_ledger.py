"""The notification message ledger: one `notification_message` row per (route, event,
recipient), written before the provider is called.

Why: Slack, SendGrid and Twilio have no idempotency key, so a send retried after a timeout
may reach a person twice. The dispatcher retries whole deliveries; this ledger makes the
retry per recipient and safe:

* **before the call** the recipient's row becomes ``sending`` (committed), naming the
  delivery attempt that sends it;
* **after the call** it becomes ``accepted`` with the provider's message id (which the
  status tracker matches delivery reports on), or ``not_sent`` (the provider refused before
  sending: 429, connection refused, a fixable setting), or ``refused`` (this message can
  never go: a bad number, a template that renders nothing), or ``unknown`` (timed out or cut
  off after the request left: it may have been sent);
* **a later attempt** sends only to recipients still ``not_sent``. It skips those already
  accepted (a retry after a partial failure texts nobody twice), ``refused`` ones, and
  ``unknown`` ones: an unknown outcome is never retried automatically. A row still
  ``sending`` when an attempt begins means the worker that sent it died or lost its lease
  mid-call: it becomes ``unknown`` too.
* an operator who has checked that an unknown message did not arrive resends it with
  `resend` (``hub notify resend``): its rows go back to ``not_sent`` and a new attempt of the
  delivery is scheduled, with the same webhook-id.

After acceptance, the provider's reports move the row on (status.py): processed, deferred,
sent, then delivered / bounced / dropped / undelivered / failed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.errors import NotFoundError, ValidationError
from hub.schema import notification_message, notification_route, outbox_event, webhook_delivery, webhook_endpoint

__all__ = ["Slot", "begin", "finish", "resend", "list_messages", "status_counts", "DONE", "MessageRow"]

DONE = ("accepted", "processed", "deferred", "sent", "delivered", "bounced", "dropped", "undelivered", "failed")
"""Statuses of a message the provider took: never sent again."""
CUT_OFF = "a previous attempt was cut off while sending (worker stopped or lease lost); it may have been sent"


@dataclass(frozen=True)
class Slot:
    """One recipient of one attempt: send now, or why not."""

    row_id: int
    recipient: str
    send: bool
    status: str  # 'sending' when send, else the row's status
    detail: str | None = None


_INSERT = sa.text(
    """
    INSERT INTO notification_message (endpoint_id, outbox_event_id, message_id, recipient, integration_id, provider, status)
    SELECT :endpoint_id, :event_id, :message_id, r, :integration_id, :provider, 'not_sent'
    FROM unnest(CAST(:recipients AS text[])) AS r
    ON CONFLICT (endpoint_id, outbox_event_id, recipient) DO NOTHING
    """
)


def begin(
    engine: Engine,
    *,
    endpoint_id: int,
    event_id: int,
    attempt: int,
    message_id: str,
    integration_id: int,
    provider: str,
    recipients: Sequence[str],
) -> list[Slot]:
    """Decide, per recipient, whether this attempt sends; mark those ``sending`` (committed
    before any provider call). Returns one `Slot` per recipient, in the given order."""
    m = notification_message
    with engine.begin() as conn:
        delivery_id = conn.scalar(
            sa.select(webhook_delivery.c.id).where(
                webhook_delivery.c.endpoint_id == endpoint_id, webhook_delivery.c.outbox_event_id == event_id,
                webhook_delivery.c.attempt == attempt)
        )
        conn.execute(_INSERT, {"endpoint_id": endpoint_id, "event_id": event_id, "message_id": message_id,
                               "integration_id": integration_id, "provider": provider, "recipients": list(recipients)})
        rows = {
            r.recipient: r
            for r in conn.execute(
                sa.select(m.c.id, m.c.recipient, m.c.status, m.c.detail)
                .where(m.c.endpoint_id == endpoint_id, m.c.outbox_event_id == event_id, m.c.recipient.in_(list(recipients)))
                .order_by(m.c.id)
                .with_for_update()
            )
        }
        slots: list[Slot] = []
        for recipient in recipients:
            row = rows[recipient]
            if row.status == "not_sent":
                conn.execute(sa.update(m).where(m.c.id == row.id).values(status="sending", delivery_id=delivery_id,
                                                                         detail=None, updated_at=sa.func.now()))
                slots.append(Slot(row.id, recipient, True, "sending"))
            elif row.status == "sending":
                conn.execute(sa.update(m).where(m.c.id == row.id).values(status="unknown", detail=CUT_OFF, updated_at=sa.func.now()))
                slots.append(Slot(row.id, recipient, False, "unknown", CUT_OFF))
            else:
                slots.append(Slot(row.id, recipient, False, row.status, row.detail))
    return slots


def finish(engine: Engine, row_id: int, status: str, *, provider_message_id: str | None = None, detail: str | None = None) -> bool:
    """Record the outcome of one call. Applies to a row still ``sending`` or, when a worker
    that lost its lease finishes after all, ``unknown`` (a known outcome beats an unknown)."""
    m = notification_message
    values: dict[str, Any] = {"status": status, "detail": detail, "updated_at": sa.func.now()}
    if provider_message_id:
        values["provider_message_id"] = provider_message_id
    with engine.begin() as conn:
        done = conn.execute(sa.update(m).where(m.c.id == row_id, m.c.status.in_(("sending", "unknown"))).values(**values))
    return done.rowcount == 1


_NEXT_ATTEMPT = sa.text(
    """
    WITH latest AS (
        SELECT attempt, message_id, status FROM webhook_delivery
        WHERE endpoint_id = :endpoint_id AND outbox_event_id = :event_id
        ORDER BY attempt DESC LIMIT 1
    )
    INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at)
    SELECT :endpoint_id, :event_id, attempt + 1, message_id, 'pending', now() FROM latest WHERE status = 'failed'
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)


def resend(conn: Connection, endpoint_id: int, event_id: int) -> tuple[int, int | None]:
    """An operator's decision: the recipients of (route, event) whose outcome is unknown did
    not get the message; send to them again. Returns (recipients reopened, new attempt's
    delivery id or None when an attempt is already pending)."""
    m = notification_message
    active = conn.scalar(sa.select(webhook_endpoint.c.is_active).where(webhook_endpoint.c.id == endpoint_id))
    if active is None:
        raise NotFoundError(f"no notification route {endpoint_id}")
    if not active:
        raise ValidationError(f"route {endpoint_id} is disabled; enable it first (hub webhooks enable {endpoint_id})")
    reopened = conn.execute(
        sa.update(m)
        .where(m.c.endpoint_id == endpoint_id, m.c.outbox_event_id == event_id, m.c.status == "unknown")
        .values(status="not_sent", detail="resend requested by an operator", updated_at=sa.func.now())
    ).rowcount
    if not reopened:
        raise ValidationError(f"route {endpoint_id} has no message of event {event_id} with an unknown outcome")
    delivery_id = conn.scalar(_NEXT_ATTEMPT, {"endpoint_id": endpoint_id, "event_id": event_id})
    conn.execute(sa.text("SELECT pg_notify('hub_webhook_due', '')"))
    return reopened, delivery_id


@dataclass(frozen=True)
class MessageRow:
    id: int
    endpoint_id: int
    route_name: str
    kind: str
    outbox_event_id: int
    event_type: str
    recipient: str
    status: str
    provider_message_id: str | None
    detail: str | None
    attempt: int | None
    updated_at: dt.datetime
    history: tuple[dict[str, Any], ...] = ()  # what the provider reported, oldest first (status.py)


def list_messages(conn: Connection, *, endpoint_id: int | None = None, company_id: int | None = None,
                  integration_id: int | None = None, status: str | Sequence[str] | None = None,
                  limit: int = 50) -> list[MessageRow]:
    """Recent notification messages, newest first, with the attempt that last sent them and
    the delivery reports that came back. `status`: one status or several."""
    m, r, e, o, d = notification_message, notification_route, webhook_endpoint, outbox_event, webhook_delivery
    query = (
        sa.select(m.c.id, m.c.endpoint_id, e.c.name.label("route_name"), r.c.kind, m.c.outbox_event_id, o.c.event_type,
                  m.c.recipient, m.c.status, m.c.provider_message_id, m.c.detail, d.c.attempt, m.c.updated_at, m.c.history)
        .join(e, e.c.id == m.c.endpoint_id)
        .join(r, r.c.endpoint_id == m.c.endpoint_id)
        .join(o, o.c.id == m.c.outbox_event_id)
        .outerjoin(d, d.c.id == m.c.delivery_id)
        .order_by(m.c.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    if endpoint_id is not None:
        query = query.where(m.c.endpoint_id == endpoint_id)
    if company_id is not None:
        query = query.where(e.c.company_id == company_id)
    if integration_id is not None:
        query = query.where(m.c.integration_id == integration_id)
    if isinstance(status, str):
        query = query.where(m.c.status == status)
    elif status is not None:
        query = query.where(m.c.status.in_(list(status)))
    return [MessageRow(**{**row._mapping, "history": tuple(row.history or ())}) for row in conn.execute(query)]


def status_counts(conn: Connection, *, company_id: int, integration_id: int) -> dict[str, int]:
    """How many of the integration's messages are in each status (the delivery page's totals)."""
    m, e = notification_message, webhook_endpoint
    rows = conn.execute(
        sa.select(m.c.status, sa.func.count()).join(e, e.c.id == m.c.endpoint_id)
        .where(e.c.company_id == company_id, m.c.integration_id == integration_id).group_by(m.c.status))
    return {status: count for status, count in rows}
