"""The nightly fan-out through Dagster's own daemon code, small: the scheduler's tick
(`launch_scheduled_runs`, what `dagster-daemon` runs every minute) evaluates the real sync
schedules at a chosen hour, and the run queue (`QueuedRunCoordinatorDaemon`) dequeues under
the production limits of deploy/dagster.yaml, scaled down (2 runs per sync schedule instead
of 8), into runs that execute for real against the emulators (tests/fanout_location.py).
Timings are measured by bench/nightly_fanout.py, never asserted here.

- each provider's schedule stays within its run limit (every dequeue and the run records);
- a provider's outage (Xero answering 503 to every call) fails its runs after one step's
  bounded retries, with the error in sync_log, while Procore's runs run beside them and succeed;
- a daemon killed in the middle of submitting a tick and restarted, then the next hour's tick,
  leave every due integration with exactly one run of its run key;
- a run process stays light: loading the code location imports no scikit-learn (the training
  step imports it), which would cost every sync run ~1.4 s of CPU and ~120 MB.
"""

import copy
import logging
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._scheduler.scheduler import launch_scheduled_runs

from emulators.procore import create_emulator as procore_emulator
from emulators.serve import serve
from emulators.xero import create_emulator as xero_emulator
from hub import db
from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import project, sync_log
from pipelines.schedules import RUN_KEY_TAG, SCHEDULE_NAME_TAG

ROOT = Path(__file__).resolve().parent.parent
TICK = datetime(2026, 12, 8, 7, 0, tzinfo=timezone.utc)  # 02:00 in New York, 01:00 in Chicago
HOURS = {"America/New_York": 2, "America/Chicago": 1}
PER_SCHEDULE = 2  # the production limit (8) scaled down
RUNS = PER_SCHEDULE + 1  # per provider: one more than may run at once
CLIENT = {"client_id": "hub-demo", "client_secret": "hub-demo-secret"}
PROCORE = 562949953421777
QB, XERO, PROCORE_HOURLY = "quickbooks_nightly_schedule", "xero_nightly_schedule", "procore_hourly_schedule"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
log = logging.getLogger("test_nightly_fanout")


def scaled_config(pg_url: str) -> dict:
    """deploy/dagster.yaml's queue and limits, with each sync schedule's limit at PER_SCHEDULE;
    runs in threads of this process; no compute-log capture (it redirects file descriptors)."""
    production = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    concurrency = copy.deepcopy(production["concurrency"])
    scaled = [limit for limit in concurrency["runs"]["tag_concurrency_limits"] if limit["key"] == "dagster/schedule_name"]
    assert scaled and all(limit["limit"] > PER_SCHEDULE for limit in scaled)
    for limit in scaled:
        limit["limit"] = PER_SCHEDULE
    return {
        "storage": {"postgres": {"postgres_url": pg_url}},
        "run_coordinator": production["run_coordinator"],
        "concurrency": concurrency,
        "run_launcher": {"module": "tests.fanout_location", "class": "ThreadRunLauncher"},
        "compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
    }


@pytest.fixture
def instance(server_url):
    """A Dagster instance of its own (schedule state and ticks start empty) on a fresh database."""
    url = server_url.set(database=f"dagster_fanout_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    pg = url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        with dg.instance_for_test(overrides=scaled_config(pg)) as found:
            # every run's setup calls logging.config.dictConfig (even with no python_logs
            # configured), which deadlocks against runs logging in other threads; a run process
            # is alone, and these runs are threads of one process
            found.get_yaml_python_handlers = lambda: []
            yield found
    finally:
        db.drop_database(url)


class Daemon:
    """The daemon's scheduler and run queue over the test code location; a new Daemon on the
    same instance is a restarted daemon (its in-memory state is gone, the storage is not)."""

    def __init__(self, instance):
        origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="tests.fanout_location", attribute="defs",
                                                                                working_directory=str(ROOT)),
                                             location_name="integrations_hub")
        self._context = create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance)
        self.context = self._context.__enter__()
        self.iteration_times: dict = {}

    def tick(self, at: datetime) -> None:
        """One scheduler iteration with the clock at `at`, as the daemon's loop runs it."""
        for _ in launch_scheduled_runs(self.context, log, end_datetime_utc=at, iteration_times=self.iteration_times):
            pass

    def close(self) -> None:
        self._context.__exit__(None, None, None)


