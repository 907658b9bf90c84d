"""QuickBooks' side of an export (hub/sync/export.py runs it; the spec's
`accounting.export_side`): vendors and bills as QuickBooks payloads, the look-ups that find
an earlier write, creates, and sparse updates under the SyncToken last seen."""

from __future__ import annotations

from typing import Any, Mapping

from hub.providers.errors import StaleVersion
from hub.providers.quickbooks.client import QuickBooksClient, quote
from hub.providers.quickbooks.streams import INVOICES, VENDORS
from hub.sync.export import address_in, money
from hub.sync.vendors import FIELDS

VENDOR_FIELDS = FIELDS  # DisplayName and CompanyName: every vendor field goes both ways

_ADDRESS = {"line1": "Line1", "line2": "Line2", "city": "City", "state": "CountrySubDivisionCode",
            "region": "CountrySubDivisionCode", "postal_code": "PostalCode", "country": "Country"}


class QuickBooksSide:
    provider, label = "quickbooks", "QuickBooks"
    account_field = "id"  # what account_value reads, as a person names it
    vendors = VENDORS
    invoices = INVOICES

    def __init__(self, client: QuickBooksClient):
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
                  "tax_id": ("TaxIdentifier", lambda v: v), "address": ("BillAddr", lambda v: address_in(v, _ADDRESS) or None),
                  "is_active": ("Active", bool)}
        return {fields[f][0]: fields[f][1](v) for f, v in values.items() if f in fields}

    def read_vendor(self, remote_id: str) -> dict[str, Any]:
        return self.client.read("Vendor", remote_id)

    def find_vendors(self, kind: str, value: str) -> list[dict[str, Any]]:
        """Candidates by tax id, email, or (LIKE) a word of the name; retired ones too."""
        where = {"tax": f"TaxIdentifier = {quote(value)}", "email": f"PrimaryEmailAddr.Address = {quote(value)}",
                 "name": f"DisplayName LIKE {quote('%' + value + '%')}"}[kind]
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
        rows = self.client.query(f"SELECT * FROM Bill WHERE DocNumber = {quote(number)}").get("Bill", [])
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
