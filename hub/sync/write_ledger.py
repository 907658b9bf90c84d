"""The idempotency ledger of writes to providers (`sync_write`) and the id map (`external_ref`).

Why: an HTTP write whose answer is lost (timeout, dropped connection, crash) may or may not
have happened at the provider. Resending it blindly can create a second vendor or bill;
giving up loses it. So every create/update goes through these steps (hub/sync/export.py):

1. `begin` inserts a `pending` row with a fresh request key (uuid4) and COMMITS it before the
   provider is called: if the process dies during the call, the row survives and says
   "outcome unknown".
2. The provider is called with the key: QuickBooks `?requestid=`, Xero `Idempotency-Key`.
   Both answer a repeated key with the first answer and do not write twice.
3. The outcome is written in ONE transaction with its effects: `succeed` (with the local
   row's provenance, `link` and sync_log progress, by the caller), or `fail` when the
   provider refused (it said no: nothing was written, the outcome is known).
4. A later run that finds a `pending` row for the record first looks the record up at the
   provider (by the same matching as a new record). Found: that is the outcome (`succeed`).
   Not found: if the record's payload is unchanged (`payload_hash`), it is resent with the
   SAME key (`resume`), so an unknown outcome never turns into a second remote record; if the
   payload changed, the old row is settled (`supersede`: closed as failed, with the reason)
   and a new write begins with a new key. A replay of the old key would answer with the old
   payload's result and the change would never be sent.

At most one row per record is `pending` (a unique partial index, migration 0003): `begin`
settles an older pending row of the record for another payload as superseded before it
inserts, so callers that begin anew after a changed payload keep working, while two writers
racing to begin the SAME write make the second fail on the index (`ConcurrentWrite`) rather
than send twice. Exports also hold a per-(integration, entity) advisory lock for the whole
run (hub/sync/export.py), so they never get there.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from hub.errors import HubError

from hub.schema import external_ref, sync_write


@dataclass(frozen=True)
class Write:
    id: int
    request_key: str
    operation: str
    payload_hash: str | None
    attempts: int


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _write(row: Any) -> Write:
    return Write(row.id, row.request_key, row.operation, row.payload_hash, row.attempts)


def pending(conn: Connection, integration_id: int, entity_type: str, local_id: int, operation: str | None = None) -> Write | None:
    """The newest write of this record whose outcome is unknown, if any."""
    query = sa.select(sync_write).where(
        sync_write.c.integration_id == integration_id, sync_write.c.entity_type == entity_type,
        sync_write.c.local_id == local_id, sync_write.c.status == "pending",
    )
    if operation is not None:
        query = query.where(sync_write.c.operation == operation)
    row = conn.execute(query.order_by(sync_write.c.id.desc()).limit(1)).first()
    return None if row is None else _write(row)


def pending_many(conn: Connection, integration_id: int, entity_type: str, local_ids: list[int],
                 operation: str | None = None) -> dict[int, Write]:
    """{local id: its pending write} for these records (one statement; at most one each)."""
    if not local_ids:
        return {}
    query = sa.select(sync_write).where(
        sync_write.c.integration_id == integration_id, sync_write.c.entity_type == entity_type,
        sync_write.c.local_id.in_(local_ids), sync_write.c.status == "pending")
    if operation is not None:
        query = query.where(sync_write.c.operation == operation)
    return {row.local_id: _write(row) for row in conn.execute(query.order_by(sync_write.c.id))}


SUPERSEDED = "superseded before its outcome was known: "


def supersede(conn: Connection, write: Write, reason: str) -> None:
    """Settle a pending write that will never be resumed (the record changed, or another write
    replaces it): closed as `failed` with `SUPERSEDED` + the reason, so nothing waits on it."""
    conn.execute(
        sa.update(sync_write).where(sync_write.c.id == write.id, sync_write.c.status == "pending")
        .values(status="failed", error=(SUPERSEDED + reason)[:1000], updated_at=sa.func.now())
    )


class ConcurrentWrite(HubError):
    """The same write of the same record is already pending: another run is sending it now
    (or a crashed one left it, and the caller should `resume` it instead of beginning anew)."""


def begin(engine: Engine, integration_id: int, entity_type: str, local_id: int, operation: str, payload: Any) -> Write:
    """Step 1: a pending row with a new key, committed before the provider is called.

    A pending row of the record for ANOTHER payload or operation is superseded in the same
    transaction: that write is being replaced, and the unique index allows one pending row.
    A pending row of the SAME operation and payload is not: beginning it again is what two
    runs racing on one record do (each would send it), so the index refuses the second and
    this raises `ConcurrentWrite`. (Exports take a lock so that they never race:
    hub/sync/export.py; this is the backstop.)"""
    digest = payload_hash(payload)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(sync_write).where(
                    sync_write.c.integration_id == integration_id, sync_write.c.entity_type == entity_type,
                    sync_write.c.local_id == local_id, sync_write.c.status == "pending",
                    sa.or_(sync_write.c.operation != operation, sync_write.c.payload_hash.is_distinct_from(digest)),
                ).values(status="failed", error=SUPERSEDED + f"a new {operation} of the record began", updated_at=sa.func.now())
            )
            row = conn.execute(
                sa.insert(sync_write).values(
                    integration_id=integration_id, entity_type=entity_type, local_id=local_id, operation=operation,
                    request_key=str(uuid.uuid4()), payload_hash=digest, attempts=1,
                ).returning(sync_write)
            ).one()
    except IntegrityError as exc:
        if "uq_sync_write_pending" not in str(exc.orig):
            raise
        raise ConcurrentWrite(f"a {operation} of {entity_type} {local_id} with the same content is already pending "
                              f"(integration {integration_id}); not sent twice") from None
    return _write(row)


def resume(engine: Engine, write: Write) -> Write:
    """Step 4: one more attempt of a pending write, with its original key (committed first)."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.update(sync_write).where(sync_write.c.id == write.id)
            .values(attempts=sync_write.c.attempts + 1, updated_at=sa.func.now()).returning(sync_write)
        ).one()
    return _write(row)


