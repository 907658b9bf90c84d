"""Invoice (bill) export to QuickBooks (Bill) and Xero (ACCPAY) over real HTTP, on real
PostgreSQL: account mapping, blocked invoices with their reasons, the ledger (lost answers,
edits made meanwhile, adoption by the import), the export lock, statuses the ledger cannot
take, reruns that send nothing new."""

import time
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
from hub.providers.errors import TransientProblem
from hub.providers.transport import RetrySettings
from hub.schema import gl_account, invoice, invoice_line, sync_conflict, sync_log, sync_write
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import export_invoices
from tests.test_vendor_two_way import FAST, REALM, TENANT, Env, _connect


@pytest.fixture
def qbo(clean_db, secret_keys):
    emulator, keyring = quickbooks_emulator(vendors=4, bills=3, invoices=2, accounts=12), Keyring(secret_keys)
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
            sync_stream(self.engine, self.keyring, self.iid, registry.stream(f"{self.provider}/{stream}"))
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
    before, sales = qbo.emulator.state.count("Bill"), qbo.emulator.state.count("Invoice")

    result = qbo.export_invoices()
    assert (result.created, result.blocked, result.failed) == (1, 2, 0)
    assert qbo.emulator.state.count("Bill") == before + 1 and qbo.emulator.state.count("Invoice") == sales  # a bill, not a sale
    row = qbo.invoice(good)
    remote = qbo.emulator.state.read("Bill", row["remote_id"])
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
    assert qbo.emulator.state.count("Bill") == before + 1

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
    remote = qbo.emulator.state.read("Bill", row["remote_id"])
    assert remote["TotalAmt"] == 400.0 and qbo.invoice(good)["remote_version"] == remote["SyncToken"] != row["remote_version"]
    assert qbo.export_invoices().updated == 0

    # changed at QuickBooks since: refused with a reason, not overwritten
    qbo.emulator.state.mutate("update", "Bill", row["remote_id"], {"PrivateNote": "edited by the bookkeeper"})
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
    sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
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


def _impatient(env, attempts=1):
    return open_client(env.engine, env.keyring, env.iid, retry=RetrySettings(max_attempts=attempts, base_delay_s=0.01, timeout_s=0.75))


def _lose_the_answer(env):
    """Export with the answer arriving after the client gave up: the write happened, the hub
    does not know (a pending ledger row)."""
    env.emulator.write_delay_ms = 2000
    with pytest.raises(TransientProblem):
        env.export_invoices(client=_impatient(env))
    time.sleep(2.1)
    env.emulator.write_delay_ms = 0


def _ledger(env):
    return [(w["operation"], w["status"]) for w in env.rows(sync_write)]


# ---- a lost answer, then an edit or an import ----------------------------------------------------
def test_an_edit_made_while_a_create_was_unanswered_is_sent(xero):
    xero.prepare({"Rent": "469"})
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    bill = xero.bill("X-EDIT", xero.local(supplier["ContactID"])["id"], [("Rent", "75.00")])
    _lose_the_answer(xero)
    with xero.engine.begin() as conn:  # the user fixes the amount before the next run
        conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == bill).values(amount="80.00", unit_amount="80.00"))
        conn.execute(sa.update(invoice).where(invoice.c.id == bill).values(subtotal="80.00", total="80.00"))

    first = xero.export_invoices()

    assert (first.linked, first.created, first.updated) == (1, 0, 1)  # found, linked, and the edit sent
    remote = xero.emulator.state.invoices[xero.invoice(bill)["remote_id"]]
    assert remote.Total == 80.0 and [i.InvoiceNumber for i in xero.emulator.state.invoices.values()].count("X-EDIT") == 1
    assert _ledger(xero) == [("create", "succeeded"), ("update", "succeeded")]
    again = xero.export_invoices()
    assert (again.created, again.updated, again.linked) == (0, 0, 0)


