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
  the next night, never by the schedule an hour later.
- `procore_hourly_schedule`: one run per active Procore integration every hour, keyed by the
  UTC hour.
Integrations whose preferences switch every stream off are not scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from hub.crypto import Keyring
from hub.integrations import CONFIG_PURPOSE, partition_key
from hub.providers.registry import with_capability
from hub.schema import company, integration
from hub.sync import preferences
from pipelines.partitions import SYNC_PROVIDERS
from resources import HubDatabase

SYNC_JOBS: dict[str, dg.UnresolvedAssetJobDefinition] = {
    provider: dg.define_asset_job(
        f"{provider}_sync_job",
        selection=dg.AssetSelection.groups(provider),
        description=f"Every {provider} stream of one integration (partition): scheduled, or launched by 'sync now'.",
    )
    for provider in SYNC_PROVIDERS
}


@dataclass(frozen=True)
class Candidate:
    provider: str
    integration_id: int
    timezone: str
    prefs: preferences.SyncPreferences

    @property
    def partition_key(self) -> str:
        return partition_key(self.provider, self.integration_id)


def load_candidates(hub_db: HubDatabase, provider: str, keyring: Keyring) -> list[Candidate]:
    """Active integrations of `provider` with at least one stream switched on."""
    with hub_db.get_engine().connect() as conn:
        rows = conn.execute(
            sa.select(integration.c.id, company.c.timezone, integration.c.config)
            .join(company, company.c.id == integration.c.company_id)
            .where(integration.c.is_active, integration.c.provider == provider)
            .order_by(integration.c.id)
        ).all()
    candidates = [
        Candidate(provider, row.id, row.timezone, preferences.from_config(provider, keyring.decrypt(row.config, CONFIG_PURPOSE)))
        for row in rows
    ]
    return [c for c in candidates if c.prefs.any_enabled]


# tags the scheduler puts on the runs it launches (dagster._core.storage.tags, not exported)
RUN_KEY_TAG, SCHEDULE_NAME_TAG = "dagster/run_key", "dagster/schedule_name"


def due_tonight(candidates: list[Candidate], now_utc: datetime) -> list[tuple[str, str]]:
    """(partition key, run key) of those whose sync hour has come on their company's local date
    at `now_utc` (whether or not that night's run happened yet: see `not_yet_run`)."""
    due = []
    for c in candidates:
        local = now_utc.astimezone(ZoneInfo(c.timezone))
        if local.hour >= c.prefs.hour:
            due.append((c.partition_key, f"{c.partition_key}:{local.date().isoformat()}"))
    return due


def not_yet_run(instance: dg.DagsterInstance, schedule_name: str, due: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The entries of `due` whose run key no run of this schedule carries yet."""
    if not due:
        return []
    runs = instance.get_runs(dg.RunsFilter(tags={SCHEDULE_NAME_TAG: schedule_name, RUN_KEY_TAG: [key for _, key in due]}))
    done = {run.tags.get(RUN_KEY_TAG) for run in runs}
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
        due = not_yet_run(context.instance, name, due_tonight(load_candidates(hub_db, provider, Keyring.from_env()), now))
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
    candidates = load_candidates(hub_db, "procore", Keyring.from_env())
    if not candidates:
        return dg.SkipReason("no active Procore integration")
    hour = now.strftime("%Y-%m-%dT%H")
    return [dg.RunRequest(run_key=f"{c.partition_key}:{hour}", partition_key=c.partition_key, tags={"trigger": "hourly"})
            for c in candidates]


SYNC_SCHEDULES = [*(_nightly(provider) for provider in with_capability("accounting")), procore_hourly_schedule]
