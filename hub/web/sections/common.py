"""What the accounting sections share: the address of a tab, the answer of an action (a
flash message and a redirect back to its tab, as forms POST and redirect), and GET
fragments on one integration (htmx swaps them into a tab) checked like the tabs themselves:
signed in, the session company's own integration (404 otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
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
