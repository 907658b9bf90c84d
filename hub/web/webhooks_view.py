"""What /settings/integrations/webhooks shows: the company's outgoing webhook endpoints
and, per endpoint, its settings and its delivery log (each delivery with every attempt).

Reads only; every query takes the session's company, so another company's endpoint is
"not found" (the page answers 404). Only HTTP(S) endpoints are webhooks here: the other
outbound endpoints are notification routes (slack://, sendgrid://, twilio://; hub/notify),
which their own pages manage. No secret is decrypted here: the page knows only that a
secret is set and when it was rotated; URLs and receivers' answers are redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError
from hub.outbound import endpoints as store
from hub.outbound.endpoints import Endpoint
from hub.outbound.outbox import EVENT_TYPES, WILDCARD
from hub.outbound.policy import DEFAULTS, format_duration
from hub.outbound.senders import kind_for_url
from hub.redact import redact
from hub.schema import outbox_event, webhook_delivery, webhook_endpoint
from hub.web import times

PER_PAGE = 20
TEXT_CHARS = 300
GRACE_CHOICES = (("0", "none: the old secret stops now"), ("3600", "1 hour"), ("86400", "24 hours"),
                 ("604800", "7 days"))
DEFAULT_GRACE = "86400"


def stamp(when: datetime | None, tz_name: str, now: datetime | None = None) -> dict | None:
    """A time as the pages show it: relative, exact on hover, machine-readable. A time in
    the next minute and a half is counted in seconds (a retry due "in 5 seconds" is not
    "just now")."""
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    ahead = (when - now).total_seconds()
    relative = f"in {round(ahead)} seconds" if 1.5 <= ahead < 90 else times.relative(when, now)
    return {"relative": relative, "exact": times.exact(when, tz_name), "iso": times.iso(when)}


def _capped(text: str | None) -> str | None:
    if not text:
        return None
    text = redact(text)
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def is_webhook(endpoint: Endpoint) -> bool:
    return kind_for_url(endpoint.url) == "webhook"


def company_webhook(conn: Connection, company_id: int, endpoint_id: int) -> Endpoint | None:
    """The company's webhook endpoint with this id; None for another company's, a
    notification route's or nobody's id (the page answers 404 for all three)."""
    try:
        endpoint = store.get_endpoint(conn, endpoint_id, company_id=company_id)
    except NotFoundError:
        return None
    return endpoint if is_webhook(endpoint) else None


def event_choices(selected: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The subscription checkboxes: every event type the hub emits (outbox.EVENT_TYPES, the
    one list), and "all" (``*``, which also covers types added later)."""
    chosen = set(selected)
    return [{"value": WILDCARD, "label": "All events", "help": "every type below, and types added later",
             "checked": WILDCARD in chosen}] + [
        {"value": name, "label": name, "help": meaning, "checked": name in chosen} for name, meaning in EVENT_TYPES.items()
    ]


def status_of(endpoint: Endpoint) -> tuple[str, str]:
    """(label, tone) of an endpoint's state."""
    if not endpoint.is_active:
        return "Disabled", "off"
    if endpoint.consecutive_failures:
        return "Failing", "bad"
    return "Active", "ok"


def summary(endpoint: Endpoint, tz_name: str, now: datetime) -> dict[str, Any]:
    label, tone = status_of(endpoint)
    return {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.display_url,
        "events": list(endpoint.events),
        "all_events": WILDCARD in endpoint.events,
        "is_active": endpoint.is_active,
        "status_label": label,
        "tone": tone,
        "disabled_reason": _capped(endpoint.disabled_reason),
        "failures": endpoint.consecutive_failures,
        "last_success": stamp(endpoint.last_triggered_at, tz_name, now),
        "created": stamp(endpoint.created_at, tz_name, now),
    }


