"""The delivery queue in PostgreSQL: fan-out, claims with leases, recording outcomes.

The model (no table beyond the existing schema):

* **Fan-out.** A committed, undispatched `outbox_event` gets one `webhook_delivery` row per
  subscribed active outbound endpoint: attempt 1, ``status = 'pending'``, due now, with a
  new random ``message_id`` (the ``webhook-id``). The same transaction sets
  ``outbox_event.dispatched_at``. Events are taken with ``FOR UPDATE SKIP LOCKED``, so
  several workers fan out different events and an event is fanned out once.
* **Claim = lease.** A worker takes due pending rows with ``FOR UPDATE SKIP LOCKED`` and,
  in the same autocommitted statement, moves their ``next_attempt_at`` to ``now() +
  lease``. No transaction stays open during HTTP; other workers stop seeing the rows as
  due the moment the claim commits, so two workers never send the same attempt. If the
  worker dies mid-delivery, the row becomes due again when the lease runs out and another
  worker sends it: at least once, with the same ``webhook-id`` (it is the same row).
* **Fencing.** The ``next_attempt_at`` a claim wrote is its lease token: closing a row
  requires ``status = 'pending' AND next_attempt_at = <token>``. A worker that stalled past
  its lease and lost the row to another worker cannot overwrite that worker's result.
* **Close + schedule, one transaction.** The attempt's row gets its final status, response
  code, duration, capped response body and error; if the policy has a retry left, attempt
  n+1 is inserted as pending (same ``message_id``) in the same transaction. A crash
  between sending and this commit means the attempt is made again, never lost.
* **Columns as used:** ``created_at`` is when the attempt was scheduled; ``next_attempt_at``
  is when a pending attempt is due (or its lease expires while in flight) and, once the
  attempt is closed, when it was actually made. The next attempt's due time is on the
  next row.

Per-endpoint fairness: a claim skips endpoints whose in-worker queue is full and takes at
most ``room`` rows per endpoint (a window function over the earliest due candidates), so
an endpoint with a large backlog cannot fill a claim and starve the others. Candidates are
read without locks; only the picked rows are locked (``SKIP LOCKED``, re-checked as still
pending and due), so a claim costs locks for what it takes, not for what it looked at.
Two workers that pick the same rows split them: one locks, the other skips.

All SQL here is plain psycopg (async): the dispatcher's hot path runs a few statements
per batch of deliveries, not per delivery.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import psycopg

from hub.outbound.endpoints import NEW_MESSAGE_ID_SQL, close_pending_sql

__all__ = ["Claimed", "Closing", "Retry", "EndpointTally", "claim", "fan_out", "release", "record"]

DUE_CHANNEL = "hub_webhook_due"

_FAN_OUT = f"""
WITH ev AS (
    SELECT id, company_id, event_type FROM outbox_event
    WHERE dispatched_at IS NULL
    ORDER BY created_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), ins AS (
    INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at)
    SELECT e.id, ev.id, 1, {NEW_MESSAGE_ID_SQL}, 'pending', now()
    FROM ev JOIN webhook_endpoint e
      ON e.company_id = ev.company_id AND e.direction = 'outbound' AND e.is_active
     AND (e.events ? ev.event_type OR e.events ? '*')
    ON CONFLICT DO NOTHING
    RETURNING 1
), upd AS (
    UPDATE outbox_event o SET dispatched_at = now() FROM ev WHERE o.id = ev.id RETURNING 1
)
SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),
       CASE WHEN (SELECT count(*) FROM ins) > 0 THEN pg_notify('{DUE_CHANNEL}', '') END
