"""Sync schedules: nightly accounting runs (one per active integration and local night, at
the first tick at or after its company's local sync hour, with a run key looked up in the
Dagster instance so a later tick never syncs the same night twice) and hourly Procore runs."""

import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from hub import integrations as store
from hub.crypto import Keyring
from pipelines.definitions import defs
from hub.sync import preferences
from pipelines.schedules import RUN_KEY_TAG, SCHEDULE_NAME_TAG, SYNC_SCHEDULES
from resources import HubDatabase

OAUTH = {"client_id": "c", "client_secret": "s", "refresh_token": "r"}


@pytest.fixture
def companies(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        ny = store.create_company(conn, "Acme", "America/New_York")
        chi = store.create_company(conn, "Bella", "America/Chicago")
        ids = {
            "acme_qb": store.add_integration(conn, keyring, company_id=ny, provider="quickbooks", config={"realm_id": "1"}, credentials=OAUTH, active=True),
            "bella_xero": store.add_integration(conn, keyring, company_id=chi, provider="xero", config={"tenant_id": "t"}, credentials=OAUTH, active=True),
            "bella_xero_late": store.add_integration(conn, keyring, company_id=chi, provider="xero", name="Xero late",
                                                     config={"tenant_id": "t2", "sync": {"hour": 4}}, credentials=OAUTH, active=True),
            "acme_slack": store.add_integration(conn, keyring, company_id=ny, provider="slack", config={"default_channel": "#x"},
                                                credentials={"bot_token": "b", "signing_secret": "s"}, active=True),
        }
        ids["procore"] = store.add_integration(conn, keyring, company_id=ny, provider="procore", config={"company_id": "9"}, credentials=OAUTH, active=True)
        ids["procore_off"] = store.add_integration(conn, keyring, company_id=chi, provider="procore", name="Procore off",
                                                   config={"company_id": "10"}, credentials=OAUTH, active=True)
        for stream in preferences.stream_directions("procore"):
            preferences.update(conn, keyring, ids["procore_off"], stream=stream, enabled=False)
        disabled = store.add_integration(conn, keyring, company_id=ny, provider="xero", name="Old Xero", config={"tenant_id": "t3"}, credentials=OAUTH, active=True)
        store.set_active(conn, disabled, False)
    return ids


SCHEDULES = {s.name: s for s in SYNC_SCHEDULES}
LAUNCHED: list[str] = []  # run ids recorded by _tick, deleted after each test (integration ids restart per test)


@pytest.fixture(autouse=True)
def _forget_launched_runs(dagster_instance):
    yield
    while LAUNCHED:
        dagster_instance.delete_run(LAUNCHED.pop())


def _tick(instance, when: datetime, name: str, launch: bool = True):
    """Evaluate schedule `name` at `when`; with `launch`, record the requested runs in the
    instance with the tags the scheduler daemon puts on them (run key, schedule name), as
    launched runs (started), so the next tick sees them (a run created but never submitted does
    not count: tests/test_nightly_fanout.py)."""
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                   resources={"hub_db": HubDatabase()}) as context:
        result = SCHEDULES[name](context)
    if isinstance(result, dg.SkipReason):
        return result
    result = list(result)
    if launch:
        for request in result:
            LAUNCHED.append(str(uuid.uuid4()))
            instance.add_run(dg.DagsterRun(job_name=SCHEDULES[name].job_name, run_id=LAUNCHED[-1], status=dg.DagsterRunStatus.STARTED, tags={
                RUN_KEY_TAG: request.run_key, SCHEDULE_NAME_TAG: name, "dagster/partition": request.partition_key}))
    return result


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
    # 00:00 in New York: before its sync hour
    assert isinstance(_tick(dagster_instance, datetime(2026, 11, 23, 5, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule"),
                      dg.SkipReason)
    # 10:00 in New York, after that night's run
    assert _tick(dagster_instance, datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")
    assert isinstance(_tick(dagster_instance, datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule"),
                      dg.SkipReason)


def test_the_spring_forward_night_still_syncs_once(companies, dagster_instance):
    """2027-03-14 in New York: 01:59 EST is followed by 03:00 EDT, so 02:00 never happens.
    The 07:00 UTC tick (03:00 EDT) is the first at or after the sync hour: it syncs; the
    later ticks of that day find the run and skip."""
    acme = f"quickbooks-{companies['acme_qb']}"
    assert isinstance(_tick(dagster_instance, datetime(2027, 3, 14, 6, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule"),
                      dg.SkipReason)  # 01:00 EST
    requests = _tick(dagster_instance, datetime(2027, 3, 14, 7, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")
    assert [(r.partition_key, r.run_key) for r in requests] == [(acme, f"{acme}:2027-03-14")]
    for hour in (8, 12, 23):  # 04:00, 08:00, 19:00 EDT
        assert isinstance(_tick(dagster_instance, datetime(2027, 3, 14, hour, 0, tzinfo=timezone.utc),
                                "quickbooks_nightly_schedule"), dg.SkipReason)
    # the next night is an ordinary one again, at 02:00 EDT = 06:00 UTC
    assert _keys(_tick(dagster_instance, datetime(2027, 3, 15, 6, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")) == [acme]


def test_the_fall_back_night_syncs_once(companies, secret_keys, clean_db, dagster_instance):
    """2026-11-01 in New York: 01:00-01:59 happens twice (EDT, then EST). With the sync hour
    at 1, the first 01:00 syncs and the second one finds that run; at the default 02:00 (which
    happens once, an hour later in UTC than the night before) it syncs once too."""
    acme = f"quickbooks-{companies['acme_qb']}"
    chicago = f"xero-{companies['bella_xero']}"
    with clean_db.begin() as conn:
        preferences.update(conn, Keyring(secret_keys), companies["acme_qb"], hour=1)
    first = _tick(dagster_instance, datetime(2026, 11, 1, 5, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")  # 01:00 EDT
    assert [r.run_key for r in first] == [f"{acme}:2026-11-01"]
    again = _tick(dagster_instance, datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")  # 01:00 EST
    assert isinstance(again, dg.SkipReason)
    # Chicago's 02:00 was 07:00 UTC the night before (CDT); tonight 07:00 UTC is 01:00 CST and 02:00 is 08:00 UTC
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc), "xero_nightly_schedule")) == []
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc), "xero_nightly_schedule")) == [chicago]
    assert isinstance(_tick(dagster_instance, datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc), "xero_nightly_schedule"),
                      dg.SkipReason)  # 03:00 CST: Bella's first account ran, the late one (04:00) is not due yet


def test_a_missed_tick_is_caught_up_once_the_same_day(companies, dagster_instance):
    """The daemon was down over 02:00 New York time: the next tick syncs, the ones after do not."""
    acme = f"quickbooks-{companies['acme_qb']}"
    late = _tick(dagster_instance, datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")  # 05:00 EST
    assert [r.run_key for r in late] == [f"{acme}:2026-11-24"]
    assert isinstance(_tick(dagster_instance, datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule"),
                      dg.SkipReason)
    # a request the daemon never launched leaves no run with its key: the next tick asks again
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule",
                       launch=False)) == [acme]
    assert _keys(_tick(dagster_instance, datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc), "quickbooks_nightly_schedule")) == [acme]


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
