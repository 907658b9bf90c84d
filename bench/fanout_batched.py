"""Prototype for bench/nightly_fanout.py: batched nightly runs. Bench only, not product code.

The hub's code location (pipelines.definitions) with its sync schedules replaced by one
"batch" schedule per provider: at the same tick, the same due integrations (the hub's own
selection, hub/sync/schedule_candidates.py, with a run-key lookup as the real schedules do)
are split into `HUB_BENCH_BATCHES` runs per provider (default 8, the production per-schedule
run limit, so both modes run as many processes at once), and each batch run syncs its K
integrations one after another in ONE process.

What a batch run does per integration is the product's own job: `<provider>_sync_job` (every
asset and check of one integration, what a per-run run executes) run in-process
(`execute_in_process`) on the same instance, so each integration still gets its own Dagster
run record (status, events, asset partitions, sync_log rows) and a failing integration fails
only its own inner run. What the batch saves is the per-run machinery: the queue, the launch,
a new process and its imports. What it gives up is in bench/README.md (nightly_fanout.py).

Everything else (assets, the other jobs, schedules and sensors, resources, executor) is the
production location's, so the daemon has the same other work in both modes.
"""


import os
import time
from datetime import datetime, timezone

import dagster as dg

from hub.crypto import Keyring
from hub.providers.registry import with_capability
from hub.sync.schedule_candidates import due_tonight, load_candidates
from pipelines import definitions as production
from pipelines.partitions import SYNC_PROVIDERS
from pipelines.schedules import SYNC_SCHEDULES
from resources import HubDatabase

BATCHES = int(os.environ.get("HUB_BENCH_BATCHES", "8"))
PARENT_TAG, NIGHT_KEY_TAG = "bench/batch_run", "bench/night_key"  # on each inner run: its batch, its "<partition>:<date>"


def _batch_job(provider: str) -> dg.JobDefinition:
    @dg.op(name=f"{provider}_sync_batch", config_schema={"partition_keys": [str], "night_keys": [str]})
    def sync_batch(context: dg.OpExecutionContext) -> None:
        job = production.defs.resolve_job_def(f"{provider}_sync_job")
        keys, nights = context.op_config["partition_keys"], context.op_config["night_keys"]
        failed = []
        for key, night in zip(keys, nights):
            t0 = time.perf_counter()
            result = job.execute_in_process(partition_key=key, instance=context.instance, raise_on_error=False,
                                            tags={PARENT_TAG: context.run_id, NIGHT_KEY_TAG: night, "trigger": "nightly-batch"})
            context.log.info(f"{key}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t0:.2f} s (run {result.run_id})")
            if not result.success:
                failed.append(key)
        if failed:
            raise dg.Failure(f"{len(failed)} of {len(keys)} integrations failed: {', '.join(failed[:10])}")

    @dg.job(name=f"{provider}_batch_job", description=f"Bench prototype: syncs a batch of {provider} integrations in one run.")
    def batch_job():
        sync_batch()

    return batch_job


BATCH_JOBS = {provider: _batch_job(provider) for provider in SYNC_PROVIDERS}


def _requests(provider: str, due: list[tuple[str, str]], when: datetime) -> list[dg.RunRequest]:
    """`due` split round-robin into at most BATCHES runs."""
    n = min(BATCHES, len(due))
    batches = [due[i::n] for i in range(n)]
    op = f"{provider}_sync_batch"
    return [dg.RunRequest(run_key=f"{provider}-batch-{i}:{when.isoformat()}", tags={"trigger": "nightly-batch"},
                          run_config={"ops": {op: {"config": {"partition_keys": [p for p, _ in batch],
                                                              "night_keys": [k for _, k in batch]}}}})
            for i, batch in enumerate(batches)]


def _not_yet_synced(instance: dg.DagsterInstance, due: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """As pipelines.schedules.not_yet_run, over the inner runs' night keys."""
    if not due:
        return []
    runs = instance.get_runs(dg.RunsFilter(tags={NIGHT_KEY_TAG: [key for _, key in due]}))
    done = {run.tags.get(NIGHT_KEY_TAG) for run in runs}
    return [(p, k) for p, k in due if k not in done]


def _batch_schedule(provider: str, nightly: bool) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"{provider}_batch_schedule", job=BATCH_JOBS[provider], cron_schedule="0 * * * *",
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def _schedule(context: dg.ScheduleEvaluationContext, hub_db: HubDatabase):
        now = (context.scheduled_execution_time or datetime.now(timezone.utc)).astimezone(timezone.utc)
        candidates = load_candidates(hub_db.get_engine(), Keyring.from_env(), provider)
        if nightly:
            due = _not_yet_synced(context.instance, due_tonight(candidates, now))
        else:  # as procore_hourly_schedule: every candidate, keyed by the UTC hour
            hour = now.strftime("%Y-%m-%dT%H")
            due = [(c.partition_key, f"{c.partition_key}:{hour}") for c in candidates]
        if not due:
            return dg.SkipReason(f"no {provider} integration due")
        return _requests(provider, due, now)

    return _schedule


BATCH_SCHEDULES = [_batch_schedule(p, nightly=p in with_capability("accounting")) for p in SYNC_PROVIDERS]
_replaced = {s.name for s in SYNC_SCHEDULES}

defs = dg.Definitions(
    assets=production.defs.assets,
    asset_checks=production.defs.asset_checks,
    jobs=[*production.defs.jobs, *BATCH_JOBS.values()],
    schedules=[*(s for s in production.defs.schedules if s.name not in _replaced), *BATCH_SCHEDULES],
    sensors=production.defs.sensors,
    resources=production.RESOURCES,
    executor=production.defs.executor,
)
