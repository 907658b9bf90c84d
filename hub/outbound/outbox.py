"""Domain events into the outbox, in the caller's transaction.

Why an outbox: the event row is written by the same transaction as the change that caused
it, so a change that rolls back never announces itself and a change that commits is never
lost between "commit" and "enqueue" (the two-step gap the reference study found in Svix).
The dispatcher reads `outbox_event` afterwards and fans each event out to its subscribers.

Why a declared list of event types: subscribers filter on the type string, and a typo in
an emitter ("invoice.status_change") would silently reach nobody. `emit` refuses any type
not listed in `EVENT_TYPES`; adding a type is a one-line change here.

`emit` also issues ``pg_notify('hub_outbox', '')`` in the same transaction. PostgreSQL
delivers a notification only when (and if) its transaction commits, so a waiting dispatcher
wakes at once for committed events and never for rolled-back ones; the dispatcher still
polls, so a lost notification costs latency, not events.
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Any, Mapping

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.engine import Connection

from hub.errors import ValidationError

__all__ = ["EVENT_TYPES", "MAX_PAYLOAD_BYTES", "NOTIFY_CHANNEL", "emit", "check_event_type"]

EVENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "order.status_changed": "a POS or delivery order moved to another status",
        "invoice.status_changed": "an invoice changed status (draft, submitted, authorised, paid, voided, deleted)",
        "budget.alert": "a project or account crossed a budget threshold",
        "schedule.changed": "a project schedule (task dates, milestones) changed",
        "task.assigned": "a task was assigned to a person",
        "billing.past_due": "the company's subscription payment failed: update the card before the grace period ends",
        "ai.budget_80": "the AI assist's external model has used 80% of this month's budget: at the budget its calls stop",
        "webhook.test": "a test event (`hub webhooks emit`), to check an endpoint end to end",
    }
)
"""Every event type the hub emits, with what it means. Names follow Standard Webhooks:
dotted, ``[a-z0-9_]`` segments, no other characters."""

WILDCARD = "*"
"""Subscribing to ``*`` means every type in `EVENT_TYPES`, including ones added later."""

NOTIFY_CHANNEL = "hub_outbox"
MAX_PAYLOAD_BYTES = 256 * 1024  # the reference study recommends small payloads (< 20 kB); refuse the absurd

_TYPE_RE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
assert all(_TYPE_RE.fullmatch(name) for name in EVENT_TYPES)

_INSERT = (
    "WITH ins AS (INSERT INTO outbox_event (company_id, event_type, payload) VALUES ({}, {}, {}) RETURNING id) "
    f"SELECT ins.id, pg_notify('{NOTIFY_CHANNEL}', '') FROM ins"
)


def check_event_type(event_type: str) -> str:
    """`event_type` if declared, else a `ValidationError` naming the known ones."""
    if event_type not in EVENT_TYPES:
        raise ValidationError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    return event_type


def _check_payload(payload: Any) -> None:
    if not isinstance(payload, Mapping):
        raise ValidationError("an event payload must be a JSON object")
    try:
        size = len(json.dumps(payload, separators=(",", ":"), default=_refuse).encode())
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"event payload is not JSON-serialisable: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationError(f"event payload is {size} bytes, above the {MAX_PAYLOAD_BYTES} byte limit; send a reference instead")


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def emit(conn: Connection | psycopg.Connection, company_id: int, event_type: str, payload: Mapping[str, Any]) -> int:
    """Write one domain event into the outbox in the caller's open transaction; its id.

    Nothing is committed here: the event becomes visible (and is delivered) only when the
    caller's transaction commits, together with the change it describes. `conn` is a
    SQLAlchemy connection or a plain psycopg one (the receiver's group-commit writer uses
    psycopg directly).
    """
    check_event_type(event_type)
    _check_payload(payload)
    if isinstance(conn, psycopg.Connection):
        return conn.execute(_INSERT.format("%s", "%s", "%s"), (company_id, event_type, Jsonb(dict(payload)))).fetchone()[0]
    statement = sa.text(_INSERT.format(":company_id", ":event_type", "CAST(:payload AS jsonb)"))
    return conn.execute(
        statement, {"company_id": company_id, "event_type": event_type, "payload": json.dumps(dict(payload))}
    ).scalar_one()
