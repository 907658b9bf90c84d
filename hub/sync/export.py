"""What vendor and invoice export share: the run (client, sync_log row, result counts), the
write discipline of the idempotency ledger, per-record failures, and what a provider's side of
a write must offer (`ExportSide`: payloads, look-ups, creates and version-checked updates).
Each accounting provider's side is in its folder (hub/providers/<name>/export.py), named by
its spec (`accounting.export_side`); nothing here knows a provider by name.

The exports themselves are hub/sync/export_vendors.py and hub/sync/export_invoices.py. Each
is split in two: a PLAN, one `Decision` per record (create, update, link to a record already
at the provider, or hold back with the reason), made by reading the local rows and the
provider (GETs and queries only) and writing nothing; and an APPLY, which carries a decision
out (the writes, under the ledger). The export decides each record just before applying it;
the export preview (hub/sync/export_preview.py) runs the same plan in a read-only
`ExportScope` (`plan_scope`: no sync_log row, no lock) and applies nothing.

Per-record errors (the provider refused this record: validation, duplicate, stale version)
are recorded in `sync_log.errors` with the provider's code and message and in the row's
`sync_error`, and the run goes on. Errors that no other record would escape (authentication,
configuration, used-up quota, 5xx or timeouts after the transport's retries) fail the run;
a write whose outcome they left unknown stays `pending` in the ledger for the next run.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError, ValidationError
from hub.providers import registry
from hub.providers.protocols import AccountingClient
from hub.providers.connect import open_client
from hub.providers.errors import ProviderError, RateLimited, TransientProblem
from hub.providers.transport import RetrySettings
from hub.sync import write_ledger
from hub.sync.stream_spec import StreamSpec
from hub.sync_log import SyncRecorder, record_sync


class Blocked(Exception):
    """A record that cannot be exported as it is (the reason says what to fix); nothing was sent."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ExportResult:
    entity_type: str
    created: int = 0
    updated: int = 0
    linked: int = 0  # matched to an existing remote record instead of creating one
    skipped: int = 0  # nothing to send after all
    blocked: int = 0  # open conflicts, missing mappings, vendor not exported yet
    failed: int = 0  # refused by the provider
    conflicts: int = 0  # conflict fields found while exporting
    lock_wait_s: float = 0.0  # waited for another export of the same (integration, entity)
    sync_log_id: int | None = None
    api: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def counts_detail(self) -> dict[str, int]:
        """What the run did, as sync_log.details["counts"] keeps it (see hub/sync/engine.py)."""
        return {"created": self.created, "updated": self.updated, "linked": self.linked, "blocked": self.blocked,
                "conflicts": self.conflicts}

    def as_metadata(self) -> dict[str, Any]:
        return {"entity_type": self.entity_type, "created": self.created, "updated": self.updated, "linked": self.linked,
                "skipped": self.skipped, "blocked": self.blocked, "failed": self.failed, "conflicts": self.conflicts,
                "lock_wait_s": round(self.lock_wait_s, 3), "sync_log_id": self.sync_log_id, "duration_s": round(self.duration_s, 3),
                **self.api}


def describe(exc: ProviderError) -> str:
    """The provider's own message (and detail), never anything from the request."""
    detail = exc.detail if exc.detail and exc.detail != exc.message else None
    return f"{exc.message}: {detail}" if detail else exc.message


class ExportSide(Protocol):
    """A provider's side of an export, made from its client (the spec's
    `accounting.export_side`): what hub/sync/export_vendors.py and export_invoices.py ask of it.
    Records are the provider's own (as its API returns them); `key` is the idempotency key of
    the write (write_ledger.py); versions are what the provider's stream reads as one."""

    provider: str
    label: str  # the provider as a person names it in a reason or error
    account_field: str  # what account_value reads, as a person names it
    vendors: StreamSpec  # its vendors stream (record -> row, remote version)
    invoices: StreamSpec  # its invoices stream

    def party(self, entity: str) -> "PartySide": ...  # vendors or customers (hub/sync/vendors.py PARTIES)
    # invoices: `kind` is the invoice's (payable: a bill, receivable: a sales invoice, whose
    # `vendor_remote_id` arguments are its customer's remote id)
    def invoice_stream(self, kind: str) -> StreamSpec: ...  # the import stream of that kind
    def line_accounts(self, kind: str) -> bool: ...  # whether each line must name a mapped account
    def invoice_key(self, record: dict[str, Any]) -> tuple[str, str | None]: ...
    def account_value(self, account: Mapping[str, Any]) -> str | None: ...
    def status_problem(self, status: str, synced_status: str | None, kind: str = "payable") -> str | None: ...
    def invoice_payload(self, inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_remote_id: str,
                        accounts: list[str]) -> dict[str, Any]: ...
    def find_invoice(self, number: str, vendor_remote_id: str, kind: str = "payable") -> dict[str, Any] | None: ...
    def create_invoice(self, payload: dict[str, Any], key: str, kind: str = "payable") -> dict[str, Any]: ...
    def check_invoice(self, remote_id: str, version: str | None, kind: str = "payable") -> None: ...
    def update_invoice(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str,
                       kind: str = "payable") -> dict[str, Any]: ...