def succeed(conn: Connection, write: Write, remote_id: str, remote_version: str | None) -> None:
    conn.execute(
        sa.update(sync_write).where(sync_write.c.id == write.id)
        .values(status="succeeded", remote_id=remote_id, remote_version=remote_version, error=None, updated_at=sa.func.now())
    )


def fail(conn: Connection, write: Write, error: str) -> None:
    """The provider refused the write (so it did not happen): the row is closed."""
    conn.execute(
        sa.update(sync_write).where(sync_write.c.id == write.id)
        .values(status="failed", error=error[:1000], updated_at=sa.func.now())
    )


def remote_id_of(conn: Connection, integration_id: int, entity_type: str, local_id: int) -> str | None:
    return conn.scalar(sa.select(external_ref.c.remote_id).where(
        external_ref.c.integration_id == integration_id, external_ref.c.entity_type == entity_type,
        external_ref.c.local_id == local_id))


# two fixed statements with array parameters: a page of thousands of pairs costs the same
# to prepare as one (a VALUES list with a bind parameter per field took seconds to compile)
_LINK_DELETE = sa.text("""
    DELETE FROM external_ref e
    WHERE e.integration_id = :integration_id AND e.entity_type = :entity_type AND e.remote_id = ANY(CAST(:remote_ids AS text[]))
      AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:remote_ids AS text[]), CAST(:local_ids AS bigint[])) AS p(remote_id, local_id)
                      WHERE p.remote_id = e.remote_id AND p.local_id = e.local_id)
""")
_LINK_UPSERT = sa.text("""
    INSERT INTO external_ref (integration_id, entity_type, local_id, remote_id, remote_version)
    SELECT :integration_id, :entity_type, p.local_id, p.remote_id, p.remote_version
    FROM unnest(CAST(:local_ids AS bigint[]), CAST(:remote_ids AS text[]), CAST(:versions AS text[])) AS p(local_id, remote_id, remote_version)
    ON CONFLICT (integration_id, entity_type, local_id) DO UPDATE SET
        remote_id = excluded.remote_id, remote_version = excluded.remote_version, synced_at = now()
""")


def link(conn: Connection, integration_id: int, entity_type: str, pairs: list[tuple[int, str, str | None]]) -> None:
    """Record local id <-> remote id (and version) for (local_id, remote_id, version) pairs.
    A remote id held by another local row (a row since deleted or re-linked) moves to the new one."""
    if not pairs:
        return
    params = {"integration_id": integration_id, "entity_type": entity_type, "local_ids": [p[0] for p in pairs],
              "remote_ids": [p[1] for p in pairs], "versions": [p[2] for p in pairs]}
    conn.execute(_LINK_DELETE, params)
    conn.execute(_LINK_UPSERT, params)
