"""The settings pages: sign-in, company switch and /settings/integrations, as a Starlette
app of its own with the session and security-header middleware. hub/web/app.py hands it
whatever the webhook receiver and /healthz do not take, so that middleware never runs on
the webhook path.

Rules every endpoint follows:
- every POST goes through `_post`, which checks the CSRF token before anything else
  (403, nothing read or written), then the session;
- every query is scoped by the session's company: an id of another company is looked up
  with that company's id and so answers 404, exactly like an id that does not exist;
- only admins change anything (403 for viewers, after the 404 check: a viewer learns no
  more about other companies than anyone);
- database and argon2 work runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from hub import integrations as store
from hub.auth import users
from hub.auth.sign_in import sign_in
from hub.connect import oauth_flow
from hub.providers import registry
from hub.schema import integration
from hub.web import session as web_session
from hub.web.context import Context, load_context
from hub.web.forms import CompanyForm, LoginForm, parse
from hub.web import times
from hub.web.integrations_view import company_integration, integrations_hub
from hub.web.record_trail import load_trail
from hub.web.sections import connection
from hub.web.sections import registry as sections
from hub.web.security import SecurityHeaders
from hub.web.session import CSRF_FIELD, CSRF_HEADER, WebSettings
from hub.web import ai_page, billing_page, webhooks_page

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def _provider_name(name: str) -> str:
    """A provider's display name in a template ({{ key|provider_name }}); the key if unknown."""
    spec = registry.providers().get(name)
    return spec.display_name if spec else name


templates.env.filters["provider_name"] = _provider_name
HOME = "/settings/integrations"
ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Method not allowed"}
DEFAULT_DETAILS = {404: "There is no such page here.", 405: "This page does not take that kind of request."}


Handler = Callable[[Request, "Context | None", FormData], Awaitable[Response]]
# an action on one integration: (request, context, its summary row, form) -> response; runs
# in the thread pool after CSRF, session, company (404) and role (403) were checked
IntegrationAction = Callable[[Request, Context, sa.Row, FormData], Response]


