"""The webhook receiver over real HTTP (uvicorn on loopback) and real PostgreSQL."""

import json
import threading
import uuid

import httpx
import pytest
import sqlalchemy as sa

from emulators.serve import serve
from hub import db, migrate
from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import external_order, inbound_dead_letter, inbound_event
from hub.web.app import create_app
from hub.inbound.provider_endpoints import create_inbound
from hub.inbound.verify import sign_hmac_base64
from hub.providers.ubereats.inbound import sign_ubereats
from tests.conftest import count

UBER_SECRET = "ue-client-secret-for-receiver-tests"
DD_TOKEN = "dd-static-webhook-token-0001"
XERO_KEY = "xero-webhook-key-0001"


def _setup(engine, keyring):
    with engine.begin() as conn:
        company_id = store.create_company(conn, "Bella")
        uber = store.add_integration(conn, keyring, company_id=company_id, provider="ubereats", config={"store_id": "bella-001"},
                                     credentials={"client_id": "ue", "client_secret": UBER_SECRET}, active=True)
        dd = store.add_integration(conn, keyring, company_id=company_id, provider="doordash", config={"store_id": "601135"},
                                   credentials={"developer_id": "d", "key_id": "k", "signing_secret": "c2VjcmV0", "webhook_token": DD_TOKEN}, active=True)
        xero = store.add_integration(conn, keyring, company_id=company_id, provider="xero", config={"tenant_id": "t"},
                                     credentials={"client_id": "c", "client_secret": "s", "refresh_token": "r", "webhook_key": XERO_KEY}, active=True)
        return {name: create_inbound(conn, keyring, integration_id) for name, integration_id in (("ubereats", uber), ("doordash", dd), ("xero", xero))}


@pytest.fixture
def receiver(clean_db, secret_keys):
    endpoints = _setup(clean_db, Keyring(secret_keys))
    with serve(create_app(clean_db, max_body=64 * 1024)) as url:
        yield url, endpoints, clean_db


def uber_event(order_id: str | None = None, event_type: str = "orders.notification", event_id: str | None = None) -> bytes:
    return json.dumps({
        "event_id": event_id or str(uuid.uuid4()), "event_time": 1727976000, "event_type": event_type,
        "meta": {"user_id": "bella-001", "resource_id": order_id or str(uuid.uuid4()), "status": "pos"},
        "resource_href": "http://emulator/v2/eats/order/x",
    }).encode()


def post_uber(url, endpoint_id, body: bytes, secret: str = UBER_SECRET, **headers):
    return httpx.post(f"{url}/webhooks/ubereats/{endpoint_id}", content=body,
                      headers={"X-Uber-Signature": sign_ubereats(secret, body), "Content-Type": "application/json", **headers})


def test_a_signed_order_is_stored_and_acknowledged_with_an_empty_200(receiver):
    url, endpoints, engine = receiver
    response = post_uber(url, endpoints["ubereats"], uber_event(order_id="order-1"))
    assert response.status_code == 200 and response.content == b""
    with engine.connect() as conn:
        order = conn.execute(sa.select(external_order)).mappings().one()
    assert (order["external_id"], order["status"], order["processed"]) == ("order-1", "received", False)
    assert order["raw_data"]["meta"]["resource_id"] == "order-1"
    assert count(engine, inbound_event) == 1


def test_redelivery_is_acknowledged_and_adds_nothing(receiver):
    url, endpoints, engine = receiver
    body = uber_event(order_id="order-2")
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    assert post_uber(url, endpoints["ubereats"], body).status_code == 200
    assert count(engine, inbound_event) == 1 and count(engine, external_order) == 1


