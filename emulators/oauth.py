"""An OAuth 2.0 authorization server for the emulators (authorization code, refresh token,
client credentials), with each provider's token lifetimes and refresh-token rotation.

Rotation policies (`RefreshPolicy.rotation`):
- "single_use": every refresh returns a new refresh token and the old one is dead at once,
  even if the response was lost (Procore, and QuickBooks as the emulators choose it).
- "grace": every refresh returns a new refresh token; the old one may be exchanged again
  for `grace_seconds` (Xero: 30 minutes), after which it is dead.

Errors are RFC 6749 JSON: 400 `{"error": "invalid_grant", "error_description": ...}`,
401 `{"error": "invalid_client"}`.

Authorization (the user's browser at the provider's authorize path):
- A client registered with redirect URIs (`register_client(id, secret, redirect_uris=[...])`,
  or the admin API) gets what the real providers do: an unknown client_id, a missing or
  unregistered redirect_uri (compared exactly) or a response_type other than `code` is an
  HTML error page (never a redirect to an address nobody registered); otherwise a consent
  page with Approve and Deny (a form POST back to the same path). Approve redirects to the
  redirect_uri with `code` and `state` (plus what the provider adds, e.g. QuickBooks'
  `realmId`); Deny with `error=access_denied` and `state`. The page lets the emulated user
  choose the account(s) to grant where the provider's does (`Consent`). The request is kept
  server-side under a one-time consent id, so the form cannot change the redirect_uri.
- A client registered without redirect URIs is a protocol-test client: the emulated user
  consents at once to any redirect_uri, and extra query parameters become the grant's subject
  (what the emulators did before they had consent pages; the SDK and client tests use it).
- PKCE (RFC 7636): a `code_challenge` (method S256, or plain) is kept with the code; the token
  request must then carry the matching `code_verifier`, else `invalid_grant`.

Revocation: `revoke_grant(token)` ends the whole authorization a refresh or access token
belongs to (all its tokens); each emulator serves it at its provider's revocation path.
Fault: `fail_next_token` makes the next N token requests answer `token_fail_status` (503)
with `{"error": "temporarily_unavailable"}` (admin: POST /_emulator/oauth/faults).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

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


@dataclass(frozen=True)
class Consent:
    """What a provider's consent page shows and lets the emulated user choose.

    `accounts()` lists (id, name) of the accounts the user could grant (a company, an
    organisation, a workspace); with `multiple` the user ticks several (Xero), else picks one
    (none offered: nothing to choose). The chosen id(s) go into the grant's subject under
    `subject_key`; `redirect_param` also puts the chosen id on the redirect (QuickBooks'
    realmId). `extra_choice(scope)` may add one more select, e.g. Slack's incoming-webhook
    channel: (field name, label, [(value, text)]) or None; its value lands in the subject."""

    provider: str
    account_label: str = "company"
    accounts: Callable[[], list[tuple[str, str]]] = lambda: []
    subject_key: str = "account"
    multiple: bool = False
    redirect_param: str | None = None
    extra_choice: Callable[[str], tuple[str, str, list[tuple[str, str]]] | None] = lambda scope: None


@dataclass
class _Code:
    grant: Grant
    issued_at: float
    redirect_uri: str
    challenge: str | None = None
    challenge_method: str = "plain"


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
    consent: Consent = field(default_factory=lambda: Consent("the provider"))
    redirect_uris: dict[str, set[str]] = field(default_factory=dict)  # client -> registered URIs (none: a test client)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _consents: dict[str, tuple[dict[str, str], float]] = field(default_factory=dict)  # consent id -> checked request
    _lock: threading.Lock = field(default_factory=threading.Lock)
    refreshes: int = 0  # counters the tests read
    token_requests: int = 0
    revocations: int = 0
    fail_next_token: int = 0  # fault: the next N token requests answer token_fail_status
    token_fail_status: int = 503

    # ---- set-up (admin API / seeding) -------------------------------------------------
    def register_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str] | None = None) -> None:
        """A client; with `redirect_uris` it is an app as a developer registers it (consent
        page, exact redirect URIs), without them a protocol-test client (see the docstring)."""
        self.clients[client_id] = client_secret
        if redirect_uris:
            self.redirect_uris.setdefault(client_id, set()).update(redirect_uris)

    def set_token_faults(self, fail_next: int, status: int = 503) -> None:
        with self._lock:
            self.fail_next_token, self.token_fail_status = int(fail_next), int(status)

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
        """GET: the consent page (or, for a protocol-test client, an immediate code); POST:
        the user's Approve or Deny from that page."""
        if request.method == "POST":
            return await self._decide(request)
        params = dict(request.query_params)
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if client_id in self.clients and client_id not in self.redirect_uris:
            return self._auto_consent(params)
        if client_id not in self.clients:
            return self._error_page("The app is not known (invalid client_id).")
        if not redirect_uri or redirect_uri not in self.redirect_uris[client_id]:
            return self._error_page("The redirect_uri does not match any address registered for this app.")
        if params.get("response_type") != "code":
            return self._error_page("Only response_type=code is supported.")
        method = params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else "")
        if method not in ("", "plain", "S256"):
            return self._error_page("Unsupported code_challenge_method.")
        consent_id = secrets.token_urlsafe(18)
        now = self.clock.time()
        with self._lock:
            for stale in [k for k, (_, at) in self._consents.items() if now - at > self.policy.code_ttl]:
                del self._consents[stale]  # pages nobody answered
            self._consents[consent_id] = (params, now)
        return HTMLResponse(self._consent_page(consent_id, params))

    def _auto_consent(self, params: dict[str, str]) -> Response:
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if params.get("response_type") != "code" or not redirect_uri:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        reserved = {"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method"}
        subject = {k: v for k, v in params.items() if k not in reserved}
        code = self._issue_code(Grant(str(client_id), subject, params.get("scope", "")), params)
        query = {"code": code, **({"state": params["state"]} if "state" in params else {}), **subject}
        return _redirect(redirect_uri, query)

    async def _decide(self, request: Request) -> Response:
        form = await request.form()
        with self._lock:
            entry = self._consents.pop(str(form.get("consent_id", "")), None)
        if entry is None or self.clock.time() - entry[1] > self.policy.code_ttl:
            return self._error_page("This consent request has expired or was already answered. Start again from the app.")
        params = entry[0]
        state = {"state": params["state"]} if "state" in params else {}
        if form.get("decision") != "approve":
            return _redirect(params["redirect_uri"], {"error": "access_denied",
                                                       "error_description": "The user denied the request", **state})
        consent, offered = self.consent, dict(self.consent.accounts())
        chosen = [str(v) for v in form.getlist("account") if str(v) in offered]
        if offered and not chosen:
            self._consents_put_back(form, entry)
            return HTMLResponse(self._consent_page(str(form.get("consent_id")), params,
                                                   problem=f"Choose the {consent.account_label} to connect."), status_code=400)
        subject: dict[str, Any] = {}
        if chosen:
            subject[consent.subject_key] = chosen if consent.multiple else chosen[0]
        extra = consent.extra_choice(params.get("scope", ""))
        if extra is not None and form.get(extra[0]) in {value for value, _ in extra[2]}:
            subject[extra[0]] = str(form.get(extra[0]))
        code = self._issue_code(Grant(params["client_id"], subject, params.get("scope", "")), params)
        query = {"code": code, **state}
        if consent.redirect_param and chosen:
            query[consent.redirect_param] = chosen[0]
        return _redirect(params["redirect_uri"], query)

    def _consents_put_back(self, form: Any, entry: tuple[dict[str, str], float]) -> None:
        with self._lock:
            self._consents[str(form.get("consent_id"))] = entry

    def _issue_code(self, grant: Grant, params: dict[str, str]) -> str:
        code = secrets.token_urlsafe(24)
        challenge = params.get("code_challenge") or None
        method = params.get("code_challenge_method") or "plain"
        with self._lock:
            self._codes[code] = _Code(grant, self.clock.time(), str(params.get("redirect_uri")), challenge, method)
        return code

    def _consent_page(self, consent_id: str, params: dict[str, str], problem: str | None = None) -> str:
        consent, esc = self.consent, html.escape
        app = esc(params.get("client_id", ""))
        accounts = consent.accounts()
        rows = []
        if accounts:
            kind = "checkbox" if consent.multiple else "radio"
            legend = f"Choose the {consent.account_label}{'s' if consent.multiple else ''} to connect"
            options = "".join(
                f'<div><label><input type="{kind}" name="account" value="{esc(i)}"{" checked" if n == 0 else ""}> {esc(name)}</label></div>'
                for n, (i, name) in enumerate(accounts))
            rows.append(f"<fieldset><legend>{esc(legend)}</legend>{options}</fieldset>")
        extra = consent.extra_choice(params.get("scope", ""))
        if extra is not None:
            name, label, choices = extra
            options = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in choices)
            rows.append(f'<p><label for="extra">{esc(label)}</label> <select id="extra" name="{esc(name)}">{options}</select></p>')
        scopes = "".join(f"<li>{esc(s)}</li>" for s in params.get("scope", "").replace(",", " ").split())
        alert = f'<p role="alert" class="problem">{esc(problem)}</p>' if problem else ""
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize {app} · {esc(consent.provider)}</title>
<style>{_PAGE_STYLE}</style></head>
<body><main><h1>{esc(consent.provider)}</h1><p><strong>{app}</strong> would like to connect to your {esc(consent.provider)} account.</p>
{alert}<form method="post"><input type="hidden" name="consent_id" value="{esc(consent_id)}">
{''.join(rows)}{f'<p>It asks for:</p><ul>{scopes}</ul>' if scopes else ''}
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form>
<p><small>Emulated consent page (integrations-hub emulators).</small></p></main></body></html>"""

    def _error_page(self, message: str) -> Response:
        esc = html.escape
        return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · {esc(self.consent.provider)}</title>
<style>{_PAGE_STYLE}</style></head>
<body><main><h1>{esc(self.consent.provider)}: this request cannot be authorized</h1><p role="alert">{esc(message)}</p></main></body></html>""",
                            status_code=400)

    def revoke_grant(self, token: str) -> bool:
        """End the authorization `token` (refresh or access) belongs to: every access token of
        its grant is removed, every refresh token spent. False when the token is unknown."""
        with self._lock:
            found = self._access.get(token) or self._refresh.get(token)
            if found is None:
                return False
            for key, access in list(self._access.items()):
                if access.grant is found.grant:
                    del self._access[key]
            for refresh in self._refresh.values():
                if refresh.grant is found.grant and refresh.spent_at is None:
                    refresh.spent_at = self.clock.time()
            self.revocations += 1
            return True

    def is_live(self, token: str) -> bool:
        """A refresh token that may still be exchanged, or an unexpired access token (tests)."""
        with self._lock:
            refresh, access = self._refresh.get(token), self._access.get(token)
            if refresh is not None:
                return refresh.spent_at is None
            return access is not None and access.expires_at > self.clock.time()

    def redeem_code(self, client_id: str, client_secret: str | None, code: str, redirect_uri: str,
                    code_verifier: str | None) -> Grant | str:
        """A code exchange for providers whose token answer is their own (Slack): the grant,
        or the reason it was refused (a short error code)."""
        if client_id not in self.clients or not secrets.compare_digest(self.clients[client_id], client_secret or ""):
            return "invalid_client"
        with self._lock:
            result = self._take_code(client_id, code, redirect_uri, code_verifier)
        return result

    def _take_code(self, client_id: str, code: str, redirect_uri: str, code_verifier: str | None) -> Grant | str:
        entry = self._codes.pop(code, None)
        if entry is None:
            return "The authorization code is invalid"
        if entry.grant.client_id != client_id or redirect_uri != entry.redirect_uri:
            return "The authorization code was issued to another client or redirect URI"
        if self.clock.time() - entry.issued_at > self.policy.code_ttl:
            return "The authorization code has expired"
        if entry.challenge is not None:
            if not code_verifier:
                return "The code_verifier is missing"
            if not secrets.compare_digest(_challenge_of(code_verifier, entry.challenge_method), entry.challenge):
                return "The code_verifier does not match the code_challenge"
        return entry.grant

    async def token_endpoint(self, request: Request) -> Response:
        form = dict(await request.form())
        client_id, client_secret = client_credentials(request, form)
        self.token_requests += 1
        with self._lock:
            failing = self.fail_next_token > 0
            if failing:
                self.fail_next_token -= 1
        if failing:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=self.token_fail_status)
        if client_id not in self.clients or not secrets.compare_digest(self.clients[client_id], client_secret or ""):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "refresh_token":
                return self._refresh_grant(client_id, form.get("refresh_token", ""))
            if grant_type == "authorization_code":
                return self._code_grant(client_id, form.get("code", ""), form.get("redirect_uri", ""), form.get("code_verifier"))
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

    def _code_grant(self, client_id: str, code: str, redirect_uri: str, code_verifier: str | None = None) -> Response:
        grant = self._take_code(client_id, code, redirect_uri, code_verifier)
        if isinstance(grant, str):
            return _invalid_grant(grant)
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


_PAGE_STYLE = ("body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}main{max-width:32rem;margin:3rem auto;"
               "background:#fff;padding:1.5rem 2rem;border-radius:8px;box-shadow:0 1px 4px #0002}fieldset{border:1px solid #ddd;"
               "border-radius:6px;margin:1rem 0}fieldset div{margin:.3rem 0}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem;"
               "border-radius:6px;border:1px solid #888;cursor:pointer}button[value=approve]{background:#0a6;color:#fff;border-color:#0a6}"
               ".problem,[role=alert]{color:#b00}small{color:#666}")


def _challenge_of(verifier: str, method: str) -> str:
    if method == "S256":
        return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=").decode()
    return verifier


def _redirect(uri: str, query: dict[str, Any]) -> RedirectResponse:
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}", status_code=302)


def _invalid_grant(description: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_grant", "error_description": description}, status_code=400)


def client_credentials(request: Request, form: dict[str, Any]) -> tuple[str | None, str | None]:
    """HTTP Basic client authentication, or client_id/client_secret form fields."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, client_secret
        except (ValueError, UnicodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")
