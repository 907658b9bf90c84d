"""Nightly reconciliation: remote deletes that no incremental read reported are found by
comparing id sets, over real HTTP to the QuickBooks emulator and real PostgreSQL; a remote
that looks wrongly empty is refused."""

import time

import dagster as dg
import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.schema import invoice, sync_log, sync_write, vendor
from hub.sync.engine import sync_stream
from hub.sync.export_vendors import export_vendors
from hub.sync.reconcile import ReconciliationRefused, reconcile_stream

REALM, TENANT = "9130350000000088", "a3b1c5d7-0000-4000-8000-000000000088"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
INVOICES = registry.stream("quickbooks/invoices")


@pytest.fixture
def qbo(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    emulator = quickbooks_emulator(vendors=5, bills=30, invoices=3, accounts=10, realm_id=REALM, seed=8)
    with serve(emulator.app) as url:
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Acme")
            integration_id = store.add_integration(
                conn, keyring, company_id=company_id, provider="quickbooks",
                config={"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"},
                credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})}, active=True)
        yield clean_db, keyring, integration_id, emulator


def _statuses(engine, integration_id) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(invoice.c.remote_id, invoice.c.status).where(invoice.c.integration_id == integration_id)).all())


def _reconcile(engine, keyring, integration_id, **kwargs):
    client = open_client(engine, keyring, integration_id)
    try:
        return reconcile_stream(engine, keyring, integration_id, INVOICES, client=client, **kwargs)
    finally:
        client.transport.close()


def test_a_delete_no_change_feed_reported_is_found(qbo):
    engine, keyring, integration_id, emulator = qbo
    sync_stream(engine, keyring, integration_id, INVOICES)
    before = _statuses(engine, integration_id)
    # deleted on the remote while the hub was not listening: the next incremental read
    # would list it, but a CDC window that has passed never will; reconciliation does not
    # depend on either
    emulator.state.mutate("delete", "Bill", "4")
    result = _reconcile(engine, keyring, integration_id, run_id="run-r")
    assert (result.remote, result.local, result.marked_deleted, result.missing_locally) == (len(before) - 1, len(before), 1, 0)
    after = _statuses(engine, integration_id)
    assert after["4"] == "deleted" and {k: v for k, v in after.items() if k != "4"} == {k: v for k, v in before.items() if k != "4"}
    with engine.connect() as conn:
        log = conn.execute(sa.select(sync_log).where(sync_log.c.id == result.sync_log_id)).mappings().one()
    assert (log["sync_type"], log["action"], log["status"], log["dagster_run_id"]) == ("reconcile", "reconcile_invoices", "completed", "run-r")
    assert log["details"]["result"]["marked_deleted"] == 1
    assert _reconcile(engine, keyring, integration_id).marked_deleted == 0  # nothing twice


def test_a_remote_that_would_delete_most_rows_is_refused(qbo):
    engine, keyring, integration_id, emulator = qbo
    sync_stream(engine, keyring, integration_id, INVOICES)
    for remote_id in map(str, range(1, 21)):
        emulator.state.mutate("delete", "Bill", remote_id)
    with pytest.raises(ReconciliationRefused, match="would be marked deleted; refusing"):
        _reconcile(engine, keyring, integration_id)
    assert "deleted" not in _statuses(engine, integration_id).values()  # nothing changed
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sync_log.c.status).where(sync_log.c.action == "reconcile_invoices")) == "failed"
    assert _reconcile(engine, keyring, integration_id, force=True).marked_deleted == 20


def test_the_reconciliation_asset_runs_every_enabled_stream(qbo, dagster_instance):
    from pipelines.assets.sync import RECONCILIATION_ASSETS
    from pipelines.definitions import RESOURCES

    engine, keyring, integration_id, emulator = qbo
    sync_stream(engine, keyring, integration_id, INVOICES)
    emulator.state.mutate("delete", "Bill", "2")
    key = f"quickbooks-{integration_id}"
    dagster_instance.add_dynamic_partitions("quickbooks_integrations", [key])
    (asset,) = [a for a in RECONCILIATION_ASSETS if a.key == dg.AssetKey(["quickbooks", "reconciliation"])]
    result = dg.materialize([asset], partition_key=key, instance=dagster_instance,
                            resources=RESOURCES)
    metadata = result.asset_materializations_for_node("quickbooks__reconciliation")[0].metadata
    assert metadata["invoices_marked_deleted"].value == 1
    assert metadata["vendors_marked_deleted"].value == 0 and metadata["accounts_marked_deleted"].value == 0
    assert _statuses(engine, integration_id)["2"] == "deleted"


# ---- vendors: the delete goes through the stream's own path; Xero's supplier flag ----------------
def _reconcile_stream(engine, keyring, integration_id, key):
    client = open_client(engine, keyring, integration_id)
    try:
        return reconcile_stream(engine, keyring, integration_id, registry.stream(key), client=client)
    finally:
        client.transport.close()


