"""/settings/integrations/stripe: the company's subscription to the hub (hub/billing/).

What it shows comes from the local mirror (billing_account, billing_invoice), except the
next invoice, asked of Stripe (`create_preview`) when the page is drawn; Stripe unreachable
only hides that line. Every action goes to Stripe through the SDK and then refreshes the
mirror from Stripe, as a webhook would: start a subscription (Checkout, Stripe's page),
"Manage billing" (the Billing Portal: card, cancel, switch), change plan (a preview of the
proration first, then confirm), cancel at period end and resume. Coming back from Checkout
or the portal refreshes the mirror at once, so the page does not wait for the webhook.

Admins act; viewers read. These POSTs are allowed to a read-only (unpaid) company: paying is
how it gets out of that state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub.billing import mirror, settings as billing, subscriptions
from hub.billing.entitlements import BILLING_PAGE
from hub.billing.plans import INTERVALS, catalog
from hub.crypto import Keyring
from hub.errors import HubError
from hub.redact import redact
from hub.schema import billing_account, billing_invoice
from hub.web import times
from hub.web.context import Context
from hub.web.session import public_base_url

if TYPE_CHECKING:
    from hub.web.pages import SettingsPages

BASE = BILLING_PAGE
INVOICES_SHOWN = 24
STATUS_TONE = {"active": "ok", "trialing": "ok", "past_due": "bad", "unpaid": "bad", "canceled": "off", "none": "off",
               "incomplete": "busy", "incomplete_expired": "off", "paused": "off"}


def _money(cents: int | None, currency: str) -> str:
    return "—" if cents is None else f"{cents / 100:,.2f} {currency.upper()}"


class BillingPage:
    def __init__(self, pages: "SettingsPages"):
        self.pages, self.engine = pages, pages.engine

    # ---- the page -------------------------------------------------------------------------
    async def page(self, request: Request, context: Context) -> Response:
        returned = request.query_params.get("returned")
        values = await run_in_threadpool(self._load, context, returned in ("checkout", "portal"))
        if returned == "checkout" and values.get("account") and values["account"]["status"] != "none":
            self.pages.flash(request, "Subscription started. Welcome aboard.")
            return RedirectResponse(BASE, status_code=303)
        if returned == "portal":
            return RedirectResponse(BASE, status_code=303)
        if returned == "canceled":
            self.pages.flash(request, "Checkout was left; nothing was bought.", "bad")
            return RedirectResponse(BASE, status_code=303)
        return self.pages.render(request, "billing.html", ctx=context, csrf=context.csrf, flash=request.session.pop("flash", None),
                                 **values)

    def _load(self, context: Context, refresh: bool) -> dict[str, Any]:
        plans = catalog()
        tz = context.company.timezone
        keyring = Keyring.from_env()
        with self.engine.begin() as conn:
            if billing.current(conn) is None:
                return {"enabled": False, "plans": plans}
            row = conn.execute(sa.select(billing_account).where(billing_account.c.company_id == context.company_id)).mappings().first()
            upcoming, problem = None, None
            if row is not None:
                try:
                    client = billing.client(conn, keyring)
                    if refresh:
                        mirror.refresh_customer(conn, client, row["stripe_customer_id"], plans)
                        row = conn.execute(sa.select(billing_account)
                                           .where(billing_account.c.company_id == context.company_id)).mappings().first()
                    upcoming = subscriptions.upcoming(conn, client, context.company_id)
                except HubError as exc:
                    problem = redact(str(exc))
            invoices = conn.execute(sa.select(billing_invoice).where(billing_invoice.c.company_id == context.company_id)
                                    .order_by(billing_invoice.c.created.desc(), billing_invoice.c.stripe_invoice_id)
                                    .limit(INVOICES_SHOWN)).mappings().all()

        def stamp(when):
            return {"relative": times.relative(when), "exact": times.exact(when, tz), "iso": times.iso(when),
                    "date": times.day(when, tz)} if when else None

        account = None
        if row is not None:
            plan = next((p for p in plans.plans if p.key == row["plan_key"]), None)
            account = {**dict(row), "plan": plan, "tone": STATUS_TONE.get(row["status"], "neutral"),
                       "status_text": row["status"].replace("_", " "), "trial_end_at": stamp(row["trial_end"]),
                       "period_end_at": stamp(row["current_period_end"]),
                       "subscribed": row["status"] in subscriptions.CHANGEABLE}
        return {
            "enabled": True, "plans": plans, "account": account, "problem": problem, "intervals": INTERVALS,
            "money": lambda cents: _money(cents, plans.currency),
            "upcoming": {"amount": _money(upcoming.amount_due, upcoming.currency), "at": stamp(upcoming.next_payment)} if upcoming else None,
            "invoices": [{**dict(i), "amount": _money(i["amount_due"], i["currency"]), "paid": _money(i["amount_paid"], i["currency"]),
                          "at": stamp(i["created"])} for i in invoices],
            "standing": context.billing,
        }

    async def change_page(self, request: Request, context: Context) -> Response:
        """The proration preview of a plan change, with the button that confirms it."""
        plan_key, interval = request.query_params.get("plan", ""), request.query_params.get("interval", "")

        def preview():
            plans = catalog()
            with self.engine.begin() as conn:
                client = billing.client(conn, Keyring.from_env())
                return plans.get(plan_key), subscriptions.preview_change(conn, client, plans, context.company_id, plan_key, interval)

        try:
            plan, found = await run_in_threadpool(preview)
        except HubError as exc:
            self.pages.flash(request, redact(str(exc)), "bad")
            return RedirectResponse(BASE, status_code=303)
        return self.pages.render(request, "billing_change.html", ctx=context, csrf=context.csrf, plan=plan, interval=interval,
                                 now=_money(found.proration, found.currency), next=_money(found.amount_due, found.currency),
                                 credit=found.proration < 0)

    # ---- actions --------------------------------------------------------------------------
    def _admin(self, context: Context) -> None:
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can change its subscription.")

    def _act(self, request: Request, context: Context, work) -> Response:
        """Run `work(conn, client, plans)`; it returns (flash text, redirect URL or None)."""
        self._admin(context)
        try:
            with self.engine.begin() as conn:
                client = billing.client(conn, Keyring.from_env())
                text, url = work(conn, client, catalog())
        except HubError as exc:
            self.pages.flash(request, redact(str(exc)), "bad")
            return RedirectResponse(BASE, status_code=303)
        if url:  # Stripe's own page: not a redirect, which the CSP's form-action would block (go.html)
            return self.pages.render(request, "go.html", ctx=context, csrf=context.csrf, url=url, name="Stripe",
                                     title="On to Stripe", text="Stripe shows this page: card details never pass through the hub.")
        if text:
            self.pages.flash(request, text)
        return RedirectResponse(BASE, status_code=303)

    async def checkout(self, request: Request, context: Context, form: FormData) -> Response:
        plan_key, interval = str(form.get("plan") or ""), str(form.get("interval") or "")
        base = public_base_url(request)

        def work(conn, client, plans):
            url = subscriptions.start_checkout(conn, client, plans, context.company_id, plan_key, interval,
                                               f"{base}{BASE}?returned=checkout", f"{base}{BASE}?returned=canceled",
                                               email=context.user.email)
            return None, url

        return await run_in_threadpool(self._act, request, context, work)

    async def portal(self, request: Request, context: Context, form: FormData) -> Response:
        base = public_base_url(request)
        return await run_in_threadpool(self._act, request, context, lambda conn, client, plans: (
            None, subscriptions.portal_url(conn, client, context.company_id, f"{base}{BASE}?returned=portal")))

    async def change(self, request: Request, context: Context, form: FormData) -> Response:
        plan_key, interval = str(form.get("plan") or ""), str(form.get("interval") or "")

        def work(conn, client, plans):
            subscriptions.change_plan(conn, client, plans, context.company_id, plan_key, interval)
            return f"Now on the {plans.get(plan_key).name} plan ({'monthly' if interval == 'month' else 'annual'}).", None

        return await run_in_threadpool(self._act, request, context, work)

    def _cancel(self, cancel: bool):
        async def action(request: Request, context: Context, form: FormData) -> Response:
            def work(conn, client, plans):
                done = subscriptions.set_cancel_at_period_end(conn, client, plans, context.company_id, cancel)
                row = conn.execute(sa.select(billing_account.c.current_period_end)
                                   .where(billing_account.c.company_id == context.company_id)).first()
                when = times.exact(row.current_period_end, context.company.timezone) if row and row.current_period_end else "the period's end"
                return (f"The subscription ends on {when}; nothing more is charged." if cancel
                        else f"The subscription goes on ({done.status})."), None
            return await run_in_threadpool(self._act, request, context, work)
        return action

    def routes(self) -> list:
        post, page = self.pages._post, self.pages.signed_in_page
        return [
            Route(BASE, page(self.page), methods=["GET"]),
            Route(BASE + "/change", page(self.change_page), methods=["GET"]),
            Route(BASE + "/checkout", post(self.checkout, when_read_only=True), methods=["POST"]),
            Route(BASE + "/portal", post(self.portal, when_read_only=True), methods=["POST"]),
            Route(BASE + "/change", post(self.change, when_read_only=True), methods=["POST"]),
            Route(BASE + "/cancel", post(self._cancel(True), when_read_only=True), methods=["POST"]),
            Route(BASE + "/resume", post(self._cancel(False), when_read_only=True), methods=["POST"]),
        ]


def routes(pages: "SettingsPages") -> list:
    return BillingPage(pages).routes()
