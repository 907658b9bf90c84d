"""The "Connection" tab of an integration, and the OAuth connect routes of the pages.

- A provider connected by OAuth (its spec has `auth.connect`): the connected account (company,
  organisation, workspace: name and id), Reconnect and Disconnect for admins
  (hub/connect/oauth_flow.py does the work). A disconnect whose revocation fails changes
  nothing and offers "Disconnect anyway", which removes the tokens without revoking.
- Any other provider (API keys: SendGrid, Twilio, DoorDash, Uber Eats): its credential and
  config fields as a form. Secrets are never rendered, only "set" / "not set"; a blank secret
  keeps the stored value; a form that does not validate is shown again with the message and
  nothing is written.

Routes outside one integration (listed before the pages' `/settings/integrations/{provider}`):
`POST /settings/integrations/connect/{provider}` (start, 303 to the provider),
`GET /settings/integrations/oauth/callback` (the one redirect URI registered at every
provider), `GET|POST /settings/integrations/oauth/pick/{flow_id}` (the Xero organisation or
Procore company, when the grant reaches several)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub import integrations as store
from hub.connect import oauth_flow
from hub.connect.oauth_state import Owner
from hub.crypto import Keyring
from hub.errors import HubError, SecretKeyError, ValidationError
from hub.inbound.provider_endpoints import create_inbound, follow_credential
from hub.notify.callbacks import inbound_endpoint_id, public_base, status_url
from hub.providers import registry
from hub.providers.spec import ProviderSpec
from hub.redact import redact
from hub.web import session as web_session
from hub.web.context import Context
from hub.web.sections import Section

if TYPE_CHECKING:
    from hub.web.pages import SettingsPages

HOME = "/settings/integrations"
MAX_VALUE = 4096
SECTION_KEY = "connection"


def _keyring() -> Keyring:
    return Keyring.from_env()


def load(conn, context: Context, row: sa.Row, spec: ProviderSpec | None, query: dict[str, str]) -> dict[str, Any]:
    """What the tab shows; decrypts the row's config and credentials only to tell a secret's
    presence ("set") and an identifier's value, never to show a secret."""
    try:
        item = store.get_integration(conn, _keyring(), row.id)
    except SecretKeyError:
        raise HTTPException(400, "The hub cannot read this integration's settings: its encryption keys (HUB_SECRET_KEYS) "
                                 "are not the ones they were stored under.") from None
    if item.company_id != context.company_id:  # the pages checked it already; a second lock on the door
        raise HTTPException(404, "No such integration.")
    values: dict[str, Any] = {"oauth": oauth_flow.connectable(spec), "revoke_failed": query.get("revoke_failed") == "1"}
    if values["oauth"]:
        connect = spec.auth.connect
        values.update(
            account_label=connect.account_label,
            account_id=item.config.get(connect.account_config),
            account_name=item.config.get("account_name"),
            has_grant=any(item.credentials.get(f) for f in (("refresh_token",) if spec.auth.kind == "oauth_refresh"
                                                              else spec.auth.credential_fields[:1])),
            ready=oauth_flow.app_for(spec) is not None,
            env_vars=[oauth_flow.env_var(spec, "client_id"), oauth_flow.env_var(spec, "client_secret")],
            webhook=_webhook(conn, spec, item),
        )
    else:
        values["fields"] = _fields(spec, item) if spec else []
    return values


