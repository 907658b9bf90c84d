"""Declarative pull streams: what each provider stream is, where it lands, how its records
map to local rows. The engine (engine.py) and the Dagster assets are generated from these;
a new stream is an entry here and a mapping function, not new sync code.

Paging and incremental reads live in the provider adapters (adapters.py), one function
per provider and kind of read, shared by all of that provider's streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from hub.providers.xero import parse_date
from hub.schema import daily_log, rfi, submittal
from hub.sync import procore as _procore
from hub.schema import gl_account, invoice, vendor
from hub.sync.invoices import qbo_invoice, upsert_invoices, xero_invoice
from hub.sync.vendors import upsert_vendor_page

Row = dict[str, Any]


@dataclass
class PageCounts:
    """What one page did to the local tables."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0  # fields left for a person to settle (sync_conflict rows)

    def add(self, other: "PageCounts") -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.conflicts += other.conflicts


@dataclass(frozen=True)
class ReadScope:
    """What an adapter or a custom upsert may need beyond the records: the database (e.g. the
    linked Procore projects to read) and whose records these are."""

    engine: Any  # sqlalchemy Engine
    integration_id: int
    company_id: int
    conflict_policy: str = "field_ownership"  # from the integration's sync preferences


@dataclass(frozen=True)
class StreamSpec:
    provider: str
    name: str  # asset key: <provider>/<name>
    entity_type: str  # sync_log.entity_type
    table: sa.Table
    remote_entity: str  # the provider's name for it (QuickBooks entity, Xero resource)
    to_row: Callable[[dict[str, Any]], Row]  # remote record -> local columns (without provenance)
    remote_id: Callable[[dict[str, Any]], str]
    remote_version: Callable[[dict[str, Any]], str | None]
    is_deleted: Callable[[dict[str, Any]], bool]
    deleted_values: Row  # what a remote delete sets locally (rows are never dropped)
    read_filter: str | None = None  # provider-side filter for the stream (e.g. Xero suppliers)
    description: str = ""
    # a page writer other than the engine's plain upsert (lines, merges); same signature as
    # engine.upsert_page: (conn, stream, scope, records) -> PageCounts
    upsert: Callable[..., PageCounts] | None = None
    # streams of the same provider whose rows this one refers to (read first: asset deps)
    after: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.name}"


