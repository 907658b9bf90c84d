"""What vendor and invoice export share: the run (client, sync_log row, result counts), the
write discipline of the idempotency ledger, per-record failures, and the provider side of a
write (`QuickBooksSide`, `XeroSide`: payloads, look-ups, creates and version-checked updates).

The exports themselves are hub/sync/export_vendors.py and hub/sync/export_invoices.py.

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
from typing import Any, Callable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError, ValidationError
from hub.providers.quickbooks import client as quickbooks
from hub.providers.quickbooks import streams as quickbooks_streams
from hub.providers.xero import client as xero
from hub.providers.xero import streams as xero_streams
from hub.providers.protocols import AccountingClient
from hub.providers.connect import open_client
from hub.providers.errors import DuplicateRecord, ProviderError, RateLimited, RecordProblem, StaleVersion, TransientProblem
from hub.sync import write_ledger
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

    def as_metadata(self) -> dict[str, Any]:
        return {"entity_type": self.entity_type, "created": self.created, "updated": self.updated, "linked": self.linked,
                "skipped": self.skipped, "blocked": self.blocked, "failed": self.failed, "conflicts": self.conflicts,
                "lock_wait_s": round(self.lock_wait_s, 3), "sync_log_id": self.sync_log_id, "duration_s": round(self.duration_s, 3),
                **self.api}


def describe(exc: ProviderError) -> str:
    """The provider's own message (and detail), never anything from the request."""
    detail = exc.detail if exc.detail and exc.detail != exc.message else None
    return f"{exc.message}: {detail}" if detail else exc.message


@dataclass
class ExportRun:
    engine: Engine
    integration: store.Integration
    side: "QuickBooksSide | XeroSide"
    sync: SyncRecorder
    result: ExportResult

    @property
    def integration_id(self) -> int:
        return self.integration.id

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


@contextmanager
def export_run(engine: Engine, keyring: Keyring, integration_id: int, entity_type: str, run_id: str | None,
               client: AccountingClient | None = None, *, lock_wait_s: float | None = None) -> Iterator[ExportRun]:
    """Open the client (unless given), the sync_log row and the run's lock (`_export_lock`);
    close all of them however the block ends."""
    started = time.monotonic()
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    if item.provider not in SIDES:
        raise ValidationError(f"integration {integration_id} is {item.provider}: export goes to QuickBooks or Xero only")
    own_client = client is None
    if own_client:
        client = open_client(engine, keyring, integration_id)
    result = ExportResult(entity_type)
    try:
        with record_sync(engine, integration_id=integration_id, sync_type="export", action=f"export_{entity_type}s",
                         direction="outbound", entity_type=entity_type, run_id=run_id) as sync:
            result.sync_log_id = sync.id
            with _export_lock(engine, integration_id, entity_type, result, LOCK_WAIT_S if lock_wait_s is None else lock_wait_s):
                yield ExportRun(engine, item, SIDES[item.provider](client), sync, result)
    finally:
        result.api = client.transport.stats()
        result.duration_s = time.monotonic() - started
        if own_client:
            client.transport.close()


def money(value: Any) -> float:
    return float(Decimal(str(value or 0)).quantize(Decimal("0.01")))


def _address(value: Mapping[str, Any] | None, names: Mapping[str, str]) -> dict[str, Any]:
    """A local address in the provider's keys (hub-style keys renamed; the provider's kept)."""
    return {names.get(k, k): v for k, v in (value or {}).items()}


# ---- QuickBooks --------------------------------------------------------------------------------
_QBO_ADDRESS = {"line1": "Line1", "line2": "Line2", "city": "City", "state": "CountrySubDivisionCode",
                "region": "CountrySubDivisionCode", "postal_code": "PostalCode", "country": "Country"}


