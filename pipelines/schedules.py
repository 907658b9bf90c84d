"""Sync jobs and the schedules that launch them, one pair per syncing provider.

- `<provider>_sync_job`: every asset of the provider (imports, checks, exports) for ONE
  integration (the partition). The nightly and hourly schedules launch it; it is also the
  "sync now" job the web views launch for one integration.
- `quickbooks_nightly_schedule`, `xero_nightly_schedule`: evaluated at the top of every hour;
  one run per active integration and local date, at the first tick at or after its
  company's local sync hour (02:00 unless its preferences say otherwise, `hub sync set
  --hour`). The run key is the partition and the local date, and a tick requests only the
  keys that have no run yet (asked of the Dagster instance, one query per tick).
  Why "at or after" rather than "at": on the spring-forward night 02:00 does not exist
  (America/New_York goes from 01:59 to 03:00), so an equality test never matches and the
  night is skipped; a tick missed while the daemon was down would be lost the same way. On
  the fall-back night an hour happens twice; the second one finds the run of the first.
  Dagster itself dedupes run keys only within one tick, hence the lookup here. The catch-up
  runs until local midnight: a daemon down over the sync hour, an integration connected (or
  its hour moved earlier) after that day's hour has passed, syncs at the next tick, once.
  Every run with the key counts, failed ones too: a failed night is retried by a person or
  the next night, never by the schedule an hour later. Except a run that was created but never
  submitted (NOT_STARTED: the daemon died between the two, in the middle of a tick's fan-out):
  nothing will ever launch it, so its key is requested again. The restarted daemon resumes
  that tick at the same time and Dagster then submits the very same run (no second record);
  at a later tick a new run is made and the stranded record stays, never run
  (tests/test_nightly_fanout.py).
- `procore_hourly_schedule`: one run per active Procore integration every hour, keyed by the
  UTC hour.
Integrations whose preferences switch every stream off are not scheduled. Which integrations
are candidates and which are due is the hub's (hub/sync/schedule_candidates.py); this module
adds what needs the Dagster instance: the run-key lookup.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from hub.crypto import Keyring
from hub.providers.registry import with_capability
from hub.sync.schedule_candidates import due_tonight, load_candidates
from hub.sync.sync_now import job_name as sync_job_name
from pipelines.partitions import SYNC_PROVIDERS
from resources import HubDatabase

SYNC_JOBS: dict[str, dg.UnresolvedAssetJobDefinition] = {
    provider: dg.define_asset_job(
        sync_job_name(provider),
        selection=dg.AssetSelection.groups(provider),
        description=f"Every {provider} stream of one integration (partition): scheduled, or launched by 'sync now'.",
    )
    for provider in SYNC_PROVIDERS
}


# tags the scheduler puts on the runs it launches (dagster._core.storage.tags, not exported)
RUN_KEY_TAG, SCHEDULE_NAME_TAG = "dagster/run_key", "dagster/schedule_name"


def not_yet_run(instance: dg.DagsterInstance, schedule_name: str, due: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The entries of `due` whose run key no submitted run of this schedule carries yet (a run
    created but never submitted does not count: see the module docstring)."""
    if not due:
        return []
    runs = instance.get_runs(dg.RunsFilter(tags={SCHEDULE_NAME_TAG: schedule_name, RUN_KEY_TAG: [key for _, key in due]}))
    done = {run.tags.get(RUN_KEY_TAG) for run in runs if run.status != dg.DagsterRunStatus.NOT_STARTED}
    return [(partition, key) for partition, key in due if key not in done]


def _nightly(provider: str) -> dg.ScheduleDefinition:
    name = f"{provider}_nightly_schedule"

    @dg.schedule(
        name=name,
        job=SYNC_JOBS[provider],
        cron_schedule="0 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly {provider} sync at each company's local sync hour (02:00 by default), "
                    "or at the first tick after it that day.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, hub_db: HubDatabase):
        now = (context.scheduled_execution_time or datetime.now(timezone.utc)).astimezone(timezone.utc)
        due = not_yet_run(context.instance, name, due_tonight(load_candidates(hub_db.get_engine(), Keyring.from_env(), provider), now))
        if not due:
            return dg.SkipReason(f"no {provider} integration is due at {now.isoformat()} without a run tonight")
        return [dg.RunRequest(run_key=key, partition_key=partition, tags={"trigger": "nightly"}) for partition, key in due]

    return _schedule


@dg.schedule(
    name="procore_hourly_schedule",
    job=SYNC_JOBS["procore"],
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly Procore sync (RFIs, submittals, daily logs, documents) of every active Procore integration.",
)
def procore_hourly_schedule(context: dg.ScheduleEvaluationContext, hub_db: HubDatabase):
    now = (context.scheduled_execution_time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    candidates = load_candidates(hub_db.get_engine(), Keyring.from_env(), "procore")
    if not candidates:
        return dg.SkipReason("no active Procore integration")
    hour = now.strftime("%Y-%m-%dT%H")
    return [dg.RunRequest(run_key=f"{c.partition_key}:{hour}", partition_key=c.partition_key, tags={"trigger": "hourly"})
            for c in candidates]


SYNC_SCHEDULES = [*(_nightly(provider) for provider in with_capability("accounting")), procore_hourly_schedule]
