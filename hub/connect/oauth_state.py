"""The `state` of an OAuth connect, kept in the database (table `oauth_state`) so that it is
unguessable, bound to the browser session that started it, single-use and short-lived
(RFC 9700 section 4.7), whichever web worker answers the callback.

- `begin` stores a new flow: the SHA-256 of the state (the value itself goes only to the
  provider and back), the SHA-256 of the session id, user, company, provider, the
  integration being reconnected, and the PKCE verifier encrypted with the keyring.
- `consume` takes it on the callback in one `UPDATE ... WHERE consumed_at IS NULL AND
  created_at > now() - 10 minutes AND <same session, user, company> RETURNING`: of two
  callbacks racing with one state exactly one gets the row. When none is returned, `why_not`
  reads the row to say why (unknown, used, expired, another session).
- A grant that reaches several accounts waits in `pending` (encrypted) for the person's pick;
  `take_pending` claims it the same way (once, within 10 minutes of the callback).
- `purge` drops flows older than a day (run at each `begin`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.crypto import Keyring
from hub.schema import oauth_state
from hub.stored_secrets import assert_keyring_covers, purpose

TTL = timedelta(minutes=10)
KEEP = timedelta(days=1)
VERIFIER_PURPOSE = purpose(oauth_state, "code_verifier")
PENDING_PURPOSE = purpose(oauth_state, "pending")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Owner:
    """Who may finish a flow: the browser session, its user and the company they act for."""

    session_id: str = field(repr=False)
    user_id: int
    company_id: int


@dataclass(frozen=True)
class Flow:
    id: int
    provider: str
    company_id: int
    user_id: int
    integration_id: int | None
    integration_name: str | None
    code_verifier: str | None = field(default=None, repr=False)


def begin(conn: Connection, keyring: Keyring, *, state: str, owner: Owner, provider: str, integration_id: int | None = None,
          integration_name: str | None = None, code_verifier: str | None = None) -> int:
    purge(conn)
    if code_verifier is not None:
        assert_keyring_covers(conn, keyring)
    return conn.scalar(sa.insert(oauth_state).values(
        state_hash=digest(state), session_hash=digest(owner.session_id), user_id=owner.user_id, company_id=owner.company_id,
        provider=provider, integration_id=integration_id, integration_name=integration_name,
        code_verifier=keyring.encrypt({"v": code_verifier}, VERIFIER_PURPOSE) if code_verifier is not None else None,
    ).returning(oauth_state.c.id))


def _owned(owner: Owner):
    return sa.and_(oauth_state.c.session_hash == digest(owner.session_id), oauth_state.c.user_id == owner.user_id,
                   oauth_state.c.company_id == owner.company_id)


def _flow(row: Any, keyring: Keyring) -> Flow:
    verifier = keyring.decrypt(row.code_verifier, VERIFIER_PURPOSE)["v"] if row.code_verifier is not None else None
    return Flow(row.id, row.provider, row.company_id, row.user_id, row.integration_id, row.integration_name, verifier)


def consume(conn: Connection, keyring: Keyring, state: str, owner: Owner) -> Flow | None:
    """The flow of `state` if this owner may finish it now, marked used in the same
    statement; None otherwise (see `why_not`)."""
    row = conn.execute(
        sa.update(oauth_state)
        .where(oauth_state.c.state_hash == digest(state), oauth_state.c.consumed_at.is_(None),
               oauth_state.c.created_at > sa.func.now() - TTL, _owned(owner))
        .values(consumed_at=sa.func.now())
        .returning(*oauth_state.c)
    ).first()
    return _flow(row, keyring) if row is not None else None


def why_not(conn: Connection, state: str, owner: Owner) -> str:
    """Why `consume` returned nothing, in words for the page."""
    row = conn.execute(sa.select(oauth_state.c.consumed_at, oauth_state.c.created_at, _owned(owner).label("owned"),
                                 (oauth_state.c.created_at <= sa.func.now() - TTL).label("expired"))
                       .where(oauth_state.c.state_hash == digest(state))).first()
    if row is None:
        return "This connection attempt is not one this hub started (unknown state). Nothing was stored; start again."
    if not row.owned:
        return "This connection attempt was started in another browser session. Nothing was stored; start again from here."
    if row.consumed_at is not None:
        return "This connection attempt was already used (a reloaded or replayed page). Nothing more was stored."
    if row.expired:
        return "This connection attempt expired (10 minutes). Nothing was stored; start again."
    return "This connection attempt cannot be finished. Nothing was stored; start again."


def hold(conn: Connection, keyring: Keyring, flow_id: int, pending: dict[str, Any]) -> None:
    """Keep the exchanged grant until the person picks the account (encrypted)."""
    assert_keyring_covers(conn, keyring)
    conn.execute(sa.update(oauth_state).where(oauth_state.c.id == flow_id)
                 .values(pending=keyring.encrypt(pending, PENDING_PURPOSE)))


def _pending_query(flow_id: int, owner: Owner):
    return sa.and_(oauth_state.c.id == flow_id, oauth_state.c.pending.is_not(None), oauth_state.c.picked_at.is_(None),
                   oauth_state.c.consumed_at > sa.func.now() - TTL, _owned(owner))


def peek_pending(conn: Connection, keyring: Keyring, flow_id: int, owner: Owner) -> tuple[Flow, dict[str, Any]] | None:
    """The flow and its waiting grant, without using it (the pick page)."""
    row = conn.execute(sa.select(oauth_state).where(_pending_query(flow_id, owner))).first()
    return (_flow(row, keyring), keyring.decrypt(row.pending, PENDING_PURPOSE)) if row is not None else None


def take_pending(conn: Connection, keyring: Keyring, flow_id: int, owner: Owner) -> tuple[Flow, dict[str, Any]] | None:
    """The waiting grant, claimed once (the pick's POST); the stored copy is erased."""
    row = conn.execute(sa.update(oauth_state).where(_pending_query(flow_id, owner))
                       .values(picked_at=sa.func.now()).returning(*oauth_state.c)).first()
    if row is None:
        return None
    conn.execute(sa.update(oauth_state).where(oauth_state.c.id == flow_id).values(pending=sa.null()))
    return _flow(row, keyring), keyring.decrypt(row.pending, PENDING_PURPOSE)


def purge(conn: Connection) -> int:
    """Forget flows older than a day (used, expired or abandoned)."""
    return conn.execute(sa.delete(oauth_state).where(oauth_state.c.created_at < sa.func.now() - KEEP)).rowcount
