"""Receivables both ways (issue 15 item 6) against the emulators over real HTTP, on real
PostgreSQL: customers (QuickBooks `Customer`, Xero contacts with IsCustomer) and sales invoices
(QuickBooks `Invoice`, Xero ACCREC) imported beside vendors and bills, exported as they are,
reconciled per entity, with status events; a Bill and an Invoice sharing an Id stay two rows."""

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.schema import customer, external_ref, invoice, invoice_line, outbox_event, sync_conflict, sync_log
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import export_sales_invoices
from hub.sync.export_preview import preview_export
from hub.sync.export_vendors import export_customers
from hub.sync.reconcile import reconcile_stream
from tests.test_vendor_two_way import FAST, Env, _connect

# own realm and tenant: client-side rate budgets are per (provider, account) in the process
REALM, TENANT = "9130350000000115", "a3b1c5d7-0000-4000-8000-000000000115"


@pytest.fixture
def qbo(clean_db, secret_keys):
    """3 bills and 3 sales invoices: Bill 1..3 and Invoice 1..3 share their Ids (QuickBooks
    numbers each entity apart), 3 customers."""
    emulator, keyring = quickbooks_emulator(vendors=4, bills=3, invoices=3, accounts=12, realm_id=REALM), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        iid, company_id = _connect(clean_db, keyring, "quickbooks", config, {"realmId": REALM}, emulator)
        yield Ledger(clean_db, keyring, iid, company_id, emulator, "quickbooks")


@pytest.fixture
def xero(clean_db, secret_keys):
    emulator, keyring = xero_emulator(contacts=6, invoices=8, accounts=18, tenant_id=TENANT), Keyring(secret_keys)
    with serve(emulator.app) as url:
        config = {"tenant_id": TENANT, "base_url": url, "token_url": url + "/connect/token"}
        iid, company_id = _connect(clean_db, keyring, "xero", config, {"tenantId": TENANT}, emulator)
        yield Ledger(clean_db, keyring, iid, company_id, emulator, "xero")


class Ledger(Env):
    def sync(self, *streams, **kwargs):
        return [sync_stream(self.engine, self.keyring, self.iid, registry.stream(f"{self.provider}/{s}"), **kwargs) for s in streams]

    def run(self, export):
        client = open_client(self.engine, self.keyring, self.iid, retry=FAST)
        try:
            return export(self.engine, self.keyring, self.iid, client=client)
        finally:
            client.transport.close()

    def add_customer(self, **values):
        with self.engine.begin() as conn:
            return conn.scalar(sa.insert(customer).values(company_id=self.company_id, **values).returning(customer.c.id))

    def add_sales_invoice(self, customer_id, number, lines, **values):
        """A receivable made in the hub (integration NULL), authorised, with `lines` of
        (description, category, quantity, unit amount)."""
        total = sum(Decimal(str(q)) * Decimal(str(u)) for _, _, q, u in lines)
        with self.engine.begin() as conn:
            invoice_id = conn.scalar(sa.insert(invoice).values(
                company_id=self.company_id, kind="receivable", customer_id=customer_id, number=number,
                issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2), currency="USD", subtotal=total, tax=0, total=total,
                status="authorised", **values).returning(invoice.c.id))
            conn.execute(sa.insert(invoice_line), [
                {"invoice_id": invoice_id, "line_no": n, "description": d, "category": c, "quantity": q, "unit_amount": u,
                 "amount": Decimal(str(q)) * Decimal(str(u))} for n, (d, c, q, u) in enumerate(lines, 1)])
        return invoice_id

    def invoices(self, kind=None):
        query = sa.select(invoice).where(invoice.c.company_id == self.company_id)
        if kind:
            query = query.where(invoice.c.kind == kind)
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().all()


def _qbo_all(emulator, entity):
    return {r["Id"]: r for r in emulator.state.query(f"SELECT * FROM {entity} WHERE Active IN (true, false) MAXRESULTS 1000"
                                                     if entity == "Customer" else f"SELECT * FROM {entity} MAXRESULTS 1000")
            .get(entity, [])}


def _count(engine, table, *where):
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