def test_an_update_edited_again_before_its_retry_is_not_replayed(qbo):
    """A pending update whose payload changed is superseded, not resumed with its key (which
    would replay the old answer); QuickBooks refuses the new one under the old SyncToken (the
    first did land), the import merges, and the next export sends the rest."""
    qbo.prepare({"Lumber": "Job Materials"})
    bill = qbo.bill("B-UPD", qbo.local("1")["id"], [("Lumber", "100.00")])
    assert qbo.export_invoices().created == 1
    rid = qbo.invoice(bill)["remote_id"]
    sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == bill).values(due_date=date(2025, 6, 30)))
    _lose_the_answer(qbo)
    assert qbo.emulator.state.read("Bill", rid)["DueDate"] == "2025-06-30"  # it landed; the hub does not know
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == bill).values(issue_date=date(2025, 3, 2)))

    stale = qbo.export_invoices()
    assert (stale.updated, stale.failed) == (0, 1)
    [superseded] = [w for w in qbo.rows(sync_write) if w["operation"] == "update" and "superseded" in (w["error"] or "")]
    assert superseded["status"] == "failed"
    assert qbo.emulator.state.read("Bill", rid)["TxnDate"] == "2025-03-01"

    pulled = sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
    assert pulled.counts.conflicts == 0  # the due date agrees on both sides; the issue date is the hub's alone
    assert qbo.export_invoices().updated == 1
    remote = qbo.emulator.state.read("Bill", rid)
    assert (remote["TxnDate"], remote["DueDate"]) == ("2025-03-02", "2025-06-30")
    assert not [w for w in qbo.rows(sync_write) if w["status"] == "pending"]


def test_a_lost_create_is_adopted_by_the_next_import_not_duplicated(xero):
    """The nightly job imports before it exports: the import meets the bill the lost create
    made and links the hub's row to it (settling the ledger) instead of importing a second."""
    xero.prepare({"Rent": "469"})
    sync_stream(xero.engine, xero.keyring, xero.iid, registry.stream("xero/invoices"))  # the cursor is set
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    bill = xero.bill("X-SLOW", xero.local(supplier["ContactID"])["id"], [("Rent", "75.00")])
    _lose_the_answer(xero)
    time.sleep(1.1)  # If-Modified-Since is to the second

    pulled = sync_stream(xero.engine, xero.keyring, xero.iid, registry.stream("xero/invoices"))

    with xero.engine.connect() as conn:
        rows = conn.execute(sa.select(invoice.c.id, invoice.c.integration_id).where(invoice.c.number.like("X-SLOW%"))).all()
    assert rows == [(bill, xero.iid)] and (pulled.counts.created, pulled.counts.conflicts) == (0, 0)
    assert _ledger(xero) == [("create", "succeeded")]
    result = xero.export_invoices()
    assert (result.created, result.updated, result.linked, result.blocked) == (0, 0, 0, 0)
    assert [i.InvoiceNumber for i in xero.emulator.state.invoices.values()].count("X-SLOW") == 1


def test_a_bill_entered_on_both_sides_is_adopted_with_its_differences_as_conflicts(qbo):
    qbo.prepare({"Lumber": "Job Materials"})
    sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
    vendor_one, materials = qbo.local("1")["id"], qbo.account(name="Job Materials")["remote_id"]
    same = qbo.bill("TWIN-1", vendor_one, [("Lumber", "100.00")])
    different = qbo.bill("TWIN-2", vendor_one, [("Lumber", "100.00")])
    for number, amount in (("TWIN-1", 100.0), ("TWIN-2", 120.0)):
        qbo.emulator.state.mutate("create", "Bill", fields={
            "VendorRef": {"value": "1"}, "DocNumber": number, "TxnDate": "2025-03-01", "DueDate": "2025-03-31",
            "Line": [{"Amount": amount, "Description": "Lumber work", "DetailType": "AccountBasedExpenseLineDetail",
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": materials}}}]})

    pulled = sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))

    assert (pulled.counts.created, pulled.counts.updated) == (0, 2)
    with qbo.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(invoice.c.number.like("TWIN-%"))) == 2
        fields = conn.execute(sa.select(sync_conflict.c.local_id, sync_conflict.c.field).where(sync_conflict.c.status == "open")
                              .order_by(sync_conflict.c.field)).all()
    assert qbo.invoice(same)["integration_id"] == qbo.iid == qbo.invoice(different)["integration_id"]
    assert fields == [(different, "lines"), (different, "subtotal"), (different, "total")]
    result = qbo.export_invoices()
    assert (result.created, result.updated, result.blocked) == (0, 0, 1)
    assert "open sync conflicts" in qbo.invoice(different)["sync_error"] and qbo.invoice(same)["sync_error"] is None


# ---- two runs at once ------------------------------------------------------------------------------
def test_two_export_runs_take_turns_and_create_the_bill_once(qbo):
    import threading

    from hub.sync.export import lock_key

    qbo.prepare({"Lumber": "Job Materials"})
    qbo.bill("B-RACE", qbo.local("1")["id"], [("Lumber", "100.00")])
    results, errors = [], []

    def run():
        try:
            results.append(qbo.export_invoices())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    holder = qbo.engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # as a running export holds it
    holder.execute(sa.text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), {"key": lock_key(qbo.iid, "invoice")})
    first = threading.Thread(target=run)
    first.start()
    # until the run tries the lock (it reads first; under load that takes a while), then 0.3 s more
    deadline = time.monotonic() + 30
    tried = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE 'SELECT pg_try_advisory_lock%'")  # the export polls with try-lock
    while not holder.scalar(tried):
        assert time.monotonic() < deadline and first.is_alive(), "the export never waited on the lock"
        time.sleep(0.02)
    time.sleep(0.3)
    assert first.is_alive() and qbo.emulator.state.query("SELECT * FROM Bill WHERE DocNumber = 'B-RACE'") == {}
    holder.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), {"key": lock_key(qbo.iid, "invoice")})
    holder.close()
    first.join(10)
    assert results[0].created == 1 and results[0].lock_wait_s >= 0.3

    qbo.bill("B-RACE-2", qbo.local("1")["id"], [("Lumber", "50.00")])
    qbo.emulator.write_delay_ms = 300
    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(20) for t in threads]
    assert errors == [] and sorted(r.created for r in results[1:]) == [0, 1]
    assert len(qbo.emulator.state.query("SELECT * FROM Bill WHERE DocNumber = 'B-RACE-2'")["Bill"]) == 1


