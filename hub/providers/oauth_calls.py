"""The provider calls of an OAuth connect and disconnect, shared by the providers' own
`oauth.py` modules (which say what is different about each: where the connected account is
found, how a grant is revoked), and the types the flow (hub/connect/oauth_flow.py) hands them.

- `OAuthApp`: the hub's app registered at the provider (client id and secret, app-level
  credentials such as Slack's signing secret) and, for the demo and the tests, the origin of
  an emulator that serves every one of the provider's URLs at its real path (`url()` moves a
  real URL there).
- `exchange_code`: the authorization-code grant, one form POST (RFC 6749 4.1.3, with the PKCE
  verifier of RFC 7636); any answer without an access token is a `ConnectFailed` whose text is
  safe to show (the provider's error code, never a token).
- `revoke_rfc7009`: token revocation as RFC 7009 has it (form `token`, client auth).

Why no OAuth client library: the exchange and the revocation are a form POST each (as in
hub/providers/tokens.py), the providers differ exactly where a library would need hooks
(Slack answers errors as HTTP 200 `ok: false`, Intuit revokes with a JSON body), and the
state, PKCE verifier and tokens must live in the hub's own encrypted store, not a library's
session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from hub.errors import HubError

TIMEOUT_S = 15.0


class ConnectFailed(HubError):
    """A connect or disconnect step the provider refused or did not answer; the message
    is written for the person on the page and carries no secret."""


@dataclass(frozen=True)
class OAuthApp:
    provider: str
    display_name: str
    client_id: str
    client_secret: str = field(repr=False)
    extra: dict[str, str] = field(default_factory=dict, repr=False)  # app-level credentials (Slack's signing secret)
    origin: str | None = None  # an emulator's http://host:port serving every provider URL at its real path

    def url(self, real: str) -> str:
        """`real` as the hub reaches it: on the emulator's origin when one is set."""
        if not self.origin:
            return real
        target, parts = urlsplit(self.origin), urlsplit(real)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))


@dataclass(frozen=True)
class RemoteAccount:
    """An account a grant reaches: a QuickBooks company, a Xero organisation, a Procore
    company, a Slack workspace."""

    id: str
    name: str
    connection_id: str | None = None  # Xero: the connection to DELETE on disconnect


@dataclass(frozen=True)
class ConnectCall:
    """What a provider's `accounts` look-up gets after the code exchange."""

    http: httpx.Client
    app: OAuthApp
    api_base: str  # the provider's API origin (on the emulator when the app has one)
    token: dict[str, Any] = field(repr=False)  # the token endpoint's answer
    callback: dict[str, str] = field(default_factory=dict)  # the callback's query (QuickBooks' realmId)

    def get(self, path: str, what: str) -> Any:
        """GET api_base+path with the new access token; its JSON, or ConnectFailed."""
        return answer(self.app, what, lambda: self.http.get(
            self.api_base + path, headers={"Authorization": f"Bearer {self.token['access_token']}", "Accept": "application/json"}))


@dataclass(frozen=True)
class RevokeCall:
    """What a provider's `revoke` gets: the stored connection and where to reach the provider."""

    http: httpx.Client
    app: OAuthApp
    api_base: str
    revoke_url: str | None
    token_url: str | None
    credentials: dict[str, Any] = field(repr=False)
    config: dict[str, Any] = field(default_factory=dict)

    def fresh_access_token(self) -> str:
        """An access token for the disconnect's own API calls: the stored one while it lives,
        else one from the refresh token (which the revocation ends right after)."""
        if self.credentials.get("access_token") and float(self.credentials.get("access_token_expires_at") or 0) > time.time() + 60:
            return str(self.credentials["access_token"])
        if not self.token_url or not self.credentials.get("refresh_token"):
            raise ConnectFailed(f"{self.app.display_name}: no token to disconnect with")
        body = answer(self.app, "the token refresh", lambda: self.http.post(
            self.token_url, data={"grant_type": "refresh_token", "refresh_token": self.credentials["refresh_token"]},
            auth=(self.app.client_id, self.app.client_secret), headers={"Accept": "application/json"}))
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ConnectFailed(f"{self.app.display_name} gave no access token for the disconnect")
        if body.get("refresh_token"):
            self.credentials["refresh_token"] = body["refresh_token"]  # rotated: revoke the live one
        return str(body["access_token"])


def answer(app: OAuthApp, what: str, send) -> Any:
    """Send a request; its JSON body (or None when empty), or ConnectFailed saying which
    step failed and how (HTTP status, the provider's error code), never echoing a token."""
    try:
        response = send()
    except httpx.HTTPError as exc:
        raise ConnectFailed(f"{app.display_name} could not be reached for {what} ({type(exc).__name__})") from None
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
    code = _error_code(body)
    if response.status_code >= 400 or code:
        detail = f": {code}" if code else ""
        raise ConnectFailed(f"{app.display_name} refused {what} (HTTP {response.status_code}{detail})")
    return body


def _error_code(body: Any) -> str | None:
    """The provider's error code in an answer: RFC 6749 `error`, or Slack's `ok: false`."""
    if not isinstance(body, dict):
        return None
    if body.get("ok") is False:
        return str(body.get("error") or "error")[:80]
    error = body.get("error")
    return str(error)[:80] if isinstance(error, str) and error else None


def exchange_code(http: httpx.Client, app: OAuthApp, token_url: str, *, code: str, redirect_uri: str,
                  code_verifier: str | None, client_auth: str) -> dict[str, Any]:
    """The authorization-code grant; the token answer (with an access token), or ConnectFailed."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        data["code_verifier"] = code_verifier
    auth = None
    if client_auth == "basic":
        auth = (app.client_id, app.client_secret)
    else:
        data.update(client_id=app.client_id, client_secret=app.client_secret)
    body = answer(app, "the authorization code", lambda: http.post(
        token_url, data=data, auth=auth, headers={"Accept": "application/json"}))
    if not isinstance(body, dict) or not body.get("access_token"):
        raise ConnectFailed(f"{app.display_name} answered the code exchange without an access token")
    return body


def revoke_rfc7009(call: RevokeCall, token: str, client_auth: str = "basic") -> None:
    """POST the revocation endpoint `token=...` with the app's client authentication."""
    if not call.revoke_url:
        raise ConnectFailed(f"{call.app.display_name} has no revocation endpoint")
    data = {"token": token}
    auth = None
    if client_auth == "basic":
        auth = (call.app.client_id, call.app.client_secret)
    else:
        data.update(client_id=call.app.client_id, client_secret=call.app.client_secret)
    answer(call.app, "the revocation", lambda: call.http.post(call.revoke_url, data=data, auth=auth))


def http() -> httpx.Client:
    """The client of the connect calls: no redirects followed (a provider answering a token
    request with a redirect is refused, not followed), a bounded timeout."""
    return httpx.Client(follow_redirects=False, timeout=TIMEOUT_S)
