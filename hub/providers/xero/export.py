"""Xero's side of an export (hub/sync/export.py runs it; the spec's `accounting.export_side`):
vendors and customers (contacts) and bills (ACCPAY invoices) as Xero payloads, the look-ups that find an
earlier write, creates, and updates checked against the version last seen."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from hub.providers.errors import DuplicateRecord, RecordProblem, StaleVersion
from hub.providers.xero.client import XeroClient, quote, validation_messages
from hub.providers.xero.streams import CUSTOMERS, INVOICES, SALES_INVOICES, VENDORS
from hub.sync.stream_spec import StreamSpec
from hub.sync.export import address_in, money
from hub.sync.vendors import FIELDS

# Xero has one `Name` where QuickBooks has DisplayName and CompanyName: `legal_name` is not
# synced, but taken from Name when a vendor is first met (if the local row has none)
VENDOR_FIELDS = tuple(f for f in FIELDS if f != "legal_name")
FIRST_CONTACT_FIELDS = ("legal_name",)

_ADDRESS = {"line1": "AddressLine1", "line2": "AddressLine2", "city": "City", "state": "Region", "region": "Region",
            "postal_code": "PostalCode", "country": "Country"}
# the hub's statuses Xero takes on a bill; `paid` is Xero's to set (by a payment), see status_problem
_STATUS = {"draft": "DRAFT", "submitted": "SUBMITTED", "authorised": "AUTHORISED"}


def _one(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The single item of a `summarizeErrors=false` save, or its validation errors raised."""
    item = items[0] if items else {}
    messages = validation_messages(item)
    if item.get("HasValidationErrors") or messages or not items:
        kind = DuplicateRecord if any("unique" in m.lower() for m in messages) else RecordProblem
        raise kind("xero", "; ".join(messages) or "the item was not saved", code="ValidationException")
    return item