def test_fifty_concurrent_deliveries_of_one_order_make_one_row(receiver):
    url, endpoints, engine = receiver
    body = uber_event(order_id="order-3", event_id="evt-3")
    statuses: list[int] = []
    barrier = threading.Barrier(50)

    def deliver():
        barrier.wait()
        statuses.append(post_uber(url, endpoints["ubereats"], body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 50
    assert count(engine, external_order) == 1 and count(engine, inbound_event) == 1


@pytest.mark.parametrize(
    "headers",
    [{"X-Uber-Signature": "0" * 64}, {"X-Uber-Signature": "not-hex"}, {}],
    ids=["wrong", "malformed", "missing"],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(receiver, headers):
    url, endpoints, engine = receiver
    response = httpx.post(f"{url}/webhooks/ubereats/{endpoints['ubereats']}", content=uber_event(), headers=headers)
    assert response.status_code == 401
    assert count(engine, inbound_event) == 0


def test_a_body_signed_with_another_secret_or_tampered_is_401(receiver):
    url, endpoints, engine = receiver
    assert post_uber(url, endpoints["ubereats"], uber_event(), secret="someone-else").status_code == 401
    body = uber_event()
    tampered = body.replace(b"bella-001", b"bella-666")
    response = httpx.post(f"{url}/webhooks/ubereats/{endpoints['ubereats']}", content=tampered,
                          headers={"X-Uber-Signature": sign_ubereats(UBER_SECRET, body)})
    assert response.status_code == 401 and count(engine, inbound_event) == 0


def test_unknown_endpoint_or_provider_is_404(receiver):
    url, endpoints, engine = receiver
    assert post_uber(url, 99999, uber_event()).status_code == 404
    assert post_uber(url, 99999999999999999999, uber_event()).status_code == 404  # beyond bigint: still just unknown
    wrong_provider = httpx.post(f"{url}/webhooks/doordash/{endpoints['ubereats']}", content=b"{}", headers={"Authorization": DD_TOKEN})
    assert wrong_provider.status_code == 404
    assert count(engine, inbound_event) == 0


def test_oversized_body_is_413_declared_or_streamed(receiver):
    url, endpoints, engine = receiver
    big = b"{" + b" " * (70 * 1024) + b"}"
    assert post_uber(url, endpoints["ubereats"], big).status_code == 413

    def chunks():  # no Content-Length: chunked, refused while streaming
        for _ in range(100):
            yield b" " * 1024

    streamed = httpx.post(f"{url}/webhooks/ubereats/{endpoints['ubereats']}", content=chunks(), headers={"X-Uber-Signature": "0" * 64})
    assert streamed.status_code == 413
    assert count(engine, inbound_event) == 0


@pytest.mark.parametrize("body", [b"{not json", b'["a list"]', b'{"no": "event fields"}'])
def test_malformed_but_signed_bodies_are_400(receiver, body):
    url, endpoints, engine = receiver
    assert post_uber(url, endpoints["ubereats"], body).status_code == 400
    assert count(engine, inbound_event) == 0


def test_doordash_static_credential(receiver):
    url, endpoints, engine = receiver
    body = json.dumps({"event": {"type": "OrderCreate", "status": "NEW"}, "order": {"id": "dd-1", "subtotal": 100}}).encode()
    target = f"{url}/webhooks/doordash/{endpoints['doordash']}"
    assert httpx.post(target, content=body, headers={"Authorization": "wrong"}).status_code == 401
    assert httpx.post(target, content=body, headers={"Authorization": DD_TOKEN}).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(external_order.c.external_id)).scalar_one() == "dd-1"


def test_xero_intent_to_receive(receiver):
    url, endpoints, engine = receiver
    body = json.dumps({"events": [], "lastEventSequence": 0, "firstEventSequence": 0, "entropy": "S0m3r4Nd0mt3xt"}).encode()
    target = f"{url}/webhooks/xero/{endpoints['xero']}"
    good = httpx.post(target, content=body, headers={"x-xero-signature": sign_hmac_base64(XERO_KEY, body)})
    bad = httpx.post(target, content=body, headers={"x-xero-signature": sign_hmac_base64("wrong", body)})
    assert (good.status_code, good.content, bad.status_code) == (200, b"", 401)
    assert count(engine, inbound_event) == 0


def test_database_unavailable_is_503_so_the_provider_retries(server_url, secret_keys):
    """A database lost after start-up: the receiver answers 503 and stores nothing half-way."""
    url = server_url.set(database=f"hub_recv_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    migrate.upgrade(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    endpoints = _setup(engine, Keyring(secret_keys))
    with serve(create_app(engine)) as base:
        assert post_uber(base, endpoints["ubereats"], uber_event()).status_code == 200  # endpoint now cached
        engine.dispose()
        db.drop_database(url)
        response = post_uber(base, endpoints["ubereats"], uber_event())
    assert response.status_code == 503 and response.headers["retry-after"]
    engine.dispose()


def test_database_unavailable_before_the_endpoint_is_cached_is_503_with_retry_after(server_url, secret_keys):
    """The endpoint lookup itself fails (nothing cached yet, or the cache entry expired): still a
    503 the provider retries, with Retry-After (this path once answered a bare 503)."""
    url = server_url.set(database=f"hub_recv_{uuid.uuid4().hex[:10]}")
    db.ensure_database(url)
    migrate.upgrade(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    endpoints = _setup(engine, Keyring(secret_keys))
    with serve(create_app(engine)) as base:
        engine.dispose()
        db.drop_database(url)
        response = post_uber(base, endpoints["ubereats"], uber_event())
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    engine.dispose()


def test_group_commit_isolates_a_request_the_database_refuses(receiver):
    """Concurrent requests share a commit; one whose row PostgreSQL refuses (here a CHECK the
    test adds; the receiver's own checks leave no known body the database refuses) gets 422 on
    its own and is kept as a dead letter, never 503 (a retry would fail the same), and every
    other request of the batch is stored and acknowledged."""
    url, endpoints, engine = receiver
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbound_event ADD CONSTRAINT test_no_poison CHECK (event_id <> 'poison')")
    try:
        poison = json.dumps({"event_id": "poison", "event_time": 1, "event_type": "orders.notification",
                             "meta": {"user_id": "bella-001", "resource_id": "p-1", "status": "pos"}}).encode()
        bodies = [uber_event(order_id=f"good-{n}") for n in range(20)] + [poison]
        statuses: dict[bytes, int] = {}
        barrier = threading.Barrier(len(bodies))

        def deliver(body):
            barrier.wait()
            statuses[body] = post_uber(url, endpoints["ubereats"], body).status_code

        threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE inbound_event DROP CONSTRAINT test_no_poison")
    assert statuses.pop(poison) == 422
    assert set(statuses.values()) == {200}
    assert count(engine, external_order) == 20 and count(engine, inbound_event) == 20
    with engine.connect() as conn:
        letter = conn.execute(sa.select(inbound_dead_letter)).mappings().one()
    assert (bytes(letter["body"]), letter["reason"]) == (poison, "refused_by_database")


def test_one_batch_statement_dedupes_within_the_batch_and_against_stored_rows(clean_db, secret_keys):
    """The group commit's single statement: a copy of an event in the same batch is a duplicate,
    a second new-order event of the same order stores its event but no second order, the first
    event's body becomes the order's raw_data, and a later batch sees everything as stored."""
    import psycopg

    from hub.inbound.events import parse
    from hub.web.group_commit import conninfo_from_url
    from hub.inbound.ingest import Delivery, store_batch

    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Bella")
        integration_id = store.add_integration(conn, Keyring(secret_keys), company_id=company_id, provider="ubereats",
                                               config={"store_id": "bella-001"}, credentials={"client_id": "ue", "client_secret": UBER_SECRET}, active=True)

    def delivery(body: bytes) -> Delivery:
        return Delivery(integration_id, "ubereats", parse("ubereats", json.loads(body), body))

    first = delivery(uber_event(order_id="o-1", event_id="e-1"))
    again = delivery(uber_event(order_id="o-1", event_id="e-1"))
    scheduled = delivery(uber_event(order_id="o-1", event_id="e-2", event_type="orders.scheduled.notification"))
    cancel = delivery(uber_event(order_id="o-1", event_id="e-3", event_type="orders.cancel"))
    with psycopg.connect(conninfo_from_url(clean_db.url), autocommit=True) as conn:
        results = store_batch(conn, [first, again, scheduled, cancel])
        assert [(r.stored, r.duplicates, r.orders) for r in results] == [(1, 0, 1), (0, 1, 0), (1, 0, 0), (1, 0, 0)]
        assert [(r.stored, r.duplicates, r.orders) for r in store_batch(conn, [cancel, first])] == [(0, 1, 0), (0, 1, 0)]
    with clean_db.connect() as conn:
        events = dict(conn.execute(sa.select(inbound_event.c.event_id, inbound_event.c.processed_at.is_(None))).all())
        order = conn.execute(sa.select(external_order)).mappings().one()
    assert events == {"e-1": False, "e-2": False, "e-3": True}  # status events wait for the order job
    assert (order["external_id"], order["raw_data"]["event_id"], order["status_history"][0]["source"]) == ("o-1", "e-1", "orders.notification")
