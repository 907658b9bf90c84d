"""Invoice (bill) export to QuickBooks and Xero over real HTTP, on real PostgreSQL: account
mapping, blocked invoices with their reasons, the ledger, reruns that send nothing new."""

import time
from datetime import date

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub.crypto import Keyring
from hub.providers.connect import open_client
from hub.providers.errors import TransientProblem
from hub.providers.transport import RetrySettings
from hub.schema import gl_account, invoice, invoice_line, sync_log, sync_write
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import export_invoices
from hub.sync.streams import BY_KEY
from tests.test_vendor_two_way import FAST, REALM, TENANT, Env, _connect


@pytest.fixture
def qbo(clean_db, secret_keys):
    emulator, keyring = quickbooks_emulator(vendors=4, invoices=3, accounts=12), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        iid, company_id = _connect(clean_db, keyring, "quickbooks", config, {"realmId": REALM}, emulator)
        yield Books(clean_db, keyring, iid, company_id, emulator, "quickbooks")


@pytest.fixture
def xero(clean_db, secret_keys):
    emulator, keyring = xero_emulator(contacts=6, invoices=6, accounts=18), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"tenant_id": TENANT, "base_url": url, "token_url": url + "/connect/token"}
        iid, company_id = _connect(clean_db, keyring, "xero", config, {"tenantId": TENANT}, emulator)
        yield Books(clean_db, keyring, iid, company_id, emulator, "xero")


class Books(Env):
    def prepare(self, mappings: dict[str, str]):
        """Chart and vendors imported, categories mapped (as an admin would)."""
        for stream in ("accounts", "vendors"):
            sync_stream(self.engine, self.keyring, self.iid, BY_KEY[f"{self.provider}/{stream}"])
        with self.engine.begin() as conn:
            for category, account in mappings.items():
                set_mapping(conn, self.iid, category, account)

    def export_invoices(self, client=None):
        client = client or open_client(self.engine, self.keyring, self.iid, retry=FAST)
        try:
            return export_invoices(self.engine, self.keyring, self.iid, client=client)
        finally:
            client.transport.close()

    def bill(self, number, vendor_id, lines, tax="0", status="authorised"):
        subtotal = sum(float(amount) for _, amount in lines)
        with self.engine.begin() as conn:
            invoice_id = conn.scalar(sa.insert(invoice).values(
                company_id=self.company_id, vendor_id=vendor_id, number=number, issue_date=date(2025, 3, 1), due_date=date(2025, 3, 31),
                subtotal=subtotal, tax=tax, total=subtotal + float(tax), status=status).returning(invoice.c.id))
            conn.execute(sa.insert(invoice_line), [
                {"invoice_id": invoice_id, "line_no": n, "description": f"{category} work", "category": category,
                 "quantity": 1, "unit_amount": amount, "amount": amount} for n, (category, amount) in enumerate(lines, 1)])
        return invoice_id

    def invoice(self, invoice_id):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(invoice).where(invoice.c.id == invoice_id)).mappings().one()

    def account(self, **where):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(gl_account).where(gl_account.c.integration_id == self.iid,
                                                            *[gl_account.c[k] == v for k, v in where.items()])).mappings().one()


def test_quickbooks_bills_with_mapped_accounts_and_blocked_ones(qbo):
    qbo.prepare({"Lumber": "Job Materials", "Rent": "Rent or Lease"})
    vendor_one = qbo.local("1")["id"]
    local_only = qbo.add_local(display_name="Local Only Vendor")
    good = qbo.bill("B-100", vendor_one, [("Lumber", "100.00"), ("Rent", "250.50")])
    unmapped = qbo.bill("B-101", qbo.local("2")["id"], [("Lumber", "10.00"), ("Produce", "5.00")])
    no_vendor = qbo.bill("B-102", local_only, [("Lumber", "1.00")])
    before = qbo.emulator.state.count("Invoice")

    result = qbo.export_invoices()
    assert (result.created, result.blocked, result.failed) == (1, 2, 0)
    assert qbo.emulator.state.count("Invoice") == before + 1
    row = qbo.invoice(good)
    remote = qbo.emulator.state.read("Invoice", row["remote_id"])
    assert remote["VendorRef"]["value"] == "1" and remote["DocNumber"] == "B-100" and remote["TotalAmt"] == 350.5
    accounts = [line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for line in remote["Line"]]
    assert accounts == [qbo.account(name="Job Materials")["remote_id"], qbo.account(name="Rent or Lease")["remote_id"]]
    assert (row["integration_id"], row["remote_version"], row["sync_error"]) == (qbo.iid, remote["SyncToken"], None)
    assert qbo.invoice(unmapped)["sync_error"] == "line 2: category 'Produce' has no account mapping for this integration"
    assert qbo.invoice(no_vendor)["sync_error"] == "vendor 'Local Only Vendor' is not in QuickBooks yet; export vendors first"
    assert qbo.invoice(unmapped)["integration_id"] is None
    [log] = qbo.rows(sync_log, sync_log.c.action == "export_invoices")
    assert log["status"] == "completed" and log["records_processed"] == 1 and log["records_failed"] == 2
    assert {(e["record_id"], e["code"]) for e in log["errors"]} == {(str(unmapped), "blocked"), (str(no_vendor), "blocked")}
    with qbo.engine.connect() as conn:
        line_accounts = conn.execute(sa.select(invoice_line.c.gl_account_id).where(invoice_line.c.invoice_id == good)
                                     .order_by(invoice_line.c.line_no)).scalars().all()
    assert line_accounts == [qbo.account(name="Job Materials")["id"], qbo.account(name="Rent or Lease")["id"]]

    again = qbo.export_invoices()  # nothing new; the blocked ones stay blocked
    assert (again.created, again.updated, again.blocked) == (0, 0, 2)
    assert qbo.emulator.state.count("Invoice") == before + 1

    with qbo.engine.begin() as conn:
        set_mapping(conn, qbo.iid, "Produce", "Office Expenses")
    assert qbo.export_invoices().created == 1
    assert qbo.invoice(unmapped)["sync_error"] is None

    # a local change goes out as an update under the SyncToken
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == good, invoice_line.c.line_no == 2)
                     .values(amount="300.00", unit_amount="300.00"))
    updated = qbo.export_invoices()
    assert (updated.updated, updated.created) == (1, 0)
    remote = qbo.emulator.state.read("Invoice", row["remote_id"])
    assert remote["TotalAmt"] == 400.0 and qbo.invoice(good)["remote_version"] == remote["SyncToken"] != row["remote_version"]
    assert qbo.export_invoices().updated == 0

    # changed at QuickBooks since: refused with a reason, not overwritten
    qbo.emulator.state.mutate("update", "Invoice", row["remote_id"], {"PrivateNote": "edited by the bookkeeper"})
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == good).values(due_date=date(2025, 4, 30)))
    stale = qbo.export_invoices()
    assert (stale.updated, stale.failed) == (0, 1)
    assert "changed in QuickBooks since the last sync" in qbo.invoice(good)["sync_error"]


