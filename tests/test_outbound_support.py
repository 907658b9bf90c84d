"""Shared helpers of the outbound webhook tests (no tests here): a real HTTP receiver on
loopback that records every request and answers as a test tells it to, a dispatcher
running in a background thread against the test database, and small database helpers."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.outbound import endpoints as ep
from hub.outbound.dispatcher import Dispatcher
from hub.outbound.ssrf import AddressPolicy
from hub.schema import webhook_delivery, webhook_endpoint

LOOPBACK = AddressPolicy.parse("127.0.0.1/32,::1")
FAST = {"schedule": [0.2, 0.2], "jitter": 0.0, "timeout": 2.0}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """Records requests per path; `rules[path]` (a Reply, or a callable of the request
    number on that path returning one) decides the answer; default 200 "ok"."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.rules: dict[str, Reply | Callable[[int], Reply]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])
        self.url = ""

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = "/" + request.path_params["path"]
        with self._lock:
            self.seen.append(Seen(path, {k.lower(): v for k, v in request.headers.items()}, body, time.time()))
            number = sum(1 for s in self.seen if s.path == path)
        rule = self.rules.get(path, Reply())
        reply = rule(number) if callable(rule) else rule
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    def on(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    with serve(r.app) as url:
        r.url = url
        yield r


def dsn(engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def running(engine, **options: Any) -> Iterator[Dispatcher]:
    """A dispatcher on the test database in a background thread, stopped at the end."""
    options.setdefault("address_policy", LOOPBACK)
    options.setdefault("poll_interval", 0.1)
    options.setdefault("disable_check_interval", 0.0)
    options.setdefault("shutdown_grace", 3.0)
    dispatcher = Dispatcher(dsn(engine), Keyring.from_env(), **options)
    thread = dispatcher.start_in_thread()
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        thread.join(20)
        assert not thread.is_alive(), "dispatcher did not stop"


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def company(engine, name: str = "Acme") -> int:
    with engine.begin() as conn:
        return store.create_company(conn, name)


def endpoint(engine, company_id: int, url: str, events=("*",), name: str = "hook", **kwargs: Any) -> tuple[int, str]:
    with engine.begin() as conn:
        return ep.add_endpoint(conn, Keyring.from_env(), company_id=company_id, name=name, url=url, events=list(events),
                               address_policy=kwargs.pop("address_policy", LOOPBACK), **kwargs)


def attempts(engine, endpoint_id: int | None = None) -> list[sa.Row]:
    query = sa.select(webhook_delivery).order_by(webhook_delivery.c.outbox_event_id, webhook_delivery.c.attempt)
    if endpoint_id is not None:
        query = query.where(webhook_delivery.c.endpoint_id == endpoint_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def endpoint_row(engine, endpoint_id: int) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id)).one()
