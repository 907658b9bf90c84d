"""The marketplaces' store-status endpoints in the emulators, over HTTP as a client calls them
(DoorDash: store status PUT and store_details; Uber Eats: Get / Set Restaurant Status), and
the hub's clients reading and setting them."""

from __future__ import annotations

import httpx
import pytest

from emulators import doordash, ubereats
from emulators.serve import serve
from hub.providers.doordash.client import DoorDashClient, DoorDashDialect, make_jwt
from hub.providers.ratebudget import RateBudget
from hub.providers.transport import RetrySettings, Transport

ONCE = RetrySettings(max_attempts=1, timeout_s=5.0)


@pytest.fixture
def dd():
    emu = doordash.create_emulator()
    with serve(emu.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {emu.make_jwt()}"
        yield emu, client, base
    emu.close()


@pytest.fixture
def uber():
    emu = ubereats.create_emulator()
    with serve(emu.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield emu, client, base
    emu.close()


def uber_bearer(client: httpx.Client, scope: str) -> dict[str, str]:
    token = client.post("/oauth/v2/token", data={"grant_type": "client_credentials", "client_id": "demo-ue",
                                                 "client_secret": "demo-ue-secret-00001", "scope": scope})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_doordash_store_deactivates_with_a_reason_and_reactivates(dd):
    emu, client, _ = dd
    status = f"/marketplace/api/v1/stores/{emu.store_id}/status"
    details = f"/marketplace/api/v1/stores/{emu.store_id}/store_details"
    assert client.get(details).json()["is_active"] is True
    for body, message in (({"is_active": "no"}, "is_active must be a boolean"),
                          ({"is_active": False}, "reason must be one of"),
                          ({"is_active": False, "reason": "because"}, "reason must be one of"),
                          ({"is_active": False, "reason": "operational_issues", "end_time": "soon"}, "end_time")):
        answer = client.put(status, json=body)
        assert answer.status_code == 400 and message in answer.json()["message"], body
    assert emu.store["is_active"] is True  # nothing of a refused call sticks
    answer = client.put(status, json={"is_active": False, "reason": "operational_issues", "notes": "Flooded"})
    assert answer.status_code == 200
    found = client.get(details).json()
    assert found["is_active"] is False and found["merchant_supplied_id"] == emu.store_id
    assert [(d["reason"], d["notes"]) for d in found["current_deactivations"]] == [("operational_issues", "Flooded")]
    assert client.put(status, json={"is_active": True}).status_code == 200
    assert client.get(details).json() == found | {"is_active": True, "current_deactivations": []}
    assert client.get("/marketplace/api/v1/stores/other/store_details").status_code == 404
    assert httpx.get(f"{client.base_url}{details}").status_code == 401  # no JWT


def test_uber_store_pauses_and_comes_back_online_with_the_write_scope_only(uber):
    emu, client, _ = uber
    path = f"/v1/eats/store/{emu.store_id}/status"
    reader = uber_bearer(client, "eats.store")
    writer = uber_bearer(client, "eats.store.status.write")
    assert client.get(path, headers=reader).json() == {"status": "ONLINE"}
    assert client.post(path, headers=reader, json={"status": "PAUSED"}).status_code == 403
    for body in ({"status": "CLOSED"}, {"status": "PAUSED", "paused_until": "tomorrow"}, {"status": "PAUSED", "reason": 7}):
        assert client.post(path, headers=writer, json=body).status_code == 400, body
    answer = client.post(path, headers=writer, json={"status": "PAUSED", "reason": "Short of staff",
                                                     "paused_until": "2030-01-06T03:02:11Z"})
    assert answer.status_code == 204 and answer.content == b""
    assert client.get(path, headers=reader).json() == {"status": "OFFLINE", "offlineReason": "PAUSED_BY_RESTAURANT"}
    assert emu.store_status["reason"] == "Short of staff"
    assert client.post(path, headers=writer, json={"status": "ONLINE"}).status_code == 204
    assert client.get(path, headers=reader).json() == {"status": "ONLINE"}
    assert client.get("/v1/eats/store/other/status", headers=reader).status_code == 404


def test_the_doordash_client_reads_and_sets_the_store(dd):
    """(The Uber Eats client is driven end to end by tests/browser/test_procore_delivery_pages.py.)"""
    door, _, door_base = dd
    transport = Transport(dialect=DoorDashDialect(), base_url=door_base, budget=RateBudget("doordash-test", ()),
                          retry=ONCE, bearer_factory=lambda: make_jwt("demo-dev", "demo-key", "ZGVtby1zaWduaW5nLXNlY3JldA"))
    client = DoorDashClient(transport, door.store_id)
    try:
        assert client.store_status() == {"open": True, "detail": None}
        client.set_store_open(False, "Kitchen closed for a private event")
        assert client.store_status() == {"open": False, "detail": "Kitchen closed for a private event"}
        assert door.store["current_deactivations"][0]["reason"] == "operational_issues"
        client.set_store_open(True, "")
        assert client.store_status()["open"] is True
    finally:
        transport.close()