class QuickBooksSide:
    provider, label = "quickbooks", "QuickBooks"
    account_field = "id"  # what account_value reads, as a person names it
    vendors = quickbooks_streams.VENDORS
    invoices = quickbooks_streams.INVOICES

    def __init__(self, client: quickbooks.QuickBooksClient):
        self.client = client

    # vendors
    def vendor_values(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.vendors.to_row(record)

    def vendor_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return str(record["Id"]), record.get("SyncToken")

    def vendor_payload(self, values: Mapping[str, Any]) -> dict[str, Any]:
        fields = {"display_name": ("DisplayName", lambda v: v), "legal_name": ("CompanyName", lambda v: v),
                  "email": ("PrimaryEmailAddr", lambda v: {"Address": v} if v else None),
                  "phone": ("PrimaryPhone", lambda v: {"FreeFormNumber": v} if v else None),
                  "tax_id": ("TaxIdentifier", lambda v: v), "address": ("BillAddr", lambda v: _address(v, _QBO_ADDRESS) or None),
                  "is_active": ("Active", bool)}
        return {fields[f][0]: fields[f][1](v) for f, v in values.items() if f in fields}

    def read_vendor(self, remote_id: str) -> dict[str, Any]:
        return self.client.read("Vendor", remote_id)

    def find_vendors(self, kind: str, value: str) -> list[dict[str, Any]]:
        """Candidates by tax id, email, or (LIKE) a word of the name; retired ones too."""
        where = {"tax": f"TaxIdentifier = {quickbooks.quote(value)}", "email": f"PrimaryEmailAddr.Address = {quickbooks.quote(value)}",
                 "name": f"DisplayName LIKE {quickbooks.quote('%' + value + '%')}"}[kind]
        return self.client.query(f"SELECT * FROM Vendor WHERE {where} AND Active IN (true, false) MAXRESULTS 1000").get("Vendor", [])

    def create_vendor(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return self.client.create("Vendor", payload, request_id=key)

    def update_vendor(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str, resumed: bool) -> dict[str, Any]:
        """Sparse update under the SyncToken we last saw: QuickBooks refuses it (5010) if the
        vendor changed since."""
        if version is None:
            raise StaleVersion(self.provider, "no SyncToken known for this vendor", code="5010")
        return self.client.update("Vendor", {"Id": remote_id, "SyncToken": version, **payload}, request_id=key)

    # invoices: payables go out as QuickBooks Bills (reference 1.4; `Invoice` is a sales form
    # that requires a CustomerRef, and the hub exports no receivables)
    def invoice_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return str(record["Id"]), record.get("SyncToken")

    def account_value(self, account: Mapping[str, Any]) -> str | None:
        return account["remote_id"]

    def status_problem(self, status: str, synced_status: str | None) -> str | None:
        """Why a bill in this local status must not be sent, if it must not. A QuickBooks bill
        is a posted payable from the moment it exists (no draft or approval state), and it is
        paid by a BillPayment, which the hub does not send: a local `paid` (when QuickBooks
        did not already show it paid) would go out unpaid and the next import would set it
        back to authorised."""
        if status in ("draft", "submitted"):
            return (f"it is {status} in the hub: QuickBooks bills have no draft or approval state, so sending it would post "
                    "it as a payable; set it to authorised when it is approved")
        if status == "paid" and synced_status != "paid":
            return ("it is marked paid in the hub, but the hub does not send payments: record the payment in QuickBooks "
                    "(the next import brings the paid status in)")
        return None

    def invoice_payload(self, inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_remote_id: str,
                        accounts: list[str]) -> dict[str, Any]:
        """A Bill: VendorRef and account-based expense lines (the status is QuickBooks' own)."""
        payload = {"VendorRef": {"value": vendor_remote_id}, "DocNumber": inv["number"], "TxnDate": inv["issue_date"].isoformat(),
                   "CurrencyRef": {"value": inv["currency"]},
                   "Line": [{"Amount": money(line["amount"]), "DetailType": "AccountBasedExpenseLineDetail",
                             "Description": line["description"] or "",
                             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}}}
                            for line, account in zip(lines, accounts)]}
        if inv["due_date"]:
            payload["DueDate"] = inv["due_date"].isoformat()
        return payload

    def find_invoice(self, number: str, vendor_remote_id: str) -> dict[str, Any] | None:
        rows = self.client.query(f"SELECT * FROM Bill WHERE DocNumber = {quickbooks.quote(number)}").get("Bill", [])
        return next((r for r in rows if (r.get("VendorRef") or {}).get("value") == vendor_remote_id), None)

    def create_invoice(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return self.client.create("Bill", payload, request_id=key)

    def check_invoice(self, remote_id: str, version: str | None) -> None:
        """Nothing to read first: QuickBooks checks the SyncToken of the update itself (5010)."""

    def update_invoice(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str) -> dict[str, Any]:
        """Sparse update under the SyncToken we last saw (a sent `Line` replaces all lines)."""
        if version is None:
            raise StaleVersion(self.provider, "no SyncToken known for this bill", code="5010")
        return self.client.update("Bill", {"Id": remote_id, "SyncToken": version, **payload}, request_id=key)


# ---- Xero --------------------------------------------------------------------------------------
_XERO_ADDRESS = {"line1": "AddressLine1", "line2": "AddressLine2", "city": "City", "state": "Region", "region": "Region",
                 "postal_code": "PostalCode", "country": "Country"}
# the hub's statuses Xero takes on a bill; `paid` is Xero's to set (by a payment), see status_problem
_XERO_STATUS = {"draft": "DRAFT", "submitted": "SUBMITTED", "authorised": "AUTHORISED"}


def _one(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The single item of a `summarizeErrors=false` save, or its validation errors raised."""
    item = items[0] if items else {}
    messages = xero.validation_messages(item)
    if item.get("HasValidationErrors") or messages or not items:
        kind = DuplicateRecord if any("unique" in m.lower() for m in messages) else RecordProblem
        raise kind("xero", "; ".join(messages) or "the item was not saved", code="ValidationException")
    return item


class XeroSide:
    """Xero has no version check on writes, so an update first reads the record and refuses
    (as StaleVersion) when it changed since our last sync, unless it resumes an earlier
    attempt (whose own effect would look like such a change)."""

    provider, label = "xero", "Xero"
    account_field = "code"  # what account_value reads, as a person names it
    vendors = xero_streams.VENDORS
    invoices = xero_streams.INVOICES

    def __init__(self, client: xero.XeroClient):
        self.client = client

    def _check(self, resource: str, remote_id: str, version: str | None) -> None:
        stream = self.vendors if resource == "Contacts" else self.invoices
        if stream.remote_version(self.client.read(resource, remote_id)) != version:
            raise StaleVersion(self.provider, f"the record changed in Xero since the last sync ({resource} {remote_id})", code="changed")

    # vendors (contacts)
    def vendor_values(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.vendors.to_row(record)

    def vendor_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return record["ContactID"], self.vendors.remote_version(record)

    def vendor_payload(self, values: Mapping[str, Any]) -> dict[str, Any]:
        fields = {"display_name": ("Name", lambda v: v), "email": ("EmailAddress", lambda v: v or ""),
                  "phone": ("Phones", lambda v: [{"PhoneType": "DEFAULT", "PhoneNumber": v or ""}]),
                  "tax_id": ("TaxNumber", lambda v: v or ""),
                  "address": ("Addresses", lambda v: [{"AddressType": "POBOX", **_address(v, _XERO_ADDRESS)}] if v else []),
                  "is_active": ("ContactStatus", lambda v: "ACTIVE" if v else "ARCHIVED")}
        return {fields[f][0]: fields[f][1](v) for f, v in values.items() if f in fields}

    def read_vendor(self, remote_id: str) -> dict[str, Any]:
        return self.client.read("Contacts", remote_id)

    def find_vendors(self, kind: str, value: str) -> list[dict[str, Any]]:
        where = {"tax": f"TaxNumber=={xero.quote(value)}", "email": f"EmailAddress=={xero.quote(value)}",
                 "name": f"Name.Contains({xero.quote(value)})"}[kind]
        return self.client.find("Contacts", where, includeArchived="true")

    def create_vendor(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return _one(self.client.save("Contacts", [payload], create_only=True, idempotency_key=key))

    def update_vendor(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str, resumed: bool) -> dict[str, Any]:
        if not resumed:
            self._check("Contacts", remote_id, version)
        return _one(self.client.save("Contacts", [{"ContactID": remote_id, **payload}], idempotency_key=key))

    # invoices (ACCPAY bills)
    def invoice_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return record["InvoiceID"], self.invoices.remote_version(record)

    def account_value(self, account: Mapping[str, Any]) -> str | None:
        return account["code"]

    def status_problem(self, status: str, synced_status: str | None) -> str | None:
        """Xero takes DRAFT, SUBMITTED and AUTHORISED; PAID only follows a payment, which the hub
        does not send: a local `paid` (when Xero did not already show it paid) would go out as
        AUTHORISED and the next import would set it back."""
        if status == "paid" and synced_status != "paid":
            return ("it is marked paid in the hub, but the hub does not send payments: record the payment in Xero "
                    "(the next import brings the paid status in)")
        return None

    def invoice_payload(self, inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_remote_id: str,
                        accounts: list[str]) -> dict[str, Any]:
        """An ACCPAY invoice, always with tax-exclusive line amounts (the hub stores lines
        tax-exclusive, hub/sync/invoices.py): the hub's tax is spread over the lines as
        TaxAmount (Xero would add its own). A bill Xero already shows paid is sent without a
        Status (Xero keeps it)."""
        tax, subtotal = Decimal(inv["tax"] or 0), sum((Decimal(line["amount"] or 0) for line in lines), Decimal(0))
        items, spread = [], Decimal(0)
        for n, (line, account) in enumerate(zip(lines, accounts), 1):
            qty, unit, amount = Decimal(line["quantity"] or 1), Decimal(line["unit_amount"] or 0), Decimal(line["amount"] or 0)
            if (qty * unit).quantize(Decimal("0.01")) != amount.quantize(Decimal("0.01")):
                qty, unit = Decimal(1), amount
            item = {"Description": line["description"] or "", "Quantity": float(qty), "UnitAmount": money(unit), "AccountCode": account}
            if tax:
                share = tax - spread if n == len(lines) else (tax * amount / subtotal if subtotal else Decimal(0)).quantize(Decimal("0.01"))
                spread += share
                item["TaxAmount"] = money(share)
            items.append(item)
        payload = {"Type": "ACCPAY", "Contact": {"ContactID": vendor_remote_id}, "InvoiceNumber": inv["number"],
                   "Date": inv["issue_date"].isoformat(), "CurrencyCode": inv["currency"],
                   "LineAmountTypes": "Exclusive" if tax else "NoTax", "LineItems": items}
        if inv["status"] in _XERO_STATUS:
            payload["Status"] = _XERO_STATUS[inv["status"]]
        if inv["due_date"]:
            payload["DueDate"] = inv["due_date"].isoformat()
        return payload

    def find_invoice(self, number: str, vendor_remote_id: str) -> dict[str, Any] | None:
        rows = self.client.find("Invoices", None, InvoiceNumbers=number, ContactIDs=vendor_remote_id)
        return next((r for r in rows if r.get("Type") == "ACCPAY" and r.get("Status") not in ("DELETED", "VOIDED")), None)

    def create_invoice(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return _one(self.client.save("Invoices", [payload], create_only=True, idempotency_key=key))

    def check_invoice(self, remote_id: str, version: str | None) -> None:
        """Refuse (StaleVersion) if the bill changed in Xero since our last sync; the caller
        skips this when it resumes an earlier attempt, whose own effect would look like such a change."""
        self._check("Invoices", remote_id, version)

    def update_invoice(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return _one(self.client.save("Invoices", [{"InvoiceID": remote_id, **payload}], idempotency_key=key))


SIDES: dict[str, type] = {"quickbooks": QuickBooksSide, "xero": XeroSide}