@pytest.fixture
def daemons(instance):
    started: list[Daemon] = []

    def start() -> Daemon:
        started.append(Daemon(instance))
        return started[-1]

    yield start
    for daemon in started:
        daemon.close()


def _companies(conn) -> list[int]:
    return [store.create_company(conn, f"Company {tz}", tz) for tz in HOURS]


def _runs(instance, schedule: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={SCHEDULE_NAME_TAG: schedule})))


def _peak(records) -> int:
    """Most runs in progress at once, from their start and end times."""
    edges = sorted([(r.start_time, 1) for r in records] + [(r.end_time, -1) for r in records], key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_each_schedule_stays_within_its_limit_and_an_outage_fails_only_its_own_runs(instance, daemons, clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    procore = procore_emulator(projects=1, rfis_per_project=3, submittals_per_project=2, daily_logs_per_project=2, company_id=PROCORE)
    tenants = [f"a3b1c5d7-0000-4000-8000-00000000010{n}" for n in range(RUNS)]  # one Xero organisation per integration
    xero = xero_emulator(contacts=4, invoices=4, accounts=8, tenant_id=tenants[0], extra_tenants={t: t for t in tenants[1:]})
    xero.core.faults.configure(error_rate_5xx=1.0)  # the outage: every API call answers 503 (token refreshes still work)
    remote_project = next(iter(procore.state.projects))
    with serve(procore.app) as purl, serve(xero.app) as xurl:
        with clean_db.begin() as conn:
            companies = _companies(conn)
            ids = {"procore": [], "xero": []}
            for n in range(RUNS):
                company, hour = companies[n % 2], list(HOURS.values())[n % 2]
                ids["procore"].append(procore_id := store.add_integration(
                    conn, keyring, company_id=company, provider="procore", name=f"Procore {n}", active=True,
                    config={"company_id": str(PROCORE), "base_url": purl, "token_url": purl + "/oauth/token"},
                    credentials={**CLIENT, "refresh_token": procore.core.oauth.issue_refresh_token("hub-demo", {"company_id": PROCORE})}))
                conn.execute(sa.insert(project).values(company_id=company, name=f"Job {n}", integration_id=procore_id,
                                                       remote_id=str(remote_project), linked_at=sa.func.now()))
                ids["xero"].append(store.add_integration(
                    conn, keyring, company_id=company, provider="xero", name=f"Xero {n}", active=True,
                    config={"tenant_id": tenants[n], "base_url": xurl, "token_url": xurl + "/connect/token", "sync": {"hour": hour}},
                    credentials={**CLIENT, "refresh_token": xero.core.oauth.issue_refresh_token("hub-demo", {"tenantId": tenants[n]})}))
        for provider, found in ids.items():
            instance.add_dynamic_partitions(f"{provider}_integrations", [f"{provider}-{i}" for i in found])

        daemon = daemons()
        daemon.tick(TICK - timedelta(minutes=1))  # the daemon was running before the hour
        daemon.tick(TICK + timedelta(seconds=1))
        assert len(_runs(instance, PROCORE_HOURLY)) == len(_runs(instance, XERO)) == RUNS

        most = {PROCORE_HOURLY: 0, XERO: 0}
        side_by_side = False
        deadline = time.monotonic() + 120
        with QueuedRunCoordinatorDaemon(interval_seconds=1) as queue:
            while True:
                for _ in queue.run_iteration(daemon.context):
                    pass
                running = {name: len(instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS, tags={SCHEDULE_NAME_TAG: name})))
                           for name in most}
                most = {name: max(most[name], running[name]) for name in most}
                side_by_side = side_by_side or all(running.values())
                if all(r.is_finished for name in most for r in _runs(instance, name)):
                    break
                assert time.monotonic() < deadline, "the runs did not finish in 120 s"
                time.sleep(0.1)
        instance.run_launcher.join(30)

    status = {name: sorted(r.status.value for r in _runs(instance, name)) for name in most}
    assert status == {PROCORE_HOURLY: ["SUCCESS"] * RUNS, XERO: ["FAILURE"] * RUNS}
    # the limit held at every dequeue, and over the runs' whole lives (their records)
    assert 0 < most[PROCORE_HOURLY] <= PER_SCHEDULE and 0 < most[XERO] <= PER_SCHEDULE
    for name in most:
        records = instance.get_run_records(dg.RunsFilter(tags={SCHEDULE_NAME_TAG: name}))
        assert 0 < _peak(records) <= PER_SCHEDULE, name
    # the outage held nothing back: Procore's runs ran beside the failing Xero runs and did their work
    assert side_by_side
    assert procore.core.stats()["by_status"].keys() == {"200"}
    with clean_db.connect() as conn:
        rows = conn.execute(sa.select(sync_log.c.integration_id, sync_log.c.action, sync_log.c.status, sync_log.c.errors)).all()
    imported = {(r.integration_id, r.action) for r in rows if r.status == "completed"}
    assert {(i, "import_rfis") for i in ids["procore"]} <= imported
    # bounded: each Xero run's first step retried 3 times and gave up; its other steps did not call
    assert xero.core.stats()["by_status"] == {"503": RUNS * 3}
    failed = [r for r in rows if r.integration_id in ids["xero"]]
    assert failed and {r.status for r in failed} == {"failed"} and {r.integration_id for r in failed} == set(ids["xero"])
    messages = [r.errors[0]["message"] for r in failed]
    assert sum("not called" not in m for m in messages) == RUNS  # one step per run called and gave up
    assert all("Xero is unavailable [HTTP 503]" in m for m in messages)


