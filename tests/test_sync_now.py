"""`hub sync now ID [--wait]` against a real `dagster-webserver` (a subprocess on a free port,
PostgreSQL storage, the default run coordinator so runs launch at once without a daemon),
running the QuickBooks sync job against the QuickBooks emulator over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.cli import app
from hub.crypto import Keyring, generate_key
from hub.schema import sync_log

ROOT = Path(__file__).resolve().parent.parent
REALM = "9130350000000077"
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def module_keys():
    """One key for the module: the webserver (and the runs it launches) is started with it."""
    return [generate_key()]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, database_url, dagster_pg_url, module_keys):
    """A Dagster webserver on the test databases; yields its URL."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: \"{dagster_pg_url}\"\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n")
    workspace = home / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: pipelines.definitions\n"
                         f"      working_directory: \"{ROOT}\"\n      location_name: integrations_hub\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
           "HUB_SECRET_KEYS": ",".join(module_keys)}
    log = (home / "webserver.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
                             "-w", str(workspace)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {(home / 'webserver.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def books(clean_db, monkeypatch, module_keys, webserver, dagster_instance):
    """A QuickBooks integration on the emulator, one whose grant was revoked, and a DoorDash
    one (no sync job); HUB_DAGSTER_URL points at the webserver."""
    monkeypatch.setenv("HUB_SECRET_KEYS", ",".join(module_keys))
    monkeypatch.setenv("HUB_DAGSTER_URL", webserver)
    keyring = Keyring(module_keys)
    emulator = quickbooks_emulator(vendors=4, bills=5, invoices=2, accounts=10, realm_id=REALM, seed=7)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        with clean_db.begin() as conn:
            company = store.create_company(conn, "Acme")
            good = store.add_integration(conn, keyring, company_id=company, provider="quickbooks", config=config, credentials={
                **CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})}, active=True)
            broken = store.add_integration(conn, keyring, company_id=company, provider="quickbooks", config=config,
                                           name="Revoked books", credentials={**CLIENT, "refresh_token": "revoked-long-ago"}, active=True)
            doordash = store.add_integration(conn, keyring, company_id=company, provider="doordash", config={"store_id": "601135"},
                                             credentials={"developer_id": "d", "key_id": "k", "signing_secret": "c2VjcmV0", "webhook_token": "t"}, active=True)
            unknown = store.add_integration(conn, keyring, company_id=company, provider="quickbooks", config=config,
                                            name="Not yet a partition", credentials={**CLIENT, "refresh_token": "r"}, active=True)
        dagster_instance.add_dynamic_partitions("quickbooks_integrations", [f"quickbooks-{good}", f"quickbooks-{broken}"])
        yield {"engine": clean_db, "good": good, "broken": broken, "doordash": doordash, "unknown": unknown, "instance": dagster_instance,
               "url": webserver}


def _run_id(output: str) -> str:
    return next(line.split()[-1] for line in output.splitlines() if line.startswith("launched run "))


def test_sync_now_wait_runs_the_job_on_dagster(books):
    result = runner.invoke(app, ["sync", "now", str(books["good"]), "--wait"])
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.stdout)
    assert f"{books['url']}/runs/{run_id}" in result.stdout
    assert "quickbooks__vendors" in result.stdout  # progress lines from the run's events
    assert result.stdout.rstrip().endswith(f"run {run_id} succeeded")

    run = books["instance"].get_run_by_id(run_id)
    assert run.status.value == "SUCCESS" and run.tags["dagster/partition"] == f"quickbooks-{books['good']}"
    assert run.job_name == "quickbooks_sync_job" and run.tags["trigger"] == "sync_now"
    with books["engine"].connect() as conn:
        rows = conn.execute(sa.select(sync_log.c.action, sync_log.c.status, sync_log.c.integration_id)
                            .where(sync_log.c.dagster_run_id == run_id)).all()
    assert {"import_accounts", "import_vendors", "import_invoices"} <= {row.action for row in rows}
    assert {row.integration_id for row in rows} == {books["good"]}


def test_sync_now_without_wait_prints_the_run_and_returns(books):
    result = runner.invoke(app, ["sync", "now", str(books["good"])])
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.stdout)
    assert result.stdout.splitlines() == [f"launched run {run_id}", f"{books['url']}/runs/{run_id}"]
    assert books["instance"].get_run_by_id(run_id).job_name == "quickbooks_sync_job"
    deadline = time.monotonic() + 120  # let it end before the fixture empties the tables under it
    while not books["instance"].get_run_by_id(run_id).is_finished and time.monotonic() < deadline:
        time.sleep(0.5)


def test_a_failing_run_exits_1_with_its_link(books):
    result = runner.invoke(app, ["sync", "now", str(books["broken"]), "--wait"])
    assert result.exit_code == 1, result.output
    run_id = _run_id(result.stdout)
    errors = result.stderr.strip().splitlines()
    assert errors == [f"Error: sync run {run_id} ended FAILURE: {books['url']}/runs/{run_id}"]
    assert 'Execution of step "quickbooks__vendors" failed: ' in result.stdout  # with the cause
    assert books["instance"].get_run_by_id(run_id).status.value == "FAILURE"


def test_sync_now_rides_over_dagsters_dropped_database_connections(books, dagster_pg_url):
    """After PostgreSQL restarts, each connection dagster-webserver keeps pooled fails its next
    request (HTTP 500, "server closed the connection unexpectedly"): `hub sync now` asks again
    and launches the run once (its launch id tag finds a run a lost answer had created)."""
    from sqlalchemy.engine import make_url

    assert runner.invoke(app, ["sync", "now", str(books["good"]), "--wait"]).exit_code == 0  # the webserver's pools in use
    before = {run.run_id for run in books["instance"].get_runs()}
    with books["engine"].connect() as conn:  # what a restart does to them
        cut = conn.scalar(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": make_url(dagster_pg_url).database})
    assert cut > 0
    result = runner.invoke(app, ["sync", "now", str(books["good"]), "--wait"])
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.stdout)
    assert {run.run_id for run in books["instance"].get_runs()} - before == {run_id}  # launched once
    assert books["instance"].get_run_by_id(run_id).status.value == "SUCCESS"


def test_refusals(books):
    def refused(*args):
        result = runner.invoke(app, ["sync", "now", *args])
        assert result.exit_code == 1 and result.stdout == "", result.output
        assert len(result.stderr.strip().splitlines()) == 1
        return result.stderr.strip()

    assert refused("9999") == "Error: no integration 9999"
    assert "doordash integration, which has no sync job" in refused(str(books["doordash"]))
    assert refused(str(books["unknown"])) == (f"Error: Dagster has no partition quickbooks-{books['unknown']} of "
                                              "quickbooks_sync_job yet: integration_partitions_sensor adds it at its "
                                              "next tick after the integration is connected")
    with books["engine"].begin() as conn:
        store.set_active(conn, books["good"], False)
    assert refused(str(books["good"])).startswith(f"Error: integration {books['good']} is inactive")


def test_dagster_unreachable_is_one_error_line(books, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("HUB_DAGSTER_URL", url)
    result = runner.invoke(app, ["sync", "now", str(books["good"])])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot reach Dagster at {url} (HUB_DAGSTER_URL)")
    assert len(result.stderr.strip().splitlines()) == 1