def test_a_run_that_cannot_get_the_lock_gives_up_clearly(qbo):
    from hub.sync.export import ExportBusy, lock_key

    qbo.prepare({"Lumber": "Job Materials"})
    qbo.bill("B-BUSY", qbo.local("1")["id"], [("Lumber", "10.00")])
    with qbo.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), {"key": lock_key(qbo.iid, "invoice")})
        client = open_client(qbo.engine, qbo.keyring, qbo.iid, retry=FAST)
        try:
            with pytest.raises(ExportBusy, match="another invoice export to integration .* is still running"):
                export_invoices(qbo.engine, qbo.keyring, qbo.iid, client=client, lock_wait_s=0.3)
        finally:
            client.transport.close()
            holder.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), {"key": lock_key(qbo.iid, "invoice")})
    [log] = qbo.rows(sync_log, sync_log.c.action == "export_invoices")
    assert log["status"] == "failed" and "still running" in log["errors"][0]["message"]
    assert qbo.emulator.state.query("SELECT * FROM Bill WHERE DocNumber = 'B-BUSY'") == {}
    assert qbo.export_invoices().created == 1  # free again


def test_one_pending_write_per_record(qbo):
    """The ledger's unique pending index: the same write begun twice is refused; a write with
    another payload supersedes the pending one."""
    from hub.sync import write_ledger

    first = write_ledger.begin(qbo.engine, qbo.iid, "invoice", 42, "create", {"DocNumber": "A"})
    with pytest.raises(write_ledger.ConcurrentWrite):
        write_ledger.begin(qbo.engine, qbo.iid, "invoice", 42, "create", {"DocNumber": "A"})
    second = write_ledger.begin(qbo.engine, qbo.iid, "invoice", 42, "create", {"DocNumber": "B"})
    rows = {w["id"]: w for w in qbo.rows(sync_write)}
    assert rows[first.id]["status"] == "failed" and rows[first.id]["error"].startswith("superseded")
    assert rows[second.id]["status"] == "pending"
    with qbo.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(sync_write).values(integration_id=qbo.iid, entity_type="invoice", local_id=42,
                                                  operation="update", request_key="raw"))