def test_a_daemon_killed_mid_tick_then_restarted_requests_no_run_key_twice(instance, daemons, clean_db, secret_keys, monkeypatch):
    """The daemon dies while submitting the tick's runs: one run submitted, the next created but
    never submitted. The restarted daemon resumes the tick (Dagster re-evaluates it at the same
    time) and the next hour's tick finds every key: each integration has one run, none stranded."""
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company = _companies(conn)[0]
        ids = [store.add_integration(conn, keyring, company_id=company, provider="quickbooks", name=f"QuickBooks {n}", active=True,
                                     config={"realm_id": str(n), "sync": {"hour": 2}}, credentials={**CLIENT, "refresh_token": "r"})
               for n in range(3)]
    instance.add_dynamic_partitions("quickbooks_integrations", [f"quickbooks-{i}" for i in ids])
    expected = {f"quickbooks-{i}:2026-12-08" for i in ids}

    class Killed(BaseException):
        """The daemon's process dying: nothing in the scheduler catches it."""

    submitted = []
    submit = type(instance).submit_run

    def dies_on_the_second(self, run_id, workspace):
        if self.get_run_by_id(run_id).tags.get(SCHEDULE_NAME_TAG) == QB:
            if len(submitted) == 1:
                raise Killed()
            submitted.append(run_id)
        return submit(self, run_id, workspace)

    first = daemons()
    first.tick(TICK - timedelta(minutes=1))
    with monkeypatch.context() as patched, pytest.raises(Killed):
        patched.setattr(type(instance), "submit_run", dies_on_the_second)
        first.tick(TICK + timedelta(seconds=1))
    before = {r.tags[RUN_KEY_TAG]: r.status for r in _runs(instance, QB)}
    assert len(before) == 2 and sorted(s.value for s in before.values()) == ["NOT_STARTED", "QUEUED"]

    restarted = daemons()
    restarted.tick(TICK + timedelta(seconds=30))  # resumes the interrupted tick at 07:00
    restarted.tick(TICK + timedelta(hours=1, seconds=1))  # the next hour: every key has its run

    runs = _runs(instance, QB)
    assert sorted(r.tags[RUN_KEY_TAG] for r in runs) == sorted(expected)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}  # none created and left unsubmitted
    location = restarted.context.create_request_context().get_code_location("integrations_hub")
    schedule = next(iter(location.get_repositories().values())).get_schedule(QB)
    last = instance.get_ticks(schedule.get_remote_origin_id(), schedule.selector_id, limit=1)[0]
    assert last.status == TickStatus.SKIPPED and "without a run tonight" in last.skip_reason


def test_loading_the_code_location_imports_no_machine_learning():
    """Every run process (one per integration and night) imports pipelines.definitions first."""
    probe = ("import sys, pipelines.definitions; "
             "print(sorted(m for m in ('sklearn', 'scipy', 'hub.ai.training', 'hub.ai.model') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert found.stdout.strip() == "[]", found.stdout