def test_inactive_account_blocks_with_its_reason(qbo):
    qbo.prepare({"Fuel": "Utilities"})
    bill = qbo.bill("B-200", qbo.local("1")["id"], [("Fuel", "40.00")])
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(gl_account).where(gl_account.c.integration_id == qbo.iid, gl_account.c.name == "Utilities")
                     .values(is_active=False))
    assert qbo.export_invoices().blocked == 1
    assert qbo.invoice(bill)["sync_error"] == "line 1: account 'Utilities' (for category 'Fuel') is inactive in QuickBooks"


def test_imported_invoices_are_not_sent_back(qbo):
    qbo.prepare({})
    sync_stream(qbo.engine, qbo.keyring, qbo.iid, BY_KEY["quickbooks/invoices"])
    with qbo.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(invoice).where(invoice.c.integration_id == qbo.iid)) == 3
    result = qbo.export_invoices()
    assert (result.created, result.updated, result.blocked, result.failed) == (0, 0, 0, 0)


def test_xero_accpay_with_account_codes(xero):
    xero.prepare({"Lumber": "453", "Rent": "469"})
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    vendor_id = xero.local(supplier["ContactID"])["id"]
    taxed = xero.bill("X-1", vendor_id, [("Lumber", "100.00"), ("Rent", "200.00")], tax="30.00")
    plain = xero.bill("X-2", vendor_id, [("Rent", "50.00")], status="draft")
    result = xero.export_invoices()
    assert (result.created, result.blocked, result.failed) == (2, 0, 0)
    remote = xero.emulator.state.invoices[xero.invoice(taxed)["remote_id"]]
    assert (remote.Type, remote.ContactID, remote.InvoiceNumber, remote.Status) == ("ACCPAY", supplier["ContactID"], "X-1", "AUTHORISED")
    assert [li[3] for li in remote.LineItems] == ["453", "469"]
    assert (remote.SubTotal, remote.TotalTax, remote.Total) == (300.0, 30.0, 330.0)
    draft = xero.emulator.state.invoices[xero.invoice(plain)["remote_id"]]
    assert (draft.Status, draft.Total, draft.LineAmountTypes) == ("DRAFT", 50.0, "NoTax")
    assert xero.invoice(taxed)["remote_version"] is not None

    again = xero.export_invoices()
    assert (again.created, again.updated) == (0, 0)
    with xero.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == plain).values(due_date=date(2025, 5, 15)))
    assert xero.export_invoices().updated == 1
    assert xero.emulator.state.invoices[xero.invoice(plain)["remote_id"]].DueDate == date(2025, 5, 15).toordinal()


def test_xero_timed_out_bill_is_not_created_twice(xero):
    xero.prepare({"Rent": "469"})
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    bill = xero.bill("X-SLOW", xero.local(supplier["ContactID"])["id"], [("Rent", "75.00")])
    xero.emulator.write_delay_ms = 2000
    impatient = open_client(xero.engine, xero.keyring, xero.iid, retry=RetrySettings(max_attempts=2, base_delay_s=0.01, timeout_s=0.75))
    with pytest.raises(TransientProblem):
        xero.export_invoices(client=impatient)
    time.sleep(2.1)
    xero.emulator.write_delay_ms = 0
    assert [w["status"] for w in xero.rows(sync_write)] == ["pending"]
    result = xero.export_invoices()
    assert (result.created, result.linked) == (0, 1)
    assert [i.InvoiceNumber for i in xero.emulator.state.invoices.values()].count("X-SLOW") == 1
    assert xero.invoice(bill)["remote_id"] and [w["status"] for w in xero.rows(sync_write)] == ["succeeded"]
    assert xero.export_invoices().created == 0
