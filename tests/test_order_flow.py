"""Orders end to end over real HTTP and PostgreSQL: marketplace emulator -> signed webhook ->
hub receiver -> external_order -> order processor -> POS order, accepted at the emulator."""

import json
import threading

import httpx
import pytest
import sqlalchemy as sa

from emulators import doordash as doordash_emulator
from emulators import ubereats as ubereats_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.orders.processing import OrderProcessor
from hub.schema import external_order, inbound_event, pos_order
from hub.web.app import create_app
from hub.inbound.provider_endpoints import create_inbound
from hub.providers.ubereats.inbound import sign_ubereats
from tests.conftest import count

UE = {"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"}
DD = {"developer_id": "demo-dev", "key_id": "demo-key", "signing_secret": "ZGVtby1zaWduaW5nLXNlY3JldA", "webhook_token": "demo-webhook-token-0001"}


@pytest.fixture(scope="module")
def marketplaces():
    uber = ubereats_emulator.create_emulator(retry_base_s=0.05)
    door = doordash_emulator.create_emulator(retry_base_s=0.05)
    with serve(uber.app) as uber_url, serve(door.app) as door_url:
        uber.base_url, door.base_url = uber_url, door_url
        yield {"ubereats": (uber, uber_url), "doordash": (door, door_url)}
    uber.close()
    door.close()


@pytest.fixture
def hub(clean_db, secret_keys, marketplaces):
    """Integrations pointed at the emulators, inbound endpoints, and the receiver serving."""
    keyring = Keyring(secret_keys)
    uber, uber_url = marketplaces["ubereats"]
    door, door_url = marketplaces["doordash"]
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Bella")
        ids = {
            "ubereats": store.add_integration(conn, keyring, company_id=company_id, provider="ubereats", credentials=UE,
                                              config={"store_id": "bella-001", "base_url": uber_url, "token_url": uber_url + "/oauth/v2/token"}, active=True),
            "doordash": store.add_integration(conn, keyring, company_id=company_id, provider="doordash", credentials=DD,
                                              config={"store_id": "601135", "base_url": door_url}, active=True),
        }
        endpoints = {name: create_inbound(conn, keyring, integration_id) for name, integration_id in ids.items()}
    with serve(create_app(clean_db)) as hub_url:
        uber.set_webhook_url(f"{hub_url}/webhooks/ubereats/{endpoints['ubereats']}")
        door.set_webhook_url(f"{hub_url}/webhooks/doordash/{endpoints['doordash']}")
        uber.core.faults.reset()
        yield clean_db, keyring, ids
        uber.set_webhook_url(None)
        door.set_webhook_url(None)


def _process(engine, keyring):
    processor = OrderProcessor(engine, keyring)
    try:
        return processor.run()
    finally:
        processor.close()


def _external(engine):
    with engine.connect() as conn:
        return {r["external_id"]: r for r in conn.execute(sa.select(external_order)).mappings()}


