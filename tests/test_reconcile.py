"""Nightly reconciliation: remote deletes that no incremental read reported are found by
comparing id sets, over real HTTP to the QuickBooks emulator and real PostgreSQL; a remote
that looks wrongly empty is refused."""

import dagster as dg
import pytest
import sqlalchemy as sa

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.providers.connect import open_client
from hub.schema import invoice, sync_log
from hub.sync.engine import sync_stream
from hub.sync.reconcile import ReconciliationRefused, reconcile_stream
from hub.sync.streams import BY_KEY

REALM = "9130350000000088"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
INVOICES = BY_KEY["quickbooks/invoices"]


@pytest.fixture
def qbo(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    emulator = quickbooks_emulator(vendors=5, invoices=30, accounts=10, realm_id=REALM, seed=8)
    with serve(emulator.app) as url:
        with clean_db.begin() as conn:
            company_id = store.create_company(conn, "Acme")
            integration_id = store.add_integration(
                conn, keyring, company_id=company_id, provider="quickbooks",
                config={"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"},
                credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})})
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
    emulator.state.mutate("delete", "Invoice", "4")
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
        emulator.state.mutate("delete", "Invoice", remote_id)
    with pytest.raises(ReconciliationRefused, match="would be marked deleted; refusing"):
        _reconcile(engine, keyring, integration_id)
    assert "deleted" not in _statuses(engine, integration_id).values()  # nothing changed
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sync_log.c.status).where(sync_log.c.action == "reconcile_invoices")) == "failed"
    assert _reconcile(engine, keyring, integration_id, force=True).marked_deleted == 20


def test_the_reconciliation_asset_runs_every_enabled_stream(qbo, dagster_instance):
    from pipelines.assets.sync import RECONCILIATION_ASSETS
    from resources import HubDatabase, SecretStore

    engine, keyring, integration_id, emulator = qbo
    sync_stream(engine, keyring, integration_id, INVOICES)
    emulator.state.mutate("delete", "Invoice", "2")
    key = f"quickbooks-{integration_id}"
    dagster_instance.add_dynamic_partitions("quickbooks_integrations", [key])
    (asset,) = [a for a in RECONCILIATION_ASSETS if a.key == dg.AssetKey(["quickbooks", "reconciliation"])]
    result = dg.materialize([asset], partition_key=key, instance=dagster_instance,
                            resources={"hub_db": HubDatabase(), "secrets": SecretStore()})
    metadata = result.asset_materializations_for_node("quickbooks__reconciliation")[0].metadata
    assert metadata["invoices_marked_deleted"].value == 1
    assert metadata["vendors_marked_deleted"].value == 0 and metadata["accounts_marked_deleted"].value == 0
    assert _statuses(engine, integration_id)["2"] == "deleted"
