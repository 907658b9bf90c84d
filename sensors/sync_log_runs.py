"""Close the `sync_log` rows of runs that died, so none stays `started` forever.

A step that raises closes its own row (hub.sync_log.record_sync). These sensors cover what
that cannot:
- a run that failed or was canceled before or around the step (run-status sensors, which
  also carry Dagster's failure message);
- a run launched through the daemon whose worker was killed: run monitoring (dagster.yaml)
  sees the dead worker and marks the run failed within seconds; the failed-run sensor, or the
  sweeper below, then closes its rows (the sweeper closes rows of any run that has ended, or
  that Dagster no longer knows);
- a run started from the command line (`dagster asset materialize`) and killed: no daemon
  watches it, so Dagster would show it STARTED until `max_runtime_seconds` (6 h). Its rows'
  heartbeats stop (hub/sync_log.py), so the sweeper closes them once the heartbeat is
  HEARTBEAT_STALE_AFTER old, and marks the run itself failed;
- rows written outside Dagster (no run id) left `started`: by their heartbeat too, or, for
  rows from before heartbeats, after STALE_AFTER.
"""

from datetime import timedelta

import dagster as dg

from hub import sync_log
from hub.sync_log import close_orphaned, close_runs_failed, open_run_ids
from resources import HubDatabase

STALE_AFTER = timedelta(hours=6)
MAX_RUNS_PER_TICK = 200  # keeps a tick far below the 60 s sensor timeout


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


def ended_runs(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, str]:
    """Of `run_ids`, those that have ended or are unknown, with how they ended."""
    ended: dict[str, str] = {}
    for run_id in run_ids[:MAX_RUNS_PER_TICK]:
        run = instance.get_run_by_id(run_id)
        if run is None:
            ended[run_id] = "is unknown to Dagster"
        elif run.is_finished:
            ended[run_id] = f"ended {run.status.value}"
    return ended


@dg.sensor(
    name="sync_log_sweeper_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Closes sync_log rows whose run ended without closing them, and abandoned rows.",
)
def sync_log_sweeper_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    engine = hub_db.get_engine()
    found = close_orphaned(engine, ended_runs(context.instance, open_run_ids(engine)), STALE_AFTER,
                           sync_log.HEARTBEAT_STALE_AFTER)
    failed = fail_dead_runs(context.instance, found.dead_runs)
    return dg.SkipReason(f"closed {found.closed} orphaned sync_log row(s)"
                         + (f"; marked {failed} dead run(s) failed" if failed else ""))


def fail_dead_runs(instance: dg.DagsterInstance, run_ids: set[str]) -> int:
    """Mark failed the runs whose process stopped heartbeating and that Dagster still thinks
    are going (a killed CLI run): the UI then shows what happened, and the run-failure sensor
    sees it like any other failure."""
    failed = 0
    for run_id in sorted(run_ids)[:MAX_RUNS_PER_TICK]:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, "its process died: the sync_log heartbeat stopped (killed?)")
            failed += 1
    return failed
