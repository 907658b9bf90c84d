"""An OAuth 2.0 authorization server for the emulators (authorization code, refresh token,
client credentials), with each provider's token lifetimes and refresh-token rotation.

Rotation policies (`RefreshPolicy.rotation`):
- "single_use": every refresh returns a new refresh token and the old one is dead at once,
  even if the response was lost (Procore, and QuickBooks as the emulators choose it).
- "grace": every refresh returns a new refresh token; the old one may be exchanged again
  for `grace_seconds` (Xero: 30 minutes), after which it is dead.

Errors are RFC 6749 JSON: 400 `{"error": "invalid_grant", "error_description": ...}`,
401 `{"error": "invalid_client"}`.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from emulators.clock import Clock


@dataclass(frozen=True)
class RefreshPolicy:
    access_ttl: int  # seconds
    rotation: str = "single_use"  # single_use | grace
    grace_seconds: int = 0
    refresh_ttl: int | None = None  # unused refresh tokens expire after this many seconds
    code_ttl: int = 600


@dataclass
class Grant:
    """What a token stands for: a client and the account it may reach."""

    client_id: str
    subject: dict[str, Any]
    scope: str = ""


@dataclass
class _RefreshToken:
    grant: Grant
    issued_at: float
    spent_at: float | None = None


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: float


class Unauthorized(Exception):
    """Raised by `authenticate`; each emulator renders it in its provider's 401 shape."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class OAuthServer:
    clock: Clock
    policy: RefreshPolicy
    token_response_extra: Callable[["OAuthServer", Grant], dict[str, Any]] = lambda server, grant: {}
    clients: dict[str, str] = field(default_factory=dict)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _codes: dict[str, tuple[Grant, float, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    refreshes: int = 0  # counters the tests read
    token_requests: int = 0

    # ---- set-up (admin API / seeding) -------------------------------------------------
    def register_client(self, client_id: str, client_secret: str) -> None:
        self.clients[client_id] = client_secret

    def issue_refresh_token(self, client_id: str, subject: dict[str, Any], scope: str = "") -> str:
        """A refresh token as if the account's owner had just connected the app."""
        with self._lock:
            return self._new_refresh(Grant(client_id, dict(subject), scope))

    def expire_access_tokens(self) -> int:
        """Fault: every access token issued so far is now expired."""
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, self.clock.time() - 1)
            return len(self._access)

    # ---- resource side -----------------------------------------------------------------
    def authenticate(self, request: Request) -> Grant:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token")
        with self._lock:
            token = self._access.get(header[7:].strip())
        if token is None:
            raise Unauthorized("unknown access token")
        if token.expires_at <= self.clock.time():
            raise Unauthorized("access token expired")
        return token.grant

    # ---- HTTP endpoints ----------------------------------------------------------------
    async def authorize_endpoint(self, request: Request) -> Response:
        """GET ?response_type=code&client_id&redirect_uri&state[&scope]; the emulated user
        always consents. Extra query parameters become the grant's subject (realm, tenant)."""
        params = dict(request.query_params)
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if params.get("response_type") != "code" or client_id not in self.clients or not redirect_uri:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        subject = {k: v for k, v in params.items() if k not in {"response_type", "client_id", "redirect_uri", "state", "scope"}}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (Grant(client_id, subject, params.get("scope", "")), self.clock.time(), redirect_uri)
        query = {"code": code, **({"state": params["state"]} if "state" in params else {}), **subject}
        return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(query)}", status_code=302)

    async def token_endpoint(self, request: Request) -> Response:
        form = dict(await request.form())
        client_id, client_secret = _client_credentials(request, form)
        self.token_requests += 1
        if client_id not in self.clients or not secrets.compare_digest(self.clients[client_id], client_secret or ""):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "refresh_token":
                return self._refresh_grant(client_id, form.get("refresh_token", ""))
            if grant_type == "authorization_code":
                return self._code_grant(client_id, form.get("code", ""), form.get("redirect_uri", ""))
            if grant_type == "client_credentials":
                return JSONResponse(self._token_response(Grant(client_id, {}, form.get("scope", "")), refresh=False))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    # ---- internals (called with the lock held) -------------------------------------------
    def _refresh_grant(self, client_id: str, presented: str) -> Response:
        now = self.clock.time()
        record = self._refresh.get(presented)
        if record is None or record.grant.client_id != client_id:
            return _invalid_grant("The refresh token is invalid")
        if self.policy.refresh_ttl and now - record.issued_at > self.policy.refresh_ttl:
            return _invalid_grant("The refresh token has expired")
        if record.spent_at is not None:
            in_grace = self.policy.rotation == "grace" and now - record.spent_at <= self.policy.grace_seconds
            if not in_grace:
                return _invalid_grant("The refresh token is invalid")
        else:
            record.spent_at = now
        self.refreshes += 1
        return JSONResponse(self._token_response(record.grant, refresh=True))

    def _code_grant(self, client_id: str, code: str, redirect_uri: str) -> Response:
        entry = self._codes.pop(code, None)
        if entry is None:
            return _invalid_grant("The authorization code is invalid")
        grant, issued_at, expected_uri = entry
        if grant.client_id != client_id or redirect_uri != expected_uri:
            return _invalid_grant("The authorization code was issued to another client or redirect URI")
        if self.clock.time() - issued_at > self.policy.code_ttl:
            return _invalid_grant("The authorization code has expired")
        return JSONResponse(self._token_response(grant, refresh=True))

    def _new_refresh(self, grant: Grant) -> str:
        token = "rt-" + secrets.token_urlsafe(32)
        self._refresh[token] = _RefreshToken(grant, self.clock.time())
        return token

    def _token_response(self, grant: Grant, refresh: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(32)
        self._access[access] = AccessToken(access, grant, self.clock.time() + self.policy.access_ttl)
        body: dict[str, Any] = {"access_token": access, "token_type": "bearer", "expires_in": self.policy.access_ttl}
        if refresh:
            body["refresh_token"] = self._new_refresh(grant)
        if grant.scope:
            body["scope"] = grant.scope
        body.update(self.token_response_extra(self, grant))
        return body


def _invalid_grant(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_grant", "error_description": description}, status_code=400)


def _client_credentials(request: Request, form: dict[str, Any]) -> tuple[str | None, str | None]:
    """HTTP Basic client authentication, or client_id/client_secret form fields."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, client_secret
        except (ValueError, UnicodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")
