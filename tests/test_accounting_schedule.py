"""The nightly accounting schedule: one run per active accounting integration at its
company's local sync hour, with a run key that makes a re-evaluated tick harmless."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from hub import integrations as store
from hub.crypto import Keyring
from pipelines.definitions import defs
from pipelines.schedules import accounting_nightly_schedule
from resources import HubDatabase

OAUTH = {"client_id": "c", "client_secret": "s", "refresh_token": "r"}


@pytest.fixture
def companies(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        ny = store.create_company(conn, "Acme", "America/New_York")
        chi = store.create_company(conn, "Bella", "America/Chicago")
        ids = {
            "acme_qb": store.add_integration(conn, keyring, company_id=ny, provider="quickbooks", config={"realm_id": "1"}, credentials=OAUTH),
            "bella_xero": store.add_integration(conn, keyring, company_id=chi, provider="xero", config={"tenant_id": "t"}, credentials=OAUTH),
            "bella_xero_late": store.add_integration(conn, keyring, company_id=chi, provider="xero", name="Xero late",
                                                     config={"tenant_id": "t2", "sync_hour": 4}, credentials=OAUTH),
            "acme_slack": store.add_integration(conn, keyring, company_id=ny, provider="slack", config={"default_channel": "#x"},
                                                credentials={"bot_token": "b", "signing_secret": "s"}),
        }
        disabled = store.add_integration(conn, keyring, company_id=ny, provider="xero", name="Old Xero", config={"tenant_id": "t3"}, credentials=OAUTH)
        store.set_active(conn, disabled, False)
    return ids


def _tick(instance, when: datetime):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources={"hub_db": HubDatabase()})
    return accounting_nightly_schedule(context)


def test_each_company_syncs_at_its_own_two_oclock(companies, dagster_instance):
    # 07:00 UTC in November is 02:00 in New York, 01:00 in Chicago
    requests = _tick(dagster_instance, datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc))
    assert [(r.partition_key, r.run_key) for r in requests] == [(f"quickbooks-{companies['acme_qb']}", f"quickbooks-{companies['acme_qb']}:2026-11-23")]
    chicago = _tick(dagster_instance, datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))
    assert [r.partition_key for r in chicago] == [f"xero-{companies['bella_xero']}"]
    late = _tick(dagster_instance, datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))  # 04:00 in Chicago
    assert [r.partition_key for r in late] == [f"xero-{companies['bella_xero_late']}"]


def test_no_accounting_integration_due_is_a_skip(companies, dagster_instance):
    result = _tick(dagster_instance, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc))
    assert isinstance(result, dg.SkipReason)


def test_the_schedule_targets_the_accounting_sync_job():
    job = defs.resolve_job_def("accounting_sync_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"quickbooks/vendors", "quickbooks/accounts", "xero/vendors", "xero/accounts"} <= keys