# ---- import --------------------------------------------------------------------------------------
def test_quickbooks_customers_and_sales_invoices_come_in_beside_bills_and_a_rerun_changes_nothing(qbo):
    accounts, vendors, customers, bills, sales = qbo.sync("accounts", "vendors", "customers", "invoices", "sales_invoices")

    remote_customers, remote_sales, remote_bills = (_qbo_all(qbo.emulator, e) for e in ("Customer", "Invoice", "Bill"))
    assert customers.counts.created == len(remote_customers) == 3
    local_customers = {r["remote_id"]: r for r in qbo.rows(customer, customer.c.integration_id == qbo.iid)}
    assert {rid: (r["display_name"], r["email"]) for rid, r in local_customers.items()} == {
        rid: (r["DisplayName"], r["PrimaryEmailAddr"]["Address"]) for rid, r in remote_customers.items()}
    assert all(r["synced_values"]["display_name"] == r["display_name"] for r in local_customers.values())

    # a Bill and an Invoice with the same Id are two rows, each of its kind, each with its party
    assert set(remote_sales) & set(remote_bills) == {"1", "2", "3"}
    assert (bills.counts.created, sales.counts.created) == (3, 3)
    receivables = {r["remote_id"]: r for r in qbo.invoices("receivable")}
    payables = {r["remote_id"]: r for r in qbo.invoices("payable")}
    assert set(receivables) == set(remote_sales) and set(payables) == set(remote_bills)
    for rid, r in remote_sales.items():
        row = receivables[rid]
        assert row["customer_id"] == local_customers[r["CustomerRef"]["value"]]["id"] and row["vendor_id"] is None
        assert row["number"] == r["DocNumber"] and row["total"] == Decimal(str(r["TotalAmt"])).quantize(Decimal("0.01"))
        assert row["status"] == ("paid" if r["Balance"] == 0 else "authorised")
        assert _count(qbo.engine, invoice_line, invoice_line.c.invoice_id == row["id"]) == len(r["Line"])
        assert row["synced_values"]["customer_id"] == row["customer_id"]
        assert payables[rid]["vendor_id"] is not None and payables[rid]["customer_id"] is None
    with qbo.engine.connect() as conn:  # each entity keeps its own id map: Customer 1 is not Vendor 1
        refs = {(e, rid): local for e, rid, local in conn.execute(sa.select(
            external_ref.c.entity_type, external_ref.c.remote_id, external_ref.c.local_id).where(external_ref.c.integration_id == qbo.iid))}
    assert {rid: refs[("customer", rid)] for rid in remote_customers} == {rid: r["id"] for rid, r in local_customers.items()}

    before = {r["id"]: dict(r) for r in qbo.invoices()}
    lines_before = _count(qbo.engine, invoice_line)
    again_customers, again_sales = qbo.sync("customers", "sales_invoices", full=True)
    assert (again_customers.counts.created, again_sales.counts.created, again_sales.counts.deleted) == (0, 0, 0)
    after = {r["id"]: dict(r) for r in qbo.invoices()}
    assert set(after) == set(before) and _count(qbo.engine, invoice_line) == lines_before
    assert {i: (r["remote_id"], r["kind"], r["number"], r["total"], r["status"]) for i, r in after.items()} == \
           {i: (r["remote_id"], r["kind"], r["number"], r["total"], r["status"]) for i, r in before.items()}
    assert _count(qbo.engine, customer) == 3


def test_a_paid_sales_invoice_announces_its_status_with_its_kind(qbo):
    qbo.sync("accounts", "customers", "sales_invoices")
    open_one = next(r for r in qbo.invoices("receivable") if r["status"] == "authorised")
    qbo.emulator.state.mutate("pay", "Invoice", open_one["remote_id"], {"Amount": float(open_one["total"])})

    qbo.sync("sales_invoices")

    with qbo.engine.connect() as conn:
        events = [e.payload for e in conn.execute(sa.select(outbox_event).where(outbox_event.c.event_type == "invoice.status_changed"))]
    assert [(e["invoice_id"], e["kind"], e["status"], e["previous_status"]) for e in events] == [
        (open_one["id"], "receivable", "paid", "authorised")]


def test_xero_customers_and_sales_invoices_come_in_apart_from_suppliers_and_bills(xero):
    xero.sync("accounts", "vendors", "customers", "invoices", "sales_invoices")

    state = xero.emulator.state
    customers = {c["ContactID"] for c in state.contacts.values() if c.get("IsCustomer")}
    local_customers = {r["remote_id"]: r["id"] for r in xero.rows(customer, customer.c.integration_id == xero.iid)}
    assert customers and set(local_customers) == customers
    accrec = {i.InvoiceID: state.render("Invoice", i) for i in state.invoices.values() if i.Type == "ACCREC"}
    receivables = {r["remote_id"]: r for r in xero.invoices("receivable")}
    assert accrec and set(receivables) == set(accrec)
    assert all(receivables[rid]["customer_id"] == local_customers[r["Contact"]["ContactID"]] for rid, r in accrec.items())
    assert {r["remote_id"] for r in xero.invoices("payable")} == {i.InvoiceID for i in state.invoices.values() if i.Type == "ACCPAY"}