# ---- statuses the ledger cannot take ---------------------------------------------------------------
def test_draft_and_locally_paid_bills_are_held_with_reasons(qbo):
    qbo.prepare({"Lumber": "Job Materials"})
    vendor_one = qbo.local("1")["id"]
    draft = qbo.bill("B-DRAFT", vendor_one, [("Lumber", "10.00")], status="draft")
    paid = qbo.bill("B-PAID", vendor_one, [("Lumber", "20.00")], status="paid")
    posted = qbo.bill("B-POST", vendor_one, [("Lumber", "30.00")])
    result = qbo.export_invoices()
    assert (result.created, result.blocked) == (1, 2)
    assert "QuickBooks bills have no draft or approval state" in qbo.invoice(draft)["sync_error"]
    assert "record the payment in QuickBooks" in qbo.invoice(paid)["sync_error"]
    assert {r["DocNumber"] for r in qbo.emulator.state.query("SELECT * FROM Bill WHERE DocNumber LIKE 'B-%'")["Bill"]} == {"B-POST"}

    # paid in the hub after it was posted: held until the payment is recorded in QuickBooks
    sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
    with qbo.engine.begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == posted).values(status="paid"))
    assert qbo.export_invoices().blocked == 3 and "record the payment" in qbo.invoice(posted)["sync_error"]
    qbo.emulator.state.mutate("pay", "Bill", qbo.invoice(posted)["remote_id"])
    pulled = sync_stream(qbo.engine, qbo.keyring, qbo.iid, registry.stream("quickbooks/invoices"))
    assert pulled.counts.conflicts == 0 and qbo.invoice(posted)["synced_values"]["status"] == "paid"
    again = qbo.export_invoices()
    assert (again.updated, again.blocked) == (0, 2)  # in sync now; the draft and the unsent paid bill stay held


def test_xero_locally_paid_bill_is_held_and_drafts_go_as_drafts(xero):
    xero.prepare({"Rent": "469"})
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    vendor_id = xero.local(supplier["ContactID"])["id"]
    paid = xero.bill("X-PAID", vendor_id, [("Rent", "20.00")], status="paid")
    draft = xero.bill("X-DRAFT", vendor_id, [("Rent", "10.00")], status="draft")
    result = xero.export_invoices()
    assert (result.created, result.blocked) == (1, 1)
    assert "record the payment in Xero" in xero.invoice(paid)["sync_error"]
    assert xero.emulator.state.invoices[xero.invoice(draft)["remote_id"]].Status == "DRAFT"


# ---- Xero tax-inclusive lines ----------------------------------------------------------------------
def test_xero_inclusive_lines_are_stored_tax_exclusive_and_exported_alike(xero):
    xero.prepare({})
    supplier = next(c for c in xero.emulator.state.contacts.values() if c["IsSupplier"])
    code = next(a["Code"] for a in xero.emulator.state.accounts.values() if a["Class"] == "EXPENSE")
    made = xero.emulator.state.mutate("create", "Invoice", fields={
        "Type": "ACCPAY", "Contact": {"ContactID": supplier["ContactID"]}, "InvoiceNumber": "INC-1", "Date": "2025-03-01",
        "LineAmountTypes": "Inclusive", "Status": "AUTHORISED",
        "LineItems": [{"Description": "a", "Quantity": 2, "UnitAmount": 57.5, "AccountCode": code},
                      {"Description": "b", "Quantity": 1, "UnitAmount": 33, "AccountCode": code}]})
    sync_stream(xero.engine, xero.keyring, xero.iid, registry.stream("xero/invoices"))
    rendered = xero.emulator.state.render("Invoice", xero.emulator.state.invoices[made["InvoiceID"]])
    with xero.engine.connect() as conn:
        row = conn.execute(sa.select(invoice).where(invoice.c.number == "INC-1")).mappings().one()
        lines = conn.execute(sa.select(invoice_line).where(invoice_line.c.invoice_id == row["id"]).order_by(invoice_line.c.line_no)).mappings().all()
    expected = [Decimal(str(li["LineAmount"])) - Decimal(str(li["TaxAmount"])) for li in rendered["LineItems"]]
    assert [li["amount"] for li in lines] == expected and row["tax"] > 0
    assert sum(li["amount"] for li in lines) + row["tax"] == row["total"] == Decimal(str(rendered["Total"]))
    assert row["subtotal"] == sum(li["amount"] for li in lines)

    with xero.engine.begin() as conn:  # a local change sends the bill back: Exclusive amounts, the same total
        conn.execute(sa.update(invoice).where(invoice.c.id == row["id"]).values(due_date=date(2025, 4, 30)))
    assert xero.export_invoices().updated == 1
    sent = xero.emulator.state.invoices[made["InvoiceID"]]
    assert (sent.LineAmountTypes, Decimal(str(sent.Total)), Decimal(str(sent.TotalTax))) == ("Exclusive", row["total"], row["tax"])
