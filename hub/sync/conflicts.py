"""A person's side of sync conflicts: list them, settle one (`hub conflicts`).

The policy that opens them is hub/sync/merge.py; this module only settles what it recorded.
It is apart from merge.py because settling an invoice's `lines` conflict is the invoice
writer's business (hub/sync/invoices.py, which merges through merge.py): one entry point here
dispatches to it, so merge.py needs nothing from the writers that use it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.schema import customer, invoice, sync_conflict, vendor
from hub.sync.invoices import ENTITIES, resolve_lines_conflict

# tables `resolve_conflict` writes: vendors and customers (hub/sync/vendors.py) and invoice header
# fields of bills and sales invoices (hub/sync/invoices.py records those; its line conflicts have
# their own resolver there)
ENTITY_TABLES = {"vendor": vendor, "customer": customer, **{entity: invoice for entity in ENTITIES.values()}}


def list_conflicts(conn: Connection, integration_id: int | None = None, include_resolved: bool = False) -> list[sa.Row]:
    query = sa.select(sync_conflict).order_by(sync_conflict.c.id)
    if integration_id is not None:
        query = query.where(sync_conflict.c.integration_id == integration_id)
    if not include_resolved:
        query = query.where(sync_conflict.c.status == "open")
    return list(conn.execute(query).all())


def resolve_conflict(conn: Connection, conflict_id: int, keep: str) -> sa.Row:
    """Settle one open conflict. `keep="remote"` writes the remote value into the local row and
    its merge base (both sides agree again); `keep="local"` leaves the local value, which
    differs from the base and so goes out with the next export."""
    if keep not in ("local", "remote"):
        raise ValidationError(f"--keep must be local or remote, not '{keep}'")
    row = conn.execute(sa.select(sync_conflict).where(sync_conflict.c.id == conflict_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no conflict {conflict_id}")
    if row.status != "open":
        raise ValidationError(f"conflict {conflict_id} is already resolved ({row.resolution})")
    if row.entity_type in ENTITIES.values() and row.field == "lines":  # not a column: the invoice writer settles it
        return resolve_lines_conflict(conn, conflict_id, keep)
    table = ENTITY_TABLES.get(row.entity_type)
    if table is None or row.field not in table.c:
        raise ValidationError(f"conflict {conflict_id} names {row.entity_type}.{row.field}, which the hub cannot write")
    if keep == "remote":
        base = sa.func.coalesce(table.c.synced_values, sa.text("'{}'::jsonb"))
        remote = sa.cast(row.remote_value, sync_conflict.c.remote_value.type)
        conn.execute(
            sa.update(table).where(table.c.id == row.local_id).values({
                row.field: row.remote_value, "updated_at": sa.func.now(),
                "synced_values": base.op("||")(sa.func.jsonb_build_object(row.field, remote)),
            })
        )
    conn.execute(
        sa.update(sync_conflict).where(sync_conflict.c.id == conflict_id)
        .values(status="resolved", resolution="took_remote" if keep == "remote" else "kept_local", resolved_at=sa.func.now())
    )
    return conn.execute(sa.select(sync_conflict).where(sync_conflict.c.id == conflict_id)).one()
