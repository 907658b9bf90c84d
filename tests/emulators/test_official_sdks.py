"""The QuickBooks and Xero emulators driven by each provider's official Python SDK, unchanged.

The SDKs are pointed at an emulator only through configuration they offer:
- python-quickbooks + intuit-oauth: `AuthClient(environment=<discovery-document URL>)` (intuit-oauth
  takes a URL there and reads the token endpoint from it), the SDK's own `AuthClient.refresh` through
  `QuickBooks(auth_client=..., refresh_token=...)`, and `QuickBooks.api_url_v3` set to the emulator.
  `OAUTHLIB_INSECURE_TRANSPORT=1` lets requests-oauthlib send a bearer token over loopback http.
- xero-python: `AccountingApi(api_client, base_url=...)`, `IdentityApi(..., base_url=...)` and the
  `ApiClient` token getter/saver. Its refresh URL is a fixed class attribute (no configuration), so
  the token is exchanged at the emulator's `/connect/token` with a plain HTTP POST, as an app's own
  OAuth code would.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import httpx
import pytest
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import AuthorizationException, ObjectNotFoundException, QuickbooksException
from quickbooks.objects.base import Ref
from quickbooks.objects.bill import Bill
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import AccountBasedExpenseLine, AccountBasedExpenseLineDetail, SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.vendor import Vendor
from xero_python.accounting import AccountingApi, Contact, Contacts, Invoice as XeroInvoice, Invoices as XeroInvoices, LineItem
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import AccountingBadRequestException, NotFoundException, RateLimitException
from xero_python.identity import IdentityApi

from emulators import quickbooks as qbo_emulator
from emulators import xero as xero_emulator
from emulators.serve import serve

CLIENT_ID, CLIENT_SECRET = "hub-demo", "hub-demo-secret"
REALM = "9130350000000001"
TENANT = xero_emulator.DEFAULT_TENANT
XERO_SCOPE = "offline_access accounting.contacts accounting.transactions accounting.settings"

pytestmark = pytest.mark.timeout(60)


# ---- QuickBooks Online through python-quickbooks ------------------------------------------------
def _quickbooks(auth: AuthClient, refresh_token: str, base: str) -> QuickBooks:
    client = QuickBooks(auth_client=auth, refresh_token=refresh_token, company_id=REALM, minorversion=75)
    client.api_url_v3 = f"{base}/v3"
    return client


@pytest.fixture
def qbo(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    emulator = qbo_emulator.create_emulator(vendors=5, bills=5, invoices=5)
    with serve(emulator.app) as base:
        auth = AuthClient(CLIENT_ID, CLIENT_SECRET, "http://localhost/callback", f"{base}/.well-known/openid_configuration/")
        granted = emulator.core.oauth.issue_refresh_token(CLIENT_ID, {"realmId": REALM})
        yield SimpleNamespace(emu=emulator, base=base, auth=auth, granted=granted, qb=_quickbooks(auth, granted, base))


def test_qbo_intuit_oauth_refresh_rotates_the_token(qbo):
    assert qbo.auth.token_endpoint == f"{qbo.base}/oauth2/v1/tokens/bearer"
    assert qbo.emu.core.oauth.refreshes == 1  # QuickBooks(...) called AuthClient.refresh once
    assert qbo.auth.access_token.startswith("at-") and qbo.auth.expires_in == 3600
    assert qbo.auth.x_refresh_token_expires_in == 100 * 86400
    assert qbo.auth.refresh_token not in (None, qbo.granted)
    with pytest.raises(AuthClientError) as spent:  # single use: the granted token is gone
        qbo.auth.refresh(refresh_token=qbo.granted)
    assert spent.value.status_code == 400 and "invalid_grant" in spent.value.content.decode()


def test_qbo_vendor_queries(qbo):
    names = {str(i): qbo.emu.state.read("Vendor", i)["DisplayName"] for i in range(1, 6)}
    vendors = Vendor.all(qb=qbo.qb)
    assert {v.Id: v.DisplayName for v in vendors} == names
    assert [v.Id for v in Vendor.filter(DisplayName=names["3"], qb=qbo.qb)] == ["3"]
    top_two = Vendor.where("Active = true", order_by="DisplayName DESC", max_results=2, qb=qbo.qb)
    assert [v.DisplayName for v in top_two] == sorted(names.values(), key=str.casefold, reverse=True)[:2]
    assert Vendor.count(qb=qbo.qb) == 5
    one = Vendor.get("4", qb=qbo.qb)
    assert (one.Id, one.DisplayName, one.SyncToken) == ("4", names["4"], "0")
    assert one.MetaData["LastUpdatedTime"] == qbo.emu.state.read("Vendor", 4)["MetaData"]["LastUpdatedTime"]


def test_qbo_unknown_id_is_object_not_found(qbo):
    with pytest.raises(ObjectNotFoundException) as missing:
        Vendor.get("999", qb=qbo.qb)
    assert missing.value.error_code == 610


def test_qbo_vendor_create_then_update(qbo):
    vendor = Vendor()
    vendor.DisplayName = "O'Brien Supply"  # the SDK escapes the quote as \' in filter()
    created = vendor.save(qb=qbo.qb)
    assert (created.Id, created.SyncToken, created.DisplayName) == ("6", "0", "O'Brien Supply")
    assert [v.Id for v in Vendor.filter(DisplayName="O'Brien Supply", qb=qbo.qb)] == ["6"]

    created.CompanyName = "O'Brien Supply LLC"
    updated = created.save(qb=qbo.qb)
    assert (updated.Id, updated.SyncToken, updated.CompanyName) == ("6", "1", "O'Brien Supply LLC")
    assert Vendor.get("6", qb=qbo.qb).CompanyName == "O'Brien Supply LLC"
    assert Vendor.count(qb=qbo.qb) == 6


def test_qbo_stale_sync_token_is_5010(qbo):
    mine, theirs = Vendor.get("2", qb=qbo.qb), Vendor.get("2", qb=qbo.qb)
    theirs.CompanyName = "Changed elsewhere"
    theirs.save(qb=qbo.qb)
    mine.CompanyName = "My late change"
    with pytest.raises(QuickbooksException) as stale:
        mine.save(qb=qbo.qb)
    assert stale.value.error_code == 5010 and stale.value.message == "Stale Object Error"
    assert Vendor.get("2", qb=qbo.qb).CompanyName == "Changed elsewhere"


def test_qbo_duplicate_display_name_is_6240(qbo):
    taken = Customer.all(qb=qbo.qb)[0].DisplayName  # names are unique across customers and vendors
    vendor = Vendor()
    vendor.DisplayName = taken
    with pytest.raises(QuickbooksException) as duplicate:
        vendor.save(qb=qbo.qb)
    assert duplicate.value.error_code == 6240 and duplicate.value.message == "Duplicate Name Exists Error"
    assert Vendor.count(qb=qbo.qb) == 5


def test_qbo_invoice_query_and_company_info(qbo):
    invoices = Invoice.all(qb=qbo.qb)
    assert [i.Id for i in invoices] == ["1", "2", "3", "4", "5"]
    for invoice in invoices:
        assert round(sum(line.Amount for line in invoice.Line), 2) == invoice.TotalAmt
    picked = invoices[2]
    assert [i.Id for i in Invoice.filter(DocNumber=picked.DocNumber, qb=qbo.qb)] == [picked.Id]
    company = CompanyInfo.get(REALM, qb=qbo.qb)
    assert (company.Id, company.CompanyName) == ("1", "Hub Demo Construction")


def test_qbo_change_data_capture_reports_a_deleted_invoice(qbo):
    since = datetime.fromtimestamp(qbo.emu.core.clock.time(), qbo_emulator.TZ).replace(microsecond=0)
    vendor = Vendor.get("2", qb=qbo.qb)
    vendor.CompanyName = "Renamed for CDC"
    vendor.save(qb=qbo.qb)
    deleted = Invoice.get("3", qb=qbo.qb).delete(qb=qbo.qb)
    assert deleted["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": "3"}

    # a naive datetime: the SDK formats it without offset, read in the company's time zone
    changes = change_data_capture([Vendor, Invoice], since.replace(tzinfo=None), qb=qbo.qb)
    assert [(v.Id, v.CompanyName, v.SyncToken) for v in changes.Vendor] == [("2", "Renamed for CDC", "1")]
    assert [(i.Id, i.status) for i in changes.Invoice] == [("3", "Deleted")]
    assert [i.Id for i in Invoice.all(qb=qbo.qb)] == ["1", "2", "4", "5"]


def test_qbo_bill_create_query_update_delete_and_cdc(qbo):
    """Vendor bills are python-quickbooks' `Bill` (objects/bill.py): VendorRef, account-based
    expense lines; created, read back, updated under its SyncToken, deleted, seen in CDC."""
    since = datetime.fromtimestamp(qbo.emu.core.clock.time(), qbo_emulator.TZ).replace(microsecond=0)
    assert [b.Id for b in Bill.all(qb=qbo.qb)] == ["1", "2", "3", "4", "5"]
    assert all(b.VendorRef.value in {"1", "2", "3", "4", "5"} for b in Bill.all(qb=qbo.qb))
    bill = Bill()
    bill.VendorRef = Vendor.get("2", qb=qbo.qb).to_ref()
    bill.DocNumber = "SDK-1"
    line = AccountBasedExpenseLine()
    line.Amount, line.Description = 125.5, "Lumber"
    line.AccountBasedExpenseLineDetail = AccountBasedExpenseLineDetail()
    account = Ref()
    account.value = "5"
    line.AccountBasedExpenseLineDetail.AccountRef = account
    bill.Line.append(line)
    created = bill.save(qb=qbo.qb)
    assert (created.Id, created.SyncToken, created.TotalAmt, created.Balance) == ("6", "0", 125.5, 125.5)
    assert created.Line[0].AccountBasedExpenseLineDetail.AccountRef.name == "Office Expenses"
    assert [b.Id for b in Bill.filter(DocNumber="SDK-1", qb=qbo.qb)] == ["6"]
    fetched = Bill.get("6", qb=qbo.qb)
    fetched.DueDate = "2030-01-31"
    assert fetched.save(qb=qbo.qb).SyncToken == "1"
    assert qbo.emu.state.read("Bill", "6")["DueDate"] == "2030-01-31"
    assert Bill.get("3", qb=qbo.qb).delete(qb=qbo.qb)["Bill"] == {"status": "Deleted", "domain": "QBO", "Id": "3"}
    changes = change_data_capture([Bill], since.replace(tzinfo=None), qb=qbo.qb)
    assert sorted((b.Id, getattr(b, "status", None)) for b in changes.Bill) == [("3", "Deleted"), ("6", None)]


def test_qbo_customer_and_sales_invoice_create_update_and_cdc(qbo):
    """Receivables are python-quickbooks' `Customer` and `Invoice` (objects/invoice.py): a
    customer created and updated under its SyncToken; an invoice with CustomerRef and sales
    lines, numbered by QuickBooks when DocNumber is not sent; Bill 1 and Invoice 1 are two
    records (each entity numbers its own ids); both show in CDC."""
    since = datetime.fromtimestamp(qbo.emu.core.clock.time(), qbo_emulator.TZ).replace(microsecond=0)
    customer = Customer()
    customer.DisplayName = "Harbor Cafe Group"
    created = customer.save(qb=qbo.qb)
    assert (created.Id, created.SyncToken, created.Active) == ("4", "0", True)  # three customers come generated
    created.CompanyName = "Harbor Cafe Group LLC"
    assert created.save(qb=qbo.qb).SyncToken == "1"
    assert Customer.get("4", qb=qbo.qb).CompanyName == "Harbor Cafe Group LLC"

    invoice = Invoice()
    invoice.CustomerRef = Customer.get("4", qb=qbo.qb).to_ref()
    line = SalesItemLine()
    line.Amount, line.Description = 740.0, "Catering, 40 covers"
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.Qty, line.SalesItemLineDetail.UnitPrice = 40, 18.5
    invoice.Line.append(line)
    sold = invoice.save(qb=qbo.qb)
    assert (sold.Id, sold.DocNumber, sold.TotalAmt, sold.Balance) == ("6", "1006", 740.0, 740.0)
    assert sold.CustomerRef.value == "4" and sold.CustomerRef.name == "Harbor Cafe Group"
    assert [i.Id for i in Invoice.filter(DocNumber="1006", qb=qbo.qb)] == ["6"]

    bill, sale = Bill.get("1", qb=qbo.qb), Invoice.get("1", qb=qbo.qb)
    assert bill.Id == sale.Id == "1" and bill.VendorRef.value and sale.CustomerRef.value  # two records, one Id

    no_customer = Invoice()
    no_customer.Line.append(line)
    with pytest.raises(QuickbooksException) as refused:
        no_customer.save(qb=qbo.qb)
    assert refused.value.error_code == 2020  # CustomerRef is required

    changes = change_data_capture([Customer, Invoice], since.replace(tzinfo=None), qb=qbo.qb)
    assert [(c.Id, c.SyncToken) for c in changes.Customer] == [("4", "1")]
    assert [i.Id for i in changes.Invoice] == ["6"]


def test_qbo_expired_access_token_is_authorization_exception(qbo):
    qbo.emu.core.clock.advance(qbo_emulator.ACCESS_TTL + 1)
    with pytest.raises(AuthorizationException) as expired:
        Vendor.count(qb=qbo.qb)
    assert expired.value.error_code == 401 and "access token expired" in expired.value.detail
    qbo.auth.refresh()  # the rotated refresh token from the first exchange still works
    assert Vendor.count(qb=_quickbooks(qbo.auth, qbo.auth.refresh_token, qbo.base)) == 5


# ---- Xero through xero-python -------------------------------------------------------------------
@pytest.fixture
def xero():
    emulator = xero_emulator.create_emulator(contacts=30, invoices=20)
    with serve(emulator.app) as base:
        granted = emulator.core.oauth.issue_refresh_token(CLIENT_ID, {"tenantId": TENANT}, XERO_SCOPE)
        response = httpx.post(f"{base}/connect/token", data={"grant_type": "refresh_token", "refresh_token": granted},
                              auth=(CLIENT_ID, CLIENT_SECRET))
        assert response.status_code == 200, response.text
        token = response.json()
        store = {"token": {**token, "scope": token["scope"].split(), "expires_at": time.time() + token["expires_in"]}}
        client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)), pool_threads=1,
                           oauth2_token_getter=lambda: store["token"], oauth2_token_saver=lambda new: store.update(token=new))
        yield SimpleNamespace(emu=emulator, state=emulator.state, client=client, api=AccountingApi(client, base_url=f"{base}/api.xro/2.0"),
                              identity=IdentityApi(client, base_url=base))


def _active_contact_ids(state) -> set[str]:
    return {cid for cid, c in state.contacts.items() if c["ContactStatus"] == "ACTIVE"}


def _updated(record: dict) -> datetime:
    return datetime.fromtimestamp(round(record["UpdatedDateUTC"], 3), timezone.utc)


def test_xero_connections_and_organisation(xero):
    connections = xero.identity.get_connections()
    assert [(str(c.tenant_id), c.tenant_type) for c in connections] == [(TENANT, "ORGANISATION")]
    organisation = xero.api.get_organisations(TENANT).organisations[0]
    assert (organisation.organisation_id, organisation.name) == (TENANT, "Demo Company (US)")
    assert organisation.created_date_utc == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_xero_contacts_paging(xero):
    first = xero.api.get_contacts(TENANT, page=1, page_size=10)
    active = _active_contact_ids(xero.state)
    assert len(first.contacts) == 10
    assert (first.pagination.page, first.pagination.page_size, first.pagination.item_count) == (1, 10, len(active))
    seen = [c.contact_id for c in first.contacts]
    for page in range(2, first.pagination.page_count + 1):
        seen += [c.contact_id for c in xero.api.get_contacts(TENANT, page=page, page_size=10).contacts]
    assert sorted(seen) == sorted(active)
    assert xero.api.get_contacts(TENANT, page=first.pagination.page_count + 1, page_size=10).contacts == []


def test_xero_get_contact_dates_are_datetimes(xero):
    contact_id = sorted(_active_contact_ids(xero.state))[0]
    contact = xero.api.get_contact(TENANT, contact_id).contacts[0]
    record = xero.state.contacts[contact_id]
    assert (contact.contact_id, contact.name) == (contact_id, record["Name"])
    assert isinstance(contact.updated_date_utc, datetime)
    assert contact.updated_date_utc == _updated(record)  # /Date(ms+0000)/ to the millisecond


def test_xero_update_contact_then_if_modified_since(xero):
    contact_id = sorted(_active_contact_ids(xero.state))[1]
    since = xero.emu.core.clock.now().replace(microsecond=0)
    updated = xero.api.update_contact(TENANT, contact_id, Contacts(contacts=[Contact(email_address="ap@renamed.example.com")]))
    assert updated.contacts[0].email_address == "ap@renamed.example.com"
    assert updated.contacts[0].updated_date_utc >= since
    changed = xero.api.get_contacts(TENANT, if_modified_since=since)
    assert [c.contact_id for c in changed.contacts] == [contact_id]


def test_xero_create_contacts_reports_errors_per_item(xero):
    taken = xero.state.contacts[sorted(_active_contact_ids(xero.state))[0]]["Name"]
    result = xero.api.create_contacts(TENANT, Contacts(contacts=[Contact(name="Fresh Supplier Ltd"), Contact(name=taken)]),
                                      summarize_errors=False)
    good, bad = result.contacts
    assert good.name == "Fresh Supplier Ltd" and not good.has_validation_errors
    assert xero.api.get_contact(TENANT, good.contact_id).contacts[0].name == "Fresh Supplier Ltd"
    assert bad.contact_id is None and bad.has_validation_errors
    assert [e.message for e in bad.validation_errors] == ["Please enter a unique Name."]


def test_xero_invoices_by_status(xero):
    wanted = {"AUTHORISED", "PAID"}
    invoices = xero.api.get_invoices(TENANT, statuses=sorted(wanted)).invoices
    expected = {i.InvoiceID for i in xero.state.invoices.values() if i.Status in wanted}
    assert expected and {i.invoice_id for i in invoices} == expected
    assert {i.status for i in invoices} <= wanted
    sample = next(i for i in invoices if i.invoice_id == min(expected))
    source = xero.state.invoices[sample.invoice_id]
    assert sample.date.toordinal() == source.Date and sample.type == source.Type
    assert float(sample.total) == source.Total


def test_xero_accrec_invoice_makes_its_contact_a_customer(xero):
    """A sales invoice is an ACCREC invoice; its contact becomes a customer (IsCustomer, which
    no PUT/POST can set) with its first one, and `where` filters both."""
    contact = xero.api.create_contacts(TENANT, Contacts(contacts=[Contact(name="Harbor Cafe Group")])).contacts[0]
    assert contact.is_customer is False and contact.is_supplier is False
    revenue = next(a["Code"] for a in xero.state.accounts.values() if a["Type"] == "REVENUE")
    line = LineItem(description="Catering, 40 covers", quantity=40, unit_amount=18.5, account_code=revenue)
    sent = xero.api.create_invoices(TENANT, XeroInvoices(invoices=[
        XeroInvoice(type="ACCREC", contact=Contact(contact_id=contact.contact_id), line_items=[line], status="AUTHORISED")]))
    sale = sent.invoices[0]
    assert (sale.type, sale.status, float(sale.sub_total)) == ("ACCREC", "AUTHORISED", 740.0)
    assert sale.invoice_number.startswith("INV-")  # Xero numbers sales invoices when none is sent
    assert xero.api.get_contact(TENANT, contact.contact_id).contacts[0].is_customer is True
    customers = xero.api.get_contacts(TENANT, where="IsCustomer==true").contacts
    assert contact.contact_id in {c.contact_id for c in customers} and all(c.is_customer for c in customers)
    sales = xero.api.get_invoices(TENANT, where='Type=="ACCREC"').invoices
    assert sale.invoice_id in {i.invoice_id for i in sales} and {i.type for i in sales} == {"ACCREC"}
    assert {i.invoice_id for i in sales} == {i.InvoiceID for i in xero.state.invoices.values() if i.Type == "ACCREC"}


def test_xero_accounts_chart(xero):
    accounts = xero.api.get_accounts(TENANT).accounts
    assert {(a.account_id, a.code) for a in accounts} == {(a["AccountID"], a["Code"]) for a in xero.state.accounts.values()}
    assert all(isinstance(a.updated_date_utc, datetime) for a in accounts)


def test_xero_unknown_contact_is_not_found(xero):
    with pytest.raises(NotFoundException) as missing:
        xero.api.get_contact(TENANT, str(uuid.uuid4()))
    assert missing.value.status == 404


def test_xero_validation_exception(xero):
    taken = xero.state.contacts[sorted(_active_contact_ids(xero.state))[0]]["Name"]
    before = len(xero.state.contacts)
    with pytest.raises(AccountingBadRequestException) as invalid:
        xero.api.create_contacts(TENANT, Contacts(contacts=[Contact(name="Never Saved Ltd"), Contact(name=taken)]))
    assert invalid.value.status == 400 and invalid.value.reason == "Please enter a unique Name."
    assert invalid.value.error_data["Type"] == "ValidationException" and invalid.value.error_data["ErrorNumber"] == 10
    assert len(xero.state.contacts) == before  # summarizeErrors=true: nothing saved


def test_xero_minute_limit_is_rate_limit_exception(xero):
    xero.emu.set_limits(minute=1, reset=True)
    contact_id = sorted(_active_contact_ids(xero.state))[0]
    xero.api.get_organisations(TENANT)
    with pytest.raises(RateLimitException) as limited:  # a POST: urllib3 does not retry it
        xero.api.update_contact(TENANT, contact_id, Contacts(contacts=[Contact(email_address="late@example.com")]))
    assert limited.value.status == 429 and limited.value.rate_limit == "minute"
    assert 1 <= int(limited.value.headers["Retry-After"]) <= 60
    assert limited.value.headers["X-MinLimit-Remaining"] == "0"


def test_xero_get_is_retried_after_retry_after(xero):
    """urllib3's default Retry (under xero-python) repeats an idempotent call after a 429's
    Retry-After; the emulator's injected 429 carries one, so the SDK call still succeeds."""
    xero.emu.core.faults.configure(burst_429=1, retry_after_s=0)
    assert xero.api.get_organisations(TENANT).organisations[0].organisation_id == TENANT
    assert xero.emu.core.stats()["by_status"] == {"200": 1, "429": 1}
