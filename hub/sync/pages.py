"""What every page writer shares: reading a page (`split_page`) and landing a remote delete
(`mark_deleted`, `not_deleted`). The engine's plain upsert (engine.py), the custom writers
(invoices.py, vendors.py) and reconciliation (reconcile.py) all use these, so they agree on
what a page says and on what "deleted" means.

Apart from the engine because the writers are imported by the stream declarations
(streams.py), which the engine imports: helpers they need must not live in the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from hub.sync.stream_spec import ReadScope, StreamSpec


def split_page(stream: StreamSpec, records: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """One page's records by remote id: (live records, ids deleted at the provider). A page can
    list a record twice (it changed while the pull paged); the last occurrence wins, so a
    record deleted then restored is live and one restored then deleted is gone. Every page
    writer starts here, so they all agree on what a page says."""
    live: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    for record in records:
        remote_id = stream.remote_id(record)
        if stream.is_deleted(record):
            gone.add(remote_id)
            live.pop(remote_id, None)
        else:
            live[remote_id] = record
            gone.discard(remote_id)
    return live, gone


def not_deleted(stream: StreamSpec) -> sa.ColumnElement:
    """Rows of the stream's table not already in its deleted state (`deleted_values`)."""
    if not stream.deleted_values:
        return sa.true()
    return sa.or_(*(sa.func.coalesce(stream.table.c[c] != v, True) for c, v in stream.deleted_values.items()))


def mark_deleted(conn: Connection, stream: StreamSpec, scope: ReadScope, remote_ids: Iterable[str], *,
                 synced_before: datetime | None = None) -> int:
    """Write "the remote record is gone" for these remote ids of the integration; returns how
    many rows changed. The one place a remote delete lands locally: the engine's upsert, the
    vendor page writer and reconciliation all call it, so they cannot disagree.

    The row takes the stream's `deleted_values` (rows are never dropped) and, where the table
    keeps a merge base (`synced_values`), the base takes them too: both sides now agree the
    record is deleted/inactive. Without that, the row would differ from its base and look
    like a local change, and the next export would send it back (e.g. archive a Xero contact
    or retire a QuickBooks vendor). A NULL base stays NULL (such rows are not exported).
    Rows already deleted with an agreeing base are left alone (not counted twice).
    `synced_before`: only rows last synced before then (reconciliation: a row imported or
    exported while it ran is not "missing"). A stream without a deleted state records nothing."""
    ids = list(remote_ids)
    if not ids or not stream.deleted_values:
        return 0
    table = stream.table
    values: dict[str, Any] = {**stream.deleted_values, "synced_at": sa.func.now()}
    pending = [not_deleted(stream)]
    if "synced_values" in table.c:
        marker = sa.literal(dict(stream.deleted_values), type_=JSONB)
        values["synced_values"] = table.c.synced_values.op("||")(marker)
        pending.append(sa.not_(sa.func.coalesce(table.c.synced_values.contains(marker), True)))
    if "updated_at" in table.c:
        values["updated_at"] = sa.func.now()
    where = [table.c.integration_id == scope.integration_id, table.c.remote_id.in_(ids), sa.or_(*pending), *stream.own_rows()]
    if synced_before is not None:
        where.append(table.c.synced_at < synced_before)
    return conn.execute(sa.update(table).where(*where).values(**values)).rowcount