class PartySide(Protocol):
    """A provider's writer of one kind of party, vendors or customers (`ExportSide.party`)."""

    def values(self, record: dict[str, Any]) -> dict[str, Any]: ...
    def key(self, record: dict[str, Any]) -> tuple[str, str | None]: ...
    def payload(self, values: Mapping[str, Any]) -> dict[str, Any]: ...
    def read(self, remote_id: str) -> dict[str, Any]: ...
    def find(self, kind: str, value: str) -> list[dict[str, Any]]: ...  # kind: tax | email | name
    def create(self, payload: dict[str, Any], key: str) -> dict[str, Any]: ...
    def update(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str, resumed: bool) -> dict[str, Any]: ...


ACTIONS = ("create", "update", "link", "hold", "skip")  # what a plan decides for one record (skip: nothing to send after all)


@dataclass(frozen=True)
class Change:
    """One field a decision sends: `old` is what the provider holds as far as the hub knows
    (the value of the last sync; None for a create), `new` what goes out."""

    field: str
    old: Any
    new: Any


@dataclass
class Decision:
    """What the export does with one record, and why (the plan's output; see the module
    docstring). `data` carries what the apply step needs (rows, payload, pending write, the
    remote record found) and is not shown; everything else is for a person."""

    entity_type: str
    local_id: int
    label: str  # vendor name, invoice number
    action: str  # one of ACTIONS
    changes: list[Change] = field(default_factory=list)
    reason: str | None = None  # hold: why; link: what it matched; others: a note, if any
    hold: str | None = None  # hold: the kind of reason (conflict, mapping, check, vendor, status, duplicate, ...)
    remote_id: str | None = None  # the provider's id it updates or links to
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ExportScope:
    """What a plan reads: the integration and its provider's side (hub/sync/export.py's
    `ExportSide`). A plan made in a bare scope (`plan_scope`) writes nothing anywhere."""

    engine: Engine
    integration: store.Integration
    side: ExportSide

    @property
    def integration_id(self) -> int:
        return self.integration.id


@dataclass
class ExportRun(ExportScope):
    """A scope that also writes: the run's sync_log row and result counts."""

    sync: SyncRecorder
    result: ExportResult

    def write(
        self,
        *,
        entity_type: str,
        local_id: int,
        operation: str,
        payload: Any,
        pending: write_ledger.Write | None,
        send: Callable[[str, bool], dict[str, Any]],
        on_success: Callable[[Connection, dict[str, Any], bool], tuple[str, str | None]],
        processed: int = 1,
    ) -> dict[str, Any]:
        """One provider write under the ledger (hub/sync/write_ledger.py): pending row committed,
        `send(request_key, resumed)`, then `on_success(conn, record, False)`, the ledger and
        sync_log progress in one transaction. A refusal closes the ledger row and is re-raised;
        an unknown outcome (transient error) leaves it pending.

        `pending`: the record's unsettled write, which the caller looked up at the provider and
        did not find. It is resumed with its key only if it is the same operation with the same
        payload hash: then any answer to that key is an answer to THIS payload (so the third
        argument of `on_success`, "the answer is about an older payload", is always False
        here). Otherwise it is superseded (settled with the reason) and a new write begins with
        a new key: a replay of the old key would return the old payload's result, and the
        change made since would never be sent."""
        if pending is not None and pending.operation == operation and pending.payload_hash == write_ledger.payload_hash(payload):
            write, resumed = write_ledger.resume(self.engine, pending), True
        else:
            if pending is not None:
                with self.engine.begin() as conn:
                    write_ledger.supersede(conn, pending, f"the record changed before a retry; a new {operation} is sent instead")
            write, resumed = write_ledger.begin(self.engine, self.integration_id, entity_type, local_id, operation, payload), False
        try:
            record = send(write.request_key, resumed)
        except TransientProblem as exc:
            if isinstance(exc, RateLimited):  # refused before it was processed
                with self.engine.begin() as conn:
                    write_ledger.fail(conn, write, describe(exc))
            raise
        except ProviderError as exc:
            with self.engine.begin() as conn:
                write_ledger.fail(conn, write, describe(exc))
            raise
        with self.engine.begin() as conn:
            remote_id, version = on_success(conn, record, False)
            write_ledger.succeed(conn, write, remote_id, version)
            self.sync.page(conn, processed=processed)
        return record

    def failed(self, table: sa.Table, local_id: int, exc: ProviderError, message: str | None = None) -> None:
        message = message or describe(exc)
        code = exc.code or exc.kind
        self._note(table, local_id, f"{self.side.label} refused it: {message} (code {code})", code, message)
        self.result.failed += 1

    def blocked(self, table: sa.Table, local_id: int, reason: str) -> None:
        self._note(table, local_id, reason, "blocked", reason)
        self.result.blocked += 1

    def _note(self, table: sa.Table, local_id: int, sync_error: str, code: str, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == local_id).values(sync_error=sync_error))
            self.sync.record_error(local_id, code, message)
            self.sync.page(conn)


