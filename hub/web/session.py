"""The settings pages' session: a cookie signed by Starlette's SessionMiddleware
(itsdangerous), holding ids and tokens only, never a secret of an integration.

- Secret: `HUB_SESSION_SECRET`, else derived from HUB_SECRET_KEYS (HKDF, hub/crypto.py), so
  restarts and the several web workers agree and sessions survive a restart.
- Idle expiry: the cookie is re-signed on every response and its signature carries the
  time, so a cookie unused for `idle_minutes` no longer verifies (the middleware's
  `max_age`, checked on the server, not only by the browser's Max-Age).
- Rotation: signing in clears the session and issues a new session id and CSRF token, so
  a cookie planted before sign-in (session fixation) is worth nothing after.
- Binding: the session keeps an HMAC of the user's password hash; a password reset (or a
  disabled account) ends every session of the user at its next request.
- CSRF: one random token per session, sent back by every form (hidden field `csrf_token`)
  or htmx request (`X-CSRF-Token` header) and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Mapping, MutableMapping

from hub.auth.throttle import ThrottlePolicy
from hub.crypto import Keyring
from hub.settings import PUBLIC_URL_VAR
from hub.settings import SECRET_KEYS_VAR, SESSION_IDLE_VAR, SESSION_SECRET_VAR

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
COOKIE_NAME = "hub_session"
DEFAULT_IDLE_MINUTES = 30


def session_secret(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    explicit = env.get(SESSION_SECRET_VAR)
    if explicit:
        return explicit
    if env.get(SECRET_KEYS_VAR):
        return Keyring.from_env(env).derive("hub.web.session").hex()
    log.warning("neither %s nor %s is set: sessions are signed with a random key and end when the web app "
                "restarts (and are not shared between workers)", SESSION_SECRET_VAR, SECRET_KEYS_VAR)
    return secrets.token_hex(32)


@dataclass(frozen=True)
class WebSettings:
    secret: str = field(repr=False)
    idle_seconds: int = DEFAULT_IDLE_MINUTES * 60
    https: bool = False  # cookies marked Secure (HUB_PUBLIC_URL is https)
    throttle: ThrottlePolicy = ThrottlePolicy()

    @classmethod
    def from_env(cls, public_url: str | None = None, environ: Mapping[str, str] | None = None) -> "WebSettings":
        env = os.environ if environ is None else environ
        idle = float(env.get(SESSION_IDLE_VAR) or DEFAULT_IDLE_MINUTES)
        return cls(session_secret(env), idle_seconds=max(1, int(idle * 60)),
                   https=(public_url or "").lower().startswith("https://"))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(secret: str, password_hash: str) -> str:
    """What the session keeps of the user's password hash: enough to notice it changed."""
    return hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_token(session: MutableMapping) -> str:
    """The session's CSRF token, made on first use (the sign-in page of a new visitor)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = new_token()
    return token


def csrf_matches(session: Mapping, sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected) and bool(sent) and hmac.compare_digest(str(expected), str(sent))


def start(session: MutableMapping, user_id: int, auth: str, company_id: int) -> None:
    """A signed-in session, from scratch: nothing of the anonymous one is kept."""
    session.clear()
    session.update(sid=new_token(), uid=user_id, auth=auth, company=company_id, csrf=new_token())


def public_base_url(request) -> str:
    """The hub's address as the outside world calls it (no trailing slash): HUB_PUBLIC_URL
    behind a proxy, else the address the browser used. What the OAuth redirect URI and
    Stripe's return links are built on."""
    return (os.environ.get(PUBLIC_URL_VAR) or str(request.base_url)).rstrip("/")
