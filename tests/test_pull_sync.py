"""Pull sync of accounting streams against the emulators, on real PostgreSQL."""

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
from hub.schema import gl_account, sync_log, vendor
from hub.sync.engine import sync_stream
from hub.sync.pages import split_page
from tests.providers.conftest import qbo_rows

REALM, TENANT = "9130350000000001", "a3b1c5d7-0000-4000-8000-000000000001"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}


@pytest.fixture(scope="module")
def qbo():
    emulator = quickbooks_emulator(vendors=1200, invoices=5, accounts=30)
    with serve(emulator.app) as url:
        yield emulator, url


@pytest.fixture(scope="module")
def xero():
    emulator = xero_emulator(contacts=400, invoices=300, accounts=25)
    with serve(emulator.app) as url:
        yield emulator, url


@pytest.fixture
def connected(clean_db, secret_keys, qbo, xero):
    keyring = Keyring(secret_keys)
    (qe, qurl), (xe, xurl) = qbo, xero
    qe.core.faults.reset()
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        ids = {
            "quickbooks": store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks",
                                                config={"realm_id": REALM, "base_url": qurl, "token_url": qurl + "/oauth2/v1/tokens/bearer"},
                                                credentials={**CLIENT, "refresh_token": qe.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})}, active=True),
            "xero": store.add_integration(conn, keyring, company_id=company_id, provider="xero",
                                          config={"tenant_id": TENANT, "base_url": xurl, "token_url": xurl + "/connect/token"},
                                          credentials={**CLIENT, "refresh_token": xe.core.oauth.issue_refresh_token("hub-demo", {"tenantId": TENANT})}, active=True),
        }
    return clean_db, keyring, ids


def _local(engine, table, integration_id) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.integration_id == integration_id)).mappings().all()
    return {r["remote_id"]: dict(r) for r in rows}


def test_quickbooks_full_then_incremental(connected, qbo):
    engine, keyring, ids = connected
    emulator, _ = qbo
    stream = registry.stream("quickbooks/vendors")
    emulator.state.mutate("deactivate", "Vendor", "3")
    first = sync_stream(engine, keyring, ids["quickbooks"], stream, page_size=250)
    remote = qbo_rows(emulator, "Vendor")
    local = _local(engine, vendor, ids["quickbooks"])
    assert (first.mode, first.counts.created, first.counts.updated, first.pages) == ("full", len(remote), 0, 5)
    assert set(local) == set(remote)
    assert local["3"]["is_active"] is False and local["4"]["is_active"] is True
    assert local["5"]["remote_version"] == remote["5"]["SyncToken"]

    emulator.state.mutate("update", "Vendor", "10", {"CompanyName": "Renamed Supply Co"})
    new = emulator.state.mutate("create", "Vendor", fields={"DisplayName": "Brand New Supplier"})
    second = sync_stream(engine, keyring, ids["quickbooks"], stream)
    # the window restarts at the second the last pull started (an overlap, harmless: upserts
    # are idempotent), so a change made in that same second may be read again
    assert second.mode == "incremental" and second.counts.created == 1 and 1 <= second.counts.updated <= 2
    assert second.api["api_calls"] <= 2  # CDC, not a full read
    local = _local(engine, vendor, ids["quickbooks"])
    assert local["10"]["legal_name"] == "Renamed Supply Co" and local[new["Id"]]["display_name"] == "Brand New Supplier"
    with engine.connect() as conn:
        logs = conn.execute(sa.select(sync_log.c.sync_type, sync_log.c.status, sync_log.c.records_processed)
                            .where(sync_log.c.integration_id == ids["quickbooks"]).order_by(sync_log.c.id)).all()
    assert logs[0] == ("full", "completed", len(remote)) and logs[1][:2] == ("incremental", "completed")


def test_quickbooks_accounts(connected, qbo):
    engine, keyring, ids = connected
    emulator, _ = qbo
    result = sync_stream(engine, keyring, ids["quickbooks"], registry.stream("quickbooks/accounts"))
    assert result.counts.created == len(qbo_rows(emulator, "Account")) == len(_local(engine, gl_account, ids["quickbooks"]))


def test_a_crash_mid_sync_then_rerun_ends_exact(connected, qbo):
    """Pages fail at random (the client gives up after one attempt); each rerun resumes after
    the last committed page; the end state is exactly the remote set, with no duplicates."""
    engine, keyring, ids = connected
    emulator, _ = qbo
    stream = registry.stream("quickbooks/vendors")
    emulator.core.faults.configure(error_rate_5xx=0.35, seed=21)
    failures = 0
    for _ in range(40):
        client = open_client(engine, keyring, ids["quickbooks"], retry=RetrySettings(max_attempts=1))
        try:
            result = sync_stream(engine, keyring, ids["quickbooks"], stream, client=client, page_size=100)
            break
        except TransientProblem:
            failures += 1
        finally:
            client.transport.close()
    else:
        pytest.fail("never finished")
    emulator.core.faults.reset()
    assert failures >= 1 and result.resumed_after > 0  # it did die mid-way, and the last run resumed
    remote, local = qbo_rows(emulator, "Vendor"), _local(engine, vendor, ids["quickbooks"])
    assert set(local) == set(remote)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(vendor)) == len(remote)  # no duplicates
        statuses = conn.execute(sa.select(sync_log.c.status).where(sync_log.c.integration_id == ids["quickbooks"])
                                .order_by(sync_log.c.id)).scalars().all()
    assert statuses.count("failed") == failures and statuses[-1] == "completed"


