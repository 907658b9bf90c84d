"""`hub demo connect` against running emulators: OAuth grants stored, order webhooks routed,
on whichever ports the demo runs."""

import random

import httpx
import pytest

from emulators.registry import run_all
from hub import integrations as store
from hub.crypto import Keyring
from hub.demo import DemoPorts, check_all, connect_emulated, connect_outbound, seed
from hub.providers.connect import open_client


@pytest.fixture(scope="module")
def emulators():
    with run_all(["quickbooks", "ubereats"], base_port=0) as running:
        yield {name: url for name, (_, url) in running.items()}


def test_connect_grants_oauth_and_routes_webhooks(clean_db, secret_keys, emulators):
    keyring = Keyring(secret_keys)
    qb, ue = emulators["quickbooks"], emulators["ubereats"]
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Demo")
        qb_id = store.add_integration(conn, keyring, company_id=company_id, provider="quickbooks",
                                      config={"realm_id": "9130350000000001", "base_url": qb, "token_url": qb + "/oauth2/v1/tokens/bearer"},
                                      credentials={"client_id": "hub-demo", "client_secret": "hub-demo-secret", "refresh_token": "placeholder"})
        store.add_integration(conn, keyring, company_id=company_id, provider="ubereats",
                              config={"store_id": "bella-001", "base_url": ue, "token_url": ue + "/oauth/v2/token"},
                              credentials={"client_id": "demo-ue", "client_secret": "demo-ue-secret-00001"})
    lines = list(connect_emulated(clean_db, keyring, hub_web_url="http://127.0.0.1:9"))
    assert any("connected to the quickbooks emulator" in line for line in lines)
    assert any("sends its webhooks to http://127.0.0.1:9/webhooks/ubereats/" in line for line in lines)
    client = open_client(clean_db, keyring, qb_id)
    assert client.check()["realm_id"] == "9130350000000001"  # the stored grant works
    client.transport.close()
    assert httpx.get(f"{ue}/_emulator/webhook").json()["url"].startswith("http://127.0.0.1:9/webhooks/ubereats/")


@pytest.fixture(scope="module")
def demo_on_other_ports():
    """All the emulators on consecutive ports from a free base, as `make demo` with
    HUB_DEMO_PORT_BASE starts them; yields the base."""
    for attempt in range(20):
        base = random.randrange(20000, 60000)
        try:
            with run_all(base_port=base):
                yield base
            return
        except OSError:  # one of the nine ports is busy: another base
            continue
    pytest.fail("no free run of consecutive ports")


def test_seed_and_connect_follow_the_ports_the_demo_runs_on(clean_db, secret_keys, demo_on_other_ports, monkeypatch):
    keyring = Keyring(secret_keys)
    ports = DemoPorts(base=demo_on_other_ports, web=9)
    list(seed(clean_db, keyring))  # a first start on the default ports ...
    lines = list(seed(clean_db, keyring, ports))  # ... then one on other ports: the integrations follow
    assert sum("now pointed at the emulator" in line for line in lines) == 8
    lines = list(connect_emulated(clean_db, keyring, hub_web_url=ports.hub_web_url))
    assert not [line for line in lines if "not reachable" in line], lines
    for provider in ("quickbooks", "xero", "procore"):
        assert f"connected to the {provider} emulator at {ports.emulator_urls[provider]}" in "\n".join(lines)
    assert f"the emulator at {ports.emulator_urls['ubereats']} now sends its webhooks to http://127.0.0.1:9/webhooks/" in "\n".join(lines)
    with clean_db.connect() as conn:
        rows = store.list_integrations(conn)
        qb_id = next(r.id for r in rows if r.provider == "quickbooks")
    assert not [r.name for r in rows if r.is_active]  # seeded integrations wait for their connection
    with clean_db.begin() as conn:  # one an admin disabled stays disabled, whatever its check says
        store.set_active(conn, rows[-1].id, False)
    lines = list(check_all(clean_db, keyring))
    assert len(lines) == len(rows) - 1 and all(line.endswith("connected; now active") for line in lines), lines
    with clean_db.connect() as conn:
        active = {r.name: r.is_active for r in store.list_integrations(conn)}
    assert active == {r.name: r.id != rows[-1].id for r in rows}
    client = open_client(clean_db, keyring, qb_id)
    assert client.check()["realm_id"] == "9130350000000001"  # the grant from the emulator on the new port works
    client.transport.close()
    monkeypatch.setenv("HUB_OUTBOUND_ALLOW", "127.0.0.1/32")
    lines = list(connect_outbound(clean_db, keyring, ports.sink_url))
    assert all(f"-> {ports.sink_url}/hooks/" in line for line in lines) and len(lines) == 2, lines