def _fields(spec: ProviderSpec, item, entered: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The form's fields: name, label, kind (credential/config), masked, set, the clear value
    of an identifier (a non-secret config field; every credential is masked, as
    FieldSpec says)."""
    rows = []
    for where, fields, stored in (("credentials", spec.credentials, item.credentials), ("config", spec.config, item.config)):
        for f in fields:
            masked = where == "credentials" or f.secret  # spec.py: only a non-secret config field is shown in clear
            is_set = stored.get(f.name) not in (None, "")
            value = "" if masked else str((entered or {}).get(f"{where}.{f.name}", stored.get(f.name) or ""))
            rows.append({"key": f"{where}.{f.name}", "name": f.name, "label": f.label, "help": f.help, "secret": masked,
                         "required": f.required, "set": is_set, "value": value, "where": where})
    return rows


def _webhook_field(spec: ProviderSpec | None) -> str | None:
    """The credential an OAuth provider signs its webhooks with (QuickBooks' verifier token,
    Xero's webhook key, Slack's signing secret): not part of the grant, so typed here."""
    inbound = spec.inbound if spec else None
    return inbound.secret_field if inbound and inbound.generate_secret is None else None


def _webhook(conn, spec: ProviderSpec, item) -> dict[str, Any] | None:
    """Where the provider is to send its webhooks and whether the key that verifies them is set."""
    name = _webhook_field(spec)
    if name is None:
        return None
    endpoint_id = inbound_endpoint_id(conn, item.id)
    field = next(f for f in _fields(spec, item) if f["key"] == f"credentials.{name}")
    return {"fields": [field], "set": field["set"], "path": f"/webhooks/{spec.name}/{endpoint_id}" if endpoint_id else None,
            "url": status_url(public_base(item.config), spec.name, endpoint_id)}


def _owner(request: Request, context: Context) -> Owner:
    sid = request.session.get("sid")
    if not sid:
        raise HTTPException(403, "Your session has no id; sign in again to connect an integration.")
    return Owner(str(sid), context.user.id, context.company_id)


def _flow_id(request: Request) -> int:
    raw = request.path_params["flow_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise HTTPException(404, "There is no choice waiting here.")
    return int(raw)


def _redirect_uri(request: Request) -> str:
    """The one redirect URI registered at the providers: on HUB_PUBLIC_URL behind a proxy,
    else on the address the browser used."""
    return web_session.public_base_url(request) + oauth_flow.CALLBACK_PATH


def _entered(spec: ProviderSpec, form: FormData) -> tuple[dict[str, dict[str, Any]], dict[str, str], str | None]:
    """The credential and config fields of a form: (what to store, the identifiers as typed to
    show again, the first problem or None). A blank secret is left out (the stored value
    stays); a blank identifier clears it."""
    changes: dict[str, dict[str, Any]] = {"credentials": {}, "config": {}}
    entered: dict[str, str] = {}
    problem = None
    for where, fields in (("credentials", spec.credentials), ("config", spec.config)):
        for f in fields:
            masked = where == "credentials" or f.secret
            raw = form.get(f"{where}.{f.name}")
            value = raw.strip() if isinstance(raw, str) else ""
            if not masked:
                entered[f"{where}.{f.name}"] = value
            if len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
                problem = problem or f"{f.label} is too long or has control characters."
            elif value:
                changes[where][f.name] = value
            elif not masked:
                changes[where][f.name] = None
    return changes, entered, problem


def addable(spec: ProviderSpec | None) -> bool:
    """A provider an admin adds from the pages by typing its keys: it has credentials, no
    OAuth connect flow (those are added by Connect) and a Connection tab to come back to."""
    return (spec is not None and bool(spec.credentials) and not oauth_flow.connectable(spec)
            and SECTION_KEY in spec.pages)


class _Blank:
    """An integration not stored yet: nothing set (the add form's fields)."""

    credentials: dict[str, Any] = {}
    config: dict[str, Any] = {}


def routes(pages: "SettingsPages") -> list:
    engine = pages.engine

    def redirect_after(outcome: oauth_flow.Outcome, request: Request) -> Response:
        if outcome.kind == "connected":
            pages.flash(request, outcome.message)
            return RedirectResponse(f"{HOME}/{outcome.integration_id}/connection", status_code=303)
        if outcome.kind == "pick":
            return RedirectResponse(f"{HOME}/oauth/pick/{outcome.flow_id}", status_code=303)
        return None

    def go(request: Request, context: Context, spec: ProviderSpec, url: str) -> Response:
        """To the provider's consent page. Not a 303: the pages' CSP has `form-action 'self'`,
        which browsers apply to the redirects of a form submission too, so a redirect to
        another origin after the Connect form would be blocked; a page that moves on by
        itself (meta refresh, with a link) is a new navigation the policy allows."""
        return pages.render(request, "go.html", ctx=context, csrf=context.csrf, url=url, name=spec.display_name,
                            title=f"Connecting {spec.display_name}",
                            text=f"{spec.display_name} asks you to approve the connection on its own page.")

    # ---- start: a new integration (the hub page) or a reconnect (the tab) ----
    async def connect_new(request: Request, context: Context, form: FormData) -> Response:
        spec = registry.providers().get(request.path_params["provider"])
        if not oauth_flow.connectable(spec):
            raise HTTPException(404, "This provider is not connected from here.")
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can connect integrations.")
        app = oauth_flow.app_for(spec)
        if app is None:
            raise HTTPException(400, f"The hub has no OAuth app for {spec.display_name}: set "
                                     f"{oauth_flow.env_var(spec, 'client_id')} and {oauth_flow.env_var(spec, 'client_secret')}.")
        owner = _owner(request, context)
        url = await run_in_threadpool(oauth_flow.start, engine, _keyring(), spec, app, owner, _redirect_uri(request))
        return go(request, context, spec, url)

    def reconnect(request: Request, context: Context, row: sa.Row, form: FormData) -> Response:
        spec = registry.providers().get(row.provider)
        if not oauth_flow.connectable(spec):
            raise HTTPException(404, "This integration is not connected by OAuth.")
        app = oauth_flow.app_for(spec)
        if app is None:
            raise HTTPException(400, f"The hub has no OAuth app for {spec.display_name}.")
        url = oauth_flow.start(engine, _keyring(), spec, app, _owner(request, context), _redirect_uri(request),
                               integration_id=row.id, integration_name=row.name)
        return go(request, context, spec, url)

    def disconnect(request: Request, context: Context, row: sa.Row, form: FormData) -> Response:
        spec = registry.providers().get(row.provider)
        if not oauth_flow.connectable(spec):
            raise HTTPException(404, "This integration is not connected by OAuth.")
        outcome = oauth_flow.disconnect(engine, _keyring(), spec, row.id, force=form.get("force") == "1")
        back = f"{HOME}/{row.id}/connection"
        if outcome.needs_confirm:
            pages.flash(request, redact(outcome.message), "bad")
            return RedirectResponse(back + "?revoke_failed=1", status_code=303)
        pages.flash(request, redact(outcome.message), "ok" if outcome.kind == "disconnected" else "bad")
        return RedirectResponse(back, status_code=303)

    # ---- the provider's answer ----
    async def callback(request: Request, context: Context) -> Response:
        params = {k: v for k, v in request.query_params.items()}
        owner = _owner(request, context)
        outcome = await run_in_threadpool(oauth_flow.finish, engine, _keyring(), registry.providers(), params, owner,
                                          _redirect_uri(request))
        return redirect_after(outcome, request) or _refused(request, context, outcome)

    def _refused(request: Request, context: Context, outcome: oauth_flow.Outcome) -> Response:
        return pages.render(request, "connect_result.html", 400, ctx=context, csrf=context.csrf, message=redact(outcome.message))

    async def pick_page(request: Request, context: Context) -> Response:
        flow_id = _flow_id(request)
        found = await run_in_threadpool(oauth_flow.choices, engine, _keyring(), registry.providers(), flow_id, _owner(request, context))
        if found is None:
            raise HTTPException(404, "There is no choice waiting here (already made, expired, or another session's).")
        spec, accounts = found
        return pages.render(request, "connect_pick.html", ctx=context, csrf=context.csrf, spec=spec, accounts=accounts,
                            flow_id=flow_id, label=spec.auth.connect.account_label, flash=request.session.pop("flash", None))

    async def pick(request: Request, context: Context, form: FormData) -> Response:
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can connect integrations.")
        account = form.get("account")
        outcome = await run_in_threadpool(oauth_flow.pick, engine, _keyring(), registry.providers(), _flow_id(request),
                                          _owner(request, context), account if isinstance(account, str) else "")
        if outcome.kind == "refused" and outcome.flow_id is not None:  # nothing chosen: the same choice again
            pages.flash(request, outcome.message, "bad")
            return RedirectResponse(f"{HOME}/oauth/pick/{outcome.flow_id}", status_code=303)
        return redirect_after(outcome, request) or _refused(request, context, outcome)

    # ---- API-key credentials ----
    def save_credentials(request: Request, context: Context, row: sa.Row, form: FormData) -> Response:
        spec = registry.providers().get(row.provider)
        if spec is None or oauth_flow.connectable(spec):
            raise HTTPException(404, "This integration's credentials are not edited here.")
        keyring = _keyring()
        changes, entered, problem = _entered(spec, form)
        try:
            if problem:
                raise ValidationError(problem)
            with engine.begin() as conn:
                store.update_connection(conn, keyring, row.id, config=changes["config"], credentials=changes["credentials"])
                follow_credential(conn, keyring, row.id)  # a new webhook secret reaches the inbound endpoint
        except HubError as exc:
            with engine.connect() as conn:
                item = store.get_integration(conn, keyring, row.id)
                values = {"oauth": False, "revoke_failed": False, "fields": _fields(spec, item, entered),
                          "message": redact(str(exc))}
            return pages.render_section(request, context, row, SECTION.key, values, 400)
        pages.flash(request, f"{row.name}: credentials saved.")
        return RedirectResponse(f"{HOME}/{row.id}/connection", status_code=303)

    # ---- the key an OAuth provider signs its webhooks with ----
    def save_webhook_key(request: Request, context: Context, row: sa.Row, form: FormData) -> Response:
        spec = registry.providers().get(row.provider)
        name = _webhook_field(spec) if spec and oauth_flow.connectable(spec) else None
        if name is None:
            raise HTTPException(404, "This integration has no webhook key to set here.")
        raw = form.get(f"credentials.{name}")
        value = raw.strip() if isinstance(raw, str) else ""
        label = next(f.label for f in spec.credentials if f.name == name)
        if len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
            pages.flash(request, f"{label} is too long or has control characters; nothing was changed.", "bad")
            return RedirectResponse(f"{HOME}/{row.id}/connection", status_code=303)
        keyring = _keyring()
        try:
            with engine.begin() as conn:
                if value:
                    store.update_connection(conn, keyring, row.id, credentials={name: value})
                item = store.get_integration(conn, keyring, row.id)
                if not item.credentials.get(name):
                    raise ValidationError(f"Type the {label.lower()} {spec.display_name} shows for your app.")
                # the endpoint keeps its own copy of the key: made now, or given the new key
                if inbound_endpoint_id(conn, row.id) is None:
                    create_inbound(conn, keyring, row.id)
                else:
                    follow_credential(conn, keyring, row.id)
        except HubError as exc:
            pages.flash(request, redact(str(exc)), "bad")
            return RedirectResponse(f"{HOME}/{row.id}/connection", status_code=303)
        pages.flash(request, f"{row.name}: {label.lower()} saved; {spec.display_name}'s webhooks are verified with it.")
        return RedirectResponse(f"{HOME}/{row.id}/connection", status_code=303)

    # ---- adding an API-key integration ----
    def _addable_spec(context: Context, provider: str) -> ProviderSpec:
        spec = registry.providers().get(provider)
        if not addable(spec):
            raise HTTPException(404, "There is no such integration to add here.")
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can add integrations.")
        return spec

    def _add_form(request: Request, context: Context, spec: ProviderSpec, name: str, entered=None, message=None,
                  status_code: int = 200) -> Response:
        return pages.render(request, "add_integration.html", status_code, ctx=context, csrf=context.csrf, spec=spec,
                            name=name, fields=_fields(spec, _Blank(), entered), message=message)

    async def add_page(request: Request, context: Context) -> Response:
        spec = _addable_spec(context, request.path_params["provider"])
        return _add_form(request, context, spec, f"{spec.display_name} ({context.company.company_name})")

    async def add(request: Request, context: Context, form: FormData) -> Response:
        spec = _addable_spec(context, request.path_params["provider"])
        changes, entered, problem = _entered(spec, form)
        raw_name = form.get("name")
        name = raw_name.strip()[:200] if isinstance(raw_name, str) else ""

        def create() -> int:
            if problem:
                raise ValidationError(problem)
            if not name:
                raise ValidationError("Give the integration a name.")
            keyring = _keyring()
            with engine.begin() as conn:
                integration_id = store.add_integration(
                    conn, keyring, company_id=context.company_id, provider=spec.name, name=name,
                    config={k: v for k, v in changes["config"].items() if v is not None}, credentials=changes["credentials"])
            return integration_id

        try:
            integration_id = await run_in_threadpool(create)
        except HubError as exc:
            return _add_form(request, context, spec, name, entered, redact(str(exc)), 400)
        # inactive until enabled or until its connection check passes (hub/connection_check.py)
        pages.flash(request, f"{name} added. Enable it on its Overview tab, or let its connection check pass, to start using it.")
        return RedirectResponse(f"{HOME}/{integration_id}/connection", status_code=303)

    return [
        Route(HOME + "/add/{provider}", pages.signed_in_page(add_page), methods=["GET"]),
        Route(HOME + "/add/{provider}", pages._post(add), methods=["POST"]),
        Route(HOME + "/connect/{provider}", pages._post(connect_new), methods=["POST"]),
        Route(HOME + "/oauth/callback", pages.signed_in_page(callback), methods=["GET"]),
        Route(HOME + "/oauth/pick/{flow_id}", pages.signed_in_page(pick_page), methods=["GET"]),
        Route(HOME + "/oauth/pick/{flow_id}", pages._post(pick), methods=["POST"]),
        Route(HOME + "/{integration_id:int}/connection/reconnect", pages.integration_action(reconnect), methods=["POST"]),
        Route(HOME + "/{integration_id:int}/connection/disconnect", pages.integration_action(disconnect), methods=["POST"]),
        Route(HOME + "/{integration_id:int}/connection/credentials", pages.integration_action(save_credentials), methods=["POST"]),
        Route(HOME + "/{integration_id:int}/connection/webhook", pages.integration_action(save_webhook_key), methods=["POST"]),
    ]


SECTION = Section(key=SECTION_KEY, label="Connection", template="sections/connection.html", load=load, routes=routes)
