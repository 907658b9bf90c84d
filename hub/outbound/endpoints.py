"""Outbound webhook endpoints: where the hub sends a company's events.

An outbound endpoint is a `webhook_endpoint` row with ``direction = 'outbound'`` and no
integration (it belongs to the company). Columns as used here:

| column | meaning for an outbound endpoint |
|---|---|
| ``url`` | where deliveries go (http/https; the scheme picks the sender, see senders.py) |
| ``secret`` | encrypted `SigningSecrets` envelope (current, previous, previous_until) |
| ``events`` | subscribed event types, or ``["*"]`` for all |
| ``retry_policy`` | `DeliveryPolicy` overrides (schedule, jitter, timeout, concurrency, disable rule) |
| ``payload_options`` | `PayloadOptions` (full, selected fields, or thin) |
| ``consecutive_failures`` | failed attempts since the last success (auto-disable input) |
| ``last_triggered_at`` | when the endpoint last accepted a delivery (2xx) |
| ``disabled_reason`` | why it was disabled (410, sustained failure, operator), NULL when active |
| ``secret_rotated_at``, ``previous_secret_until`` | when the secret was last rotated, and until when the previous one also signs (plain times for display; the secrets are only in ``secret``) |

Disabling closes the endpoint's pending attempts as failed, so nothing is sent to a
disabled endpoint and the failures are visible and replayable after it is enabled again.
Nothing here returns or prints a secret except `add_endpoint` and `rotate_secret`, whose
callers must show it once.

Every function that reads or changes one endpoint takes an optional ``company_id``: given,
the endpoint must belong to that company or it is "not found", exactly like an id nobody
has (the settings pages pass the session's company, so another company's id is a 404).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.outbound import ssrf
from hub.outbound.outbox import EVENT_TYPES, WILDCARD, check_event_type
from hub.outbound.payload import PayloadOptions
from hub.outbound.policy import DeliveryPolicy
from hub.outbound.senders import kind_for_url
from hub.outbound.signing import DEFAULT_GRACE_S, SigningSecrets, generate_standard_secret
from hub.outbound.ssrf import AddressPolicy
from hub.redact import redact
from hub.schema import outbox_event, webhook_delivery, webhook_endpoint
from hub.stored_secrets import assert_keyring_covers, purpose
from hub.inbound.verify import sign_standard

__all__ = [
    "Endpoint",
    "add_endpoint",
    "check_destination",
    "close_pending_sql",
    "delete_endpoint",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "replay",
    "replay_delivery",
    "rotate_secret",
    "send_test",
    "set_active",
    "update_endpoint",
]

SECRET_PURPOSE = purpose(webhook_endpoint, "secret")
MAX_REPLAY_WINDOW = dt.timedelta(days=31)
NEW_MESSAGE_ID_SQL = "'msg_' || replace(gen_random_uuid()::text, '-', '')"

close_pending_sql = (
    "UPDATE webhook_delivery SET status = 'failed', error = %(why)s, next_attempt_at = NULL "
    "WHERE endpoint_id = %(endpoint_id)s AND status = 'pending'"
)
"""Closes an endpoint's pending attempts when it is disabled (psycopg paramstyle)."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    company_id: int
    name: str
    url: str
    events: tuple[str, ...]
    is_active: bool
    policy: DeliveryPolicy
    payload: PayloadOptions
    consecutive_failures: int
    disabled_reason: str | None
    last_triggered_at: dt.datetime | None
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None = None
    previous_secret_until: dt.datetime | None = None
    secrets: SigningSecrets | None = field(default=None, repr=False)

    @property
    def display_url(self) -> str:
        """The URL with credentials in userinfo or query replaced by ***."""
        return redact(self.url)


# ---- validation ------------------------------------------------------------------------


