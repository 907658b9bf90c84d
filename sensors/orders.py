"""Launch the order job when orders or status events wait.

The sensor decides *when* to run, never *which* orders: the job claims rows itself with
`FOR UPDATE SKIP LOCKED`, so an order committed late with a lower id is still taken, and
nothing is processed twice even if two runs overlap. Each tick that launches a run moves
a generation counter in the cursor and uses it as the `run_key`: a tick evaluated again
after a daemon restart (cursor not yet advanced) asks for the same key, which Dagster
launches only once.

Backoff: when the waiting work is exactly what it was at the last launch (no run took
anything and nothing new arrived, e.g. one integration's credentials are broken), the next
launch waits 10 s, 20 s, 40 s ... up to 5 minutes. Anything new resets it at once, so a
healthy marketplace's orders are never held back by a broken one.
"""

import time

import dagster as dg

from hub.orders.processing import pending_work
from resources import HubDatabase

ORDERS_JOB = "process_orders_job"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
BACKOFF_BASE_S, BACKOFF_MAX_S = 5, 300


def parse_cursor(cursor: str | None, now: float) -> tuple[str, int, str, int, float]:
    """(epoch, generation, signature at the last launch, strikes, not before) from
    "<epoch>:<generation>[:<signature>:<strikes>:<not before>]"."""
    parts = (cursor or f"{int(now)}:0").split(":")
    epoch, generation = parts[0], int(parts[1] or 0)
    if len(parts) >= 5:
        return epoch, generation, parts[2], int(parts[3]), float(parts[4])
    return epoch, generation, "", 0, 0.0


def next_launch(signature: str, last_signature: str, strikes: int, not_before: float, now: float) -> tuple[bool, int, float]:
    """(launch now?, strikes, not before) for the waiting work's `signature`."""
    if signature != last_signature:
        return True, 0, 0.0
    if now < not_before:
        return False, strikes, not_before
    strikes += 1
    return True, strikes, now + min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** strikes)


@dg.sensor(
    name="new_orders_sensor",
    job_name=ORDERS_JOB,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches process_orders_job when delivery orders or status events are waiting.",
)
def new_orders_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    work = pending_work(hub_db.get_engine())
    if not work.orders and not work.events:
        return dg.SkipReason("no orders or status events waiting")
    # one run at a time: a run claims whatever is waiting when it gets there, and runs are
    # seconds long, so a second one would only contend for the same rows
    if context.instance.get_run_records(dg.RunsFilter(job_name=ORDERS_JOB, statuses=IN_FLIGHT), limit=1):
        return dg.SkipReason(f"{work.orders} order(s), {work.events} event(s) waiting; a run is in flight")
    now = time.time()
    # the epoch (when this cursor was born) keeps keys unique even if the cursor is reset
    epoch, generation, last_signature, strikes, not_before = parse_cursor(context.cursor, now)
    launch, strikes, not_before = next_launch(work.signature, last_signature, strikes, not_before, now)
    if not launch:
        return dg.SkipReason(f"{work.orders} order(s), {work.events} event(s) waiting, unchanged since the last run "
                             f"(e.g. a provider refusing us): next try in {not_before - now:.0f} s")
    generation += 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"orders-{epoch}-{generation}",
                                    tags={"orders_waiting": str(work.orders), "events_waiting": str(work.events)})],
        cursor=f"{epoch}:{generation}:{work.signature}:{strikes}:{not_before:.0f}",
    )