"""

_CLAIM = """
WITH cand AS (
    SELECT d.id, d.endpoint_id, d.next_attempt_at
    FROM webhook_delivery d JOIN webhook_endpoint e ON e.id = d.endpoint_id AND e.is_active
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND NOT (d.endpoint_id = ANY(%(full)s))
    ORDER BY d.next_attempt_at
    LIMIT %(scan)s
), ranked AS (
    SELECT id, endpoint_id, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS rn FROM cand
), picked AS (
    SELECT r.id FROM ranked r JOIN webhook_endpoint e ON e.id = r.endpoint_id
    WHERE r.rn <= COALESCE((%(room)s::jsonb ->> r.endpoint_id::text)::int,
                           2 * COALESCE((e.retry_policy ->> 'concurrency')::int, %(concurrency)s))
    ORDER BY r.rn
    LIMIT %(limit)s
), locked AS (
    SELECT d.id FROM webhook_delivery d
    WHERE d.id IN (SELECT id FROM picked) AND d.status = 'pending' AND d.next_attempt_at <= now()
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_delivery d SET next_attempt_at = now() + %(lease)s * interval '1 second'
FROM locked, webhook_endpoint e, outbox_event o
WHERE d.id = locked.id AND e.id = d.endpoint_id AND o.id = d.outbox_event_id
RETURNING d.id, d.endpoint_id, d.outbox_event_id, d.attempt, d.message_id, d.next_attempt_at,
          e.company_id, e.name, e.url, e.secret, e.retry_policy, e.payload_options,
          o.event_type, o.payload, o.created_at
"""

_CLOSE = """
UPDATE webhook_delivery d
SET status = v.status, response_code = v.code, duration_ms = v.ms, response_body = v.body, error = v.error,
    next_attempt_at = v.attempted_at
FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::int[], %s::int[], %s::text[], %s::text[], %s::timestamptz[])
     AS v(id, lease, status, code, ms, body, error, attempted_at)
WHERE d.id = v.id AND d.status = 'pending' AND d.next_attempt_at = v.lease
RETURNING d.id
"""

_TALLY = """
UPDATE webhook_endpoint e
SET consecutive_failures = CASE WHEN v.any_success THEN v.fails ELSE e.consecutive_failures + v.fails END,
    last_triggered_at = COALESCE(v.last_success, e.last_triggered_at)
FROM (SELECT * FROM unnest(%s::bigint[], %s::bool[], %s::int[], %s::timestamptz[]) AS u(id, any_success, fails, last_success)
      ORDER BY id) AS v
WHERE e.id = v.id
RETURNING e.id, e.consecutive_failures, e.last_triggered_at, e.is_active
"""

_STREAK_START = """
SELECT min(next_attempt_at) FROM webhook_delivery
WHERE endpoint_id = %s AND status = 'failed' AND next_attempt_at > COALESCE(%s, '-infinity'::timestamptz)
"""

_DISABLE = """
UPDATE webhook_endpoint SET is_active = false, disabled_reason = %(why)s
WHERE id = %(endpoint_id)s AND is_active RETURNING id
"""

_RETRY = f"""
INSERT INTO webhook_delivery (endpoint_id, outbox_event_id, attempt, message_id, status, next_attempt_at)
SELECT v.endpoint_id, v.event_id, v.attempt, v.message_id, 'pending', v.due
FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::text[], %s::timestamptz[]) AS v(endpoint_id, event_id, attempt, message_id, due)
JOIN webhook_endpoint e ON e.id = v.endpoint_id AND e.is_active
ON CONFLICT DO NOTHING
RETURNING CASE WHEN next_attempt_at <= now() THEN pg_notify('{DUE_CHANNEL}', '') END
"""

_RELEASE = """
UPDATE webhook_delivery d SET next_attempt_at = now()
FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, lease)
WHERE d.id = v.id AND d.status = 'pending' AND d.next_attempt_at = v.lease
"""


@dataclass(frozen=True)
class Claimed:
    """One leased attempt, with what is needed to send it."""

    id: int
    endpoint_id: int
    outbox_event_id: int
    attempt: int
    message_id: str
    lease: dt.datetime  # the fencing token: next_attempt_at as written by the claim
    company_id: int
    endpoint_name: str
    url: str = field(repr=False)
    secret: Any = field(repr=False)
    retry_policy: Any = None
    payload_options: Any = None
    event_type: str = ""
    payload: Any = field(default=None, repr=False)
    created_at: dt.datetime | None = None


async def fan_out(conn: psycopg.AsyncConnection, limit: int = 500) -> tuple[int, int]:
    """Fan out up to `limit` events in one transaction: (events, deliveries created)."""
    async with conn.transaction():
        row = await (await conn.execute(_FAN_OUT, {"limit": limit})).fetchone()
    return int(row[0]), int(row[1])


async def claim(
    conn: psycopg.AsyncConnection,
    *,
    limit: int,
    lease_s: float,
    full: Sequence[int] = (),
    room: dict[int, int] | None = None,
    default_concurrency: int = 8,
) -> list[Claimed]:
    """Lease up to `limit` due attempts (autocommitted: the lease is visible at once)."""
    if limit <= 0:
        return []
    params = {
        "limit": limit,
        "scan": max(limit * 4, 200),
        "lease": lease_s,
        "full": list(full),
        "room": json.dumps({str(k): v for k, v in (room or {}).items()}),
        "concurrency": default_concurrency,
    }
    async with conn.transaction():
        rows = await (await conn.execute(_CLAIM, params)).fetchall()
    return [Claimed(*row) for row in rows]


async def release(conn: psycopg.AsyncConnection, items: Sequence[tuple[int, dt.datetime]]) -> None:
    """Give leased but unsent attempts back (due now), e.g. when the worker stops."""
    if items:
        async with conn.transaction():
            await conn.execute(_RELEASE, ([i for i, _ in items], [lease for _, lease in items]))


@dataclass(frozen=True)
class Closing:
    """The outcome of one attempt, to be written."""

    id: int
    lease: dt.datetime
    status: str  # succeeded | failed
    code: int | None
    duration_ms: int
    body: str | None
    error: str | None
    attempted_at: dt.datetime


@dataclass(frozen=True)
class Retry:
    closing_id: int
    endpoint_id: int
    event_id: int
    attempt: int
    message_id: str
    due: dt.datetime


@dataclass
class EndpointTally:
    """One endpoint's results within a batch, in completion order."""

    any_success: bool = False
    trailing_failures: int = 0  # failures after the batch's last success
    last_success: dt.datetime | None = None


