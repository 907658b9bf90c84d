""""Sync now": launch an integration's sync job (`<provider>_sync_job`, one partition) on
the Dagster webserver, so the run is the same as a scheduled one and shows in the UI, and
optionally follow it to its end.

The webserver is found at HUB_DAGSTER_URL (default http://127.0.0.1:3000, the demo's
DAGSTER_PORT). The job needs the integration's dynamic partition, which the demo's sensors
add when an integration is connected. Under the demo's instance (the queued run coordinator)
the run waits as QUEUED until the daemon starts it; `follow` waits through that too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.errors import NotFoundError, ValidationError
from hub.providers import registry
from hub.schema import integration
from hub.sync.dagster_api import FINISHED, DagsterApi, RunEvent, RunProgress

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"

# the events worth a progress line: steps (one per asset) and materializations; the run's
# own start/end are reported by the status
PROGRESS_EVENTS = frozenset({"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED", "ASSET_MATERIALIZATION",
                             "ASSET_CHECK_EVALUATION", "RUN_FAILURE"})


def dagster_url() -> str:
    return os.environ.get("HUB_DAGSTER_URL") or DEFAULT_DAGSTER_URL


def job_name(provider: str) -> str:
    """The sync job of a provider (pipelines/schedules.py defines it under this name)."""
    return f"{provider}_sync_job"


def sync_target(engine: Engine, integration_id: int) -> tuple[str, str]:
    """(job name, partition key) of an integration that can be synced now; refuses with a
    reason otherwise. Reads the row's plain columns only: no secret key is needed."""
    with engine.connect() as conn:
        row = conn.execute(integration.select().with_only_columns(
            integration.c.id, integration.c.provider, integration.c.is_active).where(integration.c.id == integration_id)).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    if row.provider not in registry.syncing_providers():
        raise ValidationError(f"integration {integration_id} is a {row.provider} integration, which has no sync job "
                              f"(syncing providers: {', '.join(registry.syncing_providers())})")
    if not row.is_active:
        raise ValidationError(f"integration {integration_id} is inactive: `hub integration enable {integration_id}` first")
    return job_name(row.provider), store.partition_key(row.provider, row.id)


def is_run_of(progress: RunProgress, provider: str, integration_id: int) -> bool:
    """Whether a run is this integration's sync (its job, its partition): a page following a
    run by the id in its address shows only its own integration's runs."""
    return progress.job_name == job_name(provider) and progress.partition == store.partition_key(provider, integration_id)


def launch(api: DagsterApi, engine: Engine, integration_id: int) -> str:
    """Launch the integration's sync job; returns the run id."""
    job, partition = sync_target(engine, integration_id)
    return api.launch(job, partition, {"trigger": "sync_now"})


def follow(api: DagsterApi, run_id: str, on_event: Callable[[RunEvent], None], poll_seconds: float = 1.0) -> str:
    """Report the run's progress events until it finishes; returns its final status."""
    cursor = None
    while True:
        status = api.run_status(run_id)  # before the events, so the last events are read after the end
        events, cursor = api.events_after(run_id, cursor)
        for event in events:
            if event.event_type in PROGRESS_EVENTS:
                on_event(event)
        if status in FINISHED:
            return status
        time.sleep(poll_seconds)


def progress_line(event: RunEvent) -> str:
    """One line per event; a failed step says why (the first line of its error)."""
    line = event.message.splitlines()[0] if event.message else str(event.event_type)
    if event.error:
        line = f"{line.rstrip('.')}: {event.error.strip().splitlines()[0][:300]}"
    return f"  {line}"
