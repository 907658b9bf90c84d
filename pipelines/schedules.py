"""Schedules that depend on each integration's own clock.

`accounting_nightly_schedule` is evaluated at the top of every hour and asks for one run per
active accounting integration whose company's local time has just turned its sync hour
(02:00 unless the integration config sets `sync_hour`). The run key is the partition and the
local date, so a re-evaluated tick never syncs an integration twice on one night.
"""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from hub.crypto import Keyring
from hub.integrations import CONFIG_PURPOSE, partition_key
from hub.schema import company, integration
from resources import HubDatabase

DEFAULT_SYNC_HOUR = 2
ACCOUNTING_GROUPS = ("quickbooks", "xero")

accounting_sync_job = dg.define_asset_job(
    "accounting_sync_job",
    selection=dg.AssetSelection.groups(*ACCOUNTING_GROUPS),
    description="Pull every accounting stream of one integration (partition); launched nightly, or by 'sync now'.",
)


def due_integrations(rows, now_utc: datetime, keyring: Keyring | None) -> list[tuple[str, str]]:
    """(partition key, local date) of the integrations whose sync hour is `now_utc`'s hour
    in their company's timezone."""
    due = []
    for provider, integration_id, tz, config_envelope in rows:
        local = now_utc.astimezone(ZoneInfo(tz))
        hour = DEFAULT_SYNC_HOUR
        if keyring is not None:
            hour = int(keyring.decrypt(config_envelope, CONFIG_PURPOSE).get("sync_hour", DEFAULT_SYNC_HOUR))
        if local.hour == hour:
            due.append((partition_key(provider, integration_id), local.date().isoformat()))
    return due


@dg.schedule(
    name="accounting_nightly_schedule",
    job=accounting_sync_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly accounting sync at each company's local sync hour (02:00 by default).",
)
def accounting_nightly_schedule(context: dg.ScheduleEvaluationContext, hub_db: HubDatabase):
    now = context.scheduled_execution_time or datetime.now(timezone.utc)
    with hub_db.get_engine().connect() as conn:
        rows = conn.execute(
            sa.select(integration.c.provider, integration.c.id, company.c.timezone, integration.c.config)
            .join(company, company.c.id == integration.c.company_id)
            .where(integration.c.is_active, integration.c.integration_type == "accounting")
        ).all()
    due = due_integrations(rows, now.astimezone(timezone.utc), Keyring.from_env())
    if not due:
        return dg.SkipReason(f"no accounting integration has its sync hour at {now.isoformat()}")
    return [dg.RunRequest(run_key=f"{key}:{day}", partition_key=key, tags={"trigger": "nightly"}) for key, day in due]
