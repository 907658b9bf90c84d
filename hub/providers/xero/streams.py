"""Xero pull streams: accounts, suppliers (vendors), customers, bills and sales invoices
with their record mappings, and the paging adapter they share.

Full reads page in creation order (`page`/`pageSize`), which edits during the pull cannot
shuffle, so a pull that died after `done` records resumes at that page. Incremental reads
send `If-Modified-Since` on the same paged read; the chart of accounts is one unpaged list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.providers.amounts import dec
from hub.providers.xero.client import PAGE_SIZE, XeroClient, parse_date
from hub.schema import customer, gl_account, invoice, vendor
from hub.sync.invoices import upsert_invoices
from hub.sync.stream_spec import Pages, ReadScope, Row, StreamSpec
from hub.sync.vendors import upsert_party_page


# ---- the paging adapter ------------------------------------------------------------------
def read_pages(client: XeroClient, stream: StreamSpec, since: datetime | None, done: int, page_size: int | None,
               scope: ReadScope) -> Pages:
    if stream.remote_entity == "Accounts":  # the chart of accounts is one list
        records = client.accounts(modified_since=since)
        if records:
            yield records
        return
    size = page_size or PAGE_SIZE
    params = {"includeArchived": "true", **({"where": stream.read_filter} if stream.read_filter else {})}
    yield from client.iter_pages(stream.remote_entity, params=params, modified_since=since, page_size=size, start_page=done // size + 1)


# ---- record mappings -----------------------------------------------------------------------
def contact_row(r: dict[str, Any]) -> Row:
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


def account_row(r: dict[str, Any]) -> Row:
    return {"code": r.get("Code"), "name": r.get("Name") or "", "account_type": r.get("Type") or "OTHER",
            "is_active": r.get("Status", "ACTIVE") == "ACTIVE"}


def remote_version(r: dict[str, Any]) -> str | None:
    updated = parse_date(r.get("UpdatedDateUTC"))
    return updated.isoformat() if updated else None


def never_deleted(r: dict[str, Any]) -> bool:
    """Xero archives or voids instead of deleting; those come in as statuses."""
    return False


def _day(value: str | None) -> str | None:
    when = parse_date(value)
    return when.date().isoformat() if when else None


def invoice_row(r: dict[str, Any]) -> Row:
    """A Xero invoice (header columns plus `vendor_remote_id` and `lines`, as
    hub/sync/invoices.py writes them). Lines are stored tax-exclusive whatever
    `LineAmountTypes` says, so that total = sum(lines) + tax holds for every invoice: with
    `Inclusive` a LineAmount (and UnitAmount) contains the line's TaxAmount, which is taken
    out; export always sends `Exclusive` amounts (hub/sync/export.py)."""
    payable = r.get("Type") != "ACCREC"  # ACCPAY is a bill; ACCREC a sales invoice
    inclusive = r.get("LineAmountTypes") == "Inclusive"
    lines = []
    for li in r.get("LineItems") or []:
        quantity, amount, unit = dec(li.get("Quantity"), 1), dec(li.get("LineAmount")), dec(li.get("UnitAmount"))
        if inclusive:
            amount -= dec(li.get("TaxAmount"))
            unit = amount / quantity if quantity else amount
        lines.append({"description": li.get("Description"), "quantity": quantity, "unit_amount": unit, "amount": amount,
                      "account_ref": None, "account_code": li.get("AccountCode")})
    return {
        "kind": "payable" if payable else "receivable",
        # a bill's contact is a vendor, a sales invoice's a customer
        "vendor_remote_id": (r.get("Contact") or {}).get("ContactID") if payable else None,
        "customer_remote_id": None if payable else (r.get("Contact") or {}).get("ContactID"),
        "number": r.get("InvoiceNumber") or r["InvoiceID"],  # drafts may have no number yet
        "issue_date": _day(r.get("Date")),
        "due_date": _day(r.get("DueDate")),
        "currency": r.get("CurrencyCode") or "USD",
        "subtotal": dec(r.get("SubTotal")), "tax": dec(r.get("TotalTax")), "total": dec(r.get("Total")),
        "status": str(r.get("Status") or "DRAFT").lower(),  # the six Xero statuses are the hub's
        "lines": lines,
    }


# ---- the streams ---------------------------------------------------------------------------
ACCOUNTS = StreamSpec(
    "xero", "accounts", "gl_account", gl_account, "Accounts", account_row, lambda r: r["AccountID"], remote_version,
    lambda r: r.get("Status") == "DELETED", {"is_active": False}, read=read_pages, prefetch=True,
    description="Chart of accounts from Xero into gl_account.")
VENDORS = StreamSpec(
    "xero", "vendors", "vendor", vendor, "Contacts", contact_row, lambda r: r["ContactID"], remote_version, never_deleted,
    {"is_active": False}, read_filter="IsSupplier==true", upsert=upsert_party_page, read=read_pages, prefetch=True,
    # IsSupplier is set by Xero's first bill, without an UpdatedDateUTC change: reconciliation reads
    # all contacts (hub/sync/reconcile.py WIDER_READS) and imports suppliers this read never returned
    description="Suppliers (contacts with IsSupplier) from Xero into vendor; archived ones come in inactive.")
CUSTOMERS = StreamSpec(
    "xero", "customers", "customer", customer, "Contacts", contact_row, lambda r: r["ContactID"], remote_version,
    never_deleted, {"is_active": False}, read_filter="IsCustomer==true", upsert=upsert_party_page, read=read_pages,
    prefetch=True,
    # IsCustomer, like IsSupplier, is set by the first sales invoice without an UpdatedDateUTC change (WIDER_READS)
    description="Customers (contacts with IsCustomer) from Xero into customer; archived ones come in inactive.")
INVOICES = StreamSpec(
    "xero", "invoices", "invoice", invoice, "Invoices", invoice_row, lambda r: r["InvoiceID"], remote_version,
    never_deleted, {"status": "deleted"}, read_filter='Type=="ACCPAY"', upsert=upsert_invoices, after=("accounts", "vendors"),
    read=read_pages, prefetch=True, rows_where={"kind": "payable"},
    description="Bills (ACCPAY), with lines, from Xero into invoice/invoice_line.")
SALES_INVOICES = StreamSpec(
    "xero", "sales_invoices", "sales_invoice", invoice, "Invoices", invoice_row, lambda r: r["InvoiceID"], remote_version,
    never_deleted, {"status": "deleted"}, read_filter='Type=="ACCREC"', upsert=upsert_invoices,
    after=("accounts", "customers"), read=read_pages, prefetch=True, rows_where={"kind": "receivable"},
    description="Sales invoices (ACCREC, receivables), with lines, from Xero into invoice/invoice_line as kind receivable.")
STREAMS = (ACCOUNTS, VENDORS, CUSTOMERS, INVOICES, SALES_INVOICES)
