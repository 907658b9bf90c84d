"""The QuickBooks Online emulator over real HTTP: OAuth, query grammar and paging, writes with
SyncToken, bills (payables) apart from invoices (sales), CDC, rate limits, fault injection,
remote edits and the data generator."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from emulators.datagen import DataGen
from emulators.quickbooks import TZ, create_emulator
from emulators.serve import serve

REALM = "9130350000000001"
CLIENT = ("hub-demo", "hub-demo-secret")
TOKEN_PATH = "/oauth2/v1/tokens/bearer"


class Qbo:
    """A served emulator and an HTTP client holding a fresh access token for its realm."""

    def __init__(self, emulator, url: str):
        self.emu, self.url = emulator, url
        self.http = httpx.Client(base_url=url, timeout=10)
        self.token = self.refresh(self.grant())["access_token"]

    def grant(self, realm: str = REALM) -> str:
        body = {"client_id": CLIENT[0], "subject": {"realmId": realm}}
        return self.http.post("/_emulator/oauth/grant", json=body).json()["refresh_token"]

    def refresh(self, refresh_token: str) -> dict:
        response = self.http.post(TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=CLIENT)
        assert response.status_code == 200, response.text
        return response.json()

    def api(self, method: str, path: str, token: str | None = None, realm: str = REALM, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json", **kwargs.pop("headers", {})}
        return self.http.request(method, f"/v3/company/{realm}/{path}", headers=headers, **kwargs)

    def query(self, text: str) -> dict:
        response = self.api("GET", "query", params={"query": text, "minorversion": "75"})
        assert response.status_code == 200, response.text
        return response.json()["QueryResponse"]

    def ids(self, text: str) -> list[str]:
        body = self.query(text)
        entity = re.search(r"\bfrom\s+(\w+)", text, re.I).group(1)
        return [row["Id"] for row in body.get(entity, [])]

    def save(self, entity: str, body: dict, **params) -> httpx.Response:
        return self.api("POST", entity.lower(), json=body, params=params)


def fault(response: httpx.Response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["Fault"]["Error"][0]
    assert set(error) == {"Message", "Detail", "code", "element"} and isinstance(error["code"], str)
    return error


@contextmanager
def running(**kwargs):
    emulator = create_emulator(**kwargs)
    with serve(emulator.app) as url:
        client = Qbo(emulator, url)
        try:
            yield client
        finally:
            client.http.close()


@pytest.fixture(scope="module")
def big():
    """Read-only company for grammar and paging: 2,500 vendors, 3,000 bills, 40 invoices."""
    with running(vendors=2500, bills=3000, invoices=40, accounts=24, seed=7) as client:
        yield client


@pytest.fixture
def qbo():
    """A fresh small company per test (5 vendors, 3 customers, 10 accounts, 5 bills, 5 invoices)."""
    with running() as client:
        yield client


# ---- OAuth ----------------------------------------------------------------------------------
def test_refresh_rotates_and_a_reused_refresh_token_is_invalid_grant(qbo):
    first = qbo.grant()
    tokens = qbo.refresh(first)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 100 * 86400 and tokens["refresh_token"] != first
    reused = qbo.http.post(TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": first}, auth=CLIENT)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    again = qbo.refresh(tokens["refresh_token"])
    assert qbo.api("GET", f"companyinfo/{REALM}", token=again["access_token"]).status_code == 200


def test_authorization_code_flow_returns_the_realm(qbo):
    redirect = "http://localhost/callback"
    response = qbo.http.get("/connect/oauth2", params={"response_type": "code", "client_id": CLIENT[0], "redirect_uri": redirect,
                                                        "scope": "com.intuit.quickbooks.accounting", "state": "s1"})
    assert response.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlparse(response.headers["location"]).query).items()}
    assert params["realmId"] == REALM and params["state"] == "s1"
    tokens = qbo.http.post(TOKEN_PATH, data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect}, auth=CLIENT)
    assert tokens.status_code == 200 and "refresh_token" in tokens.json()
    info = qbo.api("GET", f"companyinfo/{REALM}", token=tokens.json()["access_token"])
    assert info.status_code == 200 and info.json()["CompanyInfo"]["CompanyName"]


def test_expired_or_missing_token_is_401_and_other_realms_403(qbo):
    assert qbo.api("GET", f"companyinfo/{REALM}").status_code == 200
    qbo.emu.core.clock.advance(3601)
    expired = qbo.api("GET", "vendor/1")
    assert expired.status_code == 401 and expired.json()["fault"]["error"][0]["code"] == "3200"
    assert "Bearer" in expired.headers["www-authenticate"]
    assert qbo.http.get(f"/v3/company/{REALM}/vendor/1").status_code == 401
    token = qbo.refresh(qbo.grant())["access_token"]
    assert fault(qbo.api("GET", "companyinfo/1", token=token, realm="123"), 403)["code"] == "120"
    other = qbo.refresh(qbo.grant(realm="555"))["access_token"]
    assert fault(qbo.api("GET", f"companyinfo/{REALM}", token=other), 403)["code"] == "120"


# ---- query grammar and paging -----------------------------------------------------------------
def test_where_operators(big):
    names = [DataGen().company_name(i) for i in range(2500)]
    assert big.ids("SELECT * FROM Vendor WHERE DisplayName = 'Acme Supply Co'") == ["1"]
    assert big.ids("select * from Vendor where displayname = 'ACME SUPPLY CO'") == ["1"]
    assert big.ids("SELECT * FROM Vendor WHERE Id IN ('3', '5', '2400')") == ["3", "5", "2400"]
    assert big.ids("SELECT * FROM Vendor WHERE Id > '10' AND Id <= '15'") == ["11", "12", "13", "14", "15"]
    assert big.ids("SELECT * FROM Vendor WHERE Id < '3'") == ["1", "2"]
    assert big.ids("SELECT * FROM Vendor WHERE Id >= '2499'") == ["2499", "2500"]
    lumber = [str(i + 1) for i, n in enumerate(names) if "lumber" in n.lower()]
    assert big.ids("SELECT * FROM Vendor WHERE DisplayName LIKE '%LUMBER%' MAXRESULTS 1000") == lumber
    acme = big.query("SELECT * FROM Vendor WHERE DisplayName LIKE 'Acme%'")  # 125 match; default page is 100
    assert acme["startPosition"] == 1 and acme["maxResults"] == 100 and acme["Vendor"][1]["Id"] == "21"
    stamp = big.query("SELECT * FROM Vendor WHERE Id = '2491'")["Vendor"][0]["MetaData"]["LastUpdatedTime"]
    assert big.ids(f"SELECT * FROM Vendor WHERE Metadata.LastUpdatedTime >= '{stamp}'") == [str(i) for i in range(2491, 2501)]
    assert big.ids(f"SELECT * FROM Vendor WHERE MetaData.LastUpdatedTime > '{stamp}'") == [str(i) for i in range(2492, 2501)]
    bills = [big.emu.state.read("Bill", i) for i in range(1, 3001)]
    expected = [r["Id"] for r in bills if r["TotalAmt"] > 4000 and r["VendorRef"]["value"] == "7"]
    assert expected and big.ids("SELECT * FROM Bill WHERE TotalAmt > 4000 AND VendorRef = '7'") == expected
    expected = [r["Id"] for r in bills if r["TxnDate"] >= "2025-03-01"][:1000]
    assert big.ids("SELECT * FROM Bill WHERE TxnDate >= '2025-03-01' MAXRESULTS 1000") == expected
    sales = [big.emu.state.read("Invoice", i) for i in range(1, 41)]
    assert big.ids("SELECT * FROM Invoice WHERE CustomerRef = '2' MAXRESULTS 1000") == [r["Id"] for r in sales if r["CustomerRef"]["value"] == "2"]
    assert fault(big.api("GET", "query", params={"query": "SELECT * FROM Invoice WHERE VendorRef = '7'"}))["code"] == "4001"
    assert big.query("SELECT * FROM Vendor WHERE DisplayName = 'Nobody At All'") == {}


def test_orderby(big):
    names = sorted((DataGen().company_name(i) for i in range(2500)), key=str.casefold, reverse=True)
    rows = big.query("SELECT * FROM Vendor ORDERBY DisplayName DESC MAXRESULTS 5")["Vendor"]
    assert [r["DisplayName"] for r in rows] == names[:5]
    totals = sorted(big.emu.state.read("Bill", i)["TotalAmt"] for i in range(1, 3001))
    rows = big.query("SELECT * FROM Bill ORDERBY TotalAmt ASC STARTPOSITION 2 MAXRESULTS 3")["Bill"]
    assert [r["TotalAmt"] for r in rows] == totals[1:4]


def test_paging_returns_exact_ids(big):
    seen = []
    for start in (1, 1001, 2001):
        page = big.query(f"SELECT * FROM Vendor STARTPOSITION {start} MAXRESULTS 1000")
        assert page["startPosition"] == start and page["maxResults"] == len(page["Vendor"])
        seen += [r["Id"] for r in page["Vendor"]]
    assert seen == [str(i) for i in range(1, 2501)]
    assert big.query("SELECT * FROM Vendor STARTPOSITION 2501 MAXRESULTS 1000") == {}
    bills = []
    for start in range(1, 3001, 700):
        bills += big.ids(f"SELECT * FROM Bill STARTPOSITION {start} MAXRESULTS 700")
    assert bills == [str(i) for i in range(1, 3001)]
    assert big.query("SELECT * FROM Bill MAXRESULTS 5000")["maxResults"] == 1000  # clamped


def test_count_and_post_text_body(big):
    assert big.query("SELECT COUNT(*) FROM Vendor") == {"totalCount": 2500}
    assert big.query("select count(*) from Bill where Id <= '10'") == {"totalCount": 10}
    assert big.query("SELECT COUNT(*) FROM Invoice") == {"totalCount": 40}
    text = "SELECT * FROM Vendor WHERE Id IN ('1', '2')"
    posted = big.api("POST", "query", content=text, headers={"Content-Type": "application/text"}, params={"minorversion": "75"})
    assert posted.status_code == 200 and posted.json()["QueryResponse"] == big.query(text) and "time" in posted.json()


@pytest.mark.parametrize("text, code", [
    ("SELECT FROM Vendor", "4000"), ("SELECT * Vendor", "4000"), ("SELECT * FROM Vendor WHERE", "4000"),
    ("SELECT * FROM Vendor WHERE Id = '1' OR Id = '2'", "4000"), ("SELECT * FROM Vendor STARTPOSITION 0", "4000"),
    ("SELECT * FROM Vendor MAXRESULTS", "4000"), ("SELECT Id FROM Vendor", "4000"), ("DELETE FROM Vendor", "4000"),
    ("SELECT * FROM Vendor WHERE Id IN ('1'", "4000"), ("SELECT * FROM Vendor WHERE DisplayName = 'unterminated", "4000"),
    ("SELECT * FROM vendor", "4001"), ("SELECT * FROM Vendor WHERE Nope = '1'", "4001"), ("", "4000"),
])
def test_malformed_query_is_a_fault(big, text, code):
    error = fault(big.api("GET", "query", params={"query": text}))
    assert error["code"] == code and error["Detail"].startswith(("QueryParserError", "QueryValidationError"))


# ---- writes ----------------------------------------------------------------------------------
def test_create_read_sparse_and_full_update(qbo):
    body = {"DisplayName": "New Vendor LLC", "PrimaryEmailAddr": {"Address": "ap@new.example.com"}, "TaxIdentifier": "99-1234567"}
    created = qbo.save("Vendor", body).json()["Vendor"]
    assert (created["Id"], created["SyncToken"], created["Active"], created["domain"]) == ("6", "0", True, "QBO")
    assert qbo.api("GET", "vendor/6").json()["Vendor"] == created
    qbo.emu.core.clock.advance(5)
    sparse = qbo.save("Vendor", {"Id": "6", "SyncToken": "0", "sparse": True, "CompanyName": "NV"}).json()["Vendor"]
    assert sparse["SyncToken"] == "1" and sparse["CompanyName"] == "NV" and sparse["PrimaryEmailAddr"] == body["PrimaryEmailAddr"]
    assert sparse["MetaData"]["LastUpdatedTime"] > created["MetaData"]["LastUpdatedTime"]
    assert sparse["MetaData"]["CreateTime"] == created["MetaData"]["CreateTime"]
    full = qbo.save("Vendor", {"Vendor": {"Id": "6", "SyncToken": "1", "DisplayName": "New Vendor LLC", "CompanyName": "X"}}).json()["Vendor"]
    assert full["SyncToken"] == "2" and full["CompanyName"] == "X" and full["Active"] is True
    assert "PrimaryEmailAddr" not in full and "TaxIdentifier" not in full  # a full update clears omitted fields
    named = qbo.save("Customer", {"GivenName": "Ada", "FamilyName": "Lovelace"}).json()["Customer"]
    assert named["DisplayName"] == "Ada Lovelace"
    assert fault(qbo.save("Vendor", {"CompanyName": "No display name"}))["code"] == "6080"
    assert fault(qbo.api("POST", "vendor", content=b"{not json"))["code"] == "2010"


def test_stale_sync_token_unknown_ids_and_unsupported(qbo):
    assert qbo.save("Vendor", {"Id": "1", "SyncToken": "0", "sparse": True, "AcctNum": "A1"}).json()["Vendor"]["SyncToken"] == "1"
    stale = fault(qbo.save("Vendor", {"Id": "1", "SyncToken": "0", "sparse": True, "AcctNum": "A2"}))
    assert stale["code"] == "5010" and stale["Message"] == "Stale Object Error"
    assert fault(qbo.save("Vendor", {"Id": "1", "sparse": True, "AcctNum": "A2"}))["code"] == "2020"
    for path in ("vendor/999", "vendor/abc", "invoice/0", "companyinfo/42"):
        assert fault(qbo.api("GET", path))["code"] == "610"
    assert fault(qbo.save("Vendor", {"Id": "999", "SyncToken": "0", "DisplayName": "Ghost"}))["code"] == "610"
    assert fault(qbo.save("Vendor", {"Id": "1", "SyncToken": "1"}, operation="delete"))["code"] == "500"
    assert fault(qbo.api("DELETE", "vendor/1"))["code"] == "500"
    assert fault(qbo.api("GET", "estimate/1"))["code"] == "500"


def test_display_name_is_unique_across_vendors_and_customers(qbo):
    customer = qbo.api("GET", "customer/1").json()["Customer"]["DisplayName"]
    vendor = qbo.api("GET", "vendor/1").json()["Vendor"]["DisplayName"]
    duplicate = fault(qbo.save("Vendor", {"DisplayName": customer.lower()}))
    assert duplicate["code"] == "6240" and duplicate["Message"] == "Duplicate Name Exists Error"
    assert fault(qbo.save("Customer", {"DisplayName": vendor}))["code"] == "6240"
    assert fault(qbo.save("Vendor", {"Id": "2", "SyncToken": "0", "sparse": True, "DisplayName": vendor}))["code"] == "6240"
    renamed = qbo.save("Vendor", {"Id": "1", "SyncToken": "0", "sparse": True, "DisplayName": vendor.upper()})
    assert renamed.status_code == 200  # its own name, re-cased
    assert qbo.save("Vendor", {"Id": "1", "SyncToken": "1", "sparse": True, "DisplayName": "Elsewhere Inc"}).status_code == 200
    assert qbo.save("Vendor", {"DisplayName": vendor}).status_code == 200  # the old name is free again
    assert fault(qbo.save("Account", {"Name": "checking", "AccountType": "Bank"}))["code"] == "6240"


def test_vendors_and_accounts_are_retired_with_active_false(qbo):
    retired = qbo.save("Vendor", {"Id": "2", "SyncToken": "0", "sparse": True, "Active": False}).json()["Vendor"]
    assert retired["Active"] is False and retired["SyncToken"] == "1"
    assert qbo.ids("SELECT * FROM Vendor") == ["1", "3", "4", "5"]
    assert qbo.ids("SELECT * FROM Vendor WHERE Active = false") == ["2"]
    assert qbo.query("SELECT COUNT(*) FROM Vendor WHERE Active IN (true, false)") == {"totalCount": 5}
    assert qbo.api("GET", "vendor/2").json()["Vendor"]["Active"] is False
    line = {"Amount": 10, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "2"}, "Line": [line]}))["code"] == "610"
    qbo.emu.state.deactivate("Account", "5")
    assert "5" not in qbo.ids("SELECT * FROM Account MAXRESULTS 1000")
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": [line]}))["code"] == "610"


def test_bill_create_sparse_update_pay_and_delete(qbo):
    lines = [{"Amount": 100.25, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}},
             {"Amount": 50, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "6"}}}]
    bill = qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": lines, "TxnDate": "2025-02-01", "DocNumber": "V-77"}).json()["Bill"]
    assert bill["Id"] == "6" and bill["TotalAmt"] == 150.25 and bill["Balance"] == 150.25 and bill["SyncToken"] == "0"
    assert bill["DueDate"] == "2025-03-03" and bill["DocNumber"] == "V-77" and [x["Id"] for x in bill["Line"]] == ["1", "2"]
    assert bill["VendorRef"]["name"] == qbo.api("GET", "vendor/1").json()["Vendor"]["DisplayName"]
    assert bill["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["name"] == "Office Expenses"
    assert qbo.api("GET", "bill/6").json()["Bill"] == bill
    unnumbered = qbo.save("Bill", {"VendorRef": {"value": "2"}, "Line": lines[:1]}).json()["Bill"]
    assert "DocNumber" not in unnumbered  # bill numbers are the vendor's; QuickBooks does not invent one
    assert qbo.ids("SELECT * FROM Bill WHERE DocNumber = 'V-77'") == ["6"]

    sparse = qbo.save("Bill", {"Id": "6", "SyncToken": "0", "sparse": True, "DueDate": "2025-04-01", "Line": lines[:1]}).json()["Bill"]
    assert (sparse["SyncToken"], sparse["DueDate"], sparse["TotalAmt"], sparse["DocNumber"]) == ("1", "2025-04-01", 100.25, "V-77")
    assert fault(qbo.save("Bill", {"Id": "6", "SyncToken": "0", "sparse": True, "PrivateNote": "late"}))["code"] == "5010"
    paid = qbo.http.post("/_emulator/mutate", json={"op": "pay", "entity": "Bill", "id": "6", "fields": {"Amount": 40}}).json()["Bill"]
    assert (paid["Balance"], paid["SyncToken"], paid["LinkedTxn"][0]["TxnType"]) == (60.25, "2", "BillPayment")
    assert qbo.emu.state.pay("Bill", "6")["Balance"] == 0  # the rest of it
    assert fault(qbo.save("Bill", {"Id": "6", "SyncToken": "3"}, operation="void"))["code"] == "500"  # bills are not voided
    assert fault(qbo.save("Bill", {"Id": "6", "SyncToken": "2"}, operation="delete"))["code"] == "5010"
    deleted = qbo.save("Bill", {"Id": "6", "SyncToken": "3"}, operation="delete").json()["Bill"]
    assert deleted == {"status": "Deleted", "domain": "QBO", "Id": "6"}
    assert fault(qbo.api("GET", "bill/6"))["code"] == "610" and "6" not in qbo.ids("SELECT * FROM Bill")
    bad = dict(lines[0], AccountBasedExpenseLineDetail={"AccountRef": {"value": "99"}})
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": [bad]}))["code"] == "2500"
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": []}))["code"] == "2020"
    missing = fault(qbo.save("Bill", {"Line": lines}))
    assert (missing["code"], missing["element"]) == ("2020", "VendorRef")
    sale = {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 5}}
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": [sale]}))["code"] == "6000"
    item = {"Amount": 5, "DetailType": "ItemBasedExpenseLineDetail", "ItemBasedExpenseLineDetail": {"Qty": 1}}
    assert fault(qbo.save("Bill", {"VendorRef": {"value": "1"}, "Line": [item]}))["element"] == "ItemRef"


def test_invoice_is_a_sale_that_requires_a_customer(qbo):
    """QuickBooks' Invoice is the sales form: CustomerRef required, sales lines; a vendor bill
    sent as an Invoice (VendorRef, expense lines) is refused."""
    sale = {"Amount": 60, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 30}}
    expense = {"Amount": 10, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}
    missing = fault(qbo.save("Invoice", {"VendorRef": {"value": "1"}, "Line": [sale]}))
    assert (missing["code"], missing["element"]) == ("2020", "CustomerRef")
    both = fault(qbo.save("Invoice", {"CustomerRef": {"value": "1"}, "VendorRef": {"value": "1"}, "Line": [sale]}))
    assert (both["code"], both["element"]) == ("6000", "VendorRef")
    assert fault(qbo.save("Invoice", {"CustomerRef": {"value": "1"}, "Line": [expense]}))["code"] == "6000"
    assert fault(qbo.save("Invoice", {"CustomerRef": {"value": "9"}, "Line": [sale]}))["code"] == "2500"
    invoice = qbo.save("Invoice", {"CustomerRef": {"value": "1"}, "Line": [sale], "TxnDate": "2025-02-01"}).json()["Invoice"]
    assert invoice["Id"] == "6" and invoice["TotalAmt"] == 60 and invoice["DocNumber"] == "1006"  # numbered automatically
    assert invoice["CustomerRef"]["name"] == qbo.api("GET", "customer/1").json()["Customer"]["DisplayName"]
    generated = qbo.api("GET", "invoice/2").json()["Invoice"]
    assert generated["CustomerRef"]["value"] in {"1", "2", "3"} and "VendorRef" not in generated
    assert {line["DetailType"] for line in generated["Line"]} == {"SalesItemLineDetail"}
    paid = qbo.emu.state.pay("Invoice", "6")
    assert (paid["Balance"], paid["LinkedTxn"][0]["TxnType"]) == (0, "Payment")
    voided = qbo.save("Invoice", {"Id": "3", "SyncToken": "0"}, operation="void").json()["Invoice"]
    assert (voided["TotalAmt"], voided["Balance"], voided["SyncToken"], voided["PrivateNote"]) == (0, 0, "1", "Voided")
    assert fault(qbo.save("Invoice", {"Id": "3"}, operation="void"))["code"] == "2020"
    assert qbo.save("Invoice", {"Id": "4", "SyncToken": "0"}, operation="delete").json()["Invoice"]["status"] == "Deleted"


# ---- CDC -------------------------------------------------------------------------------------
def cdc(client: Qbo, entities: str, since: str) -> httpx.Response:
    return client.api("GET", "cdc", params={"entities": entities, "changedSince": since, "minorversion": "75"})


def test_cdc_returns_changes_and_deletes_within_30_days(qbo):
    qbo.emu.core.clock.advance(10)
    since = qbo.api("GET", f"companyinfo/{REALM}").json()["time"]
    qbo.http.post("/_emulator/mutate", json={"op": "update", "entity": "Vendor", "id": "1", "fields": {"AcctNum": "Z9"}}).raise_for_status()
    assert qbo.save("Bill", {"Id": "2", "SyncToken": "0"}, operation="delete").status_code == 200
    line = {"Amount": 5, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}
    created = qbo.save("Bill", {"VendorRef": {"value": "3"}, "Line": [line]}).json()["Bill"]
    body = cdc(qbo, "Vendor,Bill,Account,Invoice", since).json()
    vendors, bills, accounts, invoices = body["CDCResponse"][0]["QueryResponse"]
    assert [v["Id"] for v in vendors["Vendor"]] == ["1"] and vendors["Vendor"][0]["AcctNum"] == "Z9" and vendors["maxResults"] == 1
    assert bills["Bill"][0]["Id"] == "2" and bills["Bill"][0]["status"] == "Deleted"
    assert set(bills["Bill"][0]) == {"Id", "status", "domain", "MetaData"}
    assert bills["Bill"][1] == created and accounts == {} and invoices == {}  # the sales invoices did not change
    assert "time" in body
    now = datetime.fromtimestamp(qbo.emu.core.clock.time(), TZ)
    assert fault(cdc(qbo, "Vendor", (now - timedelta(days=31)).isoformat()))["code"] == "6000"
    everything = cdc(qbo, "Vendor", (now - timedelta(days=29)).isoformat()).json()["CDCResponse"][0]["QueryResponse"][0]
    assert len(everything["Vendor"]) == 5
    assert cdc(qbo, "Vendor", now.date().isoformat()).status_code == 200
    assert fault(cdc(qbo, "Vendor", "yesterday"))["code"] == "2010"
    assert fault(cdc(qbo, "TaxCode", since))["code"] == "2010"  # not a CDC entity (reference 1.3)
    assert fault(qbo.api("GET", "cdc", params={"entities": "Vendor"}))["code"] == "2020"


def test_cdc_returns_at_most_1000_oldest_changes():
    with running(bills=1500, invoices=0, vendors=3) as client:
        since = (datetime.fromtimestamp(client.emu.core.clock.time(), TZ) - timedelta(days=1)).isoformat()
        first = cdc(client, "Bill,Vendor", since).json()["CDCResponse"][0]["QueryResponse"]
        assert [r["Id"] for r in first[0]["Bill"]] == [str(i) for i in range(1, 1001)] and first[1] == {}
        resume = first[0]["Bill"][-1]["MetaData"]["LastUpdatedTime"]  # narrow the window and go on
        rest = cdc(client, "Bill,Vendor", resume).json()["CDCResponse"][0]["QueryResponse"]
        assert [r["Id"] for r in rest[0]["Bill"]] == [str(i) for i in range(1000, 1501)]
        assert [r["Id"] for r in rest[1]["Vendor"]] == ["1", "2", "3"]


# ---- limits and faults -----------------------------------------------------------------------
def test_429_past_500_requests_per_minute(qbo):
    statuses = [qbo.api("GET", f"companyinfo/{REALM}").status_code for _ in range(500)]
    assert statuses == [200] * 500
    throttled = qbo.api("GET", "vendor/1")
    assert fault(throttled, 429)["code"] == "003001" and 1 <= int(throttled.headers["retry-after"]) <= 60
    assert qbo.emu.core.stats()["by_status"]["429"] == 1
    qbo.emu.core.clock.advance(61)
    assert qbo.api("GET", "vendor/1").status_code == 200


def test_429_past_10_concurrent_requests(qbo):
    qbo.http.post("/_emulator/faults", json={"latency_ms": 700}).raise_for_status()
    barrier = threading.Barrier(15)

    def call(_):
        barrier.wait()
        return qbo.api("GET", "vendor/1")

    with ThreadPoolExecutor(15) as pool:
        responses = list(pool.map(call, range(15)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [429] * 5
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 429)


def test_injected_faults(qbo):
    def faults(**plan):
        qbo.http.post("/_emulator/faults", json=plan).raise_for_status()

    faults(burst_429=1, retry_after_s=7)
    burst = qbo.api("GET", "vendor/1")
    assert fault(burst, 429)["code"] == "003001" and burst.headers["retry-after"] == "7"
    faults(burst_429=1, retry_after_s=30, retry_after_format="http-date")
    dated = qbo.api("GET", "vendor/1")
    assert dated.status_code == 429
    wait = parsedate_to_datetime(dated.headers["retry-after"]).timestamp() - qbo.emu.core.clock.time()
    assert 25 <= wait <= 31
    assert qbo.api("GET", "vendor/1").status_code == 200
    faults(fail_next_5xx=1, status_5xx=503)
    error = fault(qbo.api("GET", "vendor/1"), 503)
    assert error["code"] == "10000" and qbo.api("GET", "vendor/1").status_code == 200
    faults(drop_next=1)
    with pytest.raises(httpx.TransportError):
        qbo.api("GET", "query", params={"query": "SELECT * FROM Invoice"})
    assert qbo.api("GET", "vendor/1").status_code == 200
    assert qbo.emu.core.stats()["faults_injected"] == {"429": 2, "5xx": 1, "drop": 1}


# ---- remote edits and the generator --------------------------------------------------------------
def test_remote_mutation_through_the_admin_route(qbo):
    qbo.emu.core.clock.advance(86400)
    qbo.token = qbo.refresh(qbo.grant())["access_token"]
    mutate = lambda **body: qbo.http.post("/_emulator/mutate", json=body)  # noqa: E731
    changed = mutate(op="update", entity="Vendor", id="3", fields={"DisplayName": "Renamed By User"}).json()["Vendor"]
    assert changed["SyncToken"] == "1"
    updated_at = datetime.fromisoformat(changed["MetaData"]["LastUpdatedTime"]).timestamp()
    assert abs(updated_at - qbo.emu.core.clock.time()) < 2
    assert qbo.api("GET", "vendor/3").json()["Vendor"]["DisplayName"] == "Renamed By User"
    assert fault(qbo.save("Vendor", {"Id": "3", "SyncToken": "0", "sparse": True, "AcctNum": "X"}))["code"] == "5010"
    assert fault(mutate(op="update", entity="Vendor", id="4", fields={"DisplayName": "renamed by user"}))["code"] == "6240"
    assert mutate(op="create", entity="Vendor", fields={"DisplayName": "Walk-in Supplier"}).json()["Vendor"]["Id"] == "6"
    assert mutate(op="deactivate", entity="Vendor", id="5").json()["Vendor"]["Active"] is False
    assert mutate(op="void", entity="Invoice", id="1").json()["Invoice"]["TotalAmt"] == 0
    assert mutate(op="delete", entity="Invoice", id="4").json()["Invoice"]["status"] == "Deleted"
    assert fault(mutate(op="delete", entity="Vendor", id="1"))["code"] == "500"
    assert qbo.emu.state.mutate("update", "Invoice", "5", {"PrivateNote": "edited"})["SyncToken"] == "1"
    assert mutate(op="pay", entity="Bill", id="2").json()["Bill"]["Balance"] == 0
    assert mutate(op="delete", entity="Bill", id="3").json()["Bill"]["status"] == "Deleted"
    assert fault(mutate(op="void", entity="Bill", id="1"))["code"] == "500"
    info = qbo.http.get("/_emulator/info").json()
    assert info["counts"] == {"Vendor": 6, "Customer": 3, "Account": 10, "Invoice": 4, "Bill": 4} and info["realm_id"] == REALM


def test_generator_is_deterministic_and_lazy():
    def rows(emulator):
        state = emulator.state
        return [{k: v for k, v in state.read(e, i).items() if k != "MetaData"}
                for e, n in (("Vendor", 20), ("Account", 12), ("Bill", 50), ("Invoice", 10)) for i in range(1, n + 1)]

    a, b, c = (create_emulator(vendors=20, bills=50, invoices=10, accounts=12, seed=s) for s in (3, 3, 4))
    assert rows(a) == rows(b) and rows(a) != rows(c)
    ref = a.state.read("Bill", 10)["VendorRef"]
    assert ref["name"] == a.state.read("Vendor", ref["value"])["DisplayName"]
    ref = a.state.read("Invoice", 7)["CustomerRef"]
    assert ref["name"] == a.state.read("Customer", ref["value"])["DisplayName"]
    legacy = create_emulator(vendors=3, invoices=7)  # `invoices=` alone sized the bills before Bill existed: it still does
    assert (legacy.state.count("Bill"), legacy.state.count("Invoice")) == (7, 7)
    with pytest.raises(ValueError, match="bills need vendors"):
        create_emulator(vendors=0, bills=1)


def test_100k_bills_are_cheap_to_generate_and_page():
    started = time.perf_counter()
    emulator = create_emulator(bills=100_000, invoices=0, vendors=200)
    assert time.perf_counter() - started < 2
    assert emulator.state.count("Bill") == 100_000 and not emulator.state.tables["Bill"].rows
    with serve(emulator.app) as url:
        client = Qbo(emulator, url)
        assert client.query("SELECT COUNT(*) FROM Bill") == {"totalCount": 100_000}
        last = client.query("SELECT * FROM Bill STARTPOSITION 99501 MAXRESULTS 1000")
        assert [r["Id"] for r in last["Bill"]] == [str(i) for i in range(99501, 100_001)]
        client.http.close()
