"""A customer's webhook endpoint, for the demo: receives the hub's outgoing webhooks, checks
each Standard Webhooks signature with the secret the customer was given, and shows what
arrived.

- `POST /hooks/{name}`: a delivery. 204 when the signature verifies (with any secret set for
  `name`), 401 otherwise; every delivery is kept with its verdict.
- `POST /_emulator/secrets/{name}` `{"secret": "whsec_..."}`: the secret(s) the customer
  stored (several while a rotation is in progress).
- `GET /_emulator/received[?name=...]`: the deliveries, newest last (webhook-id, event type,
  verified, time).
- `POST /_emulator/fail/{name}` `{"status": 503, "count": 3}`: answer the next deliveries with
  that status, to watch the hub retry (410 makes the hub disable the endpoint).

The signature check is the `standardwebhooks` reference library, as a customer would verify
(not the hub's own verifier: the sink must not agree with the hub by sharing its code).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class WebhookSink:
    def __init__(self, keep: int = 1000):
        self.secrets: dict[str, list[str]] = {}
        self.failures: dict[str, list[int]] = {}  # name -> [status, remaining]
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        self.lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/hooks/{name}", self._deliver, methods=["POST"]),
            Route("/_emulator/secrets/{name}", self._set_secret, methods=["POST"]),
            Route("/_emulator/received", self._received),
            Route("/_emulator/fail/{name}", self._fail, methods=["POST"]),
            Route("/_emulator/health", lambda request: JSONResponse({"provider": "webhook_sink", "ok": True})),
        ])

    async def _deliver(self, request: Request) -> Response:
        name, body = request.path_params["name"], await request.body()
        with self.lock:
            failing = self.failures.get(name)
            if failing and failing[1] > 0:
                failing[1] -= 1
                return Response(status_code=failing[0])
            secrets = list(self.secrets.get(name, []))
        headers = dict(request.headers)
        verified = False
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
                verified = True
                break
            except WebhookVerificationError:
                continue
        try:
            event_type = json.loads(body).get("type")
        except (ValueError, AttributeError):
            event_type = None
        with self.lock:
            self.received.append({"name": name, "webhook_id": request.headers.get("webhook-id"), "type": event_type,
                                  "verified": verified, "at": time.time()})
        return Response(status_code=204 if verified else 401)

    async def _set_secret(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.secrets[request.path_params["name"]] = [s for s in ([body.get("secret")] + list(body.get("previous") or [])) if s]
        return JSONResponse({"ok": True})

    async def _fail(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.failures[request.path_params["name"]] = [int(body.get("status", 503)), int(body.get("count", 1))]
        return JSONResponse({"ok": True})

    async def _received(self, request: Request) -> Response:
        name = request.query_params.get("name")
        with self.lock:
            items = [r for r in self.received if name is None or r["name"] == name]
        return JSONResponse({"received": items, "verified": sum(r["verified"] for r in items), "total": len(items)})


def create_emulator(**_: Any) -> WebhookSink:
    return WebhookSink()
