"""deploy/: what can be proven on this machine (no container engine, no cluster).

- deploy/dagster.yaml is a valid Dagster instance config: Dagster itself loads it (its config
  validation) on PostgreSQL storage in a scratch DAGSTER_HOME, with the queue, the limits, run
  monitoring and retention it promises; a broken copy is refused, so the check can fail;
- deploy/workspace.yaml passes Dagster's workspace schema and names the gRPC code server;
- every deploy/Procfile command names a real entry point (`<command> --help` succeeds) and the
  module, files and subcommands it names exist;
- `make serve`'s process file under honcho, against the test database: the webserver answers
  /server_info with the code location loaded from the code server, the hub answers /healthz,
  every dispatcher runs, and SIGTERM stops them all cleanly;
- the Kubernetes manifests parse, probe the health endpoints and run the Procfile's commands.
Not exercised here: building deploy/Dockerfile, `helm template`/`install` and applying the
manifests to a cluster (deploy/README.md).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
SERVICES = {"code", "webserver", "daemon", "web", "dispatch"}


def procfile() -> dict[str, str]:
    return dict(parse_procfile((DEPLOY / "Procfile").read_text()).processes)


def argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[1:] if words[0] == "exec" else words


# ---- dagster.yaml ------------------------------------------------------------------------
def load_instance(tmp_path: Path, text: str, pg_url: str, monkeypatch):
    from dagster._core.instance import DagsterInstance

    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(text)
    monkeypatch.setenv("DAGSTER_PG_URL", pg_url)
    return DagsterInstance.from_config(str(home))


def test_production_dagster_yaml_passes_dagsters_validation(tmp_path, dagster_pg_url, monkeypatch):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresRunStorage

    instance = load_instance(tmp_path, (DEPLOY / "dagster.yaml").read_text(), dagster_pg_url, monkeypatch)
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 21600
        assert not instance.run_retries_enabled
        concurrency = instance.get_concurrency_config()
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert {limit["value"] for limit in limits if limit["key"] == "dagster/schedule_name"} == {
            "quickbooks_nightly_schedule", "xero_nightly_schedule", "procore_hourly_schedule"}
        assert concurrency.pool_config.default_pool_limit == 8
        # a run counts once against its provider's pool (op granularity counts each root step)
        assert concurrency.pool_config.pool_granularity.value == "run"
        from dagster._core.definitions.run_request import InstigatorType

        assert instance.get_tick_retention_settings(InstigatorType.SENSOR)
    finally:
        instance.dispose()


def test_the_limits_name_schedules_that_exist():
    from pipelines.definitions import defs

    named = {s.name for s in defs.schedules}
    limited = {limit["value"] for limit in yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
               if limit["key"] == "dagster/schedule_name"}
    assert limited <= named, limited - named


def test_a_broken_dagster_yaml_is_refused(tmp_path, dagster_pg_url, monkeypatch):
    from dagster._core.errors import DagsterInvalidConfigError

    broken = (DEPLOY / "dagster.yaml").read_text().replace("max_concurrent_runs: 24", "max_concurrent_runs: many")
    assert broken != (DEPLOY / "dagster.yaml").read_text()
    with pytest.raises(DagsterInvalidConfigError):
        load_instance(tmp_path, broken, dagster_pg_url, monkeypatch)


# ---- workspace.yaml ----------------------------------------------------------------------
def test_production_workspace_names_the_grpc_code_server(monkeypatch):
    from dagster._core.workspace.config_schema import ensure_workspace_config

    monkeypatch.setenv("DAGSTER_CODE_HOST", "localhost")
    monkeypatch.setenv("DAGSTER_CODE_PORT", "4000")
    config = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    ensure_workspace_config(config, str(DEPLOY / "workspace.yaml"))  # raises on a schema error
    (entry,) = config["load_from"]
    assert entry["grpc_server"]["location_name"] == "integrations_hub"
    assert entry["grpc_server"]["port"] == {"env": "DAGSTER_CODE_PORT"}
    assert "python_module" not in entry  # not a subprocess of the webserver


# ---- Procfile ----------------------------------------------------------------------------
def test_the_procfile_runs_every_service():
    assert set(procfile()) == SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_procfile_command_names_a_real_entry_point(name):
    words = argv(procfile()[name])
    executable = BIN / words[0]
    assert executable.is_file() and os.access(executable, os.X_OK), words[0]
    prefix = []  # the program and its subcommands: the words before the first option
    for word in words:
        if word.startswith("-"):
            break
        prefix.append(word)
    done = subprocess.run([str(BIN / prefix[0]), *prefix[1:], "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, (prefix, done.stderr[-2000:])
    # what the command names exists: the definitions module, the workspace file, each option
    for flag, value in zip(words, words[1:]):
        if flag == "-m":
            import importlib.util

            assert importlib.util.find_spec(value) is not None, value
        if flag == "-w":
            assert (ROOT / value).is_file(), value
        if flag.startswith("--") and flag not in ("--help",):
            assert flag in done.stdout, f"{prefix} has no option {flag}"


# ---- the services under honcho -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"honcho exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename } } } } }"


def test_the_process_file_serves_every_service_under_honcho(tmp_path, database_url, dagster_pg_url, secret_keys):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    dagster_port, web_port, code_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home),
           "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False), "DAGSTER_PG_URL": dagster_pg_url,
           "DAGSTER_CODE_HOST": "localhost", "DAGSTER_CODE_PORT": str(code_port), "DAGSTER_PORT": str(dagster_port),
           "HUB_WEB_PORT": str(web_port), "HUB_WEB_WORKERS": "2"}
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        # the same command as scripts/serve.sh (`make serve`), two dispatchers
        proc = subprocess.Popen([str(BIN / "honcho"), "-f", "deploy/Procfile", "-d", ".", "start", "-c", "dispatch=2", "--no-colour"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        webserver, hub = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{web_port}"
        wait_until(lambda: httpx.get(f"{hub}/healthz", timeout=2).json() == {"ok": True}, 90, "the hub's /healthz", proc, log)
        wait_until(lambda: "dagster_version" in httpx.get(f"{webserver}/server_info", timeout=2).json(), 120,
                   "the webserver's /server_info", proc, log)

        def location_loaded() -> bool:
            answer = httpx.post(f"{webserver}/graphql", json={"query": LOCATION_QUERY}, timeout=10).json()
            (entry,) = answer["data"]["workspaceOrError"]["locationEntries"]
            if entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                return entry["name"] == "integrations_hub"
            httpx.post(f"{webserver}/graphql", json={"query": 'mutation { reloadRepositoryLocation(repositoryLocationName: "integrations_hub") { __typename } }'}, timeout=30)
            return False

        wait_until(location_loaded, 120, "the code location loaded from the gRPC code server", proc, log)
        text = log.read_text()
        for name in ("code.1", "webserver.1", "daemon.1", "web.1", "dispatch.1", "dispatch.2"):
            assert f"{name} started" in text, name
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # honcho passes it on to every service
        try:
            proc.wait(60)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever did not stop in time
            except ProcessLookupError:
                pass
    text = log.read_text()
    for name in ("code.1", "webserver.1", "daemon.1", "web.1", "dispatch.1", "dispatch.2"):
        assert f"{name} stopped" in text, f"{name} did not stop:\n{text[-3000:]}"


# ---- Kubernetes ----------------------------------------------------------------------------
def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("hub-*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_the_web_app_and_dispatchers_run_the_procfiles_commands_with_health_checks():
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    assert {"hub-web", "hub-dispatcher"} <= set(deployments)
    web = deployments["hub-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["command"][:3] == ["hub", "web", "run"] and "--workers" in web["command"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert web[probe]["httpGet"]["path"] == "/healthz"
    dispatcher = deployments["hub-dispatcher"]["spec"]["template"]["spec"]["containers"][0]
    assert dispatcher["command"] == argv(procfile()["dispatch"])
    assert dispatcher["livenessProbe"]["exec"]["command"]
    services = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Service"}
    assert services["hub-web"]["spec"]["selector"] == deployments["hub-web"]["spec"]["selector"]["matchLabels"]


def test_the_helm_values_serve_the_code_location_and_launch_runs_as_jobs():
    values = yaml.safe_load((DEPLOY / "k8s" / "dagster-values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    args = code["codeServerArgs"]
    assert args[args.index("-m") + 1] == "pipelines.definitions"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # the same run limits as deploy/dagster.yaml, in the chart's spelling
    prod = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]
    assert values["concurrency"]["runs"]["tagConcurrencyLimits"] == prod["runs"]["tag_concurrency_limits"]
    assert values["concurrency"]["pools"]["defaultLimit"] == prod["pools"]["default_limit"]
    assert values["concurrency"]["pools"]["granularity"] == prod["pools"]["granularity"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_kustomize_renders_the_hub_services():
    done = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(done.stdout) if d}
    assert {("Deployment", "hub-web"), ("Deployment", "hub-dispatcher"), ("Service", "hub-web"), ("ConfigMap", "hub-config")} <= rendered


def test_the_dispatchers_heartbeat_file_is_what_its_liveness_probe_reads(tmp_path, database_url, secret_keys):
    deployment = next(d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == "hub-dispatcher")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (variable,) = [e for e in container["env"] if e["name"] == "HUB_DISPATCH_HEARTBEAT"]
    assert variable["value"] in " ".join(container["livenessProbe"]["exec"]["command"])
    heartbeat = tmp_path / "dispatch-heartbeat"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
           "HUB_DISPATCH_HEARTBEAT": str(heartbeat)}
    proc = subprocess.Popen([str(BIN / "hub"), "webhooks", "dispatch", "--progress-every", "0.5"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert heartbeat.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no heartbeat"
        first = heartbeat.stat().st_mtime
        time.sleep(1.5)
        assert heartbeat.stat().st_mtime > first  # touched again: the probe's age check passes while it runs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