# ---- export --------------------------------------------------------------------------------------
def test_a_hub_customer_and_its_sales_invoice_go_to_quickbooks_once(qbo):
    qbo.sync("accounts", "customers", "sales_invoices")
    customer_id = qbo.add_customer(display_name="Harbor Cafe Group", email="ap@harborcafe.example.com",
                                   address={"line1": "1 Pier Rd", "city": "Portland", "postal_code": "97201"})
    invoice_id = qbo.add_sales_invoice(customer_id, "S-2001", [("Catering, 40 covers", "catering", 40, "18.50"),
                                                               ("Delivery", "delivery", 1, "35.00")])

    customers = qbo.run(export_customers)
    sales = qbo.run(export_sales_invoices)

    assert (customers.created, sales.created, sales.blocked, sales.failed) == (1, 1, 0, 0)
    local = qbo.rows(customer, customer.c.id == customer_id)[0]
    remote_customer = qbo.emulator.state.read("Customer", local["remote_id"])
    assert remote_customer["DisplayName"] == "Harbor Cafe Group" and remote_customer["BillAddr"]["City"] == "Portland"
    row = qbo.rows(invoice, invoice.c.id == invoice_id)[0]
    assert row["integration_id"] == qbo.iid and row["sync_error"] is None
    sent = qbo.emulator.state.read("Invoice", row["remote_id"])
    assert sent["CustomerRef"]["value"] == local["remote_id"] and sent["DocNumber"] == "S-2001"
    assert [(li["Description"], li["SalesItemLineDetail"]["Qty"], li["Amount"]) for li in sent["Line"]
            if li["DetailType"] == "SalesItemLineDetail"] == [("Catering, 40 covers", 40, 740.0), ("Delivery", 1, 35.0)]
    assert Decimal(str(sent["TotalAmt"])) == Decimal("775.00")

    again_customers, again_sales = qbo.run(export_customers), qbo.run(export_sales_invoices)
    assert (again_customers.created, again_sales.created, again_sales.updated) == (0, 0, 0)
    assert len([r for r in _qbo_all(qbo.emulator, "Invoice").values() if r["DocNumber"] == "S-2001"]) == 1
    pulled, = qbo.sync("sales_invoices")  # the import finds it as the hub holds it: no change, no duplicate
    assert pulled.counts.created == 0 and len(qbo.invoices("receivable")) == 4


def test_a_sales_invoice_waits_for_its_customer_and_says_why(qbo):
    customer_id = qbo.add_customer(display_name="Not Yet Sent Ltd")
    invoice_id = qbo.add_sales_invoice(customer_id, "S-3001", [("Room hire", "rooms", 1, "200.00")])

    result = qbo.run(export_sales_invoices)

    assert (result.created, result.blocked) == (0, 1)
    assert "customer 'Not Yet Sent Ltd' is not in QuickBooks yet; export customers first" in qbo.rows(invoice, invoice.c.id == invoice_id)[0]["sync_error"]
    with qbo.engine.connect() as conn:
        log = conn.execute(sa.select(sync_log).where(sync_log.c.id == result.sync_log_id)).mappings().one()
    assert (log["action"], log["entity_type"], log["direction"]) == ("export_sales_invoices", "sales_invoice", "outbound")


def test_a_hub_customer_and_its_sales_invoice_go_to_xero_as_a_contact_and_accrec(xero):
    xero.sync("accounts", "customers", "sales_invoices")
    revenue = next(a for a in xero.emulator.state.accounts.values() if a.get("Type") == "REVENUE" and a.get("Code"))
    with xero.engine.begin() as conn:
        set_mapping(conn, xero.iid, "catering", revenue["Code"])
    customer_id = xero.add_customer(display_name="Harbor Cafe Group", email="ap@harborcafe.example.com")
    invoice_id = xero.add_sales_invoice(customer_id, "S-2001", [("Catering, 40 covers", "catering", 40, "18.50")])

    customers, sales = xero.run(export_customers), xero.run(export_sales_invoices)

    assert (customers.created, sales.created, sales.blocked, sales.failed) == (1, 1, 0, 0)
    contact_id = xero.rows(customer, customer.c.id == customer_id)[0]["remote_id"]
    assert xero.emulator.state.contacts[contact_id]["Name"] == "Harbor Cafe Group"
    row = xero.rows(invoice, invoice.c.id == invoice_id)[0]
    sent = xero.emulator.state.render("Invoice", xero.emulator.state.invoices[row["remote_id"]])
    assert (sent["Type"], sent["InvoiceNumber"], sent["Contact"]["ContactID"], sent["Status"]) == ("ACCREC", "S-2001", contact_id, "AUTHORISED")
    assert [(li["AccountCode"], li["LineAmount"]) for li in sent["LineItems"]] == [(revenue["Code"], 740.0)]
    assert xero.emulator.state.contacts[contact_id]["IsCustomer"] is True  # Xero's doing, on the first ACCREC

    again = xero.run(export_sales_invoices)
    assert (again.created, again.updated) == (0, 0)
    pulled_customers, pulled_sales = xero.sync("customers", "sales_invoices")
    assert (pulled_customers.counts.created, pulled_sales.counts.created) == (0, 0)
    assert len([r for r in xero.invoices("receivable") if r["number"] == "S-2001"]) == 1
    assert _count(xero.engine, customer, customer.c.remote_id == contact_id) == 1