def test_orders_flow_from_marketplace_to_pos_and_back(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    door, _ = marketplaces["doordash"]
    placed = [uber.place_order()["id"] for _ in range(3)] + [door.place_order()["id"] for _ in range(2)]
    assert uber.wait_idle(10) and door.wait_idle(10)
    assert set(_external(engine)) == set(placed)  # every webhook landed, once

    report = _process(engine, keyring)
    assert (report.accepted, report.rejected, report.failed) == (5, 0, 0)
    rows = _external(engine)
    assert {r["status"] for r in rows.values()} == {"accepted"}
    assert all(r["processed"] and r["synced_at"] and r["order_id"] for r in rows.values())
    assert [uber.state.orders[i]["state"] for i in placed[:3]] == ["ACCEPTED"] * 3
    assert [door.state.orders[i]["state"] for i in placed[3:]] == ["CONFIRMED"] * 2
    with engine.connect() as conn:
        pos = {r["id"]: r for r in conn.execute(sa.select(pos_order)).mappings()}
    assert len(pos) == 5
    first_uber = pos[rows[placed[0]]["order_id"]]
    remote = uber.state.orders[placed[0]]["order"]
    assert first_uber["total_cents"] == remote["payment"]["charges"]["total"]["amount"]
    assert [i["sku"] for i in first_uber["items"]] == [i["external_data"] for i in remote["cart"]["items"]]
    assert uber.state.orders[placed[0]]["order"]["external_reference_id"] == first_uber["order_number"]
    assert _process(engine, keyring).accepted == 0  # nothing left, nothing twice


def test_a_display_id_that_comes_round_again_still_gets_its_order_accepted(hub, marketplaces):
    """Uber Eats' display id is the last 5 hex digits of the order id, so a busy store sees one
    again; the POS number (company-unique) of the second order is qualified with its own id
    instead of the insert failing and the order going unanswered until Uber cancels it."""
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    placed = [uber.place_order(display_id="BC953")["id"] for _ in range(2)]
    assert uber.wait_idle(10)
    report = _process(engine, keyring)
    assert (report.accepted, report.failed) == (2, 0)
    rows = _external(engine)
    with engine.connect() as conn:
        numbers = dict(conn.execute(sa.select(pos_order.c.id, pos_order.c.order_number)).all())
    got = {order_id: numbers[rows[order_id]["order_id"]] for order_id in placed}
    # whichever is processed first keeps the plain number; the other is qualified with its own id
    [plain] = [o for o in placed if got[o] == "UE-BC953"]
    [other] = [o for o in placed if o != plain]
    assert got[other] == f"UE-BC953-{other[:8].upper()}"
    assert [uber.state.orders[o]["state"] for o in placed] == ["ACCEPTED"] * 2
    # each accepted under its own POS number
    assert {o: uber.state.orders[o]["order"]["external_reference_id"] for o in placed} == got


def test_an_item_not_on_the_menu_is_denied_with_a_reason(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    with engine.begin() as conn:  # the POS menu: what the restaurant sells
        store.update_config(conn, keyring, ids["ubereats"], {"menu_skus": [m["sku"] for m in uber.menu]})
    order_id = uber.place_order(items=[{"sku": "NOT-ON-THE-MENU"}])["id"]
    assert uber.wait_idle(10)
    report = _process(engine, keyring)
    assert report.rejected == 1
    assert uber.state.orders[order_id]["state"] == "DENIED"
    assert uber.state.orders[order_id]["deny_reason"]["code"] == "MISSING_ITEM"
    row = _external(engine)[order_id]
    assert row["status"] == "rejected" and "Not on the POS menu" in row["status_history"][-1]["note"]


def test_a_closed_store_denies_everything(hub, marketplaces):
    engine, keyring, ids = hub
    door, _ = marketplaces["doordash"]
    with engine.begin() as conn:  # the restaurant closes for the night
        store.update_config(conn, keyring, ids["doordash"], {"accepting_orders": False})
    order_id = door.place_order()["id"]
    assert door.wait_idle(10)
    assert _process(engine, keyring).rejected == 1
    assert door.state.orders[order_id]["state"] == "FAILED"


def test_cancellation_after_acceptance_and_late_duplicate_events(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    order_id = uber.place_order()["id"]
    assert uber.wait_idle(10)
    assert _process(engine, keyring).accepted == 1
    uber.cancel_order(order_id)
    assert uber.wait_idle(10)
    report = _process(engine, keyring)
    assert report.events_applied == 1
    row = _external(engine)[order_id]
    assert row["status"] == "cancelled"
    statuses = [h["status"] for h in row["status_history"]]
    assert statuses == ["received", "accepted", "cancelled"]
    # the provider repeats the cancel webhook: acknowledged, stored once, changes nothing
    cancel = next(d for d in uber.state.deliveries if d["event_type"] == "orders.cancel" and d["order_id"] == order_id)
    with engine.connect() as conn:
        payload = conn.execute(sa.select(inbound_event.c.payload).where(inbound_event.c.event_id == cancel["event_id"])).scalar_one()
    body = json.dumps(payload).encode()
    target = uber.state.webhook_url if hasattr(uber.state, "webhook_url") else httpx.get(f"{marketplaces['ubereats'][1]}/_emulator/webhook").json()["url"]
    again = httpx.post(target, content=body, headers={"X-Uber-Signature": sign_ubereats(UE["client_secret"], body)})
    assert again.status_code == 200
    assert count(engine, inbound_event, inbound_event.c.event_type == "orders.cancel") == 1
    assert _process(engine, keyring).events_applied == 0
    assert _external(engine)[order_id]["status"] == "cancelled"


def test_orders_committed_out_of_id_order_are_all_processed_once(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    uber.set_webhook_url(None)  # the rows are written by hand below, in a chosen commit order
    first, second = uber.place_order()["id"], uber.place_order()["id"]
    slow = engine.connect()
    slow_tx = slow.begin()
    slow.execute(sa.insert(external_order).values(integration_id=ids["ubereats"], external_id=first, raw_data={}))  # lower id
    with engine.begin() as conn:
        conn.execute(sa.insert(external_order).values(integration_id=ids["ubereats"], external_id=second, raw_data={}))
    assert _process(engine, keyring).accepted == 1  # only the committed one is visible
    slow_tx.commit()
    slow.close()
    assert _process(engine, keyring).accepted == 1  # the late commit, with its lower id, is not skipped
    assert {uber.state.orders[i]["state"] for i in (first, second)} == {"ACCEPTED"}
    assert {r["status"] for r in _external(engine).values()} == {"accepted"}


def test_two_runs_at_once_never_take_the_same_order(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    placed = [o["id"] for o in uber.place_orders(12)]
    assert uber.wait_idle(10)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(_process(engine, keyring))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.accepted for r in reports) == 12 and sum(r.skipped + r.failed for r in reports) == 0
    assert all(uber.state.orders[i]["state"] == "ACCEPTED" for i in placed)


def test_a_provider_outage_leaves_orders_for_the_next_run(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    order_id = uber.place_order()["id"]
    assert uber.wait_idle(10)
    uber.core.faults.configure(fail_next_5xx=1000)
    processor = OrderProcessor(engine, keyring)
    for client_retry in [processor.client(ids["ubereats"])]:
        client_retry.transport.retry = type(client_retry.transport.retry)(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)
    report = processor.run()
    processor.close()
    assert report.failed == 1 and not _external(engine)[order_id]["processed"]
    uber.core.faults.reset()
    assert _process(engine, keyring).accepted == 1
    assert uber.state.orders[order_id]["state"] == "ACCEPTED"


def test_an_order_cancelled_before_we_answer_gets_no_pos_order(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    order_id = uber.place_order()["id"]
    assert uber.wait_idle(10)
    uber.set_webhook_url(None)  # its cancel webhook is lost: we learn it only from the 409
    uber.cancel_order(order_id)
    report = _process(engine, keyring)
    assert (report.accepted, report.skipped) == (0, 1)
    assert count(engine, pos_order) == 0  # nothing for the kitchen to cook
    assert _external(engine)[order_id]["status"] == "cancelled"


def test_one_broken_order_does_not_block_the_others(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    with engine.begin() as conn:  # an order the marketplace does not know (get_order -> 404)
        conn.execute(sa.insert(external_order).values(integration_id=ids["ubereats"], external_id="no-such-order", raw_data={}))
    good = uber.place_order()["id"]
    assert uber.wait_idle(10)
    for attempt in range(3):
        report = _process(engine, keyring)
        assert report.failed == 1
    rows = _external(engine)
    assert rows[good]["status"] == "accepted"
    broken = rows["no-such-order"]
    assert broken["processed"] and broken["status"] == "received"  # set aside for a person after 3 runs
    assert sum(1 for h in broken["status_history"] if h["why"] == "processing error") == 3
    assert _process(engine, keyring).failed == 0


def test_a_status_event_that_arrives_before_its_order_waits_for_it(hub, marketplaces):
    engine, keyring, ids = hub
    uber, _ = marketplaces["ubereats"]
    uber.set_webhook_url(None)
    order_id = uber.place_order()["id"]
    with engine.begin() as conn:  # the cancel overtook the order's own webhook
        conn.execute(sa.insert(inbound_event).values(integration_id=ids["ubereats"], provider="ubereats", event_id="early-cancel",
                                                     event_type="orders.cancel",
                                                     payload={"event_id": "early-cancel", "event_type": "orders.cancel",
                                                              "meta": {"resource_id": order_id, "user_id": "bella-001", "status": "pos"}}))
    report = _process(engine, keyring)
    assert report.events_applied == 0
    with engine.connect() as conn:
        assert conn.scalar(sa.select(inbound_event.c.processed_at).where(inbound_event.c.event_id == "early-cancel")) is None
    with engine.begin() as conn:  # now the order's webhook lands
        conn.execute(sa.insert(external_order).values(integration_id=ids["ubereats"], external_id=order_id, raw_data={}))
    report = _process(engine, keyring)
    assert report.accepted == 1 and report.events_applied == 1
    assert _external(engine)[order_id]["status"] == "cancelled"


def test_a_doordash_confirm_whose_reply_was_lost_is_not_mistaken_for_expiry(hub, marketplaces):
    """DoorDash answers a second confirm with "already processed or expired" and offers no way
    to read the order back; the ledger row committed before the call says which it was."""
    import time

    from hub.providers.connect import open_client
    from hub.providers.transport import RetrySettings

    engine, keyring, _ = hub
    door, _ = marketplaces["doordash"]
    order_id = door.place_order()["id"]
    assert door.wait_idle(10)
    impatient = RetrySettings(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1, timeout_s=0.3)
    processor = OrderProcessor(engine, keyring, client_factory=lambda iid: open_client(engine, keyring, iid, retry=impatient))
    door.core.faults.configure(reply_delay_ms=700)  # the confirm is applied; its reply comes after the hub stopped waiting
    try:
        first = processor.run()
    finally:
        processor.close()
        time.sleep(1.0)  # let the slow confirms land
        door.core.faults.reset()
    assert first.failed == 1 and _external(engine)[order_id]["processed"] is False
    assert door.state.orders[order_id]["state"] == "CONFIRMED"

    second = _process(engine, keyring)  # DoorDash now says "already processed or expired"
    row = _external(engine)[order_id]
    assert row["status"] == "accepted" and row["order_id"] is not None, row["status_history"]
    assert "unknown outcome, so it is taken as given" in row["status_history"][-1]["note"]
    assert second.skipped == 1
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(pos_order)) == 1
        assert conn.execute(sa.text("select status from sync_write where entity_type = 'external_order'")).scalars().all() == ["succeeded"]


def test_the_provider_s_own_status_string_is_kept_as_last_seen(hub, marketplaces):
    """external_order.external_status: the provider's word, verbatim, beside our status;
    received_at: when the webhook was stored."""
    engine, keyring, ids = hub
    door, _ = marketplaces["doordash"]
    order_id = door.place_order()["id"]
    assert door.wait_idle(10)
    with engine.connect() as conn:
        arrived = conn.execute(sa.select(inbound_event.c.received_at).where(inbound_event.c.event_type == "OrderCreate")).scalar_one()
    row = _external(engine)[order_id]
    assert row["received_at"] == arrived and row["external_status"] is None  # the job has not seen it yet
    assert _process(engine, keyring).accepted == 1
    row = _external(engine)[order_id]
    assert (row["status"], row["external_status"]) == ("accepted", "NEW")  # DoorDash's OrderCreate says NEW
    door.cancel_order(order_id)
    assert door.wait_idle(10)
    assert _process(engine, keyring).events_applied == 1
    row = _external(engine)[order_id]
    assert (row["status"], row["external_status"]) == ("cancelled", "CANCELLED")
    assert row["received_at"] == arrived  # a later event does not move when the order arrived
