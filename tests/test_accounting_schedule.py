"""Sync schedules: nightly accounting runs (one per active integration at its company's local
sync hour, with a run key that makes a re-evaluated tick harmless) and hourly Procore runs."""

from datetime import datetime, timezone

import dagster as dg
import pytest

from hub import integrations as store
from hub.crypto import Keyring
from pipelines.definitions import defs
from hub.sync import preferences
from pipelines.schedules import SYNC_SCHEDULES
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
                                                     config={"tenant_id": "t2", "sync": {"hour": 4}}, credentials=OAUTH),
            "acme_slack": store.add_integration(conn, keyring, company_id=ny, provider="slack", config={"default_channel": "#x"},
                                                credentials={"bot_token": "b", "signing_secret": "s"}),
        }
        ids["procore"] = store.add_integration(conn, keyring, company_id=ny, provider="procore", config={"company_id": "9"}, credentials=OAUTH)
        ids["procore_off"] = store.add_integration(conn, keyring, company_id=chi, provider="procore", name="Procore off",
                                                   config={"company_id": "10"}, credentials=OAUTH)
        for stream in preferences.stream_directions("procore"):
            preferences.update(conn, keyring, ids["procore_off"], stream=stream, enabled=False)
        disabled = store.add_integration(conn, keyring, company_id=ny, provider="xero", name="Old Xero", config={"tenant_id": "t3"}, credentials=OAUTH)
        store.set_active(conn, disabled, False)
    return ids


SCHEDULES = {s.name: s for s in SYNC_SCHEDULES}


def _tick(instance, when: datetime, name: str):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources={"hub_db": HubDatabase()})
    result = SCHEDULES[name](context)
    return result if isinstance(result, dg.SkipReason) else list(result)


def _keys(result) -> list[str]:
    return [] if isinstance(result, dg.SkipReason) else [r.partition_key for r in result]


def test_each_company_syncs_at_its_own_two_oclock(companies, dagster_instance):
    # 07:00 UTC in November is 02:00 in New York, 01:00 in Chicago
    at_seven = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
    requests = _tick(dagster_instance, at_seven, "quickbooks_nightly_schedule")
    assert [(r.partition_key, r.run_key) for r in requests] == [(f"quickbooks-{companies['acme_qb']}", f"quickbooks-{companies['acme_qb']}:2026-11-23")]
    assert isinstance(_tick(dagster_instance, at_seven, "xero_nightly_schedule"), dg.SkipReason)
    chicago = _tick(dagster_instance, datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc), "xero_nightly_schedule")
    assert _keys(chicago) == [f"xero-{companies['bella_xero']}"]
    late = _tick(dagster_instance, datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), "xero_nightly_schedule")  # 04:00 in Chicago
    assert _keys(late) == [f"xero-{companies['bella_xero_late']}"]


def test_the_hour_set_through_preferences_moves_the_run(companies, secret_keys, clean_db, dagster_instance):
    with clean_db.begin() as conn:
        preferences.update(conn, Keyring(secret_keys), companies["acme_qb"], hour=23)
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")) == []
    # 23:00 in New York on the 23rd is 04:00 UTC on the 24th
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")) == [
        f"quickbooks-{companies['acme_qb']}"]


def test_no_accounting_integration_due_is_a_skip(companies, dagster_instance):
    result = _tick(dagster_instance, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")
    assert isinstance(result, dg.SkipReason)


def test_procore_runs_hourly_for_integrations_with_streams_on(companies, dagster_instance):
    requests = _tick(dagster_instance, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc), "procore_hourly_schedule")
    assert [(r.partition_key, r.run_key) for r in requests] == [
        (f"procore-{companies['procore']}", f"procore-{companies['procore']}:2026-11-23T15")]


def test_each_sync_job_selects_only_its_providers_assets():
    job = defs.resolve_job_def("quickbooks_sync_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"quickbooks/vendors", "quickbooks/accounts"} <= keys
    assert not any(key.startswith("xero/") for key in keys)
    assert job.partitions_def.name == "quickbooks_integrations"
