"""Launch the order job when orders or status events wait.

The sensor decides *when* to run, never *which* orders: the job claims rows itself with
`FOR UPDATE SKIP LOCKED`, so an order committed late with a lower id is still taken, and
nothing is processed twice even if two runs overlap. Each tick that launches a run moves
a generation counter in the cursor and uses it as the `run_key`: a tick evaluated again
after a daemon restart (cursor not yet advanced) asks for the same key, which Dagster
launches only once.
"""

import time

import dagster as dg

from hub.orders.processing import pending_work
from resources import HubDatabase

ORDERS_JOB = "process_orders_job"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


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
    # one run at a time: a run claims whatever is waiting when it gets there, and runs are
    # seconds long, so a second one would only contend for the same rows
    if context.instance.get_run_records(dg.RunsFilter(job_name=ORDERS_JOB, statuses=IN_FLIGHT), limit=1):
        return dg.SkipReason(f"{orders} order(s), {events} event(s) waiting; a run is in flight")
    # cursor "<epoch>:<generation>": the epoch (when this cursor was born) keeps keys unique
    # even if the cursor is reset, so a reset never collides with old run keys
    epoch, _, generation = (context.cursor or f"{int(time.time())}:0").partition(":")
    generation = str(int(generation or 0) + 1)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"orders-{epoch}-{generation}", tags={"orders_waiting": str(orders), "events_waiting": str(events)})],
        cursor=f"{epoch}:{generation}",
    )
