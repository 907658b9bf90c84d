"""What tests/test_nightly_fanout.py runs Dagster's own daemon code with, in the test process.

- `defs`: the hub's code location (pipelines.definitions: the same assets, checks, jobs,
  schedules and sensors) with the provider clients' retries shortened through the resource
  seam (resources/provider_clients.py): 3 attempts, waits of milliseconds, giving up on an
  account as production does. The behaviour is production's; only the waits are short.
- `ThreadRunLauncher`: launches a run the queue dequeues in a thread of this process (Dagster's
  `execute_run`, what a run process does), so runs of one test overlap for real while the
  queue's limits decide how many start.
"""

import threading
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.execution.api import execute_run
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils.hosted_user_process import recon_job_from_origin

from hub.providers.transport import RetrySettings
from pipelines import definitions as production
from resources import ProviderClients
from resources.provider_clients import RUN_RETRY

QUICK_RETRY = RetrySettings(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=2.0, timeout_s=5.0,
                            give_up_for_s=RUN_RETRY.give_up_for_s)


class QuickRetryClients(ProviderClients):
    def client(self, integration_id: int, retry: RetrySettings | None = None) -> Any:
        return super().client(integration_id, retry=retry or QUICK_RETRY)


defs = dg.Definitions(
    assets=production.defs.assets,
    asset_checks=production.defs.asset_checks,
    jobs=production.defs.jobs,
    schedules=production.defs.schedules,
    sensors=production.defs.sensors,
    resources={**production.RESOURCES,
               "provider_clients": QuickRetryClients(hub_db=production.hub_db, secrets=production.secrets)},
    executor=production.defs.executor,
)


class ThreadRunLauncher(RunLauncher, ConfigurableClass):
    """Each launched run executes in a thread of this process; `join()` (also called when the
    instance is disposed) waits for them all."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._threads: list[threading.Thread] = []
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> "ThreadRunLauncher":
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        job = recon_job_from_origin(context.job_code_origin)  # type: ignore[arg-type]
        instance = self._instance
        run_id = context.dagster_run.run_id

        def execute() -> None:
            execute_run(job, instance.get_run_by_id(run_id), instance)

        thread = threading.Thread(target=execute, name=f"run-{run_id[:8]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self, timeout: float = 30) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    def terminate(self, run_id: str) -> bool:
        raise NotImplementedError("runs in threads are not terminated")
