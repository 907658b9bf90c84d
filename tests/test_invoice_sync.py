"""Invoice import (pull) from QuickBooks (Bills) and Xero: headers, lines, references, remote
status, and local edits merged instead of overwritten, over real HTTP to the emulators and
real PostgreSQL. Expected values are read from the emulators' state, never from the code
under test."""

import dataclasses
from contextlib import ExitStack
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import TransientProblem
from hub.providers.transport import RetrySettings
from hub.providers.xero.client import parse_date
from hub.schema import account_mapping, customer, gl_account, invoice, invoice_line, sync_conflict, sync_log, vendor
from hub.sync.conflicts import resolve_conflict
from hub.sync.engine import sync_stream
from hub.sync.invoices import lines_digest

# an own realm and tenant: client-side rate budgets are per (provider, account) in the process
REALM, TENANT = "9130350000000077", "a3b1c5d7-0000-4000-8000-000000000077"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
QBO, XERO = registry.stream("quickbooks/invoices"), registry.stream("xero/invoices")


@pytest.fixture
def hub(clean_db, secret_keys):
    """Fresh emulators (invoices are mutated by the tests) and one company connected to both."""
    keyring = Keyring(secret_keys)
    qe = quickbooks_emulator(vendors=20, bills=120, invoices=10, accounts=24, realm_id=REALM, seed=3)
    xe = xero_emulator(contacts=25, invoices=150, accounts=20, tenant_id=TENANT, seed=4)
    with ExitStack() as stack:
        qurl, xurl = stack.enter_context(serve(qe.app)), stack.enter_context(serve(xe.app))
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Acme")
            ids = {
                "quickbooks": store.add_integration(
                    conn, keyring, company_id=company_id, provider="quickbooks",
                    config={"realm_id": REALM, "base_url": qurl, "token_url": qurl + "/oauth2/v1/tokens/bearer"},
                    credentials={**CLIENT, "refresh_token": qe.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})}, active=True),
                "xero": store.add_integration(
                    conn, keyring, company_id=company_id, provider="xero",
                    config={"tenant_id": TENANT, "base_url": xurl, "token_url": xurl + "/connect/token"},
                    credentials={**CLIENT, "refresh_token": xe.core.oauth.issue_refresh_token("hub-demo", {"tenantId": TENANT})}, active=True),
            }
        yield {"engine": clean_db, "keyring": keyring, "ids": ids, "company_id": company_id, "qbo": qe, "xero": xe}


def _sync(hub, key, **kwargs):
    provider = key.split("/")[0]
    return sync_stream(hub["engine"], hub["keyring"], hub["ids"][provider], registry.stream(key), **kwargs)


def _qbo_remote(emulator) -> dict[str, dict]:
    rows, position = {}, 1
    while found := emulator.state.query(f"SELECT * FROM Bill STARTPOSITION {position} MAXRESULTS 1000").get("Bill", []):
        rows.update({r["Id"]: r for r in found})
        position += 1000
    return rows


def _xero_remote(emulator, kind: str | None = None) -> dict[str, dict]:
    """Xero's invoices by id: all, or those of one Type (ACCPAY bills, ACCREC sales invoices)."""
    rendered = {i.InvoiceID: emulator.state.render("Invoice", i) for i in emulator.state.invoices.values()}
    return {rid: r for rid, r in rendered.items() if kind is None or r["Type"] == kind}


def _local(hub, provider) -> dict[str, dict]:
    """Local invoices of one integration by remote id, each with its lines in order."""
    with hub["engine"].connect() as conn:
        heads = conn.execute(sa.select(invoice).where(invoice.c.integration_id == hub["ids"][provider])).mappings().all()
        lines = conn.execute(sa.select(invoice_line).where(invoice_line.c.invoice_id.in_([h["id"] for h in heads]))
                             .order_by(invoice_line.c.line_no)).mappings().all()
    out = {h["remote_id"]: {**h, "lines": []} for h in heads}
    by_id = {h["id"]: out[h["remote_id"]] for h in heads}
    for line in lines:
        by_id[line["invoice_id"]]["lines"].append(dict(line))
    return out


