"""The hub's ASGI app (Starlette, served by uvicorn: `hub web run`): the webhook receiver,
/healthz, and the settings pages (hub/web/pages.py).

The settings pages are a Starlette app of their own, set as the router's fallback: the
receiver and /healthz are matched first and never pass through the pages' session and
security middleware (and a GET on a webhook path still answers 405 from the receiver's
route, as before)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub import db
from hub.crypto import Keyring
from hub.quality import expectations
from hub.web.group_commit import GroupCommitter, conninfo_from_url
from hub.web.pages import settings_app
from hub.web.limits import stall_guarded
from hub.web.receiver import DEFAULT_INGEST_TIMEOUT, DEFAULT_MAX_BODY, WebhookReceiver
from hub.web.session import WebSettings


_WEBHOOK_PATH = re.compile(r"/webhooks/([^/]+)/([0-9]+)")


class HubApp(Starlette):
    """Starlette, with one shortcut: `POST /webhooks/<provider>/<id>` goes straight to the
    receiver (a plain ASGI endpoint), without the middleware stack and the route scan, which
    cost as much per request as verifying the signature. Anything else, and any request the
    shortcut does not take (another method, a mounted root path), is routed by Starlette to
    the same receiver or answered by it as usual (404, 405)."""

    def __init__(self, receiver: WebhookReceiver, **kwargs) -> None:
        super().__init__(**kwargs)
        self.receiver = receiver

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            receive = stall_guarded(receive)  # a body that stops arriving: 408 (hub/web/limits.py)
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = _WEBHOOK_PATH.fullmatch(scope["path"])
            if match:
                scope["app"] = self
                scope["path_params"] = {"provider": match[1], "endpoint_id": int(match[2])}
                return await self.receiver(scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(engine: Engine | None = None, *, max_body: int = DEFAULT_MAX_BODY, public_url: str | None = None,
               settings: WebSettings | None = None, ingest_timeout: float = DEFAULT_INGEST_TIMEOUT,
               warm_checks: bool = False) -> Starlette:
    """The hub web app. `warm_checks`: import great-expectations in the background at start
    (the served app does; tests and short-lived apps need not pay for it)."""
    engine = engine or db.engine()
    settings = settings or WebSettings.from_env(public_url)
    committer = GroupCommitter(conninfo_from_url(engine.url), statement_timeout=ingest_timeout)
    receiver = WebhookReceiver(engine, Keyring.from_env, committer, max_body=max_body, public_url=public_url,
                               ingest_timeout=ingest_timeout)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warm_checks:
            threading.Thread(target=expectations.warm, name="warm-checks", daemon=True).start()
        yield
        await committer.close()  # the group-commit writers and their connections

    app = HubApp(
        receiver,
        routes=[
            Route("/webhooks/{provider}/{endpoint_id:int}", receiver, methods=["POST"]),  # a plain ASGI endpoint
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
    app.router.default = settings_app(engine, settings)  # whatever the two routes above do not match
    app.state.committer = committer
    return app


def app_from_env() -> Starlette:
    """uvicorn factory: settings from the environment (HUB_DATABASE_URL, HUB_SECRET_KEYS,
    HUB_PUBLIC_URL, HUB_WEBHOOK_MAX_BYTES, HUB_WEBHOOK_INGEST_TIMEOUT, HUB_SESSION_SECRET,
    HUB_SESSION_IDLE_MINUTES)."""
    hub_log = logging.getLogger("hub")
    if not hub_log.handlers:  # uvicorn configures only its own loggers
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        hub_log.addHandler(handler)
        hub_log.setLevel(logging.INFO)
    return create_app(
        max_body=int(os.environ.get("HUB_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BODY),
        public_url=os.environ.get("HUB_PUBLIC_URL") or None,
        ingest_timeout=float(os.environ.get("HUB_WEBHOOK_INGEST_TIMEOUT") or DEFAULT_INGEST_TIMEOUT),
        warm_checks=True,
    )