class XeroParty:
    """Contacts as export writes them, for vendors (suppliers) or customers: the same calls
    (IsSupplier/IsCustomer are Xero's to set, by the first bill or sales invoice), read
    through the party's stream. Look-ups search all contacts: a supplier can become a customer."""

    def __init__(self, side: "XeroSide", stream: StreamSpec):
        self.side, self.client, self.stream = side, side.client, stream

    def values(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.stream.to_row(record)

    def key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return record["ContactID"], self.stream.remote_version(record)

    def payload(self, values: Mapping[str, Any]) -> dict[str, Any]:
        fields = {"display_name": ("Name", lambda v: v), "email": ("EmailAddress", lambda v: v or ""),
                  "phone": ("Phones", lambda v: [{"PhoneType": "DEFAULT", "PhoneNumber": v or ""}]),
                  "tax_id": ("TaxNumber", lambda v: v or ""),
                  "address": ("Addresses", lambda v: [{"AddressType": "POBOX", **address_in(v, _ADDRESS)}] if v else []),
                  "is_active": ("ContactStatus", lambda v: "ACTIVE" if v else "ARCHIVED")}
        return {fields[f][0]: fields[f][1](v) for f, v in values.items() if f in fields}

    def read(self, remote_id: str) -> dict[str, Any]:
        return self.client.read("Contacts", remote_id)

    def find(self, kind: str, value: str) -> list[dict[str, Any]]:
        where = {"tax": f"TaxNumber=={quote(value)}", "email": f"EmailAddress=={quote(value)}",
                 "name": f"Name.Contains({quote(value)})"}[kind]
        return self.client.find("Contacts", where, includeArchived="true")

    def create(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return _one(self.client.save("Contacts", [payload], create_only=True, idempotency_key=key))

    def update(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str, resumed: bool) -> dict[str, Any]:
        if not resumed:
            self.side._check("Contacts", remote_id, version)
        return _one(self.client.save("Contacts", [{"ContactID": remote_id, **payload}], idempotency_key=key))


class XeroSide:
    """Xero has no version check on writes, so an update first reads the record and refuses
    (as StaleVersion) when it changed since our last sync, unless it resumes an earlier
    attempt (whose own effect would look like such a change)."""

    provider, label = "xero", "Xero"
    account_field = "code"  # what account_value reads, as a person names it
    vendors = VENDORS
    invoices = INVOICES

    def __init__(self, client: XeroClient):
        self.client = client
        self._parties = {"vendor": XeroParty(self, VENDORS), "customer": XeroParty(self, CUSTOMERS)}

    def _check(self, resource: str, remote_id: str, version: str | None) -> None:
        stream = self.vendors if resource == "Contacts" else self.invoices
        if stream.remote_version(self.client.read(resource, remote_id)) != version:
            raise StaleVersion(self.provider, f"the record changed in Xero since the last sync ({resource} {remote_id})", code="changed")

    def party(self, entity: str) -> "XeroParty":
        """Vendors or customers (hub/sync/export_vendors.py): both are contacts."""
        return self._parties[entity]

    # invoices: ACCPAY bills and ACCREC sales invoices, both the Invoices resource
    def invoice_stream(self, kind: str) -> StreamSpec:
        return INVOICES if kind == "payable" else SALES_INVOICES

    def line_accounts(self, kind: str) -> bool:
        """Every line names an account (AccountCode): an expense account on a bill, a revenue
        one on a sales invoice (the hub's category mapping either way)."""
        return True

    def invoice_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return record["InvoiceID"], self.invoices.remote_version(record)

    def account_value(self, account: Mapping[str, Any]) -> str | None:
        return account["code"]

    def status_problem(self, status: str, synced_status: str | None, kind: str = "payable") -> str | None:
        """Xero takes DRAFT, SUBMITTED and AUTHORISED; PAID only follows a payment, which the hub
        does not send: a local `paid` (when Xero did not already show it paid) would go out as
        AUTHORISED and the next import would set it back."""
        if status == "paid" and synced_status != "paid":
            return ("it is marked paid in the hub, but the hub does not send payments: record the payment in Xero "
                    "(the next import brings the paid status in)")
        return None

    def invoice_payload(self, inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_remote_id: str,
                        accounts: list[str]) -> dict[str, Any]:
        """An ACCPAY invoice (ACCREC for a receivable, whose `vendor_remote_id` is its customer's
        contact), always with tax-exclusive line amounts (the hub stores lines
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
        payload = {"Type": "ACCREC" if inv["kind"] == "receivable" else "ACCPAY", "Contact": {"ContactID": vendor_remote_id}, "InvoiceNumber": inv["number"],
                   "Date": inv["issue_date"].isoformat(), "CurrencyCode": inv["currency"],
                   "LineAmountTypes": "Exclusive" if tax else "NoTax", "LineItems": items}
        if inv["status"] in _STATUS:
            payload["Status"] = _STATUS[inv["status"]]
        if inv["due_date"]:
            payload["DueDate"] = inv["due_date"].isoformat()
        return payload

    def find_invoice(self, number: str, vendor_remote_id: str, kind: str = "payable") -> dict[str, Any] | None:
        rows = self.client.find("Invoices", None, InvoiceNumbers=number, ContactIDs=vendor_remote_id)
        want = "ACCREC" if kind == "receivable" else "ACCPAY"
        return next((r for r in rows if r.get("Type") == want and r.get("Status") not in ("DELETED", "VOIDED")), None)

    def create_invoice(self, payload: dict[str, Any], key: str, kind: str = "payable") -> dict[str, Any]:
        return _one(self.client.save("Invoices", [payload], create_only=True, idempotency_key=key))

    def check_invoice(self, remote_id: str, version: str | None, kind: str = "payable") -> None:
        """Refuse (StaleVersion) if the bill changed in Xero since our last sync; the caller
        skips this when it resumes an earlier attempt, whose own effect would look like such a change."""
        self._check("Invoices", remote_id, version)

    def update_invoice(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str,
                       kind: str = "payable") -> dict[str, Any]:
        return _one(self.client.save("Invoices", [{"InvoiceID": remote_id, **payload}], idempotency_key=key))