# ---- reconciliation --------------------------------------------------------------------------------
def test_reconciliation_reports_per_entity_and_touches_only_its_own_kind(qbo):
    qbo.sync("accounts", "vendors", "customers", "invoices", "sales_invoices")
    qbo.emulator.state.mutate("delete", "Invoice", "2")  # the sales invoice 2; Bill 2 stays

    client = open_client(qbo.engine, qbo.keyring, qbo.iid, retry=FAST)
    try:
        results = {name: reconcile_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream(f"quickbooks/{name}"), client=client)
                   for name in ("customers", "invoices", "sales_invoices")}
    finally:
        client.transport.close()

    assert {n: (r.remote, r.local, r.marked_deleted) for n, r in results.items()} == {
        "customers": (3, 3, 0), "invoices": (3, 3, 0), "sales_invoices": (2, 3, 1)}
    by_kind = {(r["kind"], r["remote_id"]): r["status"] for r in qbo.invoices()}
    assert by_kind[("receivable", "2")] == "deleted" and by_kind[("payable", "2")] != "deleted"
    with qbo.engine.connect() as conn:
        logs = {r.action: (r.entity_type, r.details["result"]["marked_deleted"]) for r in conn.execute(
            sa.select(sync_log).where(sync_log.c.sync_type == "reconcile", sync_log.c.integration_id == qbo.iid))}
    assert logs == {"reconcile_customers": ("customer", 0), "reconcile_invoices": ("invoice", 0),
                    "reconcile_sales_invoices": ("sales_invoice", 1)}


# ---- the export preview ------------------------------------------------------------------------------
def test_the_export_preview_plans_customers_before_their_sales_invoices_and_writes_nothing(qbo):
    qbo.sync("accounts", "customers", "sales_invoices")
    customer_id = qbo.add_customer(display_name="Harbor Cafe Group")
    invoice_id = qbo.add_sales_invoice(customer_id, "S-2001", [("Catering", "catering", 2, "50.00")])
    writes = qbo.emulator.state.writes

    preview = preview_export(qbo.engine, qbo.keyring, qbo.iid, retry=FAST)

    planned = {(d.entity_type, d.local_id): d for d in preview.decisions}
    assert planned[("customer", customer_id)].action == "create"
    sale = planned[("sales_invoice", invoice_id)]
    assert sale.action == "create" and sale.reason == "its customer 'Harbor Cafe Group' is sent first in the same run (create)"
    assert qbo.emulator.state.writes == writes and qbo.rows(invoice, invoice.c.id == invoice_id)[0]["integration_id"] is None


# ---- two-way: local edits go out as updates, edits on both sides are conflicts ---------------------------
def test_an_imported_sales_invoice_edited_here_is_updated_in_quickbooks_under_its_sync_token(qbo):
    qbo.sync("accounts", "customers", "sales_invoices")
    row = next(r for r in qbo.invoices("receivable") if r["status"] == "authorised")
    token = qbo.emulator.state.read("Invoice", row["remote_id"])["SyncToken"]
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == row["id"]).values(due_date=date(2027, 3, 31)))

    result = qbo.run(export_sales_invoices)

    assert (result.created, result.updated, result.failed) == (0, 1, 0)
    remote = qbo.emulator.state.read("Invoice", row["remote_id"])
    assert remote["DueDate"] == "2027-03-31" and int(remote["SyncToken"]) == int(token) + 1
    assert qbo.emulator.state.read("Bill", row["remote_id"])["DueDate"] != "2027-03-31"  # Bill with the same Id untouched
    assert qbo.run(export_sales_invoices).updated == 0  # nothing left to send


def test_a_sales_invoice_changed_on_both_sides_is_a_conflict_that_holds_its_export(qbo):
    qbo.sync("accounts", "customers", "sales_invoices")
    row = next(r for r in qbo.invoices("receivable") if r["status"] == "authorised")
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == row["id"]).values(due_date=date(2027, 3, 31)))
    qbo.emulator.state.mutate("update", "Invoice", row["remote_id"], {"DueDate": "2027-04-30"})

    pulled, = qbo.sync("sales_invoices")
    result = qbo.run(export_sales_invoices)

    assert pulled.counts.conflicts == 1
    [conflict] = qbo.rows(sync_conflict, sync_conflict.c.status == "open")
    assert (conflict["entity_type"], conflict["local_id"], conflict["field"]) == ("sales_invoice", row["id"], "due_date")
    assert (result.updated, result.blocked) == (0, 1)
    assert qbo.emulator.state.read("Invoice", row["remote_id"])["DueDate"] == "2027-04-30"
