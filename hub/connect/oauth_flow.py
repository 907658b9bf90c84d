"""Connecting an integration by the OAuth 2.0 authorization-code flow, from the settings pages:
start (the provider's authorize URL), finish (the callback: state, code exchange, which
account), pick (when the grant reaches several accounts) and disconnect (revoke at the
provider, then forget the tokens). The web layer (hub/web/sections/connection.py) only turns
these outcomes into pages.

What a provider does differently is declared in its spec (`AuthSpec.connect`, an
`OAuthConnect`: the config field of the account, PKCE, client authentication, how accounts
are found and grants revoked); nothing here names a provider.

The hub's app at each provider comes from the environment (read per request):

| variable | meaning |
|---|---|
| HUB_OAUTH_<PROVIDER>_CLIENT_ID, HUB_OAUTH_<PROVIDER>_CLIENT_SECRET | the app registered at the provider; without both, the pages offer no Connect |
| HUB_OAUTH_<PROVIDER>_<FIELD> | an app-level credential the spec lists (`app_credentials`, e.g. HUB_OAUTH_SLACK_SIGNING_SECRET) |
| HUB_OAUTH_<PROVIDER>_BASE_URL | an emulator's origin: authorize, token, revoke and API URLs keep their real paths on it (the demo, the tests) |

Rules (RFC 9700): `state` is 32 random bytes, stored hashed and bound to the browser session,
user and company (hub/connect/oauth_state.py), single use, 10 minutes; PKCE S256 where the
spec says so; one exact redirect URI (`<hub>/settings/integrations/oauth/callback`); the code
is exchanged once. A denied consent, a wrong/unknown/reused/expired state, a failed exchange
or account look-up each end with a message and store nothing (the state is used up all the
same). On success the integration is created (or, for a reconnect, updated) with the tokens
encrypted in its credentials and the account in its config; it is connected and active. A
reconnect must grant the same account the integration already syncs, else nothing changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.connect import oauth_state
from hub.connect.oauth_state import Owner
from hub.crypto import Keyring
from hub.errors import HubError, ValidationError
from hub.inbound.provider_endpoints import follow_credential
from hub.providers import oauth_calls
from hub.providers.oauth_calls import ConnectCall, ConnectFailed, OAuthApp, RemoteAccount, RevokeCall
from hub.providers.spec import OAUTH_KINDS, ProviderSpec
from hub.redact import redact
from hub.schema import integration

CALLBACK_PATH = "/settings/integrations/oauth/callback"
ENV_PREFIX = "HUB_OAUTH_"
TOKEN_FIELDS = ("refresh_token", "access_token", "access_token_expires_at")
DENIED = "You declined the request on {provider}'s page, so nothing was connected and nothing was stored."


def env_var(spec: ProviderSpec, field: str) -> str:
    return f"{ENV_PREFIX}{spec.name.upper()}_{field.upper()}"


def connectable(spec: ProviderSpec | None) -> bool:
    """The provider is connected by the authorization-code flow from the pages."""
    return spec is not None and spec.auth.connect is not None and spec.client is not None


def app_for(spec: ProviderSpec, environ: Mapping[str, str] | None = None) -> OAuthApp | None:
    """The hub's app at the provider, from the environment; None when it is not configured
    (then the pages say which variables to set instead of offering Connect)."""
    env = os.environ if environ is None else environ
    if not connectable(spec):
        return None
    client_id, secret = env.get(env_var(spec, "client_id")), env.get(env_var(spec, "client_secret"))
    if not client_id or not secret:
        return None
    extra = {f: env[env_var(spec, f)] for f in spec.auth.connect.app_credentials if env.get(env_var(spec, f))}
    return OAuthApp(spec.name, spec.display_name, client_id, secret, extra, env.get(env_var(spec, "base_url")) or None)


@dataclass(frozen=True)
class Outcome:
    """How a step ended: `connected` (integration_id), `pick` (flow_id: choose the account),
    `refused` (message; nothing stored) or `disconnected`."""

    kind: str
    message: str
    integration_id: int | None = None
    flow_id: int | None = None
    needs_confirm: bool = False  # a disconnect whose revocation failed: the admin may disconnect anyway


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def start(engine: Engine, keyring: Keyring, spec: ProviderSpec, app: OAuthApp, owner: Owner, redirect_uri: str,
          integration_id: int | None = None, integration_name: str | None = None) -> str:
    """A new flow stored; the provider's authorize URL to send the browser to."""
    connect = spec.auth.connect
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if connect.pkce else None  # 86 characters of [A-Za-z0-9_-] (RFC 7636: 43-128)
    with engine.begin() as conn:
        oauth_state.begin(conn, keyring, state=state, owner=owner, provider=spec.name, integration_id=integration_id,
                          integration_name=integration_name, code_verifier=verifier)
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri, "state": state}
    if spec.auth.scopes:
        query["scope"] = connect.scope_separator.join(spec.auth.scopes)
    if verifier:
        query.update(code_challenge=_s256(verifier), code_challenge_method="S256")
    url = app.url(spec.auth.authorize_url)
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(query)}"