def list_webhooks(conn: Connection, company_id: int, tz_name: str, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(timezone.utc)
    return [summary(e, tz_name, now) for e in store.list_endpoints(conn, company_id) if is_webhook(e)]


def detail(endpoint: Endpoint, tz_name: str, now: datetime | None = None) -> dict[str, Any]:
    """The endpoint's settings page: summary, subscriptions, payload, secret state, policy."""
    now = now or datetime.now(timezone.utc)
    policy = endpoint.policy
    grace_until = endpoint.previous_secret_until if endpoint.previous_secret_until and endpoint.previous_secret_until > now else None
    return {
        **summary(endpoint, tz_name, now),
        "event_choices": event_choices(endpoint.events),
        "payload_mode": endpoint.payload.mode,
        "payload_fields": ", ".join(endpoint.payload.fields or ()),
        "payload_text": endpoint.payload.describe(),
        "secret_rotated": stamp(endpoint.secret_rotated_at, tz_name, now),
        "secret_grace_until": stamp(grace_until, tz_name, now),
        "policy": {
            "max_attempts": policy.max_attempts,
            "waits": ", ".join(format_duration(w) for w in policy.schedule),
            "timeout": format_duration(policy.timeout),
            "jitter": f"{policy.jitter * 100:g} %",
            "concurrency": policy.concurrency,
            "is_default": not policy.overrides(),
            "defaults": {"max_attempts": DEFAULTS.max_attempts,
                         "waits": ", ".join(format_duration(w) for w in DEFAULTS.schedule),
                         "timeout": format_duration(DEFAULTS.timeout)},
        },
        "grace_choices": GRACE_CHOICES,
        "default_grace": DEFAULT_GRACE,
    }


@dataclass
class Attempt:
    number: int
    status: str
    tone: str
    response_code: int | None
    duration_ms: int | None
    error: str | None
    response: str | None
    at: dict | None  # when it was made (closed) or is due (pending)
    next_retry: dict | None  # a failed attempt: when the next one is due, if one is scheduled
    final: str | None  # a failed attempt: "retried as #n", or why no retry follows


@dataclass
class Delivery:
    event_id: int
    event_type: str
    message_id: str
    emitted: dict | None
    status: str
    tone: str
    attempts: list[Attempt]

    @property
    def pending(self) -> bool:
        return self.status == "pending"


TONES = {"succeeded": "ok", "failed": "bad", "pending": "busy"}


def deliveries(conn: Connection, company_id: int, endpoint: Endpoint, tz_name: str, page: int = 1,
               now: datetime | None = None) -> dict[str, Any]:
    """One page of the endpoint's delivery log: one entry per event sent to it (newest event
    first, a stable order while attempts come in), each with every attempt in order."""
    now = now or datetime.now(timezone.utc)
    page = max(1, page)
    d, e, o = webhook_delivery, webhook_endpoint, outbox_event
    scope = sa.and_(d.c.endpoint_id == endpoint.id, e.c.company_id == company_id)
    total = conn.scalar(
        sa.select(sa.func.count(sa.distinct(d.c.outbox_event_id))).select_from(d.join(e, e.c.id == d.c.endpoint_id)).where(scope)
    )
    event_ids = list(conn.scalars(
        sa.select(d.c.outbox_event_id).select_from(d.join(e, e.c.id == d.c.endpoint_id)).where(scope)
        .group_by(d.c.outbox_event_id).order_by(d.c.outbox_event_id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    ))
    rows = conn.execute(
        sa.select(d.c.outbox_event_id, d.c.attempt, d.c.message_id, d.c.status, d.c.response_code, d.c.duration_ms,
                  d.c.error, d.c.response_body, d.c.next_attempt_at, o.c.event_type, o.c.created_at.label("emitted_at"))
        .select_from(d.join(e, e.c.id == d.c.endpoint_id).join(o, o.c.id == d.c.outbox_event_id))
        .where(scope, d.c.outbox_event_id.in_(event_ids), o.c.company_id == company_id)
        .order_by(d.c.outbox_event_id.desc(), d.c.attempt)
    ).all() if event_ids else []
    grouped: dict[int, list] = {}
    for row in rows:
        grouped.setdefault(row.outbox_event_id, []).append(row)
    schedule_len = len(endpoint.policy.schedule)
    items = []
    for event_id in event_ids:
        group = grouped.get(event_id, [])
        if not group:
            continue
        attempts = []
        for index, row in enumerate(group):
            following = group[index + 1] if index + 1 < len(group) else None
            next_retry = final = None
            if row.status == "failed":
                if following is not None and following.status == "pending":
                    next_retry = stamp(following.next_attempt_at, tz_name, now)
                elif following is not None:
                    final = f"retried as #{following.attempt}"
                elif following is None:
                    final = ("no retry: the schedule is used up" if row.attempt > schedule_len
                             else "no retry: this failure is not retried (see the error)" if endpoint.is_active
                             else "no retry: the endpoint is disabled")
            error = None if row.error == f"HTTP {row.response_code}" else _capped(row.error)  # the code says it already
            attempts.append(Attempt(row.attempt, row.status, TONES.get(row.status, "neutral"), row.response_code,
                                    row.duration_ms, error, _capped(row.response_body),
                                    stamp(row.next_attempt_at, tz_name, now), next_retry, final))
        last = group[-1]
        items.append(Delivery(event_id, last.event_type, last.message_id, stamp(last.emitted_at, tz_name, now),
                              last.status, TONES.get(last.status, "neutral"), attempts))
    pages = max(1, -(-total // PER_PAGE))
    return {"entries": items, "page": page, "pages": pages, "total": total,
            "newer": page - 1 if page > 1 else None, "older": page + 1 if page < pages else None,
            "pending": any(item.pending for item in items)}
