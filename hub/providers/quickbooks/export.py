"""QuickBooks' side of an export (hub/sync/export.py runs it; the spec's
`accounting.export_side`): vendors, customers, bills and sales invoices as QuickBooks payloads, the look-ups that find
an earlier write, creates, and sparse updates under the SyncToken last seen."""

from __future__ import annotations

from typing import Any, Mapping

from hub.providers.errors import StaleVersion
from hub.providers.quickbooks.client import QuickBooksClient, quote
from hub.providers.quickbooks.streams import CUSTOMERS, INVOICES, SALES_INVOICES, VENDORS
from hub.sync.stream_spec import StreamSpec
from hub.sync.export import address_in, money
from hub.sync.vendors import FIELDS

VENDOR_FIELDS = FIELDS  # DisplayName and CompanyName: every vendor field goes both ways
CUSTOMER_FIELDS = tuple(f for f in FIELDS if f != "tax_id")  # a Customer has no TaxIdentifier

_ADDRESS = {"line1": "Line1", "line2": "Line2", "city": "City", "state": "CountrySubDivisionCode",
            "region": "CountrySubDivisionCode", "postal_code": "PostalCode", "country": "Country"}


class QuickBooksParty:
    """One QuickBooks name list as export writes it: `Vendor` or `Customer` (the same shape and
    calls; a customer has no TaxIdentifier, so a tax id finds no customer)."""

    provider = "quickbooks"

    def __init__(self, client: QuickBooksClient, entity: str, stream: StreamSpec):
        self.client, self.entity, self.stream = client, entity, stream

    def values(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.stream.to_row(record)

    def key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return str(record["Id"]), record.get("SyncToken")

    def payload(self, values: Mapping[str, Any]) -> dict[str, Any]:
        fields = {"display_name": ("DisplayName", lambda v: v), "legal_name": ("CompanyName", lambda v: v),
                  "email": ("PrimaryEmailAddr", lambda v: {"Address": v} if v else None),
                  "phone": ("PrimaryPhone", lambda v: {"FreeFormNumber": v} if v else None),
                  "tax_id": ("TaxIdentifier", lambda v: v), "address": ("BillAddr", lambda v: address_in(v, _ADDRESS) or None),
                  "is_active": ("Active", bool)}
        if self.entity != "Vendor":
            del fields["tax_id"]
        return {fields[f][0]: fields[f][1](v) for f, v in values.items() if f in fields}

    def read(self, remote_id: str) -> dict[str, Any]:
        return self.client.read(self.entity, remote_id)

    def find(self, kind: str, value: str) -> list[dict[str, Any]]:
        """Candidates by tax id, email, or (LIKE) a word of the name; retired ones too."""
        if kind == "tax" and self.entity != "Vendor":
            return []
        where = {"tax": f"TaxIdentifier = {quote(value)}", "email": f"PrimaryEmailAddr.Address = {quote(value)}",
                 "name": f"DisplayName LIKE {quote('%' + value + '%')}"}[kind]
        return self.client.query(f"SELECT * FROM {self.entity} WHERE {where} AND Active IN (true, false) MAXRESULTS 1000").get(self.entity, [])

    def create(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        return self.client.create(self.entity, payload, request_id=key)

    def update(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str, resumed: bool) -> dict[str, Any]:
        """Sparse update under the SyncToken we last saw: QuickBooks refuses it (5010) if the
        record changed since."""
        if version is None:
            raise StaleVersion(self.provider, f"no SyncToken known for this {self.entity.lower()}", code="5010")
        return self.client.update(self.entity, {"Id": remote_id, "SyncToken": version, **payload}, request_id=key)


class QuickBooksSide:
    provider, label = "quickbooks", "QuickBooks"
    account_field = "id"  # what account_value reads, as a person names it
    vendors = VENDORS
    invoices = INVOICES

    def __init__(self, client: QuickBooksClient):
        self.client = client
        self._parties = {"vendor": QuickBooksParty(client, "Vendor", VENDORS), "customer": QuickBooksParty(client, "Customer", CUSTOMERS)}

    def party(self, entity: str) -> QuickBooksParty:
        """Vendors or customers (hub/sync/export_vendors.py)."""
        return self._parties[entity]

    # invoices: payables go out as QuickBooks Bills (reference 1.4), receivables as `Invoice`,
    # the sales form (CustomerRef, sales lines; QuickBooks books them through items, so their
    # lines need no account of the hub's mapping)
    _ENTITY = {"payable": "Bill", "receivable": "Invoice"}
    _NOUN = {"payable": "bill", "receivable": "invoice"}

    def invoice_stream(self, kind: str) -> StreamSpec:
        return INVOICES if kind == "payable" else SALES_INVOICES

    def line_accounts(self, kind: str) -> bool:
        """Whether each line must name an account: a Bill's expense lines do, an Invoice's
        sales lines name an item instead (left to QuickBooks' default)."""
        return kind == "payable"

    def invoice_key(self, record: dict[str, Any]) -> tuple[str, str | None]:
        return str(record["Id"]), record.get("SyncToken")

    def account_value(self, account: Mapping[str, Any]) -> str | None:
        return account["remote_id"]

    def status_problem(self, status: str, synced_status: str | None, kind: str = "payable") -> str | None:
        """Why a bill (or sales invoice) in this local status must not be sent, if it must not.
        A QuickBooks bill or invoice is posted from the moment it exists (no draft or approval
        state), and it is paid by a BillPayment / Payment, which the hub does not send: a local
        `paid` (when QuickBooks did not already show it paid) would go out unpaid and the next
        import would set it back to authorised."""
        noun = self._NOUN[kind]
        if status in ("draft", "submitted"):
            return (f"it is {status} in the hub: QuickBooks {noun}s have no draft or approval state, so sending it would post "
                    f"it as a {'payable' if kind == 'payable' else 'receivable'}; set it to authorised when it is approved")
        if status == "paid" and synced_status != "paid":
            return ("it is marked paid in the hub, but the hub does not send payments: record the payment in QuickBooks "
                    "(the next import brings the paid status in)")
        return None

    def invoice_payload(self, inv: Mapping[str, Any], lines: list[Mapping[str, Any]], vendor_remote_id: str,
                        accounts: list[str]) -> dict[str, Any]:
        """A Bill: VendorRef and account-based expense lines; or, for a receivable, an Invoice:
        CustomerRef (`vendor_remote_id` is then the customer's) and sales lines of quantity and
        unit price. The status is QuickBooks' own."""
        if inv["kind"] == "receivable":
            payload = {"CustomerRef": {"value": vendor_remote_id},
                       "Line": [{"Amount": money(line["amount"]), "DetailType": "SalesItemLineDetail",
                                 "Description": line["description"] or "",
                                 "SalesItemLineDetail": {"Qty": float(line["quantity"] or 1), "UnitPrice": money(line["unit_amount"])}}
                                for line in lines]}
        else:
            payload = {"VendorRef": {"value": vendor_remote_id},
                       "Line": [{"Amount": money(line["amount"]), "DetailType": "AccountBasedExpenseLineDetail",
                                 "Description": line["description"] or "",
                                 "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}}}
                                for line, account in zip(lines, accounts)]}
        payload.update({"DocNumber": inv["number"], "TxnDate": inv["issue_date"].isoformat(), "CurrencyRef": {"value": inv["currency"]}})
        if inv["due_date"]:
            payload["DueDate"] = inv["due_date"].isoformat()
        return payload

    def find_invoice(self, number: str, vendor_remote_id: str, kind: str = "payable") -> dict[str, Any] | None:
        entity = self._ENTITY[kind]
        ref = "VendorRef" if kind == "payable" else "CustomerRef"
        rows = self.client.query(f"SELECT * FROM {entity} WHERE DocNumber = {quote(number)}").get(entity, [])
        return next((r for r in rows if (r.get(ref) or {}).get("value") == vendor_remote_id), None)

    def create_invoice(self, payload: dict[str, Any], key: str, kind: str = "payable") -> dict[str, Any]:
        return self.client.create(self._ENTITY[kind], payload, request_id=key)

    def check_invoice(self, remote_id: str, version: str | None, kind: str = "payable") -> None:
        """Nothing to read first: QuickBooks checks the SyncToken of the update itself (5010)."""

    def update_invoice(self, remote_id: str, version: str | None, payload: dict[str, Any], key: str,
                       kind: str = "payable") -> dict[str, Any]:
        """Sparse update under the SyncToken we last saw (a sent `Line` replaces all lines)."""
        if version is None:
            raise StaleVersion(self.provider, f"no SyncToken known for this {self._NOUN[kind]}", code="5010")
        return self.client.update(self._ENTITY[kind], {"Id": remote_id, "SyncToken": version, **payload}, request_id=key)
