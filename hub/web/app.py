"""The hub's ASGI app (Starlette, served by uvicorn: `hub web run`)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub import db
from hub.crypto import Keyring
from hub.web.group_commit import GroupCommitter, conninfo_from_url
from hub.web.receiver import DEFAULT_MAX_BODY, WebhookReceiver


def create_app(engine: Engine | None = None, *, max_body: int = DEFAULT_MAX_BODY, public_url: str | None = None) -> Starlette:
    engine = engine or db.engine()
    committer = GroupCommitter(conninfo_from_url(engine.url))
    receiver = WebhookReceiver(engine, Keyring.from_env, committer, max_body=max_body, public_url=public_url)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/webhooks/{provider}/{endpoint_id:int}", receiver.handle, methods=["POST"]),
            Route("/healthz", health),
        ]
    )


def app_from_env() -> Starlette:
    """uvicorn factory: settings from the environment (HUB_DATABASE_URL, HUB_SECRET_KEYS,
    HUB_PUBLIC_URL, HUB_WEBHOOK_MAX_BYTES)."""
    import logging
    import os

    hub_log = logging.getLogger("hub")
    if not hub_log.handlers:  # uvicorn configures only its own loggers
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        hub_log.addHandler(handler)
        hub_log.setLevel(logging.INFO)
    return create_app(
        max_body=int(os.environ.get("HUB_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BODY),
        public_url=os.environ.get("HUB_PUBLIC_URL") or None,
    )
