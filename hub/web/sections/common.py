"""What every section shares: the address of a tab, the answer of an action (a flash
message and a redirect back to its tab, as forms POST and redirect), a form's fields read
safely, and GET fragments on one integration (htmx swaps them into a tab) checked like the
tabs themselves: signed in, the session company's own integration (404 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.web.context import Context
from hub.web.integrations_view import company_integration

if TYPE_CHECKING:  # the pages import the sections, never the other way at run time
    from hub.web.pages import SettingsPages

HOME = "/settings/integrations"


def tab_url(integration_id: int, key: str, query: str = "") -> str:
    return f"{HOME}/{integration_id}/{key}" + (f"?{query}" if query else "")


def back(integration_id: int, section: str, query: str = "") -> RedirectResponse:
    """Back to the tab an action came from (its message, if any, already flashed)."""
    return RedirectResponse(f"{HOME}/{integration_id}/{section}{query}", status_code=303)


def text(form: FormData, name: str, max_chars: int = 500) -> str:
    """A text field, stripped ("" when missing); a list or an overlong value is a bad request."""
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_chars:
        raise HTTPException(400, f"The field {name} is not valid.")
    return value.strip()


def number(form: FormData, name: str) -> int:
    """A positive integer field (a row id); anything else is a bad request."""
    value = text(form, name, 20)
    if not value.isdigit():
        raise HTTPException(400, f"The field {name} is not valid.")
    return int(value)


def form_text(form: FormData, name: str, limit: int = 500) -> str:
    """A text field cut to `limit` ("" for anything else): for a choice checked afterwards."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def form_id(form: FormData, name: str) -> int | None:
    """A row id, or None when the field is not one (the action then says what is missing)."""
    value = form_text(form, name, 20)
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else None


def done(pages: "SettingsPages", request: Request, integration_id: int, key: str, text: str, tone: str = "ok",
         query: str = "") -> Response:
    """An action's answer: `text` shown once on the tab it came from."""
    pages.flash(request, text, tone)
    return RedirectResponse(tab_url(integration_id, key, query), status_code=303)


def integration_get(pages: "SettingsPages", view: Callable[[Request, Context, sa.Row], Response]):
    """A GET endpoint on one integration (`{integration_id:int}` in its path) for any member
    of its company: `view(request, context, summary row)` in the thread pool."""

    async def page(request: Request, context: Context) -> Response:
        def run() -> Response:
            with pages.engine.connect() as conn:
                row = company_integration(conn, context.company_id, request.path_params["integration_id"])
            if row is None:
                raise HTTPException(404, "No such integration.")
            return view(request, context, row)
        return await run_in_threadpool(run)

    return pages.signed_in_page(page)
