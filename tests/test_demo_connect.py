"""`hub demo connect` against running emulators: OAuth grants stored, order webhooks routed."""

import httpx
import pytest

from emulators.registry import run_all
from hub import integrations as store
from hub.crypto import Keyring
from hub.demo import connect_emulated
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