def validate_url(url: str, address_policy: AddressPolicy | None = None) -> str:
    """Refuse URLs that can never be delivered to, early and with a clear message.

    The SSRF guard at connect time is the real protection; this only catches the obvious
    (an IP literal in a blocked range) when the endpoint is saved, where the operator sees it.
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("endpoint URL is not a valid URL") from None
    if kind_for_url(url) != "webhook":  # slack:// etc. are notification routes: `hub notify add-route`
        raise ValidationError("endpoint URL must start with http:// or https://")
    if not parts.hostname:
        raise ValidationError("endpoint URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("endpoint URL must not carry user:password@ (use the signature to authenticate us)")
    if parts.fragment:
        raise ValidationError("endpoint URL must not have a #fragment")
    if port == 0:
        raise ValidationError("endpoint URL has port 0")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None:
        reason = (address_policy or AddressPolicy.from_env()).check(literal)
        if reason is not None:
            raise ValidationError(f"endpoint URL points at {literal} ({reason}); deliveries there are blocked")
    return url


MAX_NAME = 200


def _name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or not name.isprintable():
        raise ValidationError("endpoint name must be non-blank printable text")
    if len(name) > MAX_NAME:
        raise ValidationError(f"endpoint name must be at most {MAX_NAME} characters")
    return name


def check_destination(url: str, address_policy: AddressPolicy | None = None) -> str | None:
    """`validate_url`, and then the host name resolved now: refused (`ValidationError`)
    when it resolves to an address the SSRF policy blocks, so a person saving
    ``http://localhost/`` or a name pointing into the private network is told at once,
    not by a log of failed attempts. Returns a warning (saving is still fine) when the
    name does not resolve at all. The connect-time guard (ssrf.py) stays the protection:
    a name can resolve differently later."""
    policy = address_policy or AddressPolicy.from_env()
    url = validate_url(url, policy)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None  # a literal: validate_url judged it
    except ValueError:
        pass
    addresses = ssrf.resolve_now(host, parts.port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        return f"{host} does not resolve right now: deliveries will fail until it does"
    for address in addresses:
        reason = policy.check(address)
        if reason is not None:
            raise ValidationError(f"endpoint URL's host {host} resolves to {address} ({reason}); deliveries there are blocked")
    return None


def validate_events(events: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in events:
        name = name.strip()
        if not name:
            continue
        if name != WILDCARD and name not in EVENT_TYPES:
            raise ValidationError(f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)} (or * for all)")
        if name not in out:
            out.append(name)
    if not out:
        raise ValidationError("an endpoint must subscribe to at least one event type (or * for all)")
    return out


# ---- reading ---------------------------------------------------------------------------


def _endpoint(row: Any, keyring: Keyring | None) -> Endpoint:
    secrets = None
    if keyring is not None and row.secret is not None:
        secrets = SigningSecrets.from_stored(keyring.decrypt(row.secret, SECRET_PURPOSE))
    return Endpoint(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        url=row.url,
        events=tuple(row.events or ()),
        is_active=row.is_active,
        policy=DeliveryPolicy.from_json(row.retry_policy),
        payload=PayloadOptions.from_json(row.payload_options),
        consecutive_failures=row.consecutive_failures,
        disabled_reason=row.disabled_reason,
        last_triggered_at=row.last_triggered_at,
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        previous_secret_until=row.previous_secret_until,
        secrets=secrets,
    )


def _outbound():
    return sa.select(webhook_endpoint).where(webhook_endpoint.c.direction == "outbound")


def get_endpoint(
    conn: Connection, endpoint_id: int, keyring: Keyring | None = None, *, lock: bool = False, company_id: int | None = None
) -> Endpoint:
    """One outbound endpoint; with a keyring its secrets are decrypted (repr stays masked).
    With `company_id`, another company's endpoint is not found."""
    query = _outbound().where(webhook_endpoint.c.id == endpoint_id)
    if company_id is not None:
        query = query.where(webhook_endpoint.c.company_id == company_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no outbound webhook endpoint {endpoint_id}")
    return _endpoint(row, keyring)


def list_endpoints(conn: Connection, company_id: int | None = None) -> list[Endpoint]:
    query = _outbound().order_by(webhook_endpoint.c.id)
    if company_id is not None:
        query = query.where(webhook_endpoint.c.company_id == company_id)
    return [_endpoint(row, None) for row in conn.execute(query)]


# ---- writing ---------------------------------------------------------------------------


def add_endpoint(
    conn: Connection,
    keyring: Keyring,
    *,
    company_id: int,
    name: str,
    url: str,
    events: Sequence[str],
    retry_policy: dict[str, Any] | None = None,
    payload_options: dict[str, Any] | None = None,
    secret: str | None = None,
    address_policy: AddressPolicy | None = None,
) -> tuple[int, str]:
    """Create an endpoint; returns its id and its signing secret (show it once).

    `secret` lets an operator bring an existing ``whsec_`` secret (a migration from another
    sender); by default a new 24-byte one is generated.
    """
    name = _name(name)
    url = validate_url(url, address_policy)
    subscribed = validate_events(events)
    policy = DeliveryPolicy.from_json(retry_policy)
    payload = PayloadOptions.from_json(payload_options)
    if secret is not None:
        try:
            sign_standard(secret, "msg_check", 0, b"")
        except ValueError as exc:
            raise ValidationError(f"secret: {exc}") from None
    secret = secret or generate_standard_secret()
    assert_keyring_covers(conn, keyring)
    try:
        with conn.begin_nested():
            endpoint_id = conn.scalar(
                sa.insert(webhook_endpoint)
                .values(
                    company_id=company_id,
                    direction="outbound",
                    name=name,
                    url=url,
                    secret=keyring.encrypt(SigningSecrets(secret).to_stored(), SECRET_PURPOSE),
                    events=subscribed,
                    retry_policy=policy.overrides(),
                    payload_options=payload.to_json(),
                )
                .returning(webhook_endpoint.c.id)
            )
    except IntegrityError:
        raise ValidationError(f"company {company_id} already has an endpoint named '{name}' (or the company does not exist)") from None
    return endpoint_id, secret


def rotate_secret(
    conn: Connection, keyring: Keyring, endpoint_id: int, grace_s: float = DEFAULT_GRACE_S, *, company_id: int | None = None
) -> tuple[str, float | None]:
    """A new current secret; the old one also signs until the returned time (unix s; None
    when `grace_s` is 0). Returns the new secret: show it once. The rotation time and the
    end of the grace are also kept in plain columns, for display."""
    endpoint = get_endpoint(conn, endpoint_id, keyring, lock=True, company_id=company_id)
    if endpoint.secrets is None:
        raise ValidationError(f"endpoint {endpoint_id} has no secret to rotate")
    try:
        rotated = endpoint.secrets.rotated(grace_s)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    assert_keyring_covers(conn, keyring)
    conn.execute(
        sa.update(webhook_endpoint)
        .where(webhook_endpoint.c.id == endpoint_id)
        .values(
            secret=keyring.encrypt(rotated.to_stored(), SECRET_PURPOSE),
            secret_rotated_at=sa.func.now(),
            previous_secret_until=(
                dt.datetime.fromtimestamp(rotated.previous_until, dt.timezone.utc) if rotated.previous_until else None
            ),
        )
    )
    return rotated.current, rotated.previous_until


def update_endpoint(
    conn: Connection,
    endpoint_id: int,
    *,
    name: str | None = None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    retry_policy: dict[str, Any] | None = None,
    payload_options: dict[str, Any] | None = None,
    address_policy: AddressPolicy | None = None,
    company_id: int | None = None,
) -> Endpoint:
    """Change what is given; the dispatcher picks changes up on the next claim."""
    endpoint = get_endpoint(conn, endpoint_id, lock=True, company_id=company_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if url is not None:
        values["url"] = validate_url(url, address_policy)
    if events is not None:
        values["events"] = validate_events(events)
    if retry_policy is not None:
        values["retry_policy"] = DeliveryPolicy.from_json(retry_policy).overrides()
    if payload_options is not None:
        values["payload_options"] = PayloadOptions.from_json(payload_options).to_json()
    if values:
        try:
            with conn.begin_nested():
                conn.execute(sa.update(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id).values(**values))
        except IntegrityError:
            raise ValidationError(f"this company already has an endpoint named '{values['name']}'") from None
    return get_endpoint(conn, endpoint.id)


def set_active(
    conn: Connection, endpoint_id: int, active: bool, reason: str | None = None, *, company_id: int | None = None
) -> int:
    """Enable (clears the failure streak) or disable (closes pending attempts as failed);
    returns the number of pending attempts closed."""
    get_endpoint(conn, endpoint_id, lock=True, company_id=company_id)
    if active:
        conn.execute(
            sa.update(webhook_endpoint)
            .where(webhook_endpoint.c.id == endpoint_id)
            .values(is_active=True, disabled_reason=None, consecutive_failures=0)
        )
        return 0
    why = reason or "disabled by an operator"
    conn.execute(
        sa.update(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id).values(is_active=False, disabled_reason=why)
    )
    closed = conn.execute(
        sa.update(webhook_delivery)
        .where(webhook_delivery.c.endpoint_id == endpoint_id, webhook_delivery.c.status == "pending")
        .values(status="failed", error=f"not sent: endpoint disabled ({why})", next_attempt_at=None)
    )
    return closed.rowcount


# ---- delivery log and replay -----------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    endpoint_id: int
    endpoint_name: str
    outbox_event_id: int
    event_type: str
    attempt: int
    message_id: str
    status: str
    response_code: int | None
    duration_ms: int | None
    error: str | None
    response_body: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None


def list_deliveries(
    conn: Connection,
    *,
    endpoint_id: int | None = None,
    company_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[DeliveryRow]:
    """Recent attempts, newest first. ``next_attempt_at`` is when a pending attempt is due,
    or when a closed one was made (see queue.py)."""
    d, e, o = webhook_delivery, webhook_endpoint, outbox_event
    query = (
        sa.select(
            d.c.id, d.c.endpoint_id, e.c.name.label("endpoint_name"), d.c.outbox_event_id, o.c.event_type, d.c.attempt,
            d.c.message_id, d.c.status, d.c.response_code, d.c.duration_ms, d.c.error, d.c.response_body, d.c.created_at,
            d.c.next_attempt_at,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .join(o, o.c.id == d.c.outbox_event_id)
        .order_by(d.c.id.desc())
        .limit(max(1, min(limit, 1000)))
    )
    if endpoint_id is not None:
        query = query.where(d.c.endpoint_id == endpoint_id)
    if company_id is not None:
        query = query.where(e.c.company_id == company_id)
    if status is not None:
        query = query.where(d.c.status == status)
    return [DeliveryRow(**row._mapping) for row in conn.execute(query)]


_REPLAY_FAILED = sa.text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (d.outbox_event_id) d.outbox_event_id, d.attempt, d.message_id, d.status
        FROM webhook_delivery d JOIN outbox_event o ON o.id = d.outbox_event_id
        WHERE d.endpoint_id = :endpoint_id AND o.created_at >= :since AND o.created_at < :until
        ORDER BY d.outbox_event_id, d.attempt DESC
    )
    INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at)
    SELECT :endpoint_id, outbox_event_id, attempt + 1, message_id, 'pending', now() FROM latest WHERE status = 'failed'
    ON CONFLICT DO NOTHING
    """
)
_REPLAY_MISSING = sa.text(
    f"""
    INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at)
    SELECT :endpoint_id, o.id, 1, {NEW_MESSAGE_ID_SQL}, 'pending', now()
    FROM outbox_event o
    WHERE o.company_id = :company_id AND o.created_at >= :since AND o.created_at < :until
      AND o.dispatched_at IS NOT NULL
      AND (CAST(:events AS jsonb) ? o.event_type OR CAST(:events AS jsonb) ? '*')
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.endpoint_id = :endpoint_id AND d.outbox_event_id = o.id)
    ON CONFLICT DO NOTHING
    """
)


def replay(
    conn: Connection, endpoint_id: int, since: dt.datetime, until: dt.datetime | None = None, *, include_missing: bool = False
) -> int:
    """Send again every event emitted in ``[since, until)`` whose delivery to this endpoint
    ended failed: one new attempt each, due now, with the **same** ``webhook-id`` so the
    receiver can tell a replay from a new event. With `include_missing`, events of
    subscribed types that never got a delivery to this endpoint (emitted while it was
    disabled) are sent too, under new ids. Returns the number of attempts scheduled.
    """
    until = until or dt.datetime.now(dt.timezone.utc)
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationError("replay window times need a timezone")
    if until <= since:
        raise ValidationError("replay window is empty: --until must be after --since")
    if until - since > MAX_REPLAY_WINDOW:
        raise ValidationError(f"replay window is longer than {MAX_REPLAY_WINDOW.days} days; replay in parts")
    endpoint = get_endpoint(conn, endpoint_id, lock=True)
    if not endpoint.is_active:
        raise ValidationError(f"endpoint {endpoint_id} is disabled ({endpoint.disabled_reason}); enable it before replaying")
    params = {"endpoint_id": endpoint_id, "since": since, "until": until}
    count = conn.execute(_REPLAY_FAILED, params).rowcount
    if include_missing:
        count += conn.execute(
            _REPLAY_MISSING, {**params, "company_id": endpoint.company_id, "events": json.dumps(list(endpoint.events))}
        ).rowcount
    if count:
        conn.execute(sa.text("SELECT pg_notify('hub_webhook_due', '')"))
    return count


def delete_endpoint(conn: Connection, endpoint_id: int, *, company_id: int | None = None) -> Endpoint:
    """Remove the endpoint with its delivery log (the rows cascade); returns what it was.
    Events already emitted stay in the outbox for the other subscribers."""
    endpoint = get_endpoint(conn, endpoint_id, lock=True, company_id=company_id)
    conn.execute(sa.delete(webhook_endpoint).where(webhook_endpoint.c.id == endpoint.id))
    return endpoint


def replay_delivery(conn: Connection, endpoint_id: int, outbox_event_id: int, *, company_id: int | None = None) -> int:
    """Send one event to this endpoint again, now: a new attempt (number: the last one's +1)
    with the **same** ``webhook-id``, whatever the earlier attempts ended with (a receiver
    that lost a delivery it had acknowledged can ask for it again). Refused while an
    attempt of it is still pending (scheduled or in flight) and when the endpoint is
    disabled. Returns the new attempt's number. It is one attempt: when it fails, it is not
    retried beyond the endpoint's schedule."""
    endpoint = get_endpoint(conn, endpoint_id, lock=True, company_id=company_id)
    if not endpoint.is_active:
        raise ValidationError(f"endpoint '{endpoint.name}' is disabled; enable it before replaying")
    d = webhook_delivery
    rows = conn.execute(
        sa.select(d.c.attempt, d.c.message_id, d.c.status)
        .where(d.c.endpoint_id == endpoint.id, d.c.outbox_event_id == outbox_event_id)
        .order_by(d.c.attempt.desc())
    ).all()
    if not rows:
        raise NotFoundError(f"endpoint {endpoint.id} has no delivery of event {outbox_event_id}")
    if any(row.status == "pending" for row in rows):
        raise ValidationError("an attempt of this delivery is still pending; wait for it before replaying")
    attempt = rows[0].attempt + 1
    conn.execute(
        sa.insert(d).values(endpoint_id=endpoint.id, outbox_event_id=outbox_event_id, attempt=attempt,
                            message_id=rows[0].message_id, status="pending", next_attempt_at=sa.func.now())
    )
    conn.execute(sa.text("SELECT pg_notify('hub_webhook_due', '')"))
    return attempt


TEST_EVENT = "webhook.test"


def send_test(conn: Connection, endpoint_id: int, *, company_id: int | None = None) -> int:
    """A ``webhook.test`` event to this one endpoint, through the dispatcher's real path:
    an outbox event (already marked dispatched, so fan-out does not send it to the
    company's other endpoints) and attempt 1 due now, signed, retried and logged like any
    delivery, whatever the endpoint subscribes to. Returns the event id."""
    endpoint = get_endpoint(conn, endpoint_id, lock=True, company_id=company_id)
    if not endpoint.is_active:
        raise ValidationError(f"endpoint '{endpoint.name}' is disabled; enable it before sending a test")
    check_event_type(TEST_EVENT)
    payload = {"message": "test event from the webhooks settings page", "endpoint_id": endpoint.id,
               "sent_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    event_id = conn.scalar(
        sa.insert(outbox_event)
        .values(company_id=endpoint.company_id, event_type=TEST_EVENT, payload=payload, dispatched_at=sa.func.now())
        .returning(outbox_event.c.id)
    )
    conn.execute(
        sa.text(
            "INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at) "
            f"VALUES (:endpoint_id, :event_id, 1, {NEW_MESSAGE_ID_SQL}, 'pending', now())"
        ),
        {"endpoint_id": endpoint.id, "event_id": event_id},
    )
    conn.execute(sa.text("SELECT pg_notify('hub_webhook_due', '')"))
    return event_id