def finish(engine: Engine, keyring: Keyring, specs: Mapping[str, ProviderSpec], params: Mapping[str, str], owner: Owner,
           redirect_uri: str) -> Outcome:
    """The callback: consume the state (always first, so a replay is refused whatever
    follows), then the provider's answer; store only a complete, successful connection."""
    state = params.get("state") or ""
    if not state:
        return Outcome("refused", "The provider's answer carried no state, so it cannot be matched to a connect you started. "
                                  "Nothing was stored.")
    with engine.begin() as conn:
        flow = oauth_state.consume(conn, keyring, state, owner)
        if flow is None:
            return Outcome("refused", oauth_state.why_not(conn, state, owner))
    spec = specs.get(flow.provider)
    app = app_for(spec) if spec else None
    if spec is None or app is None:
        return Outcome("refused", "This provider can no longer be connected from here (its OAuth app is not configured). "
                                  "Nothing was stored.")
    if params.get("error"):
        if params["error"] == "access_denied":
            return Outcome("refused", DENIED.format(provider=spec.display_name))
        return Outcome("refused", f"{spec.display_name} refused the request ({redact(params['error'])[:80]}). Nothing was stored.")
    if not params.get("code"):
        return Outcome("refused", f"{spec.display_name} sent no authorization code. Nothing was stored.")
    connect = spec.auth.connect
    try:
        with oauth_calls.http() as http:
            token = oauth_calls.exchange_code(http, app, app.url(spec.auth.token_url), code=params["code"], redirect_uri=redirect_uri,
                                              code_verifier=flow.code_verifier, client_auth=connect.client_auth)
            if spec.auth.kind == "oauth_refresh" and not token.get("refresh_token"):
                raise ConnectFailed(f"{spec.display_name} gave no refresh token, so the hub could not stay connected")
            accounts = connect.accounts(ConnectCall(http, app, app.url(spec.client.base_url), token, dict(params)))
    except ConnectFailed as exc:
        return Outcome("refused", f"{exc}. Nothing was stored; try connecting again.")
    if not accounts:
        return Outcome("refused", f"The {spec.display_name} grant reaches no {connect.account_label}. Nothing was stored.")
    if len(accounts) > 1:
        with engine.begin() as conn:
            oauth_state.hold(conn, keyring, flow.id, {"token": token, "accounts": [asdict(a) for a in accounts]})
        return Outcome("pick", f"Choose the {spec.display_name} {connect.account_label} to connect.", flow_id=flow.id)
    return _store(engine, keyring, spec, app, flow, token, accounts[0])


def choices(engine: Engine, keyring: Keyring, specs: Mapping[str, ProviderSpec], flow_id: int,
            owner: Owner) -> tuple[ProviderSpec, list[RemoteAccount]] | None:
    """The accounts a waiting grant reaches (the pick page), or None when there is none to
    pick for this session (used, expired, another session's)."""
    with engine.connect() as conn:
        found = oauth_state.peek_pending(conn, keyring, flow_id, owner)
    if found is None or found[0].provider not in specs:
        return None
    return specs[found[0].provider], [RemoteAccount(**a) for a in found[1]["accounts"]]


def pick(engine: Engine, keyring: Keyring, specs: Mapping[str, ProviderSpec], flow_id: int, owner: Owner,
         account_id: str) -> Outcome:
    with engine.connect() as conn:
        peeked = oauth_state.peek_pending(conn, keyring, flow_id, owner)
    if peeked is None:
        return Outcome("refused", "This choice is no longer open (already made, expired, or another session's). Nothing was stored.")
    if account_id not in {a["id"] for a in peeked[1]["accounts"]}:
        return Outcome("refused", "Choose one of the listed accounts.", flow_id=flow_id)
    with engine.begin() as conn:
        taken = oauth_state.take_pending(conn, keyring, flow_id, owner)
    if taken is None:
        return Outcome("refused", "This choice is no longer open (already made, expired, or another session's). Nothing was stored.")
    flow, pending = taken
    spec = specs.get(flow.provider)
    app = app_for(spec) if spec else None
    if spec is None or app is None:
        return Outcome("refused", "This provider can no longer be connected from here. Nothing was stored.")
    account = next(RemoteAccount(**a) for a in pending["accounts"] if a["id"] == account_id)
    return _store(engine, keyring, spec, app, flow, pending["token"], account)


