"""The Dagster code location: loads, materializes against a PostgreSQL-backed instance,
keeps partitions in step with integrations, closes the sync_log rows of dead runs."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from dagster._core.definitions.run_request import AddDynamicPartitionsRequest, DeleteDynamicPartitionsRequest

from emulators.quickbooks import create_emulator
from emulators.serve import serve
from hub import integrations as store
from hub import sync_log as sync_log_module
from hub.crypto import Keyring, generate_key
from hub.providers.errors import ProviderError
from hub.schema import sync_log
from hub.sync_log import open_sync
from pipelines.assets.inventory import connection_check, integration_inventory
from pipelines.assets.sync import SYNC_ASSETS
from pipelines.definitions import RESOURCES, defs
from pipelines.partitions import INTEGRATIONS_PARTITION
from resources import HubDatabase, ProviderClients, SecretStore
from sensors.integration_partitions import integration_partitions_sensor
from sensors.sync_log_runs import sync_log_canceled_runs_sensor, sync_log_failed_runs_sensor, sync_log_sweeper_sensor

SECRET = "dagster-test-secret-value-777"


REALM = "9130350000000001"


@pytest.fixture(scope="module")
def quickbooks():
    """A QuickBooks emulator for the live connection check: (emulator, base URL)."""
    emulator = create_emulator(vendors=3, invoices=3, accounts=3)
    with serve(emulator.app) as url:
        yield emulator, url


@pytest.fixture
def seeded(clean_db, secret_keys, quickbooks):
    ring = Keyring(secret_keys)
    emulator, url = quickbooks
    granted = emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})
    with clean_db.begin() as conn:
        acme = store.create_company(conn, "Acme")
        bella = store.create_company(conn, "Bella")
        ids = {
            "qb": store.add_integration(
                conn, ring, company_id=acme, provider="quickbooks",
                config={"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"},
                credentials={"client_id": "hub-demo", "client_secret": "hub-demo-secret", "refresh_token": granted}, active=True
            ),
            "slack": store.add_integration(conn, ring, company_id=acme, provider="slack", config={"default_channel": "#ops"},
                                           credentials={"bot_token": "xoxb-" + SECRET, "signing_secret": "s"}, active=True),
            "xero": store.add_integration(conn, ring, company_id=bella, provider="xero", config={"tenant_id": "t"},
                                          credentials={"client_id": "c", "client_secret": SECRET, "refresh_token": "r" * 20}, active=True),
        }
    return ids


def test_definitions_load():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"hub/integration_inventory", "hub/connection_check"} <= keys
    assert defs.resolve_job_def("connection_check_job").partitions_def.name == INTEGRATIONS_PARTITION
    assert {s.name for s in repo.sensor_defs} == {
        "integration_partitions_sensor", "sync_log_failed_runs_sensor", "sync_log_canceled_runs_sensor",
        "sync_log_sweeper_sensor", "new_orders_sensor", "stripe_billing_sensor", "ai_feedback_sensor",
    }
    assert defs.resolve_job_def("process_orders_job") is not None
    assert sorted(s.name for s in repo.schedule_defs) == [
        "ai_training_nightly_schedule", "billing_nightly_reconciliation", "inventory_hourly", "procore_hourly_schedule", "quickbooks_nightly_schedule",
        "xero_nightly_schedule"]


def test_inventory_materializes_on_postgres_instance(seeded, clean_db, dagster_instance):
    result = dg.materialize([integration_inventory], instance=dagster_instance, resources=RESOURCES)
    assert result.success
    metadata = result.asset_materializations_for_node("hub__integration_inventory")[0].metadata
    assert metadata["companies"].value == 2
    assert metadata["integrations"].value == 3
    assert metadata["active"].value == 3
    assert "| Acme | accounting | pending | 1 | 0 | never | 0 |" in metadata["inventory"].value
    # the run really went through PostgreSQL storage
    assert dagster_instance.get_run_by_id(result.run_id) is not None


def _apply(instance, result):
    """Apply a sensor's partition requests as the daemon would."""
    for request in result.dynamic_partitions_requests:
        if isinstance(request, AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        elif isinstance(request, DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def _tick(instance):
    context = dg.build_sensor_context(instance=instance, resources={"hub_db": HubDatabase()})
    return integration_partitions_sensor(context)


def test_partitions_follow_active_integrations(seeded, clean_db, dagster_instance):
    for key in dagster_instance.get_dynamic_partitions(INTEGRATIONS_PARTITION):
        dagster_instance.delete_dynamic_partition(INTEGRATIONS_PARTITION, key)
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, ["stale-999"])

    first = _tick(dagster_instance)
    _apply(dagster_instance, first)
    expected = {f"quickbooks-{seeded['qb']}", f"slack-{seeded['slack']}", f"xero-{seeded['xero']}"}
    assert set(dagster_instance.get_dynamic_partitions(INTEGRATIONS_PARTITION)) == expected
    # each syncing provider's assets see only that provider's integrations
    assert dagster_instance.get_dynamic_partitions("quickbooks_integrations") == [f"quickbooks-{seeded['qb']}"]
    assert dagster_instance.get_dynamic_partitions("xero_integrations") == [f"xero-{seeded['xero']}"]
    assert dagster_instance.get_dynamic_partitions("procore_integrations") == []

    assert isinstance(_tick(dagster_instance), dg.SkipReason)  # nothing to do twice

    with clean_db.begin() as conn:
        store.set_active(conn, seeded["slack"], False)
    _apply(dagster_instance, _tick(dagster_instance))
    assert set(dagster_instance.get_dynamic_partitions(INTEGRATIONS_PARTITION)) == expected - {f"slack-{seeded['slack']}"}
    with clean_db.begin() as conn:
        store.set_active(conn, seeded["xero"], False)
    _apply(dagster_instance, _tick(dagster_instance))
    assert dagster_instance.get_dynamic_partitions("xero_integrations") == []
    with clean_db.begin() as conn:
        store.set_active(conn, seeded["xero"], True)

    with clean_db.begin() as conn:
        store.set_active(conn, seeded["slack"], True)
    _apply(dagster_instance, _tick(dagster_instance))
    assert set(dagster_instance.get_dynamic_partitions(INTEGRATIONS_PARTITION)) == expected


def _logs(engine, integration_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(sync_log).where(sync_log.c.integration_id == integration_id)).mappings().all()


def test_connection_check_records_sync_log_and_leaks_nothing(seeded, clean_db, dagster_instance):
    key = f"quickbooks-{seeded['qb']}"
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    result = dg.materialize([connection_check], partition_key=key, instance=dagster_instance, resources=RESOURCES)
    assert result.success
    metadata = result.asset_materializations_for_node("hub__connection_check")[0].metadata
    assert metadata["credential_fields"].value == "client_id, client_secret, refresh_token"
    live = metadata["live_check"].value  # the provider answered, through a token refresh
    assert live["realm_id"] == REALM and live["api_calls"] >= 1 and live["token_refreshes"] == 1
    (log,) = _logs(clean_db, seeded["qb"])
    assert (log["status"], log["records_processed"], log["dagster_run_id"]) == ("completed", 1, result.run_id)
    with clean_db.connect() as conn:  # the check moves the status (it was left "syncing" once)
        assert conn.scalar(sa.text("SELECT status FROM integration WHERE id = :i"), {"i": seeded["qb"]}) == "connected"
    # no secret in anything Dagster stored for the run
    with clean_db.connect() as conn:
        credentials = store.get_integration(conn, Keyring.from_env(), seeded["qb"]).credentials
    stored = "\n".join(repr(entry) for entry in dagster_instance.all_logs(result.run_id))
    for secret in ("hub-demo-secret", credentials["refresh_token"], credentials["access_token"]):
        assert secret not in stored


def test_connection_check_with_a_refused_grant_fails_with_the_reason(seeded, clean_db, dagster_instance, quickbooks):
    emulator, url = quickbooks
    key = f"quickbooks-{seeded['qb']}"
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    with clean_db.connect() as conn:
        refresh = store.get_integration(conn, Keyring.from_env(), seeded["qb"]).credentials["refresh_token"]
    spent = httpx.post(url + "/oauth2/v1/tokens/bearer", data={"grant_type": "refresh_token", "refresh_token": refresh},
                       auth=("hub-demo", "hub-demo-secret"))
    assert spent.status_code == 200  # another installation used it first
    result = dg.materialize([connection_check], partition_key=key, instance=dagster_instance, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    (log,) = _logs(clean_db, seeded["qb"])
    assert log["status"] == "failed"
    assert "NeedsReauthentication: quickbooks: the refresh token was refused; reconnect the integration" in log["errors"][-1]["message"]


def test_connection_check_with_the_wrong_key_fails_and_is_logged(seeded, clean_db, dagster_instance, monkeypatch):
    key = f"xero-{seeded['xero']}"
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    monkeypatch.setenv("HUB_SECRET_KEYS", generate_key())
    result = dg.materialize(
        [connection_check], partition_key=key, instance=dagster_instance, resources=RESOURCES, raise_on_error=False
    )
    assert not result.success
    (log,) = _logs(clean_db, seeded["xero"])
    assert log["status"] == "failed"
    assert "HUB_SECRET_KEYS has no key with id" in log["errors"][-1]["message"]
    stored = "\n".join(repr(entry) for entry in dagster_instance.all_logs(result.run_id))
    assert SECRET not in stored


class _FakeTransport:
    def __init__(self):
        self.closed = False

    def stats(self) -> dict:
        return {"api_calls": 1}

    def close(self) -> None:
        self.closed = True


class _FakeClient:
    """A provider client without HTTP: `check` answers `answer`, or raises it if it is an
    error; so does any other API call (`iter_query`, `cdc`, ...)."""

    def __init__(self, answer):
        self.answer, self.transport = answer, _FakeTransport()

    def check(self) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            return self.check()

        return call


OPENED: list[tuple[int, _FakeClient]] = []  # (integration id, client) handed out by the fake resource


@pytest.fixture
def fake_clients():
    """RESOURCES with `provider_clients` replaced by a fake whose clients answer `answer`.

    The seam: every asset gets its provider clients from that resource, so overriding its
    `client` is enough; no HTTP server, no usable stored credentials."""

    def resources(answer) -> dict:
        class FakeProviderClients(ProviderClients):
            def client(self, integration_id: int, retry=None) -> _FakeClient:
                OPENED.append((integration_id, _FakeClient(answer)))
                return OPENED[-1][1]

        return {**RESOURCES, "provider_clients": FakeProviderClients(hub_db=HubDatabase(), secrets=SecretStore())}

    OPENED.clear()
    yield resources
    OPENED.clear()


def _status(engine, integration_id) -> str:
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT status FROM integration WHERE id = :i"), {"i": integration_id})


def test_connection_check_uses_the_substituted_provider_clients(seeded, clean_db, dagster_instance, fake_clients):
    key = f"xero-{seeded['xero']}"  # its stored endpoints lead nowhere: only the fake can answer
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    resources = fake_clients({"tenant": "fake tenant"})
    result = dg.materialize([connection_check], partition_key=key, instance=dagster_instance, resources=resources)
    assert result.success
    live = result.asset_materializations_for_node("hub__connection_check")[0].metadata["live_check"].value
    assert live == {"tenant": "fake tenant", "api_calls": 1}
    assert [(iid, client.transport.closed) for iid, client in OPENED] == [(seeded["xero"], True)]
    assert _status(clean_db, seeded["xero"]) == "connected"


def test_a_provider_error_fails_the_connection_check_with_its_reason(seeded, clean_db, dagster_instance, fake_clients):
    key = f"xero-{seeded['xero']}"
    dagster_instance.add_dynamic_partitions(INTEGRATIONS_PARTITION, [key])
    resources = fake_clients(ProviderError("xero", "the organisation is offline for maintenance", status=503))
    result = dg.materialize([connection_check], partition_key=key, instance=dagster_instance, resources=resources,
                            raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    reason = "xero: the organisation is offline for maintenance [HTTP 503]"
    assert reason in failure.step_failure_data.error.cause.message  # what the Dagster UI shows on the partition
    (log,) = _logs(clean_db, seeded["xero"])
    assert log["status"] == "failed" and reason in log["errors"][-1]["message"]
    assert _status(clean_db, seeded["xero"]) == "error"
    assert OPENED[0][1].transport.closed  # closed although the check raised


@dg.op
def _sync_then_crash(context: dg.OpExecutionContext):
    """Opens a sync_log row and dies without closing it, as a killed worker would."""
    open_sync(
        HubDatabase().get_engine(), integration_id=int(context.op_config["integration_id"]), sync_type="incremental",
        action="import_vendors", direction="inbound", entity_type="vendor", run_id=context.run_id,
    )
    raise SystemError("worker lost")


@dg.job
def _crashing_job():
    _sync_then_crash()


def test_failed_run_sensor_closes_the_dead_runs_rows(seeded, clean_db, dagster_instance):
    run_config = {"ops": {"_sync_then_crash": {"config": {"integration_id": seeded["qb"]}}}}
    result = _crashing_job.execute_in_process(instance=dagster_instance, run_config=run_config, raise_on_error=False)
    assert not result.success
    assert [r["status"] for r in _logs(clean_db, seeded["qb"])] == ["started"]

    context = dg.build_run_status_sensor_context(
        sensor_name="sync_log_failed_runs_sensor",
        dagster_instance=dagster_instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"hub_db": HubDatabase()},
    ).for_run_failure()
    sync_log_failed_runs_sensor(context)
    (log,) = _logs(clean_db, seeded["qb"])
    assert log["status"] == "failed" and log["completed_at"] is not None
    assert log["errors"][-1]["code"] == "run_failed"


def test_canceled_run_sensor_closes_the_rows(seeded, clean_db, dagster_instance):
    run = dagster_instance.create_run_for_job(_crashing_job, run_config={"ops": {"_sync_then_crash": {"config": {"integration_id": 1}}}})
    open_sync(clean_db, integration_id=seeded["xero"], sync_type="full", action="import_accounts",
              direction="inbound", entity_type="gl_account", run_id=run.run_id)
    dagster_instance.report_run_canceled(run)
    canceled = dagster_instance.get_run_by_id(run.run_id)
    event = next(
        e.dagster_event for e in dagster_instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_CANCELED"
    )
    context = dg.build_run_status_sensor_context(
        sensor_name="sync_log_canceled_runs_sensor", dagster_instance=dagster_instance, dagster_run=canceled,
        dagster_event=event, resources={"hub_db": HubDatabase()},
    )
    sync_log_canceled_runs_sensor(context)
    (log,) = _logs(clean_db, seeded["xero"])
    assert log["status"] == "failed" and log["errors"][-1]["message"].endswith("ended: run canceled")


def test_sweeper_closes_rows_of_ended_or_unknown_runs_only(seeded, clean_db, dagster_instance):
    finished = _crashing_job.execute_in_process(
        instance=dagster_instance, run_config={"ops": {"_sync_then_crash": {"config": {"integration_id": seeded["qb"]}}}},
        raise_on_error=False,
    )
    live = dagster_instance.create_run_for_job(_crashing_job, run_config={"ops": {"_sync_then_crash": {"config": {"integration_id": 1}}}})
    # `live` stays NOT_STARTED: not finished, so its row must be left alone
    sync = dict(sync_type="incremental", action="import_vendors", direction="inbound", entity_type="vendor")
    open_sync(clean_db, integration_id=seeded["slack"], run_id=live.run_id, **sync)
    open_sync(clean_db, integration_id=seeded["xero"], run_id="no-such-run", **sync)
    context = dg.build_sensor_context(instance=dagster_instance, resources={"hub_db": HubDatabase()})
    assert "closed 2 orphaned" in sync_log_sweeper_sensor(context).skip_message
    assert _logs(clean_db, seeded["qb"])[0]["status"] == "failed"  # its run ended FAILURE
    assert "ended FAILURE" in _logs(clean_db, seeded["qb"])[0]["errors"][-1]["message"]
    assert _logs(clean_db, seeded["xero"])[0]["status"] == "failed"  # its run is unknown
    assert _logs(clean_db, seeded["slack"])[0]["status"] == "started"  # its run has not ended
    assert finished.dagster_run.is_finished


def test_a_provider_error_fails_a_sync_asset_with_its_reason(seeded, clean_db, dagster_instance, fake_clients):
    (vendors,) = [a for a in SYNC_ASSETS if a.key == dg.AssetKey(["quickbooks", "vendors"])]
    key = f"quickbooks-{seeded['qb']}"
    dagster_instance.add_dynamic_partitions("quickbooks_integrations", [key])
    resources = fake_clients(ProviderError("quickbooks", "throttled for the day", status=429))
    result = dg.materialize([vendors], partition_key=key, instance=dagster_instance, resources=resources, raise_on_error=False)
    assert not result.success
    reason = "quickbooks: throttled for the day [HTTP 429]"
    assert reason in result.get_step_failure_events()[0].step_failure_data.error.cause.message
    (log,) = _logs(clean_db, seeded["qb"])
    assert log["status"] == "failed" and log["action"] == "import_vendors" and reason in log["errors"][-1]["message"]
    assert [(iid, client.transport.closed) for iid, client in OPENED] == [(seeded["qb"], True)]


def test_the_dagster_face_holds_no_sql():
    """pipelines/ and sensors/ call hub functions; queries live in hub/ (named after what they read)."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent
    found = []
    for path in sorted([*root.glob("pipelines/**/*.py"), *root.glob("sensors/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(root)}: imports {m}" for m in modules if m.split(".")[0] == "sqlalchemy" or m == "hub.schema"]
            if isinstance(node, ast.Attribute) and node.attr in ("exec_driver_sql", "execute", "scalars", "scalar"):
                found.append(f"{path.relative_to(root)}:{node.lineno}: .{node.attr}(...)")
    assert not found, "SQL in the Dagster face; move it to a hub module:\n" + "\n".join(found)


# ---- a run started from the command line and killed (issue 15 item 13) ---------------------
_CLI_RUN = '''
import os, time
import dagster as dg
from hub import db
from hub.sync_log import record_sync

@dg.op
def slow_sync(context):
    engine = db.engine(os.environ["HUB_DATABASE_URL"])
    with record_sync(engine, integration_id=int(os.environ["SYNC_INTEGRATION"]), sync_type="full", action="import_vendors",
                     direction="inbound", entity_type="vendor", run_id=context.run_id):
        time.sleep(600)

@dg.job
def cli_job():
    slow_sync()

with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": os.environ["DAGSTER_PG_URL"]}}}) as instance:
    cli_job.execute_in_process(instance=instance)
'''


def test_a_killed_cli_run_is_closed_by_its_stopped_heartbeat_and_marked_failed(seeded, clean_db, dagster_instance,
                                                                                dagster_pg_url, tmp_path, monkeypatch):
    """`dagster asset materialize` runs in-process, as execute_in_process does: no daemon
    watches it. Killed, it used to stay STARTED with its row `started` for 6 hours."""
    script = tmp_path / "cli_run.py"
    script.write_text(_CLI_RUN)
    env = {**os.environ, "SYNC_INTEGRATION": str(seeded["qb"]), "DAGSTER_PG_URL": dagster_pg_url,
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not _logs(clean_db, seeded["qb"]) and time.monotonic() < deadline:
            assert child.poll() is None, "the run ended on its own"
            time.sleep(0.2)
        (row,) = _logs(clean_db, seeded["qb"])
    finally:
        child.kill()  # SIGKILL: nothing in the run gets to close anything
        child.wait()
    run = dagster_instance.get_run_by_id(row["dagster_run_id"])
    assert run.status == dg.DagsterRunStatus.STARTED and row["status"] == "started"

    context = dg.build_sensor_context(instance=dagster_instance, resources={"hub_db": HubDatabase()})
    assert "closed 0 orphaned" in sync_log_sweeper_sensor(context).skip_message  # a fresh heartbeat: maybe alive
    monkeypatch.setattr(sync_log_module, "HEARTBEAT_STALE_AFTER", timedelta(seconds=1))
    time.sleep(1.5)
    reason = sync_log_sweeper_sensor(context).skip_message
    assert "closed 1 orphaned" in reason and "marked 1 dead run(s) failed" in reason, reason
    (row,) = _logs(clean_db, seeded["qb"])
    assert row["status"] == "failed" and "no heartbeat" in row["errors"][-1]["message"]
    assert dagster_instance.get_run_by_id(row["dagster_run_id"]).status == dg.DagsterRunStatus.FAILURE


def test_a_live_sync_keeps_its_heartbeat_and_is_left_alone(seeded, clean_db, monkeypatch):
    monkeypatch.setattr(sync_log_module, "HEARTBEAT_EVERY", 0.1)
    with sync_log_module.record_sync(clean_db, integration_id=seeded["qb"], run_id="a-live-run", sync_type="full",
                              action="import_vendors", direction="inbound", entity_type="vendor") as sync:
        first = _logs(clean_db, seeded["qb"])[0]["heartbeat_at"]
        time.sleep(1.0)
        (row,) = _logs(clean_db, seeded["qb"])
        assert row["heartbeat_at"] > first  # touched while it runs
        found = sync_log_module.close_orphaned(clean_db, {}, timedelta(hours=6), heartbeat_stale_after=timedelta(seconds=0.5))
        assert found.closed == 0 and _logs(clean_db, seeded["qb"])[0]["status"] == "started"
    (row,) = _logs(clean_db, seeded["qb"])
    assert sync.status == "completed" and row["status"] == "completed" and row["heartbeat_at"] is None
