"""Limits on what one client may make the web app hold: header size and count, and how long
a request's head or body may stall.

What uvicorn already does, and is used as is (`hub web run`, hub/cli.py): `timeout_keep_alive`
closes a kept-alive connection idle between requests (5 s); `limit_concurrency` answers 503
once that many connections and requests are open, so a crowd of slow clients cannot take
every slot. What it does not do:

- cap request headers. Its httptools parser (the fast one, used when installed) buffers a
  header of any size and any number of them (a 1 MiB header and 10,000 headers were
  answered 200); its h11 parser caps the head (`h11_max_incomplete_event_size`) but answers
  400, where HTTP says 431. `HubHttpProtocol` counts the head while it arrives: over
  MAX_HEADER_BYTES or MAX_HEADERS it answers 431 and closes, without buffering the rest;
- time out a head that never completes (a slow-loris client sends a byte now and then;
  uvicorn arms no timer before the first request): `HubHttpProtocol` answers 408 and closes
  after HEAD_TIMEOUT;
- time out a body that stalls: `stall_guarded(receive)` makes a wait of more than
  BODY_STALL_TIMEOUT for the next piece of an unfinished body raise `BodyStalled`, an HTTP 408
  that Starlette's pages answer as such and the webhook receiver answers itself.

The protocol class is a subclass of uvicorn's own (`uvicorn.protocols.http.httptools_impl`),
passed as `http=` to `uvicorn.run`; tests/test_web_limits.py checks it against a real server.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024  # request line and every header: Node's and nginx's order of size
MAX_HEADERS = 100  # a provider's webhook carries about 15
HEAD_TIMEOUT = 10.0  # seconds from connection (or the previous response) to a complete head
BODY_STALL_TIMEOUT = 10.0  # seconds without a byte of a body still owed


def server_options(limit_concurrency: int | None = 1000) -> dict:
    """The uvicorn settings `hub web run` serves with (and the tests serve the app with)."""
    return {"http": HubHttpProtocol, "timeout_keep_alive": 5, "limit_concurrency": limit_concurrency}


class BodyStalled(HTTPException):
    """The client stopped sending the body it announced."""

    def __init__(self) -> None:
        super().__init__(status_code=408, detail="request body stalled", headers={"Connection": "close"})


def stall_guarded(receive, timeout: float | None = None):
    """`receive`, raising BodyStalled when an unfinished body's next piece takes longer than
    `timeout`. Once the body is complete it waits without limit (the app may listen for the
    client going away while it streams a response)."""
    limit = BODY_STALL_TIMEOUT if timeout is None else timeout
    body_done = False

    async def guarded():
        nonlocal body_done
        if body_done:
            return await receive()
        try:
            async with asyncio.timeout(limit):  # no task per call, unlike wait_for on 3.11: the hot path
                message = await receive()
        except TimeoutError:
            raise BodyStalled() from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_done = True
        return message

    return guarded


def _refusal(status: int, reason: bytes) -> bytes:
    return (b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(reason), reason))


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the status is on the protocol."""


class HubHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a capped, timed request head (see the module doc)."""

    max_header_bytes = MAX_HEADER_BYTES
    max_headers = MAX_HEADERS
    head_timeout = HEAD_TIMEOUT

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # what has arrived of the current head
        self._header_count = 0
        self._refused: tuple[int, bytes] | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)  # uvicorn feeds the parser; a callback's _Refused stops it there
        if self._refused is None and self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(431, b"Request Header Fields Too Large")  # one header still arriving, already too big
        if self._refused is not None and not self.transport.is_closing():
            self.transport.write(_refusal(*self._refused))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # a callback of ours stopped the parser: answer with our status, not uvicorn's 400
        if self._refused is None:
            super().send_400_response(msg)

    def _refuse(self, status: int, reason: bytes) -> None:
        self._refused = (status, reason)
        self._disarm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refuse(431, b"Request Header Fields Too Large")
            raise _Refused()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_bytes > self.max_header_bytes and self._complete_head_size() > self.max_header_bytes:
            self._refuse(431, b"Request Header Fields Too Large")
            raise _Refused()
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def _complete_head_size(self) -> int:
        """The head's size from what was parsed (the chunk that completed it may carry body too)."""
        return len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._header_count = True, 0, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head, if the connection stays open

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes:  # a request was begun and never finished: say why it is closed
            self.transport.write(_refusal(408, b"Request Timeout"))
        self.transport.close()

