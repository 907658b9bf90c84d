"""`POST /webhooks/{provider}/{endpoint_id}`: verify, dedupe, store, acknowledge.

The receiver answers from the HTTP handler, never from Dagster: providers give us seconds
(Intuit 3 s, Xero 5 s) and Uber Eats phones the restaurant after 90 s. The order in which
things happen is what makes it safe:

1. find the endpoint (cached for a few seconds; unknown, inactive or another provider's -> 404);
2. read the body, refusing more than `max_body` bytes without buffering them (413);
3. verify the provider's signature or static credential on the exact raw bytes (401); a
   refused one is checked once more against the endpoint re-read from the database when
   the cached copy is over a second old, so a secret just changed works at once;
4. read it (hub/inbound/payload.py): text PostgreSQL refuses (a NUL, a lone surrogate, bytes
   that are not UTF-8) is made storable and the exact body kept beside it; a body no retry
   can fix (not JSON, NaN, nested too deep, not the provider's event envelope, ids the hub
   cannot key on) gets 400 and is kept whole as a dead letter (hub/inbound/dead_letters.py);
   a verified set-up probe is answered 200 here with the provider's reply and not stored
   (Xero's intent to receive: empty; Slack's url_verification: the challenge);
5. insert with dedupe in one transaction, shared with concurrent requests by group commit
   (group_commit.py) (a database that cannot be reached, or that does not answer within
   `ingest_timeout` seconds, say behind a lock -> 503 with Retry-After, so the provider
   retries and nothing is lost: a late commit makes the retry a duplicate); data the
   database still refuses gets 422 and a dead letter, never 503: a retry would fail the same;
6. 200 with an empty body (Uber Eats requires it), only after the commit.

A body that stops arriving mid-way gets 408 after hub.web.limits.BODY_STALL_TIMEOUT (the
stall guard HubApp puts on every request); oversized request heads get 431 from the server
protocol (hub/web/limits.py).

Every refusal is logged with its reason; nothing of a refused request is stored as an event
(a verified one is kept as a dead letter). 503 means only "the database, retry later".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL

import psycopg

from hub.crypto import Keyring
from hub.errors import NotFoundError
from hub.inbound import dead_letters
from hub.inbound.ingest import refused_data
from hub.inbound.payload import Refused, message_id
from hub.inbound.payload import read as read_payload
from hub.web.group_commit import GroupCommitter
from hub.web.limits import BodyStalled
from hub.inbound.provider_endpoints import InboundEndpoint, load_inbound
from hub.inbound.verify import InboundRequest, VerificationError, signs_url, verify

log = logging.getLogger("hub.web.receiver")

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_INGEST_TIMEOUT = 5.0  # seconds: Xero waits 5 s; past it the answer is 503 + Retry-After
MISSING = object()
MAX_ID = 2**63 - 1
REVERIFY_AFTER_S = 1.0  # a refused signature re-reads an endpoint cached at least this long ago (EndpointCache.stale_for)


_EMPTY = [(b"content-length", b"0")]
_RETRY_LATER = [(b"content-length", b"0"), (b"retry-after", b"5")]
_TIMED_OUT = [(b"content-length", b"0"), (b"connection", b"close")]


def _reply_headers(reply: bytes) -> list:
    """An empty reply stays bare (Xero wants exactly that); a challenge goes back as text."""
    if not reply:
        return _EMPTY
    return [(b"content-length", str(len(reply)).encode()), (b"content-type", b"text/plain; charset=utf-8")]


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class EndpointCache:
    """Inbound endpoints by id for `ttl` seconds: one small read per endpoint, not per request.
    Bounded (least recently used out), so requests to random ids cannot grow it without end.
    The read gives up after `timeout` seconds (statement and lock timeout), so a table locked
    by a migration holds no request longer than that (the receiver answers 503)."""

    def __init__(self, engine: Engine, keyring: Callable[[], Keyring], ttl: float = 10.0, max_items: int = 10_000,
                 timeout: float = DEFAULT_INGEST_TIMEOUT):
        self.engine, self.keyring, self.ttl, self.max_items = engine, keyring, ttl, max_items
        self.timeouts = f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}; " \
                         f"SET LOCAL lock_timeout = {max(1, int(timeout * 1000))}"
        self._items: OrderedDict[int, tuple[float, InboundEndpoint | None]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, endpoint_id: int):
        """The cached entry if fresh (no database, safe on the event loop), else MISSING."""
        if not 0 < endpoint_id <= MAX_ID:
            return None
        with self._lock:
            hit = self._items.get(endpoint_id)
            if hit and time.monotonic() - hit[0] < self.ttl:
                self._items.move_to_end(endpoint_id)
                return hit[1]
        return MISSING

    def stale_for(self, endpoint_id: int, min_age: float = REVERIFY_AFTER_S):
        """The endpoint re-read when its cached copy is at least `min_age` seconds old, else
        MISSING: after a signature fails, the secret may just have been changed (an admin
        saved a new webhook key), and the new one verifies at once in every process. The
        age bound keeps a flood of bad signatures to one read per endpoint per `min_age`."""
        with self._lock:
            hit = self._items.get(endpoint_id)
        if hit is None or time.monotonic() - hit[0] < min_age:
            return MISSING
        return self.get(endpoint_id, fresh=True)

    def get(self, endpoint_id: int, fresh: bool = False) -> InboundEndpoint | None:
        if not 0 < endpoint_id <= MAX_ID:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(endpoint_id)
            if hit:
                self._items.move_to_end(endpoint_id)
        if hit and now - hit[0] < self.ttl and not fresh:
            return hit[1]
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(self.timeouts)  # for this read's transaction only
                endpoint: InboundEndpoint | None = load_inbound(conn, self.keyring(), endpoint_id)
        except NotFoundError:
            endpoint = None
        with self._lock:
            self._items[endpoint_id] = (now, endpoint)
            self._items.move_to_end(endpoint_id)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return endpoint


class WebhookReceiver:
    """A plain ASGI endpoint (mounted as a Starlette `Route`): no Request object, no response
    classes, no per-request middleware closures; this is the hot path of the web app."""

    def __init__(self, engine: Engine, keyring: Callable[[], Keyring], committer: GroupCommitter, *,
                 max_body: int = DEFAULT_MAX_BODY, public_url: str | None = None,
                 ingest_timeout: float = DEFAULT_INGEST_TIMEOUT):
        self.engine, self.max_body, self.public_url = engine, max_body, public_url.rstrip("/") if public_url else None
        self.ingest_timeout = ingest_timeout
        self.endpoints = EndpointCache(engine, keyring, timeout=ingest_timeout)
        self.committer = committer

    async def __call__(self, scope, receive, send) -> None:
        params = scope["path_params"]
        status, headers, body = await self._handle(scope, receive, params["provider"], params["endpoint_id"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive, provider: str, endpoint_id: int) -> tuple[int, list, bytes]:
        endpoint = self.endpoints.peek(endpoint_id)
        if endpoint is MISSING:
            try:
                endpoint = await run_in_threadpool(self.endpoints.get, endpoint_id)
            except (OperationalError, DBAPIError, PoolTimeout):
                return self._refuse(503, provider, endpoint_id, "database unavailable")
        if endpoint is None or endpoint.provider != provider or not endpoint.is_active:
            return self._refuse(404, provider, endpoint_id, "unknown or inactive endpoint")
        # duplicate header lines: the first one counts (as Starlette's Headers.get)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}
        try:
            body = await self._read_body(receive, headers.get("content-length"))
        except _TooLarge:
            return self._refuse(413, provider, endpoint_id, f"body over {self.max_body} bytes")
        except _Disconnected:
            return 400, _EMPTY, b""
        except BodyStalled:
            log.warning("webhook %s/%s refused with 408: body stalled", provider, endpoint_id)
            return 408, _TIMED_OUT, b""
        content_type = headers.get("content-type", "")
        url = self._url(scope) if signs_url(endpoint.scheme) else ""  # only then is it rebuilt
        inbound = InboundRequest(body=body, headers=headers, url=url, content_type=content_type)
        try:
            verify(endpoint.scheme, inbound, endpoint.accepted_secrets(), header_name=endpoint.header_name)
        except VerificationError as exc:
            endpoint = await self._reverified(endpoint_id, provider, inbound)
            if endpoint is None:
                return self._refuse(401, provider, endpoint_id, exc.reason)
        except ValueError:  # our side: the stored secret is unusable; the provider should retry later
            return self._refuse(503, provider, endpoint_id, "endpoint secret misconfigured")
        try:
            read = read_payload(provider, body, content_type, message_id(provider, inbound))
        except Refused as exc:
            return await self._dead_letter(endpoint, headers, body, exc.reason, exc.detail, exc.status)
        except Exception as exc:  # a bug in a parser: the body is kept for a replay after the fix
            log.exception("webhook %s/%s: unexpected error reading a verified body", provider, endpoint_id)
            return await self._dead_letter(endpoint, headers, body, "unexpected", f"{type(exc).__name__} reading the body", 422)
        if read.reply is not None:  # a correctly signed set-up probe: answered, not stored
            return 200, _reply_headers(read.reply), read.reply
        try:
            async with asyncio.timeout(self.ingest_timeout):  # cancels the wait: the writer then skips the request
                result = await self.committer.submit(endpoint.integration_id, endpoint.provider, read.events)
        except TimeoutError:
            return self._refuse(503, provider, endpoint_id, f"database did not store it within {self.ingest_timeout} s")
        except psycopg.Error as exc:
            if refused_data(exc):  # this request's data, alone (group_commit retried it on its own)
                return await self._dead_letter(endpoint, headers, body, "refused_by_database",
                                               f"the database refused it (SQLSTATE {exc.sqlstate})", 422)
            log.error("webhook %s/%s: database error %s; answering 503 so the provider retries", provider, endpoint_id, type(exc).__name__)
            return 503, _RETRY_LATER, b""
        except Exception as exc:  # a bug while storing (group_commit keeps its writer alive)
            return await self._dead_letter(endpoint, headers, body, "unexpected", f"{type(exc).__name__} storing the events", 422)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("webhook %s/%s: %d stored, %d duplicate, %d new order(s)", provider, endpoint_id, result.stored, result.duplicates, result.orders)
        return 200, _EMPTY, b""

    async def _reverified(self, endpoint_id: int, provider: str, inbound: InboundRequest) -> InboundEndpoint | None:
        """The endpoint, re-read, when its fresh secret verifies a delivery the cached one
        refused (the secret was just changed); else None (refused: 401)."""
        try:
            fresh = await run_in_threadpool(self.endpoints.stale_for, endpoint_id)
        except (OperationalError, DBAPIError, PoolTimeout):
            return None
        if fresh is MISSING or fresh is None or fresh.provider != provider or not fresh.is_active:
            return None
        try:
            verify(fresh.scheme, inbound, fresh.accepted_secrets(), header_name=fresh.header_name)
        except (VerificationError, ValueError):
            return None
        return fresh

    async def _dead_letter(self, endpoint: InboundEndpoint, headers: dict[str, str], body: bytes, reason: str,
                           detail: str, status: int) -> tuple[int, list, bytes]:
        """Refuse a verified request no retry can fix with `status` (4xx), keeping it whole as a
        dead letter; 503 when even that cannot be written (the database: then a retry can)."""
        try:
            letter_id = await run_in_threadpool(self._record, endpoint, headers, body, reason, detail)
        except (OperationalError, DBAPIError, PoolTimeout):
            return self._refuse(503, endpoint.provider, endpoint.id, f"{reason}, and the dead letter could not be written")
        return self._refuse(status, endpoint.provider, endpoint.id, f"{reason}: {detail} (dead letter {letter_id})")

    def _record(self, endpoint: InboundEndpoint, headers: dict[str, str], body: bytes, reason: str, detail: str) -> int:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self.endpoints.timeouts)  # for this transaction only, as the endpoint read
            return dead_letters.record(conn, integration_id=endpoint.integration_id, endpoint_id=endpoint.id,
                                       provider=endpoint.provider, reason=reason, detail=detail, body=body,
                                       headers=headers, credential_header=endpoint.header_name)

    async def _read_body(self, receive, declared: str | None) -> bytes:
        """The body, refused (without reading on) once it is over `max_body`."""
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise _TooLarge()
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: the sender went away
                raise _Disconnected()
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge()
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _url(self, scope) -> str:
        """The URL the provider called (Twilio signs it); behind a proxy, the public one."""
        url = URL(scope=scope)
        if self.public_url:
            query = f"?{url.query}" if url.query else ""
            return f"{self.public_url}{url.path}{query}"
        return str(url)

    @staticmethod
    def _refuse(status: int, provider: str, endpoint_id: int, reason: str) -> tuple[int, list, bytes]:
        """Every 503 says when to come back: it is the answer meaning "retry", on whichever path."""
        log.warning("webhook %s/%s refused with %d: %s", provider, endpoint_id, status, reason)
        return status, (_RETRY_LATER if status == 503 else _EMPTY), b""
