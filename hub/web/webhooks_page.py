"""/settings/integrations/webhooks: the company's outgoing webhook endpoints (a company
page, not an integration's section; hub/outbound is what it drives).

Pages: the list, "add an endpoint", and per endpoint its settings (URL, subscriptions,
payload, signing secret, retry policy, test, enable/disable, delete) and its delivery log.
Every action is a form POST that redirects (303), through `endpoint_action`: CSRF, the
session, the company's own webhook endpoint (404 for another company's id, a notification
route's or nobody's), admin only (403), then the change in one transaction that looks the
endpoint up again with the company (hub/outbound/endpoints.py, ``company_id=``).

The signing secret is shown once: the action that makes one (create, rotate) puts it in
the session *encrypted with the hub's keyring* (the cookie is signed, not encrypted), and
the next GET of the endpoint's page takes it out and shows it; from then on the page only
says "set, rotated <time>".
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub.crypto import Keyring
from hub.errors import HubError, NotFoundError, ValidationError
from hub.outbound import endpoints as store
from hub.outbound.endpoints import Endpoint
from hub.outbound.outbox import WILDCARD
from hub.outbound.payload import MODES
from hub.outbound.policy import parse_duration, schedule_for
from hub.outbound.signing import MAX_GRACE_S
from hub.redact import redact
from hub.web import webhooks_view as view
from hub.web.context import Context

if TYPE_CHECKING:  # the pages import this module, never the other way at run time
    from hub.web.pages import SettingsPages

BASE = "/settings/integrations/webhooks"
ONCE_KEY = "webhook_secret_once"
ONCE_PURPOSE = "hub.web.webhook_secret_once"
MAX_FIELD = 2000

EndpointAction = Callable[[Request, Context, Endpoint, FormData], Response]


# ---- form reading -----------------------------------------------------------------------


def _text(form: FormData, name: str, limit: int = MAX_FIELD) -> str:
    value = form.get(name)
    value = value if isinstance(value, str) else ""
    if len(value) > limit:
        raise ValidationError(f"{name.replace('_', ' ')} is longer than {limit} characters")
    return value.strip()


def _events(form: FormData) -> list[str]:
    chosen = [v for v in form.getlist("events") if isinstance(v, str)]
    if WILDCARD in chosen:
        return [WILDCARD]
    return store.validate_events(chosen)


def _payload(form: FormData) -> dict[str, Any]:
    mode = _text(form, "payload_mode") or "full"
    if mode not in MODES:
        raise ValidationError(f"payload must be one of {', '.join(MODES)}")
    fields = [f.strip() for f in _text(form, "payload_fields").split(",") if f.strip()]
    if fields and mode != "full":
        raise ValidationError("selected fields apply to the full payload only: clear them, or choose the full payload")
    return {"mode": mode, **({"fields": fields} if fields else {})}


def _int(form: FormData, name: str, label: str) -> int:
    raw = _text(form, name, 20)
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"{label} must be a whole number") from None


def _retry_policy(form: FormData, current: Endpoint) -> dict[str, Any]:
    """The editor's max attempts, waits and timeout over the endpoint's other overrides."""
    attempts = _int(form, "max_attempts", "max attempts")
    waits = [parse_duration(w) for w in _text(form, "waits").replace(";", ",").split(",") if w.strip()]
    timeout = parse_duration(_text(form, "timeout") or "15s")
    return {**current.policy.overrides(), "schedule": schedule_for(attempts, waits), "timeout": timeout}


def _grace(form: FormData) -> float:
    raw = _text(form, "grace", 20) or view.DEFAULT_GRACE
    try:
        grace = float(raw)
    except ValueError:
        raise ValidationError("the grace period must be a number of seconds") from None
    if not 0 <= grace <= MAX_GRACE_S:
        raise ValidationError(f"the grace period must be 0..{MAX_GRACE_S:.0f} seconds")
    return grace


def _form_values(form: FormData) -> dict[str, Any]:
    """What the person typed, to show the form again after a refusal (never a secret: the
    forms here take none)."""
    return {"name": _text(form, "name"), "url": _text(form, "url"),
            "events": [v for v in form.getlist("events") if isinstance(v, str)],
            "payload_mode": _text(form, "payload_mode") or "full", "payload_fields": _text(form, "payload_fields")}


# ---- the pages --------------------------------------------------------------------------


class WebhooksPage:
    def __init__(self, pages: "SettingsPages") -> None:
        self.pages = pages
        self.engine = pages.engine

    # the one-time secret ------------------------------------------------------------------
    def _hold_secret(self, request: Request, endpoint_id: int, secret: str) -> None:
        request.session[ONCE_KEY] = {"id": endpoint_id, "box": Keyring.from_env().encrypt(secret, ONCE_PURPOSE)}

    def _take_secret(self, request: Request, endpoint_id: int) -> str | None:
        held = request.session.get(ONCE_KEY)
        if not isinstance(held, dict) or held.get("id") != endpoint_id:
            return None
        request.session.pop(ONCE_KEY, None)
        try:
            return Keyring.from_env().decrypt(held["box"], ONCE_PURPOSE)
        except (HubError, KeyError, TypeError, ValueError):
            return None

    # checks -------------------------------------------------------------------------------
    def _own(self, context: Context, endpoint_id: int) -> Endpoint:
        with self.engine.connect() as conn:
            endpoint = view.company_webhook(conn, context.company_id, endpoint_id)
        if endpoint is None:
            raise HTTPException(404, "No such webhook endpoint.")
        return endpoint

    def _admin(self, context: Context) -> None:
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can change its webhooks.")

    def endpoint_action(self, action: EndpointAction):
        """A POST on one endpoint (`{endpoint_id:int}` in its path): CSRF and session (the
        pages' `_post`), the company's own webhook endpoint (404), admin (403), then
        `action` in the thread pool."""

        async def handler(request: Request, context: Context, form: FormData) -> Response:
            def run() -> Response:
                endpoint = self._own(context, request.path_params["endpoint_id"])
                self._admin(context)
                return action(request, context, endpoint, form)
            return await run_in_threadpool(run)

        return self.pages._post(handler)

    def _back(self, endpoint_id: int, tab: str = "") -> RedirectResponse:
        return RedirectResponse(f"{BASE}/{endpoint_id}{tab}", status_code=303)

    # GET pages ----------------------------------------------------------------------------
    async def list_page(self, request: Request, context: Context) -> Response:
        def load():
            with self.engine.connect() as conn:
                return view.list_webhooks(conn, context.company_id, context.company.timezone)

        endpoints = await run_in_threadpool(load)
        return self.pages.render(request, "webhooks/list.html", ctx=context, csrf=context.csrf, endpoints=endpoints,
                                 flash=request.session.pop("flash", None))

    def _new_form(self, request: Request, context: Context, status: int = 200, message: str | None = None,
                  values: dict[str, Any] | None = None) -> Response:
        values = values or {"name": "", "url": "", "events": [WILDCARD], "payload_mode": "full", "payload_fields": ""}
        return self.pages.render(request, "webhooks/new.html", status, ctx=context, csrf=context.csrf, message=message,
                                 values=values, event_choices=view.event_choices(values["events"]), modes=MODES)

    async def new_page(self, request: Request, context: Context) -> Response:
        self._admin(context)
        return self._new_form(request, context)

    async def create(self, request: Request, context: Context, form: FormData) -> Response:
        self._admin(context)

        def run() -> Response:
            try:
                name, url = _text(form, "name"), _text(form, "url")
                warning = store.check_destination(url)
                events, payload = _events(form), _payload(form)
                with self.engine.begin() as conn:
                    endpoint_id, secret = store.add_endpoint(conn, Keyring.from_env(), company_id=context.company_id,
                                                             name=name, url=url, events=events, payload_options=payload)
            except ValidationError as exc:
                return self._new_form(request, context, 400, str(exc), _form_values(form))
            self._hold_secret(request, endpoint_id, secret)
            self.pages.flash(request, f"Endpoint {name} added." + (f" Note: {warning}." if warning else ""))
            return self._back(endpoint_id)

        return await run_in_threadpool(run)

    def _endpoint_page(self, request: Request, context: Context, endpoint: Endpoint, status: int = 200,
                       message: str | None = None, values: dict[str, Any] | None = None) -> Response:
        data = view.detail(endpoint, context.company.timezone)
        if values is not None:  # a refused edit: show what was typed
            data.update(name=values["name"], url=values["url"], event_choices=view.event_choices(values["events"]),
                        payload_mode=values["payload_mode"], payload_fields=values["payload_fields"])
        secret = self._take_secret(request, endpoint.id)
        return self.pages.render(request, "webhooks/endpoint.html", status, ctx=context, csrf=context.csrf, endpoint=data,
                                 tab="settings", secret=secret, modes=MODES, message=message,
                                 flash=request.session.pop("flash", None))

    async def endpoint_page(self, request: Request, context: Context) -> Response:
        endpoint = await run_in_threadpool(self._own, context, request.path_params["endpoint_id"])
        return self._endpoint_page(request, context, endpoint)

    async def deliveries_page(self, request: Request, context: Context) -> Response:
        try:
            page = max(1, int(request.query_params.get("page") or 1))
        except ValueError:
            page = 1

        def load():
            endpoint = self._own(context, request.path_params["endpoint_id"])
            with self.engine.connect() as conn:
                log = view.deliveries(conn, context.company_id, endpoint, context.company.timezone, page)
            return endpoint, log

        endpoint, log = await run_in_threadpool(load)
        data = view.summary(endpoint, context.company.timezone, datetime.now(timezone.utc))
        template = "webhooks/log.html" if request.headers.get("hx-request") == "true" else "webhooks/deliveries.html"
        return self.pages.render(request, template, ctx=context, csrf=context.csrf, endpoint=data, tab="deliveries",
                                 log=log, flash=request.session.pop("flash", None))

    # actions ------------------------------------------------------------------------------
    def edit(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        try:
            url = _text(form, "url")
            # the form shows the URL redacted (a token in its query must not reach the page):
            # sent back unchanged, the stored URL stays
            new_url = None if url == endpoint.display_url else url
            warning = store.check_destination(new_url) if new_url is not None else None
            with self.engine.begin() as conn:
                store.update_endpoint(conn, endpoint.id, company_id=context.company_id, name=_text(form, "name"),
                                      url=new_url, events=_events(form), payload_options=_payload(form))
        except (ValidationError, NotFoundError) as exc:
            if isinstance(exc, NotFoundError):
                raise HTTPException(404, "No such webhook endpoint.") from None
            return self._endpoint_page(request, context, endpoint, 400, str(exc), _form_values(form))
        self.pages.flash(request, "Endpoint saved." + (f" Note: {warning}." if warning else ""))
        return self._back(endpoint.id)

    def _change(self, request: Request, endpoint: Endpoint, change: Callable[[], str], tab: str = "") -> Response:
        """Run a change; its message (or the refusal's) as the flash; back to the page."""
        try:
            self.pages.flash(request, change())
        except NotFoundError:
            raise HTTPException(404, "No such webhook endpoint.") from None
        except ValidationError as exc:
            self.pages.flash(request, redact(str(exc)), "bad")  # a HubError's message is written to be shown
        return self._back(endpoint.id, tab)

    def retry_policy(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        def change() -> str:
            policy = {} if form.get("reset") == "1" else _retry_policy(form, endpoint)
            with self.engine.begin() as conn:
                saved = store.update_endpoint(conn, endpoint.id, company_id=context.company_id, retry_policy=policy)
            count = saved.policy.max_attempts
            return f"Retry policy saved: at most {count} attempt{'s' if count != 1 else ''}."
        return self._change(request, endpoint, change)

    def rotate(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        def change() -> str:
            grace = _grace(form)
            with self.engine.begin() as conn:
                secret, until = store.rotate_secret(conn, Keyring.from_env(), endpoint.id, grace, company_id=context.company_id)
            self._hold_secret(request, endpoint.id, secret)
            return ("Signing secret rotated." + (" The previous secret also signs until the grace period ends." if until
                                                 else " The previous secret no longer signs."))
        return self._change(request, endpoint, change)

    def send_test(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        def change() -> str:
            with self.engine.begin() as conn:
                event_id = store.send_test(conn, endpoint.id, company_id=context.company_id)
            return f"Test event evt_{event_id} queued for {endpoint.name}."
        return self._change(request, endpoint, change, "/deliveries")

    def replay(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        def change() -> str:
            event_id = _int(form, "event", "the event")
            with self.engine.begin() as conn:
                attempt = store.replay_delivery(conn, endpoint.id, event_id, company_id=context.company_id)
            return f"Delivery of evt_{event_id} replayed (attempt {attempt})."
        # an event this endpoint never got is as unknown as another company's: 404 (_change)
        return self._change(request, endpoint, change, "/deliveries")

    def toggle(self, active: bool) -> EndpointAction:
        def action(request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
            def change() -> str:
                with self.engine.begin() as conn:
                    closed = store.set_active(conn, endpoint.id, active, "disabled from the settings page",
                                              company_id=context.company_id)
                if active:
                    return f"{endpoint.name} enabled."
                return f"{endpoint.name} disabled." + (f" {closed} pending attempt(s) closed as failed." if closed else "")
            return self._change(request, endpoint, change)
        return action

    def delete(self, request: Request, context: Context, endpoint: Endpoint, form: FormData) -> Response:
        try:
            with self.engine.begin() as conn:
                store.delete_endpoint(conn, endpoint.id, company_id=context.company_id)
        except NotFoundError:
            raise HTTPException(404, "No such webhook endpoint.") from None
        self.pages.flash(request, f"Endpoint {endpoint.name} deleted, with its delivery log.")
        return RedirectResponse(BASE, status_code=303)

    # routes -------------------------------------------------------------------------------
    def routes(self) -> list:
        page, act = self.pages.signed_in_page, self.endpoint_action
        one = BASE + "/{endpoint_id:int}"
        return [
            Route(BASE, page(self.list_page), methods=["GET"]),
            Route(BASE, self.pages._post(self.create), methods=["POST"]),
            Route(BASE + "/new", page(self.new_page), methods=["GET"]),
            Route(one, page(self.endpoint_page), methods=["GET"]),
            Route(one + "/deliveries", page(self.deliveries_page), methods=["GET"]),
            Route(one + "/edit", act(self.edit), methods=["POST"]),
            Route(one + "/retry-policy", act(self.retry_policy), methods=["POST"]),
            Route(one + "/rotate-secret", act(self.rotate), methods=["POST"]),
            Route(one + "/test", act(self.send_test), methods=["POST"]),
            Route(one + "/replay", act(self.replay), methods=["POST"]),
            Route(one + "/enable", act(self.toggle(True)), methods=["POST"]),
            Route(one + "/disable", act(self.toggle(False)), methods=["POST"]),
            Route(one + "/delete", act(self.delete), methods=["POST"]),
        ]


def routes(pages: "SettingsPages") -> list:
    """The webhooks page's routes; SettingsPages.routes() lists them before the catch-all
    `/settings/integrations/{provider}`, which would otherwise take ``webhooks``."""
    return WebhooksPage(pages).routes()