def test_xero_suppliers_full_then_if_modified_since(connected, xero):
    engine, keyring, ids = connected
    emulator, _ = xero
    stream = registry.stream("xero/vendors")
    first = sync_stream(engine, keyring, ids["xero"], stream, page_size=50)
    suppliers = {c["ContactID"] for c in emulator.state.contacts.values() if c.get("IsSupplier")}
    assert suppliers and set(_local(engine, vendor, ids["xero"])) == suppliers
    assert first.counts.created == len(suppliers)
    some = sorted(suppliers)[0]
    emulator.state.mutate("archive", "Contact", some)
    second = sync_stream(engine, keyring, ids["xero"], stream, page_size=50)
    assert second.mode == "incremental" and second.counts.updated == 1 and second.counts.created == 0
    assert _local(engine, vendor, ids["xero"])[some]["is_active"] is False


def test_xero_accounts(connected, xero):
    engine, keyring, ids = connected
    emulator, _ = xero
    result = sync_stream(engine, keyring, ids["xero"], registry.stream("xero/accounts"))
    assert result.counts.created == len(_local(engine, gl_account, ids["xero"])) > 0


def test_wrong_provider_for_the_stream_is_refused(connected):
    engine, keyring, ids = connected
    with pytest.raises(Exception, match="is xero, not quickbooks"):
        sync_stream(engine, keyring, ids["xero"], registry.stream("quickbooks/vendors"))


def test_sync_assets_materialize_per_integration_partition(connected, dagster_instance):
    import dagster as dg

    from pipelines.assets.sync import SYNC_ASSETS
    from hub.sync import preferences
    from pipelines.definitions import RESOURCES

    engine, keyring, ids = connected
    by_key = {a.key.to_user_string(): a for a in SYNC_ASSETS}
    assert set(by_key) >= {"quickbooks/vendors", "quickbooks/accounts", "xero/vendors", "xero/accounts"}
    qb_key, xero_key = f"quickbooks-{ids['quickbooks']}", f"xero-{ids['xero']}"
    dagster_instance.add_dynamic_partitions("quickbooks_integrations", [qb_key])
    dagster_instance.add_dynamic_partitions("xero_integrations", [xero_key])
    resources = RESOURCES
    result = dg.materialize([by_key["quickbooks/accounts"]], partition_key=qb_key, instance=dagster_instance, resources=resources)
    metadata = result.asset_materializations_for_node("quickbooks__accounts")[0].metadata
    assert metadata["created"].value == len(_local(engine, gl_account, ids["quickbooks"])) > 0
    assert metadata["mode"].value == "full" and metadata["api_calls"].value >= 1
    with engine.connect() as conn:
        run_ids = conn.execute(sa.select(sync_log.c.dagster_run_id).where(sync_log.c.integration_id == ids["quickbooks"])).scalars().all()
    assert run_ids == [result.run_id]
    # a QuickBooks asset has no partition for a Xero integration
    with pytest.raises(dg.DagsterUnknownPartitionError):
        dg.materialize([by_key["quickbooks/accounts"]], partition_key=xero_key, instance=dagster_instance, resources=resources)
    # a stream switched off in the integration's preferences is a no-op that says so
    with engine.begin() as conn:
        preferences.update(conn, keyring, ids["xero"], stream="accounts", enabled=False)
    off = dg.materialize([by_key["xero/accounts"]], partition_key=xero_key, instance=dagster_instance, resources=resources)
    assert "switched off" in off.asset_materializations_for_node("xero__accounts")[0].metadata["skipped"].value
    assert _local(engine, gl_account, ids["xero"]) == {}


def test_a_page_listing_a_record_twice_keeps_its_last_state():
    """Every page writer splits a page with pages.split_page: the last occurrence wins."""
    stream = registry.stream("quickbooks/invoices")
    live, gone = split_page(stream, [{"Id": 1, "n": "a"}, {"Id": 1, "status": "Deleted"},
                                     {"Id": 2, "status": "Deleted"}, {"Id": 2, "n": "b"}, {"Id": 3, "n": "c"}, {"Id": 3, "n": "d"}])
    assert (live, gone) == ({"2": {"Id": 2, "n": "b"}, "3": {"Id": 3, "n": "d"}}, {"1"})
