"""Close the `sync_log` rows of runs that died, so none stays `started` forever.

A step that raises closes its own row (hub.sync_log.record_sync). These sensors cover what
that cannot: a run canceled, a run worker killed or lost (Dagster's run monitoring marks
it failed, see dagster.yaml), a failure before the step began.
"""

import dagster as dg

from hub.sync_log import close_runs_failed
from resources import HubDatabase


@dg.run_failure_sensor(
    name="sync_log_failed_runs_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Marks sync_log rows left 'started' by a failed run as failed.",
)
def sync_log_failed_runs_sensor(context: dg.RunFailureSensorContext, hub_db: HubDatabase):
    reason = context.failure_event.message or "run failed"
    closed = close_runs_failed(hub_db.get_engine(), context.dagster_run.run_id, reason)
    context.log.info(f"run {context.dagster_run.run_id}: closed {closed} sync_log row(s)")


@dg.run_status_sensor(
    name="sync_log_canceled_runs_sensor",
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Marks sync_log rows left 'started' by a canceled run as failed.",
)
def sync_log_canceled_runs_sensor(context: dg.RunStatusSensorContext, hub_db: HubDatabase):
    closed = close_runs_failed(hub_db.get_engine(), context.dagster_run.run_id, "run canceled")
    context.log.info(f"run {context.dagster_run.run_id}: closed {closed} sync_log row(s)")
