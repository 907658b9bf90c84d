"""Delivery status coming back: SendGrid event webhooks and Twilio status callbacks,
applied to the notification messages they are about.

The path: the provider POSTs to the integration's inbound endpoint; the hub web app
verifies the signature (SendGrid ECDSA, Twilio HMAC-SHA1 over the public URL), dedupes on
the provider's event id and stores each report as an `inbound_event` with ``processed_at``
NULL. `apply_pending` (run every second by the notification worker beside the dispatcher,
see worker.py, or by ``hub notify track``) claims those rows, matches each to its
`notification_message`, moves the message's status on and marks the row processed, all in
one transaction per batch (``FOR UPDATE SKIP LOCKED``: two trackers never apply one
report twice; a crash applies nothing and the next pass does it).

Each provider's parser (its spec's `inbound.delivery_status`, hub/providers/<name>/inbound.py)
turns a report into a `StatusReport`. Matching:
* SendGrid: ``sg_message_id`` starts with the ``X-Message-Id`` of the send
  (providers.md 5.2), plus the recipient's address; a send whose id was lost (the worker
  stopped between SendGrid's 202 and our write) is still found by the custom arg
  ``hub_message_id`` (the delivery's webhook-id) that every send carries.
* Twilio: ``MessageSid``.

A report can arrive before the send that caused it is recorded (the provider is fast, our
write is not yet committed). Unmatched reports are therefore kept for `patience_s` (10 min)
and tried again on later passes; after that they are marked processed and counted as
unmatched (mail sent by something else on the same SendGrid account, say).

Statuses only move forward (`RANK`), so a late ``processed`` or ``sent`` never hides a
``delivered``; a failure reported after ``delivered`` (SendGrid reports asynchronous
bounces) wins. Engagement events (open, click, ...) are kept in the message's history
without changing its status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.notify.status_report import StatusReport
from hub.providers import registry
from hub.schema import inbound_event, notification_message

__all__ = ["RANK", "TrackReport", "apply_pending", "pending_count"]

RANK = {"sending": 0, "unknown": 0, "not_sent": 0, "refused": 0, "accepted": 1, "processed": 2, "deferred": 3, "sent": 4,
        "delivered": 5, "bounced": 6, "dropped": 6, "undelivered": 6, "failed": 6}
HISTORY_MAX = 50
UTC = dt.timezone.utc


@dataclass
class TrackReport:
    applied: int = 0  # reports that moved a message's status
    recorded: int = 0  # matched, kept in history, status unchanged (late, or engagement)
    waiting: int = 0  # not matched yet, kept for a later pass
    unmatched: int = 0  # never matched (given up after the patience window)
    changes: list[tuple[int, str, str]] = field(default_factory=list)  # (message row, old, new)


def _parsers() -> dict[str, Callable[[Any], StatusReport | None]]:
    """provider -> its delivery-status parser: the messaging providers whose inbound webhook
    reports delivery (SendGrid, Twilio)."""
    specs = (registry.get(name) for name in registry.with_capability("messaging"))
    return {spec.name: spec.inbound.delivery_status for spec in specs if spec.inbound and spec.inbound.delivery_status}


def _claim() -> sa.Select:
    """The unprocessed reports, oldest first. Built on call, not at import: the provider list
    comes from the registry, which imports the provider packages on first use (their
    parsers import the hub's core, this package included)."""
    return (
        sa.select(inbound_event.c.id, inbound_event.c.integration_id, inbound_event.c.provider, inbound_event.c.event_id,
                  inbound_event.c.payload, inbound_event.c.received_at)
        .where(inbound_event.c.processed_at.is_(None), inbound_event.c.provider.in_(_parsers()))
        .order_by(inbound_event.c.id)
    )


def apply_pending(engine: Engine, limit: int = 500, patience_s: float = 600.0) -> TrackReport:
    """Apply up to `limit` unprocessed SendGrid/Twilio reports; one transaction."""
    report = TrackReport()
    with engine.begin() as conn:
        parsers = _parsers()
        rows = conn.execute(_claim().limit(limit).with_for_update(skip_locked=True)).all()
        now = conn.scalar(sa.select(sa.func.now()))
        done: list[int] = []
        for row in rows:
            parsed = parsers[row.provider](row.payload)
            message = _match(conn, row.integration_id, row.provider, parsed) if parsed else None
            if message is None:
                if parsed is not None and (now - row.received_at).total_seconds() < patience_s:
                    report.waiting += 1
                    continue
                report.unmatched += 1
            else:
                _apply(conn, message, parsed, row, report)
            done.append(row.id)
        if done:
            conn.execute(sa.update(inbound_event).where(inbound_event.c.id.in_(done)).values(processed_at=now))
    return report


def pending_count(engine: Engine) -> int:
    """Reports waiting to be applied (for a sensor or a health check)."""
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(_claim().subquery()))


def _match(conn: Connection, integration_id: int, provider: str, report: StatusReport) -> Any:
    m = notification_message
    base = sa.select(m.c.id, m.c.status, m.c.history).where(m.c.integration_id == integration_id, m.c.provider == provider)
    if report.provider_message_id:
        query = base.where(m.c.provider_message_id == report.provider_message_id)
        if report.id_covers_recipients and report.recipient:
            query = query.where(m.c.recipient == report.recipient)
        found = conn.execute(query.limit(1).with_for_update()).first()
        if found is not None:
            return found
    if report.hub_message_id and report.recipient:
        return conn.execute(base.where(m.c.message_id == report.hub_message_id, m.c.recipient == report.recipient)
                            .limit(1).with_for_update()).first()
    return None


def _apply(conn: Connection, message: Any, report: StatusReport, row: Any, tally: TrackReport) -> None:
    m = notification_message
    at = report.at or row.received_at
    entry = {"event": report.event, "at": at.astimezone(UTC).isoformat(timespec="seconds"), "event_id": row.event_id}
    if report.detail:
        entry["detail"] = report.detail
    # oldest first by the provider's own time: its webhooks may arrive (and be applied) out of
    # order; events of the same second keep the order they were applied in
    history = sorted([*(message.history or []), entry], key=lambda e: e["at"])[-HISTORY_MAX:]
    values: dict[str, Any] = {"history": history, "updated_at": sa.func.now()}
    moves = report.status is not None and RANK[report.status] > RANK.get(message.status, 0)
    if moves:
        values["status"] = report.status
        values["detail"] = report.detail
        tally.applied += 1
        tally.changes.append((message.id, message.status, report.status))
    else:
        tally.recorded += 1
    if report.provider_message_id and report.status is not None and message.status in ("unknown", "sending"):
        values["provider_message_id"] = report.provider_message_id  # found by hub_message_id: now we know it was sent
    conn.execute(sa.update(m).where(m.c.id == message.id).values(**values))

