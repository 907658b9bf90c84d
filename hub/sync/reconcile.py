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
Each stream is compared with its own rows only (`StreamSpec.rows_where`: QuickBooks bills and
sales invoices share the invoice table, and a Bill and an Invoice may have the same Id), and
reports on its own sync_log row (`reconcile_<stream>`, entity type of the stream).
Rows are never dropped: a delete goes through the stream's own delete path
(hub/sync/pages.py `mark_deleted`), which sets `deleted_values` and, where the table keeps
a merge base, the base too, so an export never sends the delete back as a local change.

Xero vendors (`WIDER_READS`): the stream reads contacts with `IsSupplier==true`, but Xero sets
IsSupplier only once a contact has a bill, so a contact the hub's export created (or linked
to) is not in that set until then; comparing against it would mark such vendors deleted.
Xero never deletes contacts (they are archived, and archived ones are listed with
includeArchived), so the id set is read from ALL contacts, and a linked vendor is "gone" only
if its contact no longer exists at all (wrong organisation, or an id that never was).
The same read closes a gap of the incremental pull: a contact turning supplier when its
first bill is entered keeps its UpdatedDateUTC, so `If-Modified-Since` never returns it; the
suppliers among all contacts that the hub lacks are imported here, through the stream's own
page writer (adoption, merges), every night.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError
from hub.providers.protocols import AccountingClient
from hub.sync import preferences
from hub.sync.engine import upsert_page
from hub.sync.pages import mark_deleted, not_deleted
from hub.sync.stream_spec import ReadScope, StreamSpec
from hub.sync_log import record_sync

REFUSE_FRACTION = 0.5
REFUSE_MIN_ROWS = 10
IMPORT_PAGE = 100  # missing records written per page writer call


class ReconciliationRefused(HubError):
    """The remote looks too empty to be trusted; nothing was changed."""


@dataclass(frozen=True)
class WiderRead:
    """A stream whose remote id set is wider than its own read (see the module docstring):
    the id set is read with `read_filter` instead of the stream's, and `member` tells which
    of those records belong to the stream (imported when the hub lacks them)."""

    read_filter: str | None
    member: Callable[[dict[str, Any]], bool]


WIDER_READS: dict[str, WiderRead] = {
    "xero/vendors": WiderRead(read_filter=None, member=lambda record: record.get("IsSupplier") is True),
    "xero/customers": WiderRead(read_filter=None, member=lambda record: record.get("IsCustomer") is True),
}


@dataclass
class Reconciliation:
    stream: str
    remote: int = 0
    local: int = 0
    marked_deleted: int = 0
    missing_locally: int = 0  # remote records of the stream the hub lacks
    imported: int = 0  # of those, imported here (streams in WIDER_READS); others: the next full read
    duration_s: float = 0.0
    sync_log_id: int | None = None

    def as_metadata(self) -> dict[str, Any]:
        return {f"{self.stream}_{k}": v for k, v in self.__dict__.items() if k != "stream"}


def reconcile_stream(engine: Engine, keyring: Keyring, integration_id: int, stream: StreamSpec, *,
                     client: AccountingClient, run_id: str | None = None, force: bool = False) -> Reconciliation:
    started, clock = datetime.now(timezone.utc), time.monotonic()
    result = Reconciliation(stream.name)
    table, wider = stream.table, WIDER_READS.get(stream.key)
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
        known = set(conn.execute(sa.select(table.c.remote_id).where(
            table.c.integration_id == integration_id, table.c.remote_id.is_not(None), *stream.own_rows())).scalars())
    with record_sync(engine, integration_id=integration_id, sync_type="reconcile", action=f"reconcile_{stream.name}",
                     direction="inbound", entity_type=stream.entity_type, run_id=run_id, details={"stream": stream.key}) as sync:
        scope = ReadScope(engine, integration_id, item.company_id,
                          conflict_policy=preferences.from_config(item.provider, item.config).conflict_policy)
        read = dataclasses.replace(stream, read_filter=wider.read_filter) if wider else stream
        remote_ids: set[str] = set()
        missing: list[dict[str, Any]] = []  # records of the stream the hub lacks (kept only for WIDER_READS)
        for records in stream.read(client, read, None, 0, None, scope):
            for record in records:
                if stream.is_deleted(record):
                    continue
                remote_id = stream.remote_id(record)
                remote_ids.add(remote_id)
                if remote_id not in known and (wider is None or wider.member(record)):
                    result.missing_locally += 1
                    if wider is not None:
                        missing.append(record)
        result.remote = len(remote_ids)
        write_page = stream.upsert or upsert_page
        for start in range(0, len(missing), IMPORT_PAGE):
            with engine.begin() as conn:
                counts = write_page(conn, stream, scope, missing[start:start + IMPORT_PAGE])
                result.imported += counts.created + counts.updated
                sync.page(conn, processed=counts.created + counts.updated)
        with engine.begin() as conn:
            local = set(conn.execute(
                sa.select(table.c.remote_id).where(
                    table.c.integration_id == integration_id, table.c.remote_id.is_not(None),
                    table.c.synced_at < started, not_deleted(stream), *stream.own_rows())
            ).scalars())
            result.local = len(local)
            gone = local - remote_ids
            if not force and len(gone) > REFUSE_MIN_ROWS and len(gone) > REFUSE_FRACTION * len(local):
                raise ReconciliationRefused(
                    f"{stream.key}: the remote lists {result.remote} records and {len(gone)} of the {len(local)} local ones "
                    f"would be marked deleted; refusing (is the integration connected to the right company?)")
            result.marked_deleted = mark_deleted(conn, stream, scope, gone, synced_before=started)
            sync.page(conn, processed=result.marked_deleted, details={"result": {
                "remote": result.remote, "local": result.local, "marked_deleted": result.marked_deleted,
                "missing_locally": result.missing_locally, "imported": result.imported}})
        result.sync_log_id = sync.id
    result.duration_s = round(time.monotonic() - clock, 3)
    return result