def _store(engine: Engine, keyring: Keyring, spec: ProviderSpec, app: OAuthApp, flow: oauth_state.Flow,
           token: dict[str, Any], account: RemoteAccount) -> Outcome:
    connect = spec.auth.connect
    credentials: dict[str, Any] = dict(app.extra)
    if spec.auth.kind == "oauth_refresh":
        credentials.update(client_id=app.client_id, client_secret=app.client_secret, refresh_token=token["refresh_token"],
                           access_token=token["access_token"],
                           access_token_expires_at=time.time() + float(token.get("expires_in") or 3600))
    else:
        credentials[spec.auth.credential_fields[0]] = token["access_token"]
    config: dict[str, Any] = {connect.account_config: account.id, "account_name": account.name,
                              "connection_id": account.connection_id}
    if app.origin:
        config["base_url"] = app.url(spec.client.base_url)
        if spec.auth.kind in OAUTH_KINDS:
            config["token_url"] = app.url(spec.auth.token_url)
    if connect.config_from_token:
        config.update(connect.config_from_token(token))
    label = f"{spec.display_name} {connect.account_label} {account.name} ({account.id})"
    try:
        with engine.begin() as conn:
            if flow.integration_id is not None:
                item = store.get_integration(conn, keyring, flow.integration_id)
                current = item.config.get(connect.account_config)
                if item.company_id != flow.company_id:
                    return Outcome("refused", "That integration is not this company's. Nothing was stored.")
                if current not in (None, "") and str(current) != account.id:
                    return Outcome("refused", f"{item.name} syncs the {connect.account_label} {current}, but the "
                                              f"{connect.account_label} approved was {account.name} ({account.id}). Nothing was "
                                              f"changed: approve the same {connect.account_label} to reconnect.")
                store.update_connection(conn, keyring, item.id, config=config, credentials=credentials, connected=True)
                follow_credential(conn, keyring, item.id)  # an app signing secret that changed reaches the inbound endpoint
                return Outcome("connected", f"{item.name} is connected again to the {label}.", integration_id=item.id)
            company_name = store.find_company(conn, flow.company_id).name
            name = _free_name(conn, flow.company_id, flow.integration_name or f"{spec.display_name} ({company_name})")
            new_id = store.add_integration(conn, keyring, company_id=flow.company_id, provider=spec.name, name=name,
                                           config={k: v for k, v in config.items() if v is not None}, credentials=credentials)
            store.mark_connected(conn, new_id)
            return Outcome("connected", f"{name} is connected to the {label}.", integration_id=new_id)
    except ValidationError as exc:
        return Outcome("refused", f"{exc}. Nothing was stored.")


def _free_name(conn, company_id: int, wanted: str) -> str:
    taken = set(conn.scalars(sa.select(integration.c.name).where(integration.c.company_id == company_id)))
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted} ({n})", n + 1
    return name


def disconnect(engine: Engine, keyring: Keyring, spec: ProviderSpec, integration_id: int, force: bool = False) -> Outcome:
    """Revoke the grant at the provider, then remove the stored tokens and mark the
    integration disconnected. If the provider cannot revoke, nothing changes locally unless
    `force` (the admin confirmed disconnecting anyway: the grant may still be live at the
    provider, which the message says)."""
    connect = spec.auth.connect
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    credentials, config = item.credentials.reveal(), item.config.reveal()
    before = dict(credentials)
    env_app = app_for(spec)
    base = str(config.get("base_url") or "").rstrip("/")
    origin = base or (env_app.origin if env_app else None)
    app = OAuthApp(spec.name, spec.display_name, str(credentials.get("client_id") or (env_app.client_id if env_app else "")),
                   str(credentials.get("client_secret") or (env_app.client_secret if env_app else "")), origin=origin or None)
    revoke_problem = None
    try:
        with oauth_calls.http() as http:
            connect.revoke(RevokeCall(http, app, app.url(spec.client.base_url), app.url(connect.revoke_url) if connect.revoke_url else None,
                                      str(config.get("token_url") or app.url(spec.auth.token_url or "")) or None, credentials, config))
    except (ConnectFailed, HubError) as exc:
        revoke_problem = str(exc)
    if revoke_problem and not force:
        if credentials != before:  # a refresh during the attempt rotated the token: keep the live one
            with engine.begin() as conn:
                store.update_connection(conn, keyring, integration_id, credentials={k: credentials.get(k) for k in TOKEN_FIELDS})
        return Outcome("refused", f"{revoke_problem}. The integration is still connected. Disconnect it anyway? The grant "
                                  f"may then stay valid at {spec.display_name} until you remove the app there.", needs_confirm=True)
    drop = TOKEN_FIELDS if spec.auth.kind == "oauth_refresh" else spec.auth.credential_fields[:1]
    with engine.begin() as conn:
        store.drop_connection(conn, keyring, integration_id, credentials=tuple(drop), config=("connection_id",))
    if revoke_problem:
        return Outcome("disconnected", f"{item.name} is disconnected here; {spec.display_name} could not revoke the grant "
                                       f"({revoke_problem}), so remove the app there too.")
    return Outcome("disconnected", f"{item.name} is disconnected: {spec.display_name} revoked the grant and the hub "
                                   "removed its tokens.")
