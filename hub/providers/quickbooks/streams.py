"""QuickBooks Online pull streams: accounts, vendors, customers, bills (payables) and sales invoices
(receivables) with their record
mappings, and the paging adapter they share.

Full reads page by Id (STARTPOSITION, 1-based), an order edits during the pull cannot
shuffle, so a pull that died after `done` records resumes at that offset without skipping
anything. Incremental reads use CDC while the last sync is under 30 days old; CDC returns at
most 1000 objects, so when 1000 come back the window restarts at the newest change seen (an
overlap of one instant, harmless because upserts are idempotent); else a full query.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hub.providers.amounts import dec
from hub.providers.quickbooks.client import MAX_PAGE, QuickBooksClient
from hub.schema import customer, gl_account, invoice, vendor
from hub.sync.invoices import upsert_invoices
from hub.sync.stream_spec import Pages, ReadScope, Row, StreamSpec
from hub.sync.vendors import upsert_party_page

CDC_LIMIT = 1000
CDC_WINDOW = timedelta(days=29)  # the provider allows 30; keep a day of margin


# ---- the paging adapter ------------------------------------------------------------------
def _updated(record: dict[str, Any]) -> datetime | None:
    value = (record.get("MetaData") or {}).get("LastUpdatedTime")
    return datetime.fromisoformat(value) if value else None


def read_pages(client: QuickBooksClient, stream: StreamSpec, since: datetime | None, done: int, page_size: int | None,
               scope: ReadScope) -> Pages:
    if since is not None and datetime.now(timezone.utc) - since < CDC_WINDOW:
        window = since
        while True:
            found, _ = client.cdc([stream.remote_entity], window)
            records = found.get(stream.remote_entity, [])
            if records:
                yield records
            if len(records) < CDC_LIMIT:
                return
            newest = max((t for t in map(_updated, records) if t), default=None)
            if newest is None or newest <= window:
                raise RuntimeError("QuickBooks CDC returned 1000 changes at one instant; cannot narrow the window")
            window = newest
    size = min(page_size or MAX_PAGE, MAX_PAGE)
    yield from client.iter_query(stream.remote_entity, where=stream.read_filter, page_size=size, start_position=done + 1)


# ---- record mappings -----------------------------------------------------------------------
def vendor_row(r: dict[str, Any]) -> Row:
    """A Vendor, or a Customer (the same name-list shape; a customer has no TaxIdentifier)."""
    return {
        "display_name": r.get("DisplayName") or r.get("CompanyName") or "",
        "legal_name": r.get("CompanyName"),
        "email": (r.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (r.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "tax_id": r.get("TaxIdentifier"),
        "address": r.get("BillAddr") or {},
        "is_active": r.get("Active", True) is not False,
    }


def account_row(r: dict[str, Any]) -> Row:
    return {"code": r.get("AcctNum"), "name": r.get("Name") or "", "account_type": r.get("AccountType") or "Other",
            "is_active": r.get("Active", True) is not False}


def is_deleted(r: dict[str, Any]) -> bool:
    return r.get("status") == "Deleted"


def remote_id(r: dict[str, Any]) -> str:
    return str(r["Id"])


def remote_version(r: dict[str, Any]) -> str | None:
    return r.get("SyncToken")


def _bill_status(r: dict[str, Any]) -> str:
    """QuickBooks has no status field: paid is a zero balance on a non-zero bill or invoice (a
    BillPayment or Payment cleared it); there is no draft. A voided transaction keeps zero
    amounts and PrivateNote "Voided" (QuickBooks voids invoices, not bills)."""
    total = dec(r.get("TotalAmt"))
    if total == 0 and str(r.get("PrivateNote") or "").startswith("Voided"):
        return "voided"
    if total > 0 and dec(r.get("Balance"), total) == 0:
        return "paid"
    return "authorised"


def _lines(r: dict[str, Any]) -> list[Row]:
    """A transaction's lines (a Bill's or an Invoice's): account-based lines carry an
    AccountRef, item-based and sales lines a quantity and unit price (and no account)."""
    lines = []
    for line in r.get("Line") or []:
        detail_type = line.get("DetailType")
        if detail_type == "SubTotalLineDetail":  # a computed subtotal, not a line of the bill
            continue
        detail = line.get(detail_type) or {}
        amount = dec(line.get("Amount"))
        lines.append({"description": line.get("Description"), "quantity": dec(detail.get("Qty"), 1),
                      "unit_amount": dec(detail.get("UnitPrice"), amount), "amount": amount,
                      "account_ref": (detail.get("AccountRef") or {}).get("value"), "account_code": None})
    return lines


def bill_row(r: dict[str, Any]) -> Row:
    """A QuickBooks Bill as a payable invoice (header columns plus `vendor_remote_id`,
    `customer_remote_id` and `lines`, as hub/sync/invoices.py writes them)."""
    return {**_transaction(r), "kind": "payable", "vendor_remote_id": (r.get("VendorRef") or {}).get("value"),
            "customer_remote_id": None}


def sales_invoice_row(r: dict[str, Any]) -> Row:
    """A QuickBooks Invoice (the sales form: CustomerRef, sales lines on items) as a receivable
    invoice. QuickBooks numbers invoices itself when DocNumber is not sent."""
    return {**_transaction(r), "kind": "receivable", "vendor_remote_id": None,
            "customer_remote_id": (r.get("CustomerRef") or {}).get("value")}


def _transaction(r: dict[str, Any]) -> Row:
    """What a Bill and an Invoice map alike: number, dates, currency, amounts, status, lines."""
    lines = _lines(r)
    total, tax = dec(r.get("TotalAmt")), dec((r.get("TxnTaxDetail") or {}).get("TotalTax"))
    created = ((r.get("MetaData") or {}).get("CreateTime") or "")[:10] or None
    return {
        "number": r.get("DocNumber") or str(r["Id"]),  # bill numbers are optional in QuickBooks
        "issue_date": r.get("TxnDate") or created,
        "due_date": r.get("DueDate"),
        "currency": (r.get("CurrencyRef") or {}).get("value") or "USD",
        "subtotal": total - tax, "tax": tax, "total": total,
        "status": _bill_status(r),
        "lines": lines,
    }


# ---- the streams ---------------------------------------------------------------------------
ACCOUNTS = StreamSpec(
    "quickbooks", "accounts", "gl_account", gl_account, "Account", account_row, remote_id, remote_version, is_deleted,
    {"is_active": False}, read=read_pages, prefetch=True,
    description="Chart of accounts (active and inactive) from QuickBooks into gl_account.")
VENDORS = StreamSpec(
    "quickbooks", "vendors", "vendor", vendor, "Vendor", vendor_row, remote_id, remote_version, is_deleted,
    {"is_active": False}, upsert=upsert_party_page, read=read_pages, prefetch=True,
    description="Vendors from QuickBooks (retired ones too) into vendor, merged with local edits (hub/sync/vendors.py).")
CUSTOMERS = StreamSpec(
    "quickbooks", "customers", "customer", customer, "Customer", vendor_row, remote_id, remote_version, is_deleted,
    {"is_active": False}, upsert=upsert_party_page, read=read_pages, prefetch=True,
    description="Customers from QuickBooks (inactive ones too) into customer, merged with local edits as vendors are "
                "(hub/sync/vendors.py).")
INVOICES = StreamSpec(
    "quickbooks", "invoices", "invoice", invoice, "Bill", bill_row, remote_id, remote_version, is_deleted,
    {"status": "deleted"}, upsert=upsert_invoices, after=("accounts", "vendors"), read=read_pages, prefetch=True,
    rows_where={"kind": "payable"},
    description="Bills (payables, QuickBooks Bill) with lines into invoice/invoice_line, merged with local edits "
                "(hub/sync/invoices.py).")
SALES_INVOICES = StreamSpec(
    "quickbooks", "sales_invoices", "sales_invoice", invoice, "Invoice", sales_invoice_row, remote_id, remote_version,
    is_deleted, {"status": "deleted"}, upsert=upsert_invoices, after=("accounts", "customers"), read=read_pages,
    prefetch=True, rows_where={"kind": "receivable"},
    description="Sales invoices (receivables, QuickBooks Invoice) with lines into invoice/invoice_line as kind "
                "receivable, merged with local edits as bills are (hub/sync/invoices.py).")
STREAMS = (ACCOUNTS, VENDORS, CUSTOMERS, INVOICES, SALES_INVOICES)
