"""`hub demo outbound` against the bundled customer sink: each demo company's endpoint is
created once, its secret handed to the sink, and an order status change reaches the sink
signed, through the real dispatcher, over real HTTP and PostgreSQL."""

import httpx
import pytest

from emulators.registry import run_all
from hub.crypto import Keyring
from hub.demo import connect_outbound, seed
from hub.outbound.endpoints import list_endpoints
from hub.outbound.outbox import emit
from tests.test_outbound_support import running, wait_until


@pytest.fixture
def sink():
    with run_all(["webhook_sink"], base_port=0) as emulators:
        yield emulators["webhook_sink"][1]


def test_demo_endpoints_deliver_signed_events_to_the_sink(clean_db, secret_keys, sink, monkeypatch):
    keyring = Keyring(secret_keys)
    list(seed(clean_db, keyring))
    blocked = list(connect_outbound(clean_db, keyring, sink_url=sink))  # the SSRF guard refuses loopback by default
    assert all("set HUB_OUTBOUND_ALLOW" in line for line in blocked) and len(blocked) == 2
    monkeypatch.setenv("HUB_OUTBOUND_ALLOW", "127.0.0.1/32,::1")
    lines = list(connect_outbound(clean_db, keyring, sink_url=sink))
    assert len(lines) == 2 and all("outbound webhook" in line for line in lines), lines
    assert len(list(connect_outbound(clean_db, keyring, sink_url=sink))) == 2  # every demo start: no new endpoints
    with clean_db.connect() as conn:
        endpoints = list_endpoints(conn)
    assert len(endpoints) == 2
    bella = next(e for e in endpoints if e.name == "Bella ops webhook")
    with clean_db.begin() as conn:
        emit(conn, bella.company_id, "order.status_changed", {"status": "ready", "external_id": "demo-1"})
    with running(clean_db):
        received = wait_until(lambda: httpx.get(f"{sink}/_emulator/received", params={"name": "bella"}).json()["received"],
                              what="the delivery at the sink")
    assert [(r["type"], r["verified"]) for r in received] == [("order.status_changed", True)]
    # a delivery signed with another secret is refused by the sink
    forged = httpx.post(f"{sink}/hooks/bella", content=b"{}", headers={
        "webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"})
    assert forged.status_code == 401