class ExportBusy(HubError):
    """Another export of the same entity to the same integration held the lock for longer than
    this run would wait; nothing was sent."""


LOCK_WAIT_S = 600.0  # how long a run waits for another export of the same (integration, entity)
_LOCK_POLL_S = 0.2
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))")


def lock_key(integration_id: int, entity_type: str) -> str:
    """The text whose 64-bit hash is the advisory lock of one (integration, entity) export."""
    return f"hub.export:{integration_id}:{entity_type}"


@contextmanager
def _export_lock(engine: Engine, integration_id: int, entity_type: str, result: ExportResult, wait_s: float) -> Iterator[None]:
    """A session advisory lock per (integration, entity) for the whole export run.

    Why: two runs (the nightly job and a "sync now") would each see the same unlinked bill,
    find no pending write, and create it twice. The lock makes them take turns: the second run
    waits (polling, up to `wait_s`), then computes its candidates after the first committed,
    so it finds nothing left to create. `result.lock_wait_s` says how long it waited; past
    `wait_s` it raises `ExportBusy` with a clear message and sends nothing. The lock lives on
    its own AUTOCOMMIT connection (no transaction held open for the run) and ends with it, so
    a killed process cannot leave it behind."""
    key = lock_key(integration_id, entity_type)
    started = time.monotonic()
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    locked = False
    try:
        while not (locked := bool(conn.scalar(_TRY_LOCK, {"key": key}))):
            if time.monotonic() - started >= wait_s:
                raise ExportBusy(f"another {entity_type} export to integration {integration_id} is still running "
                                 f"(waited {wait_s:.0f} s for it); nothing was sent, run the export again later")
            time.sleep(_LOCK_POLL_S)
        result.lock_wait_s = time.monotonic() - started
        yield
    finally:
        try:
            if locked:
                conn.execute(_UNLOCK, {"key": key})
        except Exception:  # noqa: BLE001 - a pooled session must not keep the lock: end the session itself
            conn.invalidate()
            raise
        finally:
            conn.close()


def _accounting(item: store.Integration, integration_id: int):
    accounting = registry.get(item.provider).accounting
    if accounting is None:
        targets = " or ".join(registry.get(name).display_name for name in registry.with_capability("accounting"))
        raise ValidationError(f"integration {integration_id} is {item.provider}: export goes to {targets} only")
    return accounting


@contextmanager
def plan_scope(engine: Engine, keyring: Keyring, integration_id: int, client: AccountingClient | None = None,
               retry: RetrySettings | None = None) -> Iterator[ExportScope]:
    """A read-only scope for planning an export (the preview): the client (opened here unless
    given, closed at the end), no sync_log row, no lock, no integration status change."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    accounting = _accounting(item, integration_id)
    own_client = client is None
    if own_client:
        client = open_client(engine, keyring, integration_id, retry=retry)
    try:
        yield ExportScope(engine, item, accounting.export_side(client))
    finally:
        if own_client:
            client.transport.close()


@contextmanager
def export_run(engine: Engine, keyring: Keyring, integration_id: int, entity_type: str, run_id: str | None,
               client: AccountingClient | None = None, *, lock_wait_s: float | None = None) -> Iterator[ExportRun]:
    """Open the client (unless given), the sync_log row and the run's lock (`_export_lock`);
    close all of them however the block ends."""
    started = time.monotonic()
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    accounting = _accounting(item, integration_id)
    own_client = client is None
    if own_client:
        client = open_client(engine, keyring, integration_id)
    result = ExportResult(entity_type)
    try:
        with record_sync(engine, integration_id=integration_id, sync_type="export", action=f"export_{entity_type}s",
                         direction="outbound", entity_type=entity_type, run_id=run_id) as sync:
            result.sync_log_id = sync.id
            with _export_lock(engine, integration_id, entity_type, result, LOCK_WAIT_S if lock_wait_s is None else lock_wait_s):
                yield ExportRun(engine, item, accounting.export_side(client), sync, result)
            with engine.begin() as conn:  # what the run did, for the settings pages' sync history
                sync.page(conn, details={"counts": result.counts_detail()})
    finally:
        result.api = client.transport.stats()
        result.duration_s = time.monotonic() - started
        if own_client:
            client.transport.close()


# ---- what the providers' sides share -----------------------------------------------------------
def money(value: Any) -> float:
    """An amount as the accounting APIs take it: a number of two decimals."""
    return float(Decimal(str(value or 0)).quantize(Decimal("0.01")))


def address_in(value: Mapping[str, Any] | None, names: Mapping[str, str]) -> dict[str, Any]:
    """A local address in the provider's keys (hub-style keys renamed; the provider's kept)."""
    return {names.get(k, k): v for k, v in (value or {}).items()}
