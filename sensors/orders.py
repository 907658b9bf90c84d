"""Launch the order job when orders or status events wait.

The sensor decides *when* to run, never *which* orders: the job claims rows itself with
`FOR UPDATE SKIP LOCKED`, so an order committed late with a lower id is still taken, and
nothing is processed twice even if two runs overlap. Each tick that launches a run moves
a generation counter in the cursor and uses it as the `run_key`: a tick evaluated again
after a daemon restart (cursor not yet advanced) asks for the same key, which Dagster
launches only once.
"""

import dagster as dg

from hub.orders.processing import pending_work
from resources import HubDatabase

ORDERS_JOB = "process_orders_job"
STARTING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


@dg.sensor(
    name="new_orders_sensor",
    job_name=ORDERS_JOB,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches process_orders_job when delivery orders or status events are waiting.",
)
def new_orders_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    orders, events = pending_work(hub_db.get_engine())
    if not orders and not events:
        return dg.SkipReason("no orders or status events waiting")
    # a run that has not started yet will claim everything waiting now: do not queue another
    waiting_runs = context.instance.get_run_records(dg.RunsFilter(job_name=ORDERS_JOB, statuses=STARTING), limit=1)
    if waiting_runs:
        return dg.SkipReason(f"{orders} order(s), {events} event(s) waiting; a run is about to start")
    generation = int(context.cursor or 0) + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"orders-{generation}", tags={"orders_waiting": str(orders), "events_waiting": str(events)})],
        cursor=str(generation),
    )
