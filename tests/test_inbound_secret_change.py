"""A provider's webhook secret changed after its inbound endpoint was made: the endpoint
follows the integration's credential (hub.inbound.provider_endpoints.follow_credential), and
a receiver that cached the old one verifies the new one at once (it re-reads an endpoint
cached over REVERIFY_AFTER_S ago when a signature fails), while the old one is refused."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.inbound.provider_endpoints import create_inbound, follow_credential, load_inbound
from hub.inbound.verify import sign_hmac_base64
from hub.web import receiver
from hub.web.app import create_app

REALM = "9130350000000001"
BODY = json.dumps({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {
    "entities": [{"name": "Vendor", "id": "5", "operation": "Update", "lastUpdated": "2026-12-07T10:00:00Z"}]}}]}).encode()
CREDENTIALS = {"client_id": "cid", "client_secret": "csecret", "refresh_token": "rt", "webhook_verifier_token": "first-token"}


@pytest.fixture
def books(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    with clean_db.begin() as conn:
        company = store.create_company(conn, "Acme")
        iid = store.add_integration(conn, keyring, company_id=company, provider="quickbooks", name="Books", active=True,
                                    config={"realm_id": REALM}, credentials=CREDENTIALS)
        endpoint = create_inbound(conn, keyring, iid)
    return clean_db, keyring, iid, endpoint


def _change_token(engine, keyring, iid, token: str) -> bool:
    with engine.begin() as conn:
        store.update_connection(conn, keyring, iid, credentials={"webhook_verifier_token": token})
        return follow_credential(conn, keyring, iid)


def test_the_endpoint_follows_a_changed_credential_and_only_then(books):
    engine, keyring, iid, endpoint = books
    assert _change_token(engine, keyring, iid, "first-token") is False  # unchanged: nothing written
    assert _change_token(engine, keyring, iid, "second-token") is True
    with engine.connect() as conn:
        assert load_inbound(conn, keyring, endpoint).secret == "second-token"


def test_a_receiver_that_cached_the_old_secret_takes_the_new_one_at_once(books):
    engine, keyring, iid, endpoint = books

    def post(url: str, token: str) -> int:
        return httpx.post(f"{url}/webhooks/quickbooks/{endpoint}", content=BODY,
                          headers={"intuit-signature": sign_hmac_base64(token, BODY), "content-type": "application/json"}).status_code

    with serve(create_app(engine)) as url:
        assert post(url, "first-token") == 200  # the endpoint is now cached with the first token
        _change_token(engine, keyring, iid, "second-token")
        time.sleep(receiver.REVERIFY_AFTER_S)
        assert post(url, "second-token") == 200  # well inside the cache's ttl
        assert post(url, "first-token") == 401
        assert post(url, "forged-token") == 401