class SettingsPages:
    def __init__(self, engine: Engine, settings: WebSettings) -> None:
        self.engine = engine
        self.settings = settings

    # ---- plumbing ------------------------------------------------------------------------
    def _context(self, session: dict) -> Context | None:
        return load_context(self.engine, self.settings.secret, session)

    def render(self, request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
        values.setdefault("ctx", None)
        values.setdefault("csrf", web_session.csrf_token(request.session))
        return templates.TemplateResponse(request, template, values, status_code=status_code)

    def _post(self, handler: Handler, signed_in: bool = True, when_read_only: bool = False):
        """Every POST endpoint: CSRF first, then (unless it is the sign-in) the session. A
        company unpaid past its grace is read-only (hub/billing/entitlements.py): its POSTs are
        refused unless `when_read_only` (signing out, switching company, the billing page)."""

        async def endpoint(request: Request) -> Response:
            form = await request.form()
            sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not web_session.csrf_matches(request.session, sent if isinstance(sent, str) else None):
                raise HTTPException(403, "The form had expired or did not come from this site. Reload the page and try again.")
            context = await run_in_threadpool(self._context, request.session) if signed_in else None
            if signed_in and context is None:
                return RedirectResponse("/login", status_code=303)
            if signed_in and context.read_only and not when_read_only:
                raise HTTPException(403, context.billing.read_only_refusal())
            return await handler(request, context, form)

        endpoint.csrf_protected = True  # tests/browser check every POST route has it
        return endpoint

    def flash(self, request: Request, text: str, tone: str = "ok") -> None:
        request.session["flash"] = {"text": text, "tone": tone}

    def _integration(self, context: Context, integration_id: int) -> sa.Row:
        """The integration if it is the session company's; 404 otherwise (another company's
        id and no id at all look the same)."""
        with self.engine.connect() as conn:
            row = company_integration(conn, context.company_id, integration_id)
        if row is None:
            raise HTTPException(404, "No such integration.")
        return row

    def integration_action(self, action: IntegrationAction, admin: bool = True):
        """A POST on one integration (`{integration_id:int}` in its path): CSRF, session, the
        company's own integration (404), admin only unless `admin=False` (403), then `action`
        in the thread pool. Sections build every route that changes something with it."""

        async def handler(request: Request, context: Context, form: FormData) -> Response:
            def run() -> Response:
                row = self._integration(context, request.path_params["integration_id"])
                if admin and not context.is_admin:
                    raise HTTPException(403, "Only an admin of this company can change its integrations.")
                return action(request, context, row, form)
            return await run_in_threadpool(run)

        return self._post(handler)

    def signed_in_page(self, view: Callable[[Request, Context], Awaitable[Response]]):
        """A GET page for a signed-in person (else a redirect to /login)."""

        async def endpoint(request: Request) -> Response:
            context = await run_in_threadpool(self._context, request.session)
            if context is None:
                return RedirectResponse("/login", status_code=303)
            return await view(request, context)

        return endpoint

    # ---- sign-in -------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        return RedirectResponse(HOME, status_code=303)

    async def login_page(self, request: Request) -> Response:
        if await run_in_threadpool(self._context, request.session):
            return RedirectResponse(HOME, status_code=303)
        return self.render(request, "login.html", flash=request.session.pop("flash", None))

    def _sign_in(self, form: LoginForm, address: str):
        with self.engine.begin() as conn:
            result = sign_in(conn, form.email, form.password, address, self.settings.throttle)
            found = users.memberships(conn, result.user.id) if result.user else []
        return result, found

    async def login(self, request: Request, _: None, data: FormData) -> Response:
        form, problem = parse(LoginForm, data)
        email = str(data.get("email") or "")[:users.MAX_EMAIL]
        if form is None:
            return self.render(request, "login.html", 400, message=problem, email=email)
        address = request.client.host if request.client else "unknown"
        result, found = await run_in_threadpool(self._sign_in, form, address)
        if result.user is None:
            return self.render(request, "login.html", 429 if result.lockout else 401, message=result.message, email=email)
        if not found:
            return self.render(request, "login.html", 403, email=email,
                               message="This account is not a member of any company yet. Ask an admin to add you.")
        web_session.start(request.session, result.user.id,
                          web_session.fingerprint(self.settings.secret, result.user.password_hash), found[0].company_id)
        return RedirectResponse(HOME, status_code=303)

    async def logout(self, request: Request, _: Context, data: FormData) -> Response:
        request.session.clear()
        self.flash(request, "You have signed out.")
        return RedirectResponse("/login", status_code=303)

    async def switch_company(self, request: Request, context: Context, data: FormData) -> Response:
        form, _problem = parse(CompanyForm, data)
        target = next((m for m in context.memberships if form and m.company_id == form.company_id), None)
        if target is None:
            raise HTTPException(404, "No such company.")
        request.session["company"] = target.company_id
        self.flash(request, f"Now showing {target.company_name}.")
        return RedirectResponse(HOME, status_code=303)

    # ---- /settings/integrations ----------------------------------------------------------
    async def integrations_page(self, request: Request) -> Response:
        context = await run_in_threadpool(self._context, request.session)
        if context is None:
            return RedirectResponse("/login", status_code=303)

        def load():
            with self.engine.connect() as conn:
                return integrations_hub(conn, context.company.company_id, context.company.timezone)

        categories = await run_in_threadpool(load)
        specs = registry.providers().values()
        ready = {spec.name for spec in specs if oauth_flow.app_for(spec) is not None}
        addable = {spec.name for spec in specs if connection.addable(spec)}
        return self.render(request, "integrations.html", ctx=context, csrf=context.csrf, categories=categories,
                           oauth_ready=ready, addable=addable, flash=request.session.pop("flash", None))

    def toggle(self, active: bool):
        def action(request: Request, context: Context, row: sa.Row, form: FormData) -> Response:
            with self.engine.begin() as conn:
                store.set_active(conn, row.id, active)
            self.flash(request, f"{row.name} {'enabled' if active else 'disabled'}.")
            back = form.get("next")
            return RedirectResponse(back if isinstance(back, str) and back.startswith(HOME + "/") else HOME, status_code=303)
        return self.integration_action(action)

    # ---- /settings/integrations/<id>/<section> ---------------------------------------------
    async def integration_home(self, request: Request, context: Context) -> Response:
        row = await run_in_threadpool(self._integration, context, request.path_params["integration_id"])
        first = sections.for_spec(registry.providers().get(row.provider))[0]
        return RedirectResponse(f"{HOME}/{row.id}/{first.key}", status_code=303)

    async def integration_section(self, request: Request, context: Context) -> Response:
        """One tab of an integration's page: the company's own integration (404 otherwise), a
        section its provider's page lists (404 otherwise), read in one connection."""

        def load():
            row = self._integration(context, request.path_params["integration_id"])
            spec = registry.providers().get(row.provider)
            tabs = sections.for_spec(spec)
            section = next((s for s in tabs if s.key == request.path_params["section"]), None)
            if section is None:
                raise HTTPException(404, "This integration has no such page.")
            with self.engine.connect() as conn:
                values = section.load(conn, context, row, spec, dict(request.query_params))
            return row, spec, tabs, section, values

        row, spec, tabs, section, values = await run_in_threadpool(load)
        return self.render(request, "integration.html", ctx=context, csrf=context.csrf, integration=row, spec=spec,
                           tabs=tabs, section=section, values=values, flash=request.session.pop("flash", None))

    def render_section(self, request: Request, context: Context, row: sa.Row, key: str, values: dict, status_code: int = 200) -> Response:
        """One tab of an integration's page with values a section computed itself (a form shown
        again with its message after a refused POST)."""
        spec = registry.providers().get(row.provider)
        tabs = sections.for_spec(spec)
        return self.render(request, "integration.html", status_code, ctx=context, csrf=context.csrf, integration=row, spec=spec,
                           tabs=tabs, section=sections.SECTIONS[key], values=values, flash=None)

    async def provider_home(self, request: Request, context: Context) -> Response:
        """/settings/integrations/<provider>: the company's integration of that provider (its
        page), or, with several, the hub filtered to them; 404 for a name no spec has."""
        spec = registry.providers().get(request.path_params["provider"])
        if spec is None:
            raise HTTPException(404, "There is no such integration.")

        def find():
            with self.engine.connect() as conn:
                return list(conn.scalars(sa.select(integration.c.id).where(
                    integration.c.company_id == context.company_id,
                    integration.c.provider == spec.name).order_by(integration.c.id)))

        ids = await run_in_threadpool(find)
        if len(ids) == 1:
            return RedirectResponse(f"{HOME}/{ids[0]}", status_code=303)
        return RedirectResponse(f"{HOME}#category-{spec.category}", status_code=303)

    # ---- /settings/records/<kind>/<id> ------------------------------------------------------
    async def record_page(self, request: Request, context: Context) -> Response:
        """One synced record's trail (hub/web/record_trail.py): the company's own record of a
        declared kind, else 404 (an unknown kind, another company's id and no id look the same)."""

        def load():
            with self.engine.connect() as conn:
                return load_trail(conn, context.company_id, request.path_params["kind"], request.path_params["record_id"])

        trail = await run_in_threadpool(load)
        if trail is None:
            raise HTTPException(404, "No such record.")
        tz = context.company.timezone

        def stamp(when):
            return {"relative": times.relative(when), "exact": times.exact(when, tz), "iso": times.iso(when)}

        return self.render(request, "record.html", ctx=context, csrf=context.csrf, trail=trail, stamp=stamp,
                           flash=request.session.pop("flash", None))

    async def error(self, request: Request, exc: HTTPException) -> Response:
        title = ERROR_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if exc.detail and exc.detail.lower() != title.lower() else DEFAULT_DETAILS.get(exc.status_code)
        context = await run_in_threadpool(self._context, request.session)  # the header, for a signed-in person
        return self.render(request, "error.html", exc.status_code, ctx=context, status=exc.status_code, title=title, detail=detail)

    # ---- the app -------------------------------------------------------------------------
    def routes(self) -> list:
        post = self._post
        return [
            Route("/", self.home),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", post(self.login, signed_in=False), methods=["POST"]),
            Route("/logout", post(self.logout, when_read_only=True), methods=["POST"]),
            Route("/company", post(self.switch_company, when_read_only=True), methods=["POST"]),
            Route(HOME, self.integrations_page, methods=["GET"]),
            Route(HOME + "/{integration_id:int}/enable", self.toggle(True), methods=["POST"]),
            Route(HOME + "/{integration_id:int}/disable", self.toggle(False), methods=["POST"]),
            *[route for section in sections.SECTIONS.values() for route in section.routes(self)],
            Route(HOME + "/{integration_id:int}", self.signed_in_page(self.integration_home), methods=["GET"]),
            Route(HOME + "/{integration_id:int}/{section}", self.signed_in_page(self.integration_section), methods=["GET"]),
            Route("/settings/records/{kind}/{record_id:int}", self.signed_in_page(self.record_page), methods=["GET"]),
            *webhooks_page.routes(self),  # /settings/integrations/webhooks: before {provider}, which would take it
            *billing_page.routes(self),  # /settings/integrations/stripe: the company's subscription, likewise
            *ai_page.routes(self),  # /settings/integrations/ai: the AI assist's settings, feedback and cost, likewise
            Route(HOME + "/{provider}", self.signed_in_page(self.provider_home), methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def settings_app(engine: Engine, settings: WebSettings) -> Starlette:
    pages = SettingsPages(engine, settings)
    return Starlette(
        routes=pages.routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=settings.secret, session_cookie=web_session.COOKIE_NAME,
                       max_age=settings.idle_seconds, same_site="lax", https_only=settings.https),
        ],
        exception_handlers={HTTPException: pages.error},
    )
