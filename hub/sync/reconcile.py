"""Reconciliation: compare the remote and local id sets of a stream and mark as deleted the
local rows whose remote record is gone.

Incremental reads see most deletes (QuickBooks CDC lists them), but not all: a delete older
than CDC's 30-day window, a hard delete a provider's change feed never shows, a record
removed while the hub was disconnected. The nightly run reads every remote id (the
stream's full read) and compares.

Guards, because a wrong answer here would wipe a ledger's worth of rows:
- only rows synced before the reconciliation started are candidates (a record created and
  imported meanwhile is not "missing");
- if the remote read would delete more than half of the local rows (and more than a
  handful), the run refuses and fails with the numbers, instead of trusting a remote that
  may be answering for the wrong company; `force=True` overrides after a person looked.
Rows are never dropped: a delete sets the stream's `deleted_values` (inactive, status deleted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError
from hub.sync.adapters import ADAPTERS
from hub.sync.streams import ReadScope, StreamSpec
from hub.sync_log import record_sync

REFUSE_FRACTION = 0.5
REFUSE_MIN_ROWS = 10


class ReconciliationRefused(HubError):
    """The remote looks too empty to be trusted; nothing was changed."""


@dataclass
class Reconciliation:
    stream: str
    remote: int = 0
    local: int = 0
    marked_deleted: int = 0
    missing_locally: int = 0  # remote records the hub lacks: the next full sync brings them
    duration_s: float = 0.0
    sync_log_id: int | None = None

    def as_metadata(self) -> dict[str, Any]:
        return {f"{self.stream}_{k}": v for k, v in self.__dict__.items() if k != "stream"}


def _live_local(stream: StreamSpec) -> sa.ColumnElement:
    """Rows not already in the stream's deleted state."""
    return sa.or_(*(sa.func.coalesce(stream.table.c[c] != v, True) for c, v in stream.deleted_values.items())) \
        if stream.deleted_values else sa.true()


def reconcile_stream(engine: Engine, keyring: Keyring, integration_id: int, stream: StreamSpec, *,
                     client: Any, run_id: str | None = None, force: bool = False) -> Reconciliation:
    started, clock = datetime.now(timezone.utc), time.monotonic()
    result = Reconciliation(stream.name)
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    with record_sync(engine, integration_id=integration_id, sync_type="reconcile", action=f"reconcile_{stream.name}",
                     direction="inbound", entity_type=stream.entity_type, run_id=run_id, details={"stream": stream.key}) as sync:
        scope = ReadScope(engine, integration_id, item.company_id)
        remote_ids: set[str] = set()
        for records in ADAPTERS[stream.provider](client, stream, None, 0, None, scope):
            remote_ids.update(stream.remote_id(r) for r in records if not stream.is_deleted(r))
        result.remote = len(remote_ids)
        table = stream.table
        with engine.begin() as conn:
            local = dict(conn.execute(
                sa.select(table.c.remote_id, table.c.id).where(
                    table.c.integration_id == integration_id, table.c.remote_id.is_not(None),
                    table.c.synced_at < started, _live_local(stream))
            ).all())
            result.local = len(local)
            gone = [local[rid] for rid in local.keys() - remote_ids]
            result.missing_locally = len(remote_ids - local.keys())
            if not force and len(gone) > REFUSE_MIN_ROWS and len(gone) > REFUSE_FRACTION * len(local):
                raise ReconciliationRefused(
                    f"{stream.key}: the remote lists {result.remote} records and {len(gone)} of the {len(local)} local ones "
                    f"would be marked deleted; refusing (is the integration connected to the right company?)")
            if gone:
                result.marked_deleted = conn.execute(
                    sa.update(table).where(table.c.id.in_(gone)).values(**stream.deleted_values, synced_at=sa.func.now())
                ).rowcount
            sync.page(conn, processed=result.marked_deleted, details={"result": {
                "remote": result.remote, "local": result.local, "marked_deleted": result.marked_deleted,
                "missing_locally": result.missing_locally}})
        result.sync_log_id = sync.id
    result.duration_s = round(time.monotonic() - clock, 3)
    return result
