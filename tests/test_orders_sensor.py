"""new_orders_sensor: when to launch the order job (the job itself claims the rows)."""

import dagster as dg
import pytest
import sqlalchemy as sa

from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import external_order, inbound_event
from pipelines.definitions import defs
from resources import HubDatabase
from sensors.orders import ORDERS_JOB, new_orders_sensor


@pytest.fixture
def uber(clean_db, secret_keys):
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Bella")
        return store.add_integration(conn, Keyring(secret_keys), company_id=company_id, provider="ubereats",
                                     config={"store_id": "s"}, credentials={"client_id": "c", "client_secret": "x"}, active=True)


def _tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"hub_db": HubDatabase()})
    return new_orders_sensor(context), context


def _order(engine, integration_id, external_id):
    with engine.begin() as conn:
        conn.execute(sa.insert(external_order).values(integration_id=integration_id, external_id=external_id, raw_data={}))


def test_nothing_waiting_is_a_skip(uber, dagster_instance):
    result, _ = _tick(dagster_instance)
    assert isinstance(result, dg.SkipReason) and "no orders" in result.skip_message


def test_waiting_orders_launch_a_run_with_a_generation_key(uber, clean_db, dagster_instance):
    _order(clean_db, uber, "o-1")
    first, _ = _tick(dagster_instance, cursor="1700000000:41")
    assert [r.run_key for r in first.run_requests] == ["orders-1700000000-42"] and first.cursor.startswith("1700000000:42:")
    assert first.run_requests[0].tags["orders_waiting"] == "1"
    # the same tick evaluated again (daemon restarted before it saved the cursor): same key,
    # which Dagster launches once
    again, _ = _tick(dagster_instance, cursor="1700000000:41")
    assert [r.run_key for r in again.run_requests] == ["orders-1700000000-42"]
    # a fresh cursor (reset) starts a new epoch: no collision with the old keys
    fresh, _ = _tick(dagster_instance)
    epoch, generation = fresh.cursor.split(":")[:2]
    assert generation == "1" and int(epoch) > 1700000000


def test_status_events_alone_also_launch_a_run(uber, clean_db, dagster_instance):
    with clean_db.begin() as conn:
        conn.execute(sa.insert(inbound_event).values(integration_id=uber, provider="ubereats", event_id="e1",
                                                     event_type="orders.cancel", payload={}))
    result, _ = _tick(dagster_instance)
    assert result.run_requests[0].tags["events_waiting"] == "1"


def test_no_second_run_while_one_is_in_flight(uber, clean_db, dagster_instance):
    _order(clean_db, uber, "o-2")
    job = defs.resolve_job_def(ORDERS_JOB)
    for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
        run = dagster_instance.create_run_for_job(job, status=status)
        try:
            result, _ = _tick(dagster_instance)
            assert isinstance(result, dg.SkipReason) and "a run is in flight" in result.skip_message
        finally:
            dagster_instance.report_run_canceled(run)
    result, _ = _tick(dagster_instance)
    assert len(result.run_requests) == 1


def test_unchanged_work_backs_off_and_anything_new_resets_it(uber, clean_db, dagster_instance):
    """Work that no run could take (a provider refusing us) is retried after 10, 20, 40 s...,
    not on every tick; a new order brings the next run at once."""
    from sensors.orders import next_launch

    _order(clean_db, uber, "o-stuck")
    first, _ = _tick(dagster_instance)
    assert len(first.run_requests) == 1
    second, _ = _tick(dagster_instance, cursor=first.cursor)  # the run took nothing: same work
    assert len(second.run_requests) == 1 and second.cursor.split(":")[3] == "1"
    third, _ = _tick(dagster_instance, cursor=second.cursor)
    assert isinstance(third, dg.SkipReason) and "unchanged since the last run" in third.skip_message
    _order(clean_db, uber, "o-new")
    fourth, _ = _tick(dagster_instance, cursor=second.cursor)
    assert len(fourth.run_requests) == 1 and fourth.cursor.split(":")[3] == "0"
    # the schedule of waits, capped at 5 minutes
    waits, strikes, not_before, now = [], 0, 0.0, 1000.0
    for _ in range(8):
        launch, strikes, not_before = next_launch("same", "same", strikes, not_before, now)
        assert launch
        waits.append(not_before - now)
        now = not_before
    assert waits == [10, 20, 40, 80, 160, 300, 300, 300]
