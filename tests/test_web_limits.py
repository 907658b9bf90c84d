"""Stalls and limits of the hub web app, over real sockets against uvicorn served as `hub web
run` serves it (hub/web/limits.py): oversized or too many headers get 431, a head or a body
that stops arriving gets 408, an ingest stuck behind a database lock gets 503 with
Retry-After within the ingest timeout (issue 15 item 10)."""

import socket
import threading
import time

import pytest
import sqlalchemy as sa

from emulators.serve import serve
from hub.crypto import Keyring
from hub.providers.ubereats.inbound import sign_ubereats
from hub.schema import inbound_event
from hub.web import limits
from hub.web.app import create_app
from hub.web.limits import server_options
from tests.conftest import count
from tests.test_webhook_receiver import UBER_SECRET, _setup, post_uber, uber_event


@pytest.fixture
def hub_web(clean_db, secret_keys):
    endpoints = _setup(clean_db, Keyring(secret_keys))
    with serve(create_app(clean_db, ingest_timeout=1.0), **server_options()) as url:
        yield url, endpoints, clean_db


def _exchange(url: str, head: bytes, body: bytes = b"", *, pause: float = 0.0, timeout: float = 10.0) -> bytes:
    """Send `head` (then `body` after `pause` seconds) on a raw socket; everything the server
    answers before it closes (or `timeout`). A server that refuses mid-send may reset: what it
    sent before that still counts."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            for start in range(0, len(head), 65536):
                sock.sendall(head[start:start + 65536])
            if pause:
                time.sleep(pause)
            if body:
                sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return answer


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _webhook_head(endpoint_id: int, extra: bytes = b"", length: int = 2) -> bytes:
    return (f"POST /webhooks/ubereats/{endpoint_id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n").encode() + extra + b"\r\n"


def test_a_one_mebibyte_header_is_431(hub_web):
    url, endpoints, engine = hub_web
    answer = _exchange(url, _webhook_head(endpoints["ubereats"], b"X-Big: " + b"a" * (1024 * 1024) + b"\r\n"), b"{}")
    assert _status(answer) == 431
    assert count(engine, inbound_event) == 0


def test_ten_thousand_headers_are_431(hub_web):
    url, endpoints, _ = hub_web
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(10_000))
    assert _status(_exchange(url, _webhook_head(endpoints["ubereats"], many), b"{}")) == 431


def test_just_over_the_count_is_431_and_an_ordinary_request_passes(hub_web):
    url, endpoints, engine = hub_web
    over = b"".join(b"X-H%d: v\r\n" % n for n in range(limits.MAX_HEADERS))  # plus Host, Content-Type, Content-Length
    assert _status(_exchange(url, _webhook_head(endpoints["ubereats"], over), b"{}")) == 431
    extra = {f"X-Trace-{n}": "t" * 100 for n in range(20)}  # a proxy-laden but ordinary request
    assert post_uber(url, endpoints["ubereats"], uber_event(), **extra).status_code == 200
    assert count(engine, inbound_event) == 1


def test_a_head_that_never_completes_is_408(hub_web, monkeypatch):
    url, endpoints, _ = hub_web
    monkeypatch.setattr(limits.HubHttpProtocol, "head_timeout", 0.5)
    started = time.monotonic()
    answer = _exchange(url, f"POST /webhooks/ubereats/{endpoints['ubereats']} HTTP/1.1\r\nHost: x\r\n".encode())
    assert _status(answer) == 408 and time.monotonic() - started < 5


def test_a_body_that_stalls_is_408_and_nothing_is_stored(hub_web, monkeypatch):
    url, endpoints, engine = hub_web
    monkeypatch.setattr(limits, "BODY_STALL_TIMEOUT", 0.5)
    started = time.monotonic()
    answer = _exchange(url, _webhook_head(endpoints["ubereats"], length=100) + b'{"event_id": ')
    assert _status(answer) == 408 and time.monotonic() - started < 5
    assert count(engine, inbound_event) == 0


def test_a_settings_page_post_whose_body_stalls_is_408(hub_web, monkeypatch):
    url, _, _ = hub_web
    monkeypatch.setattr(limits, "BODY_STALL_TIMEOUT", 0.5)
    head = (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\nemail=a")
    assert _status(_exchange(url, head)) == 408


def test_a_slow_but_steady_body_is_not_cut_off(hub_web, monkeypatch):
    url, endpoints, engine = hub_web
    monkeypatch.setattr(limits, "BODY_STALL_TIMEOUT", 1.0)
    body = uber_event()
    head = _webhook_head(endpoints["ubereats"], f"X-Uber-Signature: {sign_ubereats(UBER_SECRET, body)}\r\n".encode(),
                         length=len(body))
    answer = _exchange(url, head + body[:10], body[10:], pause=0.5)
    assert _status(answer) == 200
    assert count(engine, inbound_event) == 1


def test_an_ingest_stuck_behind_a_lock_is_503_with_retry_after_then_the_retry_is_stored(hub_web):
    url, endpoints, engine = hub_web
    event = uber_event(order_id="locked-out")
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE inbound_event IN EXCLUSIVE MODE"))  # reads pass, writes wait
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        response = post_uber(url, endpoints["ubereats"], event)
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert waited < 4, waited  # the ingest timeout (1 s here), not the length of the stall
    assert post_uber(url, endpoints["ubereats"], event).status_code == 200  # the provider's retry
    assert count(engine, inbound_event) == 1


def test_an_endpoint_lookup_stuck_behind_a_lock_is_503_with_retry_after(hub_web):
    """Before the endpoint is cached its row is read; a table locked by a migration
    (ACCESS EXCLUSIVE blocks reads too) holds the request no longer than the timeout."""
    url, endpoints, engine = hub_web
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE webhook_endpoint IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        response = post_uber(url, endpoints["ubereats"], uber_event())
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert waited < 4, waited
    assert post_uber(url, endpoints["ubereats"], uber_event()).status_code == 200
