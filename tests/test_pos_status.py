"""The kitchen's side of delivery orders: a POS order moved along (CLI and function) moves
its marketplace order along the state machine, and the order job tells the marketplace,
over real HTTP to the DoorDash and Uber Eats emulators and real PostgreSQL."""

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.cli import app
from hub.errors import ValidationError
from hub.orders.kitchen import set_pos_status
from hub.schema import external_order
from tests.test_order_flow import _external, _process, hub, marketplaces  # noqa: F401 (fixtures)


def _accepted(hub, marketplace) -> tuple[str, int]:
    engine, keyring, _ = hub
    order_id = marketplace.place_order()["id"]
    assert marketplace.wait_idle(10)
    assert _process(engine, keyring).accepted == 1
    return order_id, _external(engine)[order_id]["order_id"]


def _set(engine, pos_id, status, reason="other"):
    with engine.begin() as conn:
        return set_pos_status(conn, pos_id, status, reason)


def test_ready_in_the_kitchen_is_told_to_doordash(hub, marketplaces):
    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id, pos_id = _accepted(hub, door)
    preparing = _set(engine, pos_id, "in_progress")
    assert (preparing.marketplace_status, preparing.push) == ("preparing", None)  # DoorDash has no "preparing" call
    assert _external(engine)[order_id]["processed"] is True

    ready = _set(engine, pos_id, "ready")
    assert (ready.marketplace_status, ready.push) == ("ready", "ready")
    assert door.state.orders[order_id]["state"] == "CONFIRMED"  # not from the kitchen screen: from the job
    report = _process(engine, keyring)
    assert report.pushed == 1 and report.accepted == 0
    assert door.state.orders[order_id]["state"] == "READY"
    row = _external(engine)[order_id]
    assert row["processed"] and row["status"] == "ready"
    assert [h["status"] for h in row["status_history"]] == ["received", "accepted", "preparing", "ready", "ready"]
    assert row["status_history"][-1]["pushed"] == "ready"
    assert _process(engine, keyring).pushed == 0  # told once


def test_a_kitchen_cancel_reaches_uber_eats_with_its_reason(hub, marketplaces):
    engine, keyring, _ = hub
    uber, _ = marketplaces["ubereats"]
    order_id, pos_id = _accepted(hub, uber)
    assert _set(engine, pos_id, "ready").push is None  # Uber Eats has no ready signal in its Order API
    change = _set(engine, pos_id, "cancelled", "out_of_items")
    assert change.push == "cancelled"
    assert _process(engine, keyring).pushed == 1
    assert uber.state.orders[order_id]["state"] == "CANCELED"
    assert uber.state.orders[order_id]["cancel_reason"]["reason"] == "OUT_OF_ITEMS"
    assert _external(engine)[order_id]["status"] == "cancelled"


def test_a_marketplace_that_is_down_gets_the_push_on_a_later_run(hub, marketplaces):
    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id, pos_id = _accepted(hub, door)
    _set(engine, pos_id, "ready")
    door.core.faults.configure(fail_next_5xx=20, status_5xx=503)
    try:
        report = _process(engine, keyring)
    finally:
        door.core.faults.reset()
    assert report.pushed == 0 and report.failed == 1
    assert _external(engine)[order_id]["processed"] is False  # still owed to DoorDash
    assert _process(engine, keyring).pushed == 1
    assert door.state.orders[order_id]["state"] == "READY"


def test_too_late_is_recorded_not_retried_forever(hub, marketplaces):
    engine, keyring, _ = hub
    uber, _ = marketplaces["ubereats"]
    order_id, pos_id = _accepted(hub, uber)
    uber.finish_order(order_id)  # the courier already took it
    _set(engine, pos_id, "cancelled")
    report = _process(engine, keyring)
    assert (report.pushed, report.push_refused) == (0, 1)
    row = _external(engine)[order_id]
    assert row["processed"] and "ubereats refused cancelled" in row["status_history"][-1]["why"]


def test_pos_transitions_are_checked_and_the_cli_says_what_happens(hub, marketplaces):
    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id, pos_id = _accepted(hub, door)
    runner = CliRunner()
    result = runner.invoke(app, ["orders", "set", str(pos_id), "ready"])
    assert result.exit_code == 0, result.output
    assert "open -> ready" in result.output and "will tell the marketplace: ready" in result.output
    assert str(pos_id) in runner.invoke(app, ["orders", "list"]).output
    _set(engine, pos_id, "completed")
    with pytest.raises(ValidationError, match="completed; it can go to nothing"):
        _set(engine, pos_id, "cancelled")
    bad = runner.invoke(app, ["orders", "set", str(pos_id), "teleported"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: unknown POS status 'teleported'")
    with engine.connect() as conn:
        assert conn.scalar(sa.select(external_order.c.status).where(external_order.c.external_id == order_id)) == "ready"


def test_the_demo_kitchen_moves_orders_along_as_they_age(hub, marketplaces):
    from datetime import datetime, timedelta, timezone

    from hub.orders.kitchen import demo_kitchen_pass

    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id, pos_id = _accepted(hub, door)
    soon = datetime.now(timezone.utc) + timedelta(seconds=50)
    assert [(c.pos_order_id, c.after) for c in demo_kitchen_pass(engine, soon)] == [(pos_id, "ready")]
    assert demo_kitchen_pass(engine, soon) == []
    assert _process(engine, keyring).pushed == 1 and door.state.orders[order_id]["state"] == "READY"
    assert [c.after for c in demo_kitchen_pass(engine, soon + timedelta(seconds=100))] == ["completed"]


def test_every_status_change_is_announced_in_the_outbox(hub, marketplaces):
    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id, pos_id = _accepted(hub, door)
    _set(engine, pos_id, "ready")
    _process(engine, keyring)
    with engine.connect() as conn:
        events = [r.payload for r in conn.execute(sa.text(
            "select payload from outbox_event where event_type = 'order.status_changed' order by id"))]
    mine = [(e["of"], e["previous_status"], e["status"], e["source"]) for e in events if e["external_id"] == order_id]
    assert mine == [("external_order", "received", "accepted", "hub"), ("pos_order", "open", "ready", "pos"),
                    ("external_order", "accepted", "ready", "pos")]
