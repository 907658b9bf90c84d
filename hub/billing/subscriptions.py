"""What an admin does with the company's subscription, each through Stripe's API (the SDK):
start one in Checkout, open the Billing Portal, preview and make a plan change with
proration, cancel at period end and resume, read the upcoming invoice.

Nothing here writes the mirror from a request's answer alone: after a change the caller
refreshes the customer (hub/billing/mirror.py), as a webhook would, so the page and the
webhooks can never disagree about what Stripe holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
import stripe
from sqlalchemy.engine import Connection

from hub.billing import mirror
from hub.billing.catalog_sync import price_id
from hub.billing.plans import Catalog
from hub.errors import ValidationError
from hub.providers.stripe.client import hub_error
from hub.schema import billing_account

CHANGEABLE = ("trialing", "active", "past_due")


@dataclass(frozen=True)
class Preview:
    amount_due: int  # what the next invoice will ask, prorations included
    proration: int  # the part that is proration (credit for the unused time, charge for the new plan)
    currency: str
    next_payment: datetime | None


def _account(conn: Connection, company_id: int) -> sa.RowMapping:
    row = conn.execute(sa.select(billing_account).where(billing_account.c.company_id == company_id)).mappings().first()
    if row is None or not row["subscription_id"]:
        raise ValidationError("This company has no subscription yet: start one first.")
    return row


def start_checkout(conn: Connection, client: stripe.StripeClient, plans: Catalog, company_id: int, plan_key: str,
                   interval: str, success_url: str, cancel_url: str, email: str | None = None) -> str:
    """A Checkout Session for the plan; returns the URL of Stripe's page. The trial is
    offered once per company."""
    plan = plans.get(plan_key)
    if interval not in ("month", "year"):
        raise ValidationError("interval must be month or year")
    current = conn.execute(sa.select(billing_account.c.status, billing_account.c.had_trial)
                           .where(billing_account.c.company_id == company_id)).first()
    if current is not None and current.status in CHANGEABLE:
        raise ValidationError("This company already has a subscription: change its plan instead.")
    customer = mirror.ensure_customer(conn, client, company_id, email)
    data: dict[str, Any] = {"metadata": {mirror.COMPANY_KEY: str(company_id)}}
    if plans.trial_days and not (current and current.had_trial):
        data["trial_period_days"] = plans.trial_days
    try:
        session = client.v1.checkout.sessions.create(params={
            "mode": "subscription", "customer": customer, "client_reference_id": str(company_id),
            "line_items": [{"price": price_id(client, plan, interval), "quantity": 1}],
            "subscription_data": data, "success_url": success_url, "cancel_url": cancel_url})
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    return session.url


def portal_url(conn: Connection, client: stripe.StripeClient, company_id: int, return_url: str) -> str:
    customer = conn.scalar(sa.select(billing_account.c.stripe_customer_id).where(billing_account.c.company_id == company_id))
    if not customer:
        raise ValidationError("This company is not a Stripe customer yet: start a subscription first.")
    try:
        return client.v1.billing_portal.sessions.create(params={"customer": customer, "return_url": return_url}).url
    except stripe.StripeError as exc:
        raise hub_error(exc) from None


def _item(client: stripe.StripeClient, subscription_id: str) -> Any:
    sub = client.v1.subscriptions.retrieve(subscription_id)
    return sub, sub.items.data[0]


def preview_change(conn: Connection, client: stripe.StripeClient, plans: Catalog, company_id: int, plan_key: str,
                   interval: str) -> Preview:
    """What changing to this plan would bill now (the proration) and on the next invoice."""
    row = _account(conn, company_id)
    plan = plans.get(plan_key)
    try:
        sub, item = _item(client, row["subscription_id"])
        preview = client.v1.invoices.create_preview(params={
            "customer": row["stripe_customer_id"], "subscription": sub.id,
            "subscription_details": {"items": [{"id": item.id, "price": price_id(client, plan, interval)}],
                                     "proration_behavior": "always_invoice"}})
    except stripe.InvalidRequestError as exc:
        if exc.code != "invoice_upcoming_none":
            raise hub_error(exc) from None
        # nothing to invoice for the change (a trial: the new plan is billed when it ends)
        return Preview(0, 0, plans.currency, None)
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    proration = sum(line.amount for line in preview.lines.data if _is_proration(line))
    return Preview(preview.amount_due, proration, preview.currency, _ts(getattr(preview, "next_payment_attempt", None)))


def _is_proration(line: Any) -> bool:
    parent = getattr(line, "parent", None)
    details = getattr(parent, "subscription_item_details", None) if parent else None
    return bool(getattr(details, "proration", False) or getattr(line, "proration", False))


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value else None


def change_plan(conn: Connection, client: stripe.StripeClient, plans: Catalog, company_id: int, plan_key: str,
                interval: str) -> mirror.Refreshed:
    """Switch the subscription's price now; the difference is invoiced at once."""
    row = _account(conn, company_id)
    if row["status"] not in CHANGEABLE:
        raise ValidationError(f"A {row['status']} subscription cannot change plan; start a new one.")
    plan = plans.get(plan_key)
    try:
        sub, item = _item(client, row["subscription_id"])
        client.v1.subscriptions.update(sub.id, params={
            "items": [{"id": item.id, "price": price_id(client, plan, interval)}], "proration_behavior": "always_invoice",
            "cancel_at_period_end": False})
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    return mirror.refresh_customer(conn, client, row["stripe_customer_id"], plans)


def set_cancel_at_period_end(conn: Connection, client: stripe.StripeClient, plans: Catalog, company_id: int,
                             cancel: bool) -> mirror.Refreshed:
    """Cancel at the end of the paid period (True), or resume (False) before it ends."""
    row = _account(conn, company_id)
    if row["status"] not in CHANGEABLE:
        raise ValidationError(f"A {row['status']} subscription cannot be {'canceled' if cancel else 'resumed'}.")
    try:
        client.v1.subscriptions.update(row["subscription_id"], params={"cancel_at_period_end": cancel})
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    return mirror.refresh_customer(conn, client, row["stripe_customer_id"], plans)


def upcoming(conn: Connection, client: stripe.StripeClient, company_id: int) -> Preview | None:
    """The next invoice: its amount and date; None without a subscription that renews."""
    row = conn.execute(sa.select(billing_account).where(billing_account.c.company_id == company_id)).mappings().first()
    if row is None or not row["subscription_id"] or row["status"] not in CHANGEABLE or row["cancel_at_period_end"]:
        return None
    try:
        preview = client.v1.invoices.create_preview(params={"customer": row["stripe_customer_id"],
                                                            "subscription": row["subscription_id"]})
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    when = getattr(preview, "next_payment_attempt", None) or getattr(preview, "period_end", None)
    return Preview(preview.amount_due, 0, preview.currency, _ts(when))
