"""Dead letters: verified webhooks the receiver refused with a 4xx because no retry could make
them storable (hub/inbound/payload.py says which), kept so that nothing a provider sent is
lost. One row per refused body and integration: the body byte for byte, the headers without
credentials, the provider, integration and endpoint, why, when, and how many times it came
(providers retry a refusal: Stripe for days; each retry is an attempt, not a new row).

Only verified requests are kept (a wrong signature is anyone's bytes, not ours to store).
`hub webhooks dead-letters` lists them for an operator; `replay` reads a dead letter again
with today's code (after a fix: a provider's parser that learnt a new shape, a limit
raised) and stores its events as the receiver would have, deduplicated as usual, or says
why it is still refused. A replay is not verified again: the body was verified when it came.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.inbound.ingest import Delivery, store_batch
from hub.inbound.payload import Refused, message_id, read, storable
from hub.inbound.verify import InboundRequest
from hub.schema import inbound_dead_letter, integration

MAX_LIMIT = 1000
# headers that carry a credential rather than describe the request: never kept. A signature
# (X-Uber-Signature, Stripe-Signature, webhook-signature) is not one: it proves the body, and
# keeping it lets anyone check the dead letter is what the provider signed.
_SECRET_HEADERS = re.compile(r"authorization|cookie|token|secret|password|passwd|api[-_]?key|credential|session", re.I)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    integration_id: int
    provider: str
    reason: str
    detail: str
    received_at: datetime
    attempts: int
    last_received_at: datetime
    replayed_at: datetime | None
    replay_result: str | None
    body: bytes = field(repr=False)
    headers: dict = field(repr=False)


def public_headers(headers: Mapping[str, str], credential_header: str | None = None) -> dict[str, str]:
    """The request's headers without credentials: Authorization and the like, anything named
    like a token or secret, and the endpoint's own static-credential header (DoorDash's and
    Procore's may be named anything)."""
    hidden = credential_header.lower() if credential_header else None
    kept = {name: value for name, value in headers.items()
            if not _SECRET_HEADERS.search(name) and name.lower() != hidden}
    return storable(kept)[0]


def record(conn: Connection, *, integration_id: int, endpoint_id: int | None, provider: str, reason: str, detail: str,
           body: bytes, headers: Mapping[str, str], credential_header: str | None = None) -> int:
    """Keep one refused request; its id. The same body again for the same integration (a
    provider retrying it) is one more attempt on the same dead letter, with the latest
    headers and reason, and waits for a replay again."""
    values = dict(integration_id=integration_id, endpoint_id=endpoint_id, provider=provider, reason=reason,
                  detail=storable(detail)[0][:1000], body=body, body_sha256=hashlib.sha256(body).digest(),
                  headers=public_headers(headers, credential_header))
    insert = postgresql.insert(inbound_dead_letter).values(**values)
    return conn.scalar(insert.on_conflict_do_update(
        index_elements=[inbound_dead_letter.c.integration_id, inbound_dead_letter.c.body_sha256],
        set_={"attempts": inbound_dead_letter.c.attempts + 1, "last_received_at": sa.func.now(),
              "reason": insert.excluded.reason, "detail": insert.excluded.detail, "headers": insert.excluded.headers,
              "endpoint_id": insert.excluded.endpoint_id, "replayed_at": None, "replay_result": None},
    ).returning(inbound_dead_letter.c.id))


def recent(conn: Connection, integration_id: int | None = None, limit: int = 20) -> list[DeadLetter]:
    """The newest dead letters (received_at, then id, descending), of one integration if given."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1..{MAX_LIMIT}")
    query = sa.select(*_COLUMNS).order_by(inbound_dead_letter.c.received_at.desc(), inbound_dead_letter.c.id.desc()).limit(limit)
    if integration_id is not None:
        if conn.scalar(sa.select(integration.c.id).where(integration.c.id == integration_id)) is None:
            raise NotFoundError(f"no integration {integration_id}")
        query = query.where(inbound_dead_letter.c.integration_id == integration_id)
    return [DeadLetter(*row) for row in conn.execute(query)]


def get(conn: Connection, dead_letter_id: int, *, for_update: bool = False) -> DeadLetter:
    query = sa.select(*_COLUMNS).where(inbound_dead_letter.c.id == dead_letter_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFoundError(f"no dead letter {dead_letter_id}")
    return DeadLetter(*row)


@dataclass(frozen=True)
class Replayed:
    stored: int
    duplicates: int
    refused: str | None = None  # why it is still refused (then nothing was stored)


def replay(conn: Connection, dead_letter_id: int) -> Replayed:
    """Read the dead letter's body again with today's code and store its events in the
    caller's transaction (deduplicated: an event stored meanwhile counts as a duplicate),
    recording the outcome on the dead letter; a body still refused stores nothing."""
    letter = get(conn, dead_letter_id, for_update=True)
    headers = {name.lower(): value for name, value in letter.headers.items()}
    request = InboundRequest(body=letter.body, headers=headers, url="", content_type=headers.get("content-type", ""))
    try:
        events = read(letter.provider, letter.body, request.content_type, message_id(letter.provider, request)).events
        driver: psycopg.Connection = conn.connection.driver_connection  # the same transaction
        [result] = store_batch(driver, [Delivery(letter.integration_id, letter.provider, events)])
    except Refused as exc:
        outcome = Replayed(0, 0, f"{exc.reason}: {exc.detail}")
        note = f"still refused, {outcome.refused}"
    else:
        outcome = Replayed(result.stored, result.duplicates)
        note = f"stored {result.stored} event(s), {result.duplicates} already stored"
    conn.execute(sa.update(inbound_dead_letter).where(inbound_dead_letter.c.id == dead_letter_id).values(
        replayed_at=sa.func.now() if outcome.refused is None else None, replay_result=note))
    return outcome


_COLUMNS = (inbound_dead_letter.c.id, inbound_dead_letter.c.integration_id, inbound_dead_letter.c.provider,
            inbound_dead_letter.c.reason, inbound_dead_letter.c.detail, inbound_dead_letter.c.received_at,
            inbound_dead_letter.c.attempts, inbound_dead_letter.c.last_received_at, inbound_dead_letter.c.replayed_at, inbound_dead_letter.c.replay_result, inbound_dead_letter.c.body,
            inbound_dead_letter.c.headers)
