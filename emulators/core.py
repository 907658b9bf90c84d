"""What every provider emulator shares: clock, OAuth server, fault injection, request
statistics, and the admin API under `/_emulator/`.

A provider module builds its API routes and hands them to `EmulatorCore.build_app` with
the provider's own 401 / 429 / 5xx response shapes. The admin API lets the demo and the
tests steer a running emulator over HTTP:

| method and path | body | does |
|---|---|---|
| GET /_emulator/health | - | `{"provider": ..., "ok": true}` |
| GET, POST, DELETE /_emulator/faults | FaultPlan fields | read, change, reset faults |
| POST /_emulator/clock | `{"advance": seconds}` | move emulated time forward |
| POST /_emulator/tokens/expire | - | expire every access token now |
| POST /_emulator/oauth/clients | `{"client_id", "client_secret", "redirect_uris"?: [...]}` | register an OAuth client (with redirect URIs: an app whose users see the consent page) |
| POST /_emulator/oauth/faults | `{"fail_next": N, "status"?: 503}` | the next N token requests fail |
| POST /_emulator/oauth/grant | `{"client_id", "subject": {...}}` | a refresh token, as if a user connected |
| GET /_emulator/stats | - | API requests by status, token requests, refreshes, faults injected |
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict
from typing import Any, Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.clock import Clock
from emulators.faults import FaultInjector, FaultMiddleware
from emulators.oauth import Grant, OAuthServer, RefreshPolicy, Unauthorized

ADMIN_PREFIX = "/_emulator"


async def admin_body(request: Request) -> dict[str, Any]:
    """An admin call's JSON object body (empty body: {}); ValueError for anything else."""
    import json

    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def admin_action(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Request], Any]:
    """An admin endpoint applying `fn` to the JSON body: its result (or {"ok": true}), or a
    400 naming what was wrong with the body."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(fn(await admin_body(request)) or {"ok": True})
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint


class EmulatorCore:
    def __init__(
        self,
        provider: str,
        policy: RefreshPolicy,
        token_response_extra: Callable[[OAuthServer, Grant], dict[str, Any]] | None = None,
    ):
        self.provider = provider
        self.clock = Clock()
        self.faults = FaultInjector(self.clock)
        self.oauth = OAuthServer(self.clock, policy, token_response_extra or (lambda server, grant: {}))
        self.requests_by_status: Counter[int] = Counter()
        self._stats_lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            by_status = dict(self.requests_by_status)
        return {
            "api_requests": sum(by_status.values()),
            "by_status": {str(k): v for k, v in sorted(by_status.items())},
            "token_requests": self.oauth.token_requests,
            "refreshes": self.oauth.refreshes,
            "revocations": self.oauth.revocations,
            "faults_injected": dict(self.faults.injected),
        }

    def admin_routes(self) -> list[Route]:
        async def health(request: Request) -> Response:
            return JSONResponse({"provider": self.provider, "ok": True, "time": self.clock.time()})

        async def faults(request: Request) -> Response:
            if request.method == "DELETE":
                self.faults.reset()
            elif request.method == "POST":
                try:
                    self.faults.configure(**(await request.json()))
                except (ValueError, TypeError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(asdict(self.faults.plan))

        async def clock(request: Request) -> Response:
            body = await request.json()
            self.clock.advance(float(body.get("advance", 0)))
            return JSONResponse({"time": self.clock.time()})

        async def expire(request: Request) -> Response:
            return JSONResponse({"expired": self.oauth.expire_access_tokens()})

        async def clients(request: Request) -> Response:
            body = await request.json()
            uris = body.get("redirect_uris") or None
            if uris is not None and (not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris)):
                return JSONResponse({"error": "redirect_uris must be a list of URLs"}, status_code=400)
            self.oauth.register_client(body["client_id"], body["client_secret"], uris)
            return JSONResponse({"client_id": body["client_id"], "redirect_uris": sorted(self.oauth.redirect_uris.get(body["client_id"], ()))})

        async def token_faults(request: Request) -> Response:
            try:
                body = await admin_body(request)
                self.oauth.set_token_faults(int(body.get("fail_next", 0)), int(body.get("status", 503)))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"fail_next": self.oauth.fail_next_token, "status": self.oauth.token_fail_status})

        async def grant(request: Request) -> Response:
            body = await request.json()
            if body.get("client_id") not in self.oauth.clients:
                return JSONResponse({"error": "unknown client_id"}, status_code=400)
            token = self.oauth.issue_refresh_token(body["client_id"], body.get("subject", {}), body.get("scope", ""))
            return JSONResponse({"refresh_token": token})

        async def stats(request: Request) -> Response:
            return JSONResponse(self.stats())

        return [
            Route(f"{ADMIN_PREFIX}/health", health),
            Route(f"{ADMIN_PREFIX}/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route(f"{ADMIN_PREFIX}/clock", clock, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/tokens/expire", expire, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/oauth/clients", clients, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/oauth/grant", grant, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/oauth/faults", token_faults, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/stats", stats),
        ]

    def build_app(
        self,
        *,
        api_routes: Sequence[BaseRoute],
        oauth_token_path: str,
        oauth_authorize_path: str,
        is_api_path: Callable[[str], bool],
        unauthorized_response: Callable[[str], Response],
        throttle_response: Callable[[str], ASGIApp],
        error_response: Callable[[int], ASGIApp],
        admin_routes: Sequence[BaseRoute] = (),
    ) -> Starlette:
        """The provider's ASGI app: API + OAuth + admin, wrapped in faults and statistics."""

        async def on_unauthorized(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, Unauthorized)
            return unauthorized_response(exc.reason)

        routes = [
            Route(oauth_token_path, self.oauth.token_endpoint, methods=["POST"]),
            Route(oauth_authorize_path, self.oauth.authorize_endpoint, methods=["GET", "POST"]),
            *self.admin_routes(),
            *admin_routes,
            *api_routes,
        ]
        app = Starlette(routes=routes, exception_handlers={Unauthorized: on_unauthorized})
        faulted = FaultMiddleware(app, self.faults, is_api_path, throttle_response, error_response)
        return _StatsMiddleware(faulted, self, is_api_path)  # type: ignore[return-value]


class _StatsMiddleware:
    """Counts API responses by status (what a provider's usage dashboard would show)."""

    def __init__(self, app: ASGIApp, core: EmulatorCore, is_api_path: Callable[[str], bool]):
        self.app, self.core, self.is_api_path = app, core, is_api_path
        self.state = core  # tests reach the core through the app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                with self.core._stats_lock:
                    self.core.requests_by_status[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting_send)