def _ids_by_remote(hub, table, provider, key="remote_id") -> dict[str, int]:
    with hub["engine"].connect() as conn:
        rows = conn.execute(sa.select(table.c[key], table.c.id).where(table.c.integration_id == hub["ids"][provider])).all()
    return {k: i for k, i in rows}


def _count(hub, table, *where) -> int:
    with hub["engine"].connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def _qbo_expected_status(r) -> str:
    if r.get("PrivateNote") == "Voided":
        return "voided"
    return "paid" if r["Balance"] == 0 else "authorised"


def _assert_synced_values(hub, row):
    """The merge base is the header as stored, plus the digest of the stored lines."""
    sv = row["synced_values"]
    assert sv["lines_digest"] == lines_digest(row["lines"])  # recomputed from what invoice_line holds
    assert sv["number"] == row["number"] and sv["kind"] == row["kind"] and sv["status"] == row["status"]
    assert sv["vendor_id"] == row["vendor_id"] and sv["issue_date"] == row["issue_date"].isoformat()
    assert Decimal(str(sv["total"])) == row["total"] and Decimal(str(sv["tax"])) == row["tax"]
    assert row["sync_error"] is None


# ---- QuickBooks -----------------------------------------------------------------------------
def test_quickbooks_full_import_with_lines_vendors_accounts_and_status(hub):
    """Bills come in as payables; QuickBooks sales invoices (Invoice, CustomerRef) do not."""
    qe, company_id = hub["qbo"], hub["company_id"]
    qe.state.mutate("create", "Invoice", fields={
        "CustomerRef": {"value": "1"}, "DocNumber": "S-1", "TxnTaxDetail": {"TotalTax": 5.0},
        "Line": [{"Amount": 50.0, "Description": "Service", "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"Qty": 2, "UnitPrice": 25}}]})
    qe.state.mutate("pay", "Bill", "3")
    _sync(hub, "quickbooks/accounts")
    _sync(hub, "quickbooks/vendors")
    accounts, vendors = _ids_by_remote(hub, gl_account, "quickbooks"), _ids_by_remote(hub, vendor, "quickbooks")
    with hub["engine"].begin() as conn:  # account 5: one category; account 7: two, so ambiguous
        conn.execute(sa.insert(account_mapping), [
            {"company_id": company_id, "integration_id": hub["ids"]["quickbooks"], "local_category": c, "gl_account_id": accounts[a]}
            for c, a in (("office", "5"), ("utilities", "7"), ("power", "7"))])

    result = _sync(hub, "quickbooks/invoices", page_size=50)

    remote, local = _qbo_remote(qe), _local(hub, "quickbooks")
    assert set(local) == set(remote) and result.counts.created == len(remote) == 120 and result.pages == 3
    assert {r["status"] for r in local.values()} == {"paid", "authorised"} and {r["kind"] for r in local.values()} == {"payable"}
    mapped = set()
    for rid, r in remote.items():
        row = local[rid]
        assert (row["number"], row["issue_date"].isoformat(), row["due_date"].isoformat()) == (r["DocNumber"], r["TxnDate"], r["DueDate"])
        assert row["total"] == Decimal(str(r["TotalAmt"])) and row["status"] == _qbo_expected_status(r)
        assert row["remote_version"] == r["SyncToken"]
        assert row["kind"] == "payable" and row["vendor_id"] == vendors[r["VendorRef"]["value"]]
        assert [(li["line_no"], li["description"], li["amount"]) for li in row["lines"]] == \
               [(n, li["Description"], Decimal(str(li["Amount"]))) for n, li in enumerate(r["Line"], 1)]
        for li, remote_line in zip(row["lines"], r["Line"]):
            ref = remote_line.get("AccountBasedExpenseLineDetail", {}).get("AccountRef", {}).get("value")
            if ref:
                assert li["gl_account_id"] == accounts[ref]
                assert li["category"] == {"5": "office"}.get(ref)
                mapped.add(ref)
        _assert_synced_values(hub, row)
    assert {"5", "7"} <= mapped  # both mapping cases were exercised
    assert local["3"]["status"] == "paid"
    assert _count(hub, invoice, invoice.c.number == "S-1") == 0  # the sale stays in QuickBooks


def test_quickbooks_incremental_paid_deleted_and_lines_replaced(hub):
    qe = hub["qbo"]
    _sync(hub, "quickbooks/invoices")
    remote = _qbo_remote(qe)
    open_ids = [rid for rid, r in remote.items() if r["Balance"] > 0]
    paid, deleted, edited = open_ids[:3]
    lines_before = _count(hub, invoice_line)
    deleted_lines = len(remote[deleted]["Line"])
    qe.state.mutate("pay", "Bill", paid)
    qe.state.mutate("delete", "Bill", deleted)
    qe.state.mutate("update", "Bill", edited, {"Line": [{
        "Amount": 12.5, "Description": "Just one", "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}]})
    new = qe.state.mutate("create", "Bill", fields={"VendorRef": {"value": "2"}, "DocNumber": "NEW-1", "Line": [
        {"Amount": 7.0, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}]})
    qe.state.mutate("pay", "Invoice", "1")  # a sale changes too: not this stream's

    second = _sync(hub, "quickbooks/invoices")

    assert second.mode == "incremental" and second.api["api_calls"] <= 2  # CDC, not a full read
    assert (second.counts.created, second.counts.updated, second.counts.deleted, second.counts.conflicts) == (1, 2, 1, 0)
    local = _local(hub, "quickbooks")
    assert (local[paid]["status"], local[deleted]["status"]) == ("paid", "deleted")
    assert len(local[deleted]["lines"]) == deleted_lines and local[deleted]["synced_values"]["status"] == "deleted"
    assert [(li["description"], li["amount"]) for li in local[edited]["lines"]] == [("Just one", Decimal("12.50"))]
    assert local[edited]["total"] == Decimal("12.50") and local[new["Id"]]["total"] == Decimal("7.00")
    assert local[paid]["remote_version"] == qe.state.read("Bill", paid)["SyncToken"]
    expected = lines_before - len(remote[edited]["Line"]) + 1 + 1  # edited now has one line; the new bill one
    assert _count(hub, invoice_line) == expected
    for rid in (paid, edited, new["Id"]):
        _assert_synced_values(hub, local[rid])
    # a CDC window overlapping the last one re-reads the tombstone; it is not counted twice
    third = _sync(hub, "quickbooks/invoices")
    assert third.counts.deleted == 0 and _count(hub, invoice_line) == expected
    # the status changes were announced to the outbox, each once (#6: outgoing events)
    with hub["engine"].connect() as conn:
        announced = [(p["remote_id"], p["previous_status"], p["status"]) for p in conn.execute(sa.text(
            "select payload from outbox_event where event_type = 'invoice.status_changed' order by id")).scalars()]
    assert sorted(announced) == sorted([(paid, "authorised", "paid"), (deleted, "authorised", "deleted")])


def test_references_resolve_on_a_later_pull_and_lines_are_replaced_not_duplicated(hub):
    first = _sync(hub, "quickbooks/invoices", page_size=40)
    local = _local(hub, "quickbooks")
    lines = _count(hub, invoice_line)
    assert lines == sum(len(r["Line"]) for r in _qbo_remote(hub["qbo"]).values())
    assert all(r["vendor_id"] is None and all(li["gl_account_id"] is None for li in r["lines"]) for r in local.values())
    _sync(hub, "quickbooks/accounts")
    _sync(hub, "quickbooks/vendors")

    again = _sync(hub, "quickbooks/invoices", page_size=40, full=True)

    assert (again.counts.created, again.counts.updated) == (0, first.counts.created)
    assert _count(hub, invoice_line) == lines and _count(hub, invoice) == first.counts.created
    local = _local(hub, "quickbooks")
    assert all(r["vendor_id"] is not None and all(li["gl_account_id"] is not None for li in r["lines"]) for r in local.values())


def test_lines_prepared_ahead_are_resolved_again_when_the_chart_changed_meanwhile(hub, monkeypatch):
    """The engine's reader thread prepares each page's lines against the chart it reads
    (`premap_invoices`); if the chart changes before the page's transaction, the writer's own
    read differs and the lines are resolved against what the transaction sees."""
    from hub.sync import invoices as inv

    _sync(hub, "quickbooks/accounts")
    _sync(hub, "quickbooks/vendors")
    with hub["engine"].connect() as conn:
        account_ids = [i for (i,) in conn.execute(sa.select(gl_account.c.id).where(gl_account.c.integration_id == hub["ids"]["quickbooks"]))]
    prepared_pages = []
    original = inv.premap_invoices

    def premap_then_map_every_account(stream, records, scope):
        page = original(stream, records, scope)
        prepared_pages.append(page)
        if len(prepared_pages) == 1:  # a user maps every account while the first page waits to be written
            with hub["engine"].begin() as conn:
                conn.execute(sa.insert(account_mapping), [
                    {"company_id": hub["company_id"], "integration_id": hub["ids"]["quickbooks"], "local_category": f"cat-{n}",
                     "gl_account_id": account_id} for n, account_id in enumerate(account_ids)])
        return page

    monkeypatch.setattr(inv.upsert_invoices, "premap", premap_then_map_every_account)
    _sync(hub, "quickbooks/invoices", page_size=40)

    assert len(prepared_pages) >= 3 and all(page.rows for page in prepared_pages)  # the reader did prepare them
    assert all(li["category"] is None for row in prepared_pages[0].rows.values() for li in row["lines"])  # before the mapping
    local = _local(hub, "quickbooks")
    mapped = {account_id: f"cat-{n}" for n, account_id in enumerate(account_ids)}
    lines = [li for r in local.values() for li in r["lines"] if li["gl_account_id"] is not None]
    assert len(lines) > 40 and all(li["category"] == mapped[li["gl_account_id"]] for li in lines)  # as the transaction saw it
    for row in local.values():
        _assert_synced_values(hub, row)


def test_hub_invoices_other_ledgers_and_duplicate_remote_numbers(hub):
    """A hub invoice (integration NULL) numbered like a remote one, and another integration's
    row with the same remote id, are neither matched nor changed; two remote invoices sharing
    a number are both imported, the later one under a number made unique."""
    engine, company_id = hub["engine"], hub["company_id"]
    with engine.begin() as conn:
        conn.execute(sa.insert(invoice), [
            {"company_id": company_id, "integration_id": None, "remote_id": None, "kind": "payable", "number": "1001",
             "issue_date": "2024-02-01", "total": 999, "status": "draft"},
            {"company_id": company_id, "integration_id": hub["ids"]["xero"], "remote_id": "1", "kind": "payable", "number": "1001",
             "issue_date": "2024-02-02", "total": 5, "status": "authorised"}])
        before = conn.execute(sa.select(invoice).order_by(invoice.c.id)).mappings().all()
    twin = hub["qbo"].state.mutate("create", "Bill", fields={"VendorRef": {"value": "1"}, "DocNumber": "1002", "Line": [
        {"Amount": 3.0, "DetailType": "AccountBasedExpenseLineDetail", "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}]})

    result = _sync(hub, "quickbooks/invoices")
    _sync(hub, "quickbooks/invoices", full=True)  # stable on a re-read: no flip-flop, no failure

    with engine.connect() as conn:
        after = conn.execute(sa.select(invoice).where(invoice.c.id.in_([r["id"] for r in before])).order_by(invoice.c.id)).mappings().all()
    assert [dict(r) for r in after] == [dict(r) for r in before]
    local = _local(hub, "quickbooks")
    assert result.counts.created == len(_qbo_remote(hub["qbo"])) == len(local)
    assert local["1"]["number"] == "1001" and local["1"]["total"] != 999
    assert local["2"]["number"] == "1002" and local[twin["Id"]]["number"] == f"1002 ({twin['Id']})"


def test_a_crash_mid_sync_then_rerun_ends_exact(hub):
    """Pages fail at random (one attempt per call); every rerun resumes after the last
    committed page, and the end state is exactly the remote invoices and lines."""
    engine, keyring, iid, qe = hub["engine"], hub["keyring"], hub["ids"]["quickbooks"], hub["qbo"]
    qe.core.faults.configure(error_rate_5xx=0.3, seed=7)
    failures = 0
    for _ in range(60):
        client = open_client(engine, keyring, iid, retry=RetrySettings(max_attempts=1))
        try:
            result = sync_stream(engine, keyring, iid, QBO, client=client, page_size=10)
            break
        except TransientProblem:
            failures += 1
        finally:
            client.transport.close()
    else:
        pytest.fail("never finished")
    qe.core.faults.reset()
    assert failures >= 1 and result.resumed_after > 0
    remote, local = _qbo_remote(qe), _local(hub, "quickbooks")
    assert set(local) == set(remote) and _count(hub, invoice) == len(remote)
    assert {rid: len(r["lines"]) for rid, r in local.items()} == {rid: len(r["Line"]) for rid, r in remote.items()}
    assert _count(hub, invoice_line) == sum(len(r["Line"]) for r in remote.values())
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(sync_log.c.status).where(sync_log.c.integration_id == iid)
                                .order_by(sync_log.c.id)).scalars().all()
    assert statuses.count("failed") == failures and statuses[-1] == "completed"


def test_a_crash_inside_a_page_leaves_none_of_it(hub):
    """The writer dies after writing the second page's headers and lines, before commit:
    none of that page is kept, and the rerun resumes there and ends exact."""
    calls = []

    def dying(conn, stream, scope, records):
        counts = XERO.upsert(conn, stream, scope, records)
        calls.append(len(records))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return counts

    engine, keyring, iid = hub["engine"], hub["keyring"], hub["ids"]["xero"]
    with pytest.raises(RuntimeError, match="killed"):
        sync_stream(engine, keyring, iid, dataclasses.replace(XERO, upsert=dying), page_size=40)
    remote = _xero_remote(hub["xero"], "ACCPAY")  # xero/invoices reads the bills
    first_page = list(remote)[:40]  # Xero's default order is creation order
    assert set(_local(hub, "xero")) == set(first_page)
    assert _count(hub, invoice_line) == sum(len(remote[rid]["LineItems"]) for rid in first_page)

    rerun = sync_stream(engine, keyring, iid, XERO, page_size=40)
    assert rerun.resumed_after == 40 and rerun.counts.created == len(remote) - 40
    assert set(_local(hub, "xero")) == set(remote)
    assert _count(hub, invoice_line) == sum(len(r["LineItems"]) for r in remote.values())


# ---- Xero -----------------------------------------------------------------------------------
def test_xero_full_then_incremental_with_status_changes(hub):
    xe = hub["xero"]
    _sync(hub, "xero/accounts")
    _sync(hub, "xero/vendors")
    _sync(hub, "xero/customers")
    codes, vendors = _ids_by_remote(hub, gl_account, "xero", key="code"), _ids_by_remote(hub, vendor, "xero")
    customers = _ids_by_remote(hub, customer, "xero")

    first = _sync(hub, "xero/invoices", page_size=50)  # bills (ACCPAY)
    first_sales = _sync(hub, "xero/sales_invoices", page_size=50)  # sales invoices (ACCREC)

    remote, local = _xero_remote(xe), _local(hub, "xero")
    assert set(local) == set(remote) and first.counts.created + first_sales.counts.created == len(remote) == 150
    assert first.counts.created == len(_xero_remote(xe, "ACCPAY")) and first_sales.counts.created == len(_xero_remote(xe, "ACCREC"))
    assert {r["status"] for r in local.values()} >= {"draft", "authorised", "paid"}
    for rid, r in remote.items():
        row = local[rid]
        assert row["status"] == r["Status"].lower() and row["number"] == r["InvoiceNumber"]
        assert row["kind"] == ("payable" if r["Type"] == "ACCPAY" else "receivable")
        assert row["vendor_id"] == (vendors[r["Contact"]["ContactID"]] if r["Type"] == "ACCPAY" else None)
        assert row["customer_id"] == (customers[r["Contact"]["ContactID"]] if r["Type"] == "ACCREC" else None)
        assert row["issue_date"] == parse_date(r["Date"]).date() and row["due_date"] == parse_date(r["DueDate"]).date()
        assert (row["subtotal"], row["tax"], row["total"]) == tuple(Decimal(str(r[k])).quantize(Decimal("0.01"))
                                                                    for k in ("SubTotal", "TotalTax", "Total"))
        assert [(li["description"], li["quantity"], li["amount"], li["gl_account_id"]) for li in row["lines"]] == \
               [(li["Description"], Decimal(str(li["Quantity"])), Decimal(str(li["LineAmount"])).quantize(Decimal("0.01")),
                 codes[li["AccountCode"]]) for li in r["LineItems"]]
        _assert_synced_values(hub, row)

    by_status = {}
    for rid, r in remote.items():
        by_status.setdefault(r["Status"], []).append(rid)
    paid, voided = by_status["AUTHORISED"][:2]
    deleted = by_status["DRAFT"][0]
    xe.state.mutate("pay", "Invoice", paid)
    xe.state.mutate("void", "Invoice", voided)
    xe.state.mutate("delete", "Invoice", deleted)

    second, second_sales = _sync(hub, "xero/invoices", page_size=50), _sync(hub, "xero/sales_invoices", page_size=50)

    assert second.mode == second_sales.mode == "incremental"
    assert (second.counts.created + second_sales.counts.created, second.counts.updated + second_sales.counts.updated,
            second.counts.deleted + second_sales.counts.deleted) == (0, 2, 1)
    assert second.api["api_calls"] <= 2 and second_sales.api["api_calls"] <= 2  # one page of changes each, not the whole list
    local = _local(hub, "xero")
    assert (local[paid]["status"], local[voided]["status"], local[deleted]["status"]) == ("paid", "voided", "deleted")
    assert local[deleted]["lines"] and local[paid]["synced_values"]["status"] == "paid"
    assert _count(hub, invoice_line) == sum(len(r["LineItems"]) for r in _xero_remote(xe).values())


# ---- local edits meet remote changes (the pull merges instead of overwriting) ------------------
def _export(hub, provider="quickbooks"):
    from hub.sync.export_invoices import export_invoices
    from tests.test_vendor_two_way import FAST

    client = open_client(hub["engine"], hub["keyring"], hub["ids"][provider], retry=FAST)
    try:
        return export_invoices(hub["engine"], hub["keyring"], hub["ids"][provider], client=client)
    finally:
        client.transport.close()


def _edit(hub, invoice_id, **values):
    with hub["engine"].begin() as conn:
        conn.execute(sa.update(invoice).where(invoice.c.id == invoice_id).values(**values))


def _open_conflicts(hub):
    with hub["engine"].connect() as conn:
        return conn.execute(sa.select(sync_conflict).where(sync_conflict.c.status == "open").order_by(sync_conflict.c.field)).mappings().all()


def test_a_local_edit_survives_a_pull_and_a_remote_payment_still_lands(hub):
    """Changed on one side each: the hub's due date is kept (and exported), QuickBooks' payment
    and delete are applied; nothing is a conflict."""
    qe = hub["qbo"]
    for stream in ("accounts", "vendors", "invoices"):
        _sync(hub, f"quickbooks/{stream}")
    remote = _qbo_remote(qe)
    paid, gone = [rid for rid, r in remote.items() if r["Balance"] > 0][:2]
    local = _local(hub, "quickbooks")
    _edit(hub, local[paid]["id"], due_date=date(2031, 1, 31))
    _edit(hub, local[gone]["id"], due_date=date(2031, 2, 28))
    qe.state.mutate("pay", "Bill", paid)
    qe.state.mutate("delete", "Bill", gone)

    pulled = _sync(hub, "quickbooks/invoices")

    assert (pulled.counts.created, pulled.counts.updated, pulled.counts.deleted, pulled.counts.conflicts) == (0, 1, 1, 0)
    after = _local(hub, "quickbooks")
    row, base = after[paid], after[paid]["synced_values"]
    assert row["due_date"] == date(2031, 1, 31) and row["status"] == "paid"  # both sides' changes
    assert base["status"] == "paid" and base["due_date"] == remote[paid]["DueDate"]  # the base is QuickBooks' bill
    assert row["remote_version"] == qe.state.read("Bill", paid)["SyncToken"]
    assert (after[gone]["status"], after[gone]["due_date"]) == ("deleted", date(2031, 2, 28))
    assert _open_conflicts(hub) == []

    exported = _export(hub)  # what is left different is the hub's due date: it goes out
    assert (exported.updated, exported.failed, exported.blocked) == (1, 0, 0)
    bill = qe.state.read("Bill", paid)
    assert bill["DueDate"] == "2031-01-31" and bill["Balance"] == 0  # still paid
    again = _sync(hub, "quickbooks/invoices")
    assert again.counts.conflicts == 0 and _local(hub, "quickbooks")[paid]["due_date"] == date(2031, 1, 31)
    assert _export(hub).updated == 0


def test_changes_on_both_sides_are_conflicts_that_hold_the_export_until_resolved(hub):
    qe = hub["qbo"]
    for stream in ("accounts", "vendors", "invoices"):
        _sync(hub, f"quickbooks/{stream}")
    remote = _qbo_remote(qe)
    relined, redated = [rid for rid, r in remote.items() if r["Balance"] > 0][:2]
    local = _local(hub, "quickbooks")
    one, other = local[relined], local[redated]
    with hub["engine"].begin() as conn:  # the hub raises line 1 by 10.00
        conn.execute(sa.update(invoice_line).where(invoice_line.c.invoice_id == one["id"], invoice_line.c.line_no == 1)
                     .values(amount=invoice_line.c.amount + 10, unit_amount=invoice_line.c.amount + 10))
    _edit(hub, one["id"], subtotal=one["subtotal"] + 10, total=one["total"] + 10)
    _edit(hub, other["id"], due_date=date(2031, 3, 31))
    qe.state.mutate("update", "Bill", relined, {"Line": [{
        "Amount": 12.5, "Description": "Replaced", "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "5"}}}]})
    qe.state.mutate("update", "Bill", redated, {"DueDate": "2032-01-01"})
    tokens = {rid: qe.state.read("Bill", rid)["SyncToken"] for rid in (relined, redated)}

    pulled = _sync(hub, "quickbooks/invoices")

    assert pulled.counts.conflicts == 4
    conflicts = _open_conflicts(hub)
    assert [(c["local_id"], c["field"]) for c in conflicts] == [
        (other["id"], "due_date"), (one["id"], "lines"), (one["id"], "subtotal"), (one["id"], "total")]
    lines = next(c for c in conflicts if c["field"] == "lines")
    assert [li["description"] for li in lines["remote_value"]] == ["Replaced"]
    assert lines["local_value"][0]["amount"] == float(one["lines"][0]["amount"] + 10)
    after = _local(hub, "quickbooks")  # nothing local was overwritten
    assert after[relined]["total"] == one["total"] + 10 and after[relined]["lines"][0]["amount"] == one["lines"][0]["amount"] + 10
    assert after[redated]["due_date"] == date(2031, 3, 31)

    held = _export(hub)
    assert (held.blocked, held.updated) == (2, 0)
    assert "open sync conflicts (lines, subtotal, total)" in after_error(hub, one["id"])
    assert {rid: qe.state.read("Bill", rid)["SyncToken"] for rid in (relined, redated)} == tokens  # nothing was sent

    with hub["engine"].begin() as conn:  # QuickBooks' lines and totals; the hub's due date
        resolve_conflict(conn, lines["id"], "remote")  # the one entry point (`hub conflicts resolve`) settles lines too
        for c in conflicts:
            if c["field"] in ("subtotal", "total"):
                resolve_conflict(conn, c["id"], "remote")
            elif c["field"] == "due_date":
                resolve_conflict(conn, c["id"], "local")
    assert _open_conflicts(hub) == []
    after = _local(hub, "quickbooks")
    assert [(li["description"], li["amount"]) for li in after[relined]["lines"]] == [("Replaced", Decimal("12.50"))]
    assert after[relined]["total"] == Decimal("12.50")

    sent = _export(hub)
    assert (sent.updated, sent.blocked, sent.failed) == (1, 0, 0)  # only the due date was left to send
    assert qe.state.read("Bill", redated)["DueDate"] == "2031-03-31"
    assert qe.state.read("Bill", relined)["SyncToken"] == tokens[relined]


def after_error(hub, invoice_id):
    with hub["engine"].connect() as conn:
        return conn.scalar(sa.select(invoice.c.sync_error).where(invoice.c.id == invoice_id))
