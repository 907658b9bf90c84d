"""The customer's webhook endpoint for the outbound drill: the bundled sink
(emulators/webhook_sink.py: Standard Webhooks signature check with the reference library,
every delivery kept), keeping all of them instead of the last thousand, answering after a
delay, and noting which host sent each delivery (`GET /_drill/senders`: webhook-id and
client address, in arrival order; requests open per client), so the drill can tell worker1's deliveries from
worker2's.

`python -m tests.drills.sink HOST PORT DELAY`"""

from __future__ import annotations

import asyncio
import sys
import threading

import uvicorn
from starlette.responses import JSONResponse

from emulators.webhook_sink import WebhookSink


def app(delay: float):
    sink = WebhookSink(keep=10_000_000)
    senders: list[list[str]] = []
    in_flight: dict[str, int] = {}
    lock = threading.Lock()

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/_drill/senders":
            with lock:
                body = {"senders": list(senders), "in_flight": dict(in_flight)}
            return await JSONResponse(body)(scope, receive, send)
        if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
            headers = dict(scope["headers"])
            client = scope["client"][0]
            with lock:
                senders.append([headers.get(b"webhook-id", b"").decode(), client])
                in_flight[client] = in_flight.get(client, 0) + 1
            try:
                if delay:
                    await asyncio.sleep(delay)
                return await sink.app(scope, receive, send)
            finally:
                with lock:
                    in_flight[client] -= 1
        await sink.app(scope, receive, send)

    return asgi


if __name__ == "__main__":
    host, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    uvicorn.run(app(delay), host=host, port=port, log_level="warning", access_log=False)