# ---- QuickBooks Online --------------------------------------------------------------------
def _qbo_vendor(r: dict[str, Any]) -> Row:
    return {
        "display_name": r.get("DisplayName") or r.get("CompanyName") or "",
        "legal_name": r.get("CompanyName"),
        "email": (r.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (r.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "tax_id": r.get("TaxIdentifier"),
        "address": r.get("BillAddr") or {},
        "is_active": r.get("Active", True) is not False,
    }


def _qbo_account(r: dict[str, Any]) -> Row:
    return {"code": r.get("AcctNum"), "name": r.get("Name") or "", "account_type": r.get("AccountType") or "Other",
            "is_active": r.get("Active", True) is not False}


def _qbo_deleted(r: dict[str, Any]) -> bool:
    return r.get("status") == "Deleted"


# ---- Xero ---------------------------------------------------------------------------------
def _xero_contact(r: dict[str, Any]) -> Row:
    phones = r.get("Phones") or []
    phone = next((p.get("PhoneNumber") for p in phones if p.get("PhoneNumber")), None)
    return {
        "display_name": r.get("Name") or "",
        "legal_name": r.get("Name"),
        "email": r.get("EmailAddress"),
        "phone": phone,
        "tax_id": r.get("TaxNumber"),
        "address": (r.get("Addresses") or [{}])[0] or {},
        "is_active": r.get("ContactStatus", "ACTIVE") == "ACTIVE",
    }


def _xero_account(r: dict[str, Any]) -> Row:
    return {"code": r.get("Code"), "name": r.get("Name") or "", "account_type": r.get("Type") or "OTHER",
            "is_active": r.get("Status", "ACTIVE") == "ACTIVE"}


def _xero_version(r: dict[str, Any]) -> str | None:
    updated = parse_date(r.get("UpdatedDateUTC"))
    return updated.isoformat() if updated else None


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("quickbooks", "accounts", "gl_account", gl_account, "Account", _qbo_account,
               lambda r: str(r["Id"]), lambda r: r.get("SyncToken"), _qbo_deleted, {"is_active": False},
               description="Chart of accounts (active and inactive) from QuickBooks into gl_account."),
    StreamSpec("quickbooks", "vendors", "vendor", vendor, "Vendor", _qbo_vendor,
               lambda r: str(r["Id"]), lambda r: r.get("SyncToken"), _qbo_deleted, {"is_active": False},
               upsert=upsert_vendor_page,
               description="Vendors from QuickBooks (retired ones too) into vendor, merged with local edits (hub/sync/vendors.py)."),
    StreamSpec("xero", "accounts", "gl_account", gl_account, "Accounts", _xero_account,
               lambda r: r["AccountID"], _xero_version, lambda r: r.get("Status") == "DELETED", {"is_active": False},
               description="Chart of accounts from Xero into gl_account."),
    StreamSpec("xero", "vendors", "vendor", vendor, "Contacts", _xero_contact,
               lambda r: r["ContactID"], _xero_version, lambda r: False, {"is_active": False},
               read_filter="IsSupplier==true", upsert=upsert_vendor_page,
               # IsSupplier is set by Xero's first bill, without an UpdatedDateUTC change: reconciliation reads
               # all contacts (hub/sync/reconcile.py WIDER_READS) and imports suppliers this read never returned
               description="Suppliers (contacts with IsSupplier) from Xero into vendor; archived ones come in inactive."),
    StreamSpec("quickbooks", "invoices", "invoice", invoice, "Bill", qbo_invoice,
               lambda r: str(r["Id"]), lambda r: r.get("SyncToken"), _qbo_deleted, {"status": "deleted"}, upsert=upsert_invoices,
               after=("accounts", "vendors"),
               description="Bills (payables, QuickBooks Bill) with lines into invoice/invoice_line, merged with local edits "
                           "(hub/sync/invoices.py); QuickBooks sales invoices (Invoice, receivables) are not imported yet."),
    StreamSpec("xero", "invoices", "invoice", invoice, "Invoices", xero_invoice,
               lambda r: r["InvoiceID"], _xero_version, lambda r: False, {"status": "deleted"}, upsert=upsert_invoices,
               after=("accounts", "vendors"),
               description="Bills (ACCPAY) and sales invoices (ACCREC), with lines, from Xero into invoice/invoice_line."),
    # Procore: read per linked project by hub/sync/procore.py (adapter and page writer)
    StreamSpec("procore", "rfis", "rfi", rfi, "rfis", _procore.rfi_row, _procore.remote_id, _procore.remote_version,
               _procore.is_deleted, {"status": "deleted"}, upsert=_procore.write_page,
               description="RFIs of the linked Procore projects into rfi; recycled ones kept with status deleted."),
    StreamSpec("procore", "submittals", "submittal", submittal, "submittals", _procore.submittal_row, _procore.remote_id,
               _procore.remote_version, _procore.is_deleted, {"status": "deleted"}, upsert=_procore.write_page,
               description="Submittals of the linked Procore projects into submittal; recycled ones kept with status deleted."),
    StreamSpec("procore", "daily_logs", "daily_log", daily_log, "daily_logs", _procore.daily_log_row, _procore.log_remote_id,
               _procore.remote_version, _procore.is_deleted, {}, upsert=_procore.write_page,
               description="Manpower, notes and weather logs of the linked Procore projects (last 90 days on a full read) into daily_log."),
)

BY_KEY = {stream.key: stream for stream in STREAMS}
