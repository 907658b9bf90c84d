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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

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
from hub.auth.users import Membership, User
from hub.web import session as web_session
from hub.web.forms import CompanyForm, LoginForm, parse
from hub.web.integrations_view import company_integration, integrations_hub
from hub.web.security import SecurityHeaders
from hub.web.session import CSRF_FIELD, CSRF_HEADER, WebSettings

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
HOME = "/settings/integrations"
ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Method not allowed"}
DEFAULT_DETAILS = {404: "There is no such page here.", 405: "This page does not take that kind of request."}


@dataclass(frozen=True)
class Context:
    """Who is asking, for which company: loaded from the database on every request, so a
    disabled user, a reset password or a removed membership takes effect at once."""

    user: User
    memberships: list[Membership]
    company: Membership
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.company.role == "admin"


Handler = Callable[[Request, "Context | None", FormData], Awaitable[Response]]


class SettingsPages:
    def __init__(self, engine: Engine, settings: WebSettings) -> None:
        self.engine = engine
        self.settings = settings

    # ---- plumbing ------------------------------------------------------------------------
    def _context(self, session: dict) -> Context | None:
        uid = session.get("uid")
        if not uid:
            return None
        with self.engine.connect() as conn:
            user = users.get_user(conn, uid)
            ok = (user is not None and user.is_active
                  and session.get("auth") == web_session.fingerprint(self.settings.secret, user.password_hash))
            found = users.memberships(conn, uid) if ok else []
        if not found:
            session.clear()
            return None
        current = next((m for m in found if m.company_id == session.get("company")), found[0])
        session["company"] = current.company_id
        return Context(user, found, current, web_session.csrf_token(session))

    def render(self, request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
        values.setdefault("ctx", None)
        values.setdefault("csrf", web_session.csrf_token(request.session))
        return templates.TemplateResponse(request, template, values, status_code=status_code)

    def _post(self, handler: Handler, signed_in: bool = True):
        """Every POST endpoint: CSRF first, then (unless it is the sign-in) the session."""

        async def endpoint(request: Request) -> Response:
            form = await request.form()
            sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not web_session.csrf_matches(request.session, sent if isinstance(sent, str) else None):
                raise HTTPException(403, "The form had expired or did not come from this site. Reload the page and try again.")
            context = await run_in_threadpool(self._context, request.session) if signed_in else None
            if signed_in and context is None:
                return RedirectResponse("/login", status_code=303)
            return await handler(request, context, form)

        endpoint.csrf_protected = True  # tests/browser check every POST route has it
        return endpoint

    def flash(self, request: Request, text: str, tone: str = "ok") -> None:
        request.session["flash"] = {"text": text, "tone": tone}

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
        return self.render(request, "integrations.html", ctx=context, csrf=context.csrf, categories=categories,
                           flash=request.session.pop("flash", None))

    def _set_active(self, context: Context, integration_id: int, active: bool) -> str:
        with self.engine.begin() as conn:
            row = company_integration(conn, context.company.company_id, integration_id)
            if row is None:
                raise HTTPException(404, "No such integration.")
            if not context.is_admin:
                raise HTTPException(403, "Only an admin of this company can change its integrations.")
            store.set_active(conn, integration_id, active)
            return row.name

    def toggle(self, active: bool) -> Handler:
        async def handler(request: Request, context: Context, data: FormData) -> Response:
            name = await run_in_threadpool(self._set_active, context, request.path_params["integration_id"], active)
            self.flash(request, f"{name} {'enabled' if active else 'disabled'}.")
            return RedirectResponse(HOME, status_code=303)
        return handler

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
            Route("/logout", post(self.logout), methods=["POST"]),
            Route("/company", post(self.switch_company), methods=["POST"]),
            Route(HOME, self.integrations_page, methods=["GET"]),
            Route(HOME + "/{integration_id:int}/enable", post(self.toggle(True)), methods=["POST"]),
            Route(HOME + "/{integration_id:int}/disable", post(self.toggle(False)), methods=["POST"]),
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