def _vendor(engine, vendor_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(vendor).where(vendor.c.id == vendor_id)).mappings().one()


def test_a_vendor_gone_from_quickbooks_is_marked_inactive_and_not_sent_back(qbo):
    """A vendor merged away in QuickBooks (the merge deletes it) is marked inactive with its
    merge base, so the export does not take the change for a local edit and send it back."""
    engine, keyring, integration_id, emulator = qbo
    sync_stream(engine, keyring, integration_id, registry.stream("quickbooks/vendors"))
    with engine.begin() as conn:  # its remote record no longer exists
        gone = conn.scalar(sa.update(vendor).where(vendor.c.integration_id == integration_id, vendor.c.remote_id == "3")
                           .values(remote_id="9999").returning(vendor.c.id))
    result = _reconcile_stream(engine, keyring, integration_id, "quickbooks/vendors")
    assert (result.marked_deleted, result.missing_locally) == (1, 1)  # vendor 3 is the next full read's
    row = _vendor(engine, gone)
    assert row["is_active"] is False and row["synced_values"]["is_active"] is False
    client = open_client(engine, keyring, integration_id)
    try:
        exported = export_vendors(engine, keyring, integration_id, client=client)
    finally:
        client.transport.close()
    assert (exported.updated, exported.failed, exported.created) == (0, 0, 0)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(sync_write)) == 0  # nothing was sent


@pytest.fixture
def xero(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    emulator = xero_emulator(contacts=8, invoices=6, accounts=18, seed=8, tenant_id=TENANT)
    with serve(emulator.app) as url:
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Acme")
            integration_id = store.add_integration(
                conn, keyring, company_id=company_id, provider="xero",
                config={"tenant_id": TENANT, "base_url": url, "token_url": url + "/connect/token"},
                credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"tenantId": TENANT})}, active=True)
        yield clean_db, keyring, integration_id, company_id, emulator


def test_a_xero_contact_the_hub_created_is_not_marked_deleted_nor_archived(xero):
    """Xero flags a contact as supplier only once it has a bill, so the supplier read does not
    list a contact the export just created; reconciliation compares against all contacts."""
    engine, keyring, integration_id, company_id, emulator = xero
    sync_stream(engine, keyring, integration_id, registry.stream("xero/vendors"))
    with engine.begin() as conn:
        new = conn.scalar(sa.insert(vendor).values(company_id=company_id, display_name="Brand New Supplier Ltd")
                          .returning(vendor.c.id))
    client = open_client(engine, keyring, integration_id)
    try:
        assert export_vendors(engine, keyring, integration_id, client=client).created == 1
        contact_id = _vendor(engine, new)["remote_id"]
        assert emulator.state.contacts[contact_id.lower()]["IsSupplier"] is False
        result = reconcile_stream(engine, keyring, integration_id, registry.stream("xero/vendors"), client=client)
        assert result.marked_deleted == 0 and _vendor(engine, new)["is_active"] is True
        again = export_vendors(engine, keyring, integration_id, client=client)
    finally:
        client.transport.close()
    assert (again.updated, again.failed) == (0, 0)
    assert emulator.state.contacts[contact_id.lower()]["ContactStatus"] == "ACTIVE"


def test_a_xero_contact_turned_supplier_by_its_first_bill_is_imported(xero):
    """The first bill of a contact sets IsSupplier without changing its UpdatedDateUTC, so the
    incremental supplier read never returns it; the nightly reconciliation imports it."""
    engine, keyring, integration_id, company_id, emulator = xero
    sync_stream(engine, keyring, integration_id, registry.stream("xero/vendors"))
    contact = next(c for c in emulator.state.contacts.values() if not c["IsSupplier"])
    code = next(a["Code"] for a in emulator.state.accounts.values() if a["Class"] == "EXPENSE")
    emulator.state.mutate("create", "Invoice", fields={
        "Type": "ACCPAY", "Contact": {"ContactID": contact["ContactID"]}, "InvoiceNumber": "FIRST-1", "Date": "2026-03-01",
        "Status": "AUTHORISED", "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": code}]})
    assert emulator.state.contacts[contact["ContactID"]]["IsSupplier"] is True
    time.sleep(1.1)  # If-Modified-Since has whole seconds
    assert sync_stream(engine, keyring, integration_id, registry.stream("xero/vendors")).counts.created == 0  # the gap
    result = _reconcile_stream(engine, keyring, integration_id, "xero/vendors")
    assert (result.missing_locally, result.imported, result.marked_deleted) == (1, 1, 0)
    with engine.connect() as conn:
        row = conn.execute(sa.select(vendor).where(vendor.c.remote_id == contact["ContactID"])).mappings().one()
    assert (row["integration_id"], row["display_name"], row["is_active"]) == (integration_id, contact["Name"], True)
    assert _reconcile_stream(engine, keyring, integration_id, "xero/vendors").imported == 0  # once
