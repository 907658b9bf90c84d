"""The QuickBooks sync job end to end, as the nightly schedule or "sync now" runs it: every
asset of one integration (imports, data-quality checks, exports, reconciliation) in one
Dagster run on a Postgres-backed instance, against the QuickBooks emulator over real HTTP."""

from datetime import date

import dagster as dg
import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.schema import invoice, invoice_line, sync_log, vendor
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from pipelines.definitions import defs
from tests.providers.conftest import qbo_rows

REALM = "9130350000000099"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}


@pytest.fixture
def books(clean_db, secret_keys, dagster_instance):
    """One company on the QuickBooks emulator with its chart imported and two categories
    mapped, plus a second company whose grant was revoked."""
    keyring = Keyring(secret_keys)
    emulator = quickbooks_emulator(vendors=6, bills=8, invoices=3, accounts=15, realm_id=REALM, seed=11)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        with clean_db.begin() as conn:
            acme = store.create_company(conn, "Acme")
            good = store.add_integration(conn, keyring, company_id=acme, provider="quickbooks", config=config, credentials={
                **CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})}, active=True)
            bella = store.create_company(conn, "Bella")
            broken = store.add_integration(conn, keyring, company_id=bella, provider="quickbooks", config=config,
                                           credentials={**CLIENT, "refresh_token": "revoked-long-ago"}, active=True)
        sync_stream(clean_db, keyring, good, registry.stream("quickbooks/accounts"))
        accounts = qbo_rows(emulator, "Account")
        expense = [a for a in accounts.values() if a.get("AccountType") in ("Expense", "Cost of Goods Sold")]
        with clean_db.begin() as conn:
            set_mapping(conn, good, "Produce", expense[0]["Id"])
            new_vendor = conn.scalar(sa.insert(vendor).values(company_id=acme, display_name="Hub Fresh Farms",
                                                              email="orders@freshfarms.test").returning(vendor.c.id))
        keys = {"good": f"quickbooks-{good}", "broken": f"quickbooks-{broken}"}
        dagster_instance.add_dynamic_partitions("quickbooks_integrations", list(keys.values()))
        yield {"engine": clean_db, "keyring": keyring, "emulator": emulator, "good": good, "acme": acme,
               "vendor": new_vendor, "keys": keys, "instance": dagster_instance}


def _bill(engine, company_id, vendor_id, number, lines, total=None):
    subtotal = sum(amount for _, amount in lines)
    with engine.begin() as conn:
        invoice_id = conn.scalar(sa.insert(invoice).values(
            company_id=company_id, vendor_id=vendor_id, number=number, issue_date=date(2026, 11, 1),
            subtotal=subtotal, tax=0, total=subtotal if total is None else total, status="authorised").returning(invoice.c.id))
        conn.execute(sa.insert(invoice_line), [
            {"invoice_id": invoice_id, "line_no": n, "category": category, "quantity": 1, "unit_amount": amount, "amount": amount}
            for n, (category, amount) in enumerate(lines, 1)])
    return invoice_id


def _run(books, which: str):
    job = defs.resolve_job_def("quickbooks_sync_job")
    return job.execute_in_process(partition_key=books["keys"][which], instance=books["instance"], raise_on_error=False)


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _remote_bills(emulator) -> dict[str, dict]:
    found = emulator.state.query("SELECT * FROM Bill STARTPOSITION 1 MAXRESULTS 1000").get("Bill", [])
    return {r.get("DocNumber"): r for r in found}


def test_one_run_imports_checks_and_exports(books):
    engine, emulator = books["engine"], books["emulator"]
    mapped = _bill(engine, books["acme"], books["vendor"], "HUB-1", [("Produce", 120.0), ("Produce", 30.5)])
    unmapped = _bill(engine, books["acme"], books["vendor"], "HUB-2", [("Plumbing", 80.0)])

    result = _run(books, "good")
    assert result.success
    assert _materialized(result) == {
        "quickbooks/accounts", "quickbooks/vendors", "quickbooks/invoices", "quickbooks/vendor_export",
        "quickbooks/invoice_export", "quickbooks/reconciliation", "quickbooks/customers", "quickbooks/sales_invoices",
        "quickbooks/customer_export", "quickbooks/sales_invoice_export"}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["invoice_totals_match_lines"] and checks["vendor_names_valid"]
    assert checks["invoice_lines_mapped"] is False  # HUB-2 is visible as unmapped, and held back below

    # the hub's vendor now exists in QuickBooks, and the mapped bill with it, on the mapped account
    remote_vendors = {v["DisplayName"]: v for v in qbo_rows(emulator, "Vendor").values()}
    assert "Hub Fresh Farms" in remote_vendors
    bills = _remote_bills(emulator)
    assert bills["HUB-1"]["VendorRef"]["value"] == remote_vendors["Hub Fresh Farms"]["Id"]
    assert float(bills["HUB-1"]["TotalAmt"]) == 150.5 and "HUB-2" not in bills
    with engine.connect() as conn:
        held = conn.execute(sa.select(invoice.c.remote_id, invoice.c.sync_error).where(invoice.c.id == unmapped)).one()
        done = conn.execute(sa.select(invoice.c.remote_id, invoice.c.sync_error).where(invoice.c.id == mapped)).one()
        actions = set(conn.execute(sa.select(sync_log.c.action).where(sync_log.c.dagster_run_id == result.run_id)).scalars())
    assert held.remote_id is None and "Plumbing" in held.sync_error
    assert done.remote_id == bills["HUB-1"]["Id"] and done.sync_error is None
    assert {"import_accounts", "import_vendors", "import_invoices", "reconcile_invoices", "check_invoice_totals_match_lines"} <= actions

    # a second run sends nothing new: the ledger and the merge base say everything is in sync
    again = _run(books, "good")
    assert again.success and len(_remote_bills(emulator)) == len(bills)
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in again.get_asset_materialization_events()}
    assert metadata["quickbooks/vendor_export"]["created"].value == 0
    assert metadata["quickbooks/invoice_export"]["created"].value == 0


def test_a_failing_blocking_check_stops_the_export(books):
    engine, emulator = books["engine"], books["emulator"]
    _bill(engine, books["acme"], books["vendor"], "HUB-9", [("Produce", 100.0)], total=99.0)  # lines do not add up
    before = set(_remote_bills(emulator))

    result = _run(books, "good")
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "invoice_totals_match_lines" in failed
    assert "quickbooks/invoices" in _materialized(result)
    assert "quickbooks/invoice_export" not in _materialized(result)
    assert set(_remote_bills(emulator)) == before  # nothing reached the ledger


def test_a_failing_integration_leaves_the_others_green(books):
    broken = _run(books, "broken")
    assert not broken.success
    good = _run(books, "good")
    assert good.success
    instance = books["instance"]
    key = dg.AssetKey(["quickbooks", "vendors"])
    status = instance.get_status_by_partition(key, list(books["keys"].values()), defs.resolve_assets_def(key).partitions_def)
    assert status[books["keys"]["good"]] == dg.AssetPartitionStatus.MATERIALIZED
    assert status[books["keys"]["broken"]] == dg.AssetPartitionStatus.FAILED