async def record(
    conn: psycopg.AsyncConnection,
    closings: Sequence[Closing],
    retries: Sequence[Retry],
    tallies: dict[int, EndpointTally],
    disable_now: dict[int, str],
) -> tuple[set[int], list[tuple[int, int, dt.datetime | None, bool]]]:
    """Write a batch of outcomes in one transaction.

    Returns the ids actually closed (others had lost their lease) and, per endpoint, its
    (id, consecutive_failures, last_triggered_at, is_active) after the batch, for the caller's
    auto-disable check. Endpoints in `disable_now` (410) are disabled here, before retries
    are scheduled, so a disabled endpoint gets no new attempt.
    """
    async with conn.transaction():
        cur = await conn.execute(
            _CLOSE,
            (
                [c.id for c in closings], [c.lease for c in closings], [c.status for c in closings],
                [c.code for c in closings], [c.duration_ms for c in closings], [c.body for c in closings],
                [c.error for c in closings], [c.attempted_at for c in closings],
            ),
        )
        closed = {row[0] for row in await cur.fetchall()}
        ids = sorted(tallies)
        cur = await conn.execute(
            _TALLY,
            (ids, [tallies[i].any_success for i in ids], [tallies[i].trailing_failures for i in ids], [tallies[i].last_success for i in ids]),
        )
        states = [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]
        for endpoint_id, why in sorted(disable_now.items()):
            await disable(conn, endpoint_id, why)
        due = [r for r in retries if r.closing_id in closed]
        if due:
            await conn.execute(
                _RETRY,
                ([r.endpoint_id for r in due], [r.event_id for r in due], [r.attempt for r in due], [r.message_id for r in due], [r.due for r in due]),
            )
    return closed, states


async def disable(conn: psycopg.AsyncConnection, endpoint_id: int, why: str) -> bool:
    """Disable an endpoint and close its pending attempts (in the caller's transaction)."""
    cur = await conn.execute(_DISABLE, {"endpoint_id": endpoint_id, "why": why})
    if await cur.fetchone() is None:
        return False
    await conn.execute(close_pending_sql, {"endpoint_id": endpoint_id, "why": f"not sent: endpoint disabled ({why})"})
    return True


async def streak_start(conn: psycopg.AsyncConnection, endpoint_id: int, last_success: dt.datetime | None) -> dt.datetime | None:
    """When the endpoint's current run of failed attempts began (None: no failure since
    its last success)."""
    row = await (await conn.execute(_STREAK_START, (endpoint_id, last_success))).fetchone()
    return row[0]
