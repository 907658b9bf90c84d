"""A company's subscription mirrored from Stripe: `billing_account` and `billing_invoice`.

Why re-read instead of applying events: Stripe does not guarantee the order of its webhooks,
retries them for days, and may send one twice; an event's embedded object may be older than
one already applied. So an event only says *which customer changed*; `refresh_customer`
then reads the customer, its subscriptions and its recent invoices from the API and writes
what Stripe says now. Applying any set of events in any order, duplicated or with some
missing, ends in the same rows, and the nightly reconciliation (`reconcile`) is the same
call for every customer.

A customer belongs to a company by `metadata.hub_company_id`, written when the hub created
the customer (`ensure_customer`); a customer without it is not the hub's and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
import stripe
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.billing.plans import Catalog, catalog as configured_catalog
from hub.billing.settings import DEFAULT_GRACE_DAYS, current
from hub.errors import HubError
from hub.outbound import emit
from hub.providers.stripe.client import hub_error
from hub.schema import billing_account, billing_invoice, company

COMPANY_KEY = "hub_company_id"
INVOICES_KEPT = 24  # the newest invoices mirrored per refresh (two years of a monthly plan)
# which of a customer's subscriptions is "the" subscription: the live one first
_RANK = {"active": 0, "trialing": 0, "past_due": 1, "unpaid": 2, "incomplete": 3, "paused": 4, "canceled": 5,
         "incomplete_expired": 6}
DUNNING = ("past_due", "unpaid")


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value else None


@dataclass
class Refreshed:
    company_id: int | None
    status: str = "none"
    changed: bool = False
    invoices: int = 0
    entered_dunning: bool = False


def ensure_customer(conn: Connection, client: stripe.StripeClient, company_id: int, email: str | None = None) -> str:
    """The company's Stripe customer id, created on first use. The idempotency key is the
    company's, so two admins clicking at once (or a retry after a lost answer) make one
    customer, not two."""
    found = conn.scalar(sa.select(billing_account.c.stripe_customer_id).where(billing_account.c.company_id == company_id))
    if found:
        return found
    name = conn.scalar(sa.select(company.c.name).where(company.c.id == company_id))
    if name is None:
        raise HubError(f"no company {company_id}")
    try:
        customer = client.v1.customers.create(
            params={"name": name, "metadata": {COMPANY_KEY: str(company_id)}, **({"email": email} if email else {})},
            options={"idempotency_key": f"hub-customer-{company_id}"})
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    conn.execute(insert(billing_account).values(company_id=company_id, stripe_customer_id=customer.id)
                 .on_conflict_do_nothing(index_elements=[billing_account.c.company_id]))
    return conn.scalar(sa.select(billing_account.c.stripe_customer_id).where(billing_account.c.company_id == company_id))


def _metadata(obj: Any) -> dict[str, Any]:
    metadata = getattr(obj, "metadata", None)
    return metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata or {})


def _current_subscription(subscriptions: Iterable[Any]) -> Any | None:
    ranked = sorted(subscriptions, key=lambda s: (_RANK.get(s.status, 9), -(s.created or 0)))
    return ranked[0] if ranked else None


def _card(pm: Any) -> dict[str, Any] | None:
    card = getattr(pm, "card", None) if pm is not None and not isinstance(pm, str) else None
    if card is None:
        return None
    return {"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year}


def _item_fields(sub: Any, plans: Catalog) -> dict[str, Any]:
    items = sub.items.data if sub is not None else []
    if not items:
        return {"plan_key": None, "interval": None, "quantity": None, "current_period_end": None}
    item = items[0]
    ours = plans.by_lookup_key(getattr(item.price, "lookup_key", None))
    # current_period_end lives on the item in recent API versions, on the subscription before
    period_end = getattr(item, "current_period_end", None) or getattr(sub, "current_period_end", None)
    return {"plan_key": ours[0].key if ours else None, "interval": ours[1] if ours else item.price.recurring.interval,
            "quantity": item.quantity, "current_period_end": _ts(period_end)}


def refresh_customer(conn: Connection, client: stripe.StripeClient, customer_id: str,
                     plans: Catalog | None = None) -> Refreshed:
    """Write what Stripe says now about this customer. Raises HubError when Stripe cannot be
    read (the caller leaves the event for the next try); a deleted customer cancels the
    mirror."""
    plans = plans or configured_catalog()
    try:
        customer = client.v1.customers.retrieve(customer_id, params={"expand": ["invoice_settings.default_payment_method"]})
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return _forget(conn, customer_id)
        raise hub_error(exc) from None
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    if getattr(customer, "deleted", False):
        return _forget(conn, customer_id)
    raw_company = _metadata(customer).get(COMPANY_KEY)
    if not raw_company or not str(raw_company).isdigit():
        return Refreshed(None)  # not a customer the hub made
    company_id = int(raw_company)
    if conn.scalar(sa.select(company.c.id).where(company.c.id == company_id)) is None:
        return Refreshed(None)  # a company deleted here since
    try:
        subscriptions = list(client.v1.subscriptions.list(params={
            "customer": customer_id, "status": "all", "limit": 100, "expand": ["data.default_payment_method"]}).auto_paging_iter())
        invoices = client.v1.invoices.list(params={"customer": customer_id, "limit": INVOICES_KEPT}).data
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    sub = _current_subscription(subscriptions)
    status = sub.status if sub is not None else "none"
    card = _card(getattr(sub, "default_payment_method", None)) if sub is not None else None
    card = card or _card(customer.invoice_settings.default_payment_method if customer.invoice_settings else None)
    before = conn.execute(sa.select(billing_account).where(billing_account.c.company_id == company_id).with_for_update()).mappings().first()
    entered_dunning = status in DUNNING and not (before and before["status"] in DUNNING)
    values = {
        "stripe_customer_id": customer_id, "subscription_id": sub.id if sub is not None else None, "status": status,
        **_item_fields(sub, plans),
        "trial_end": _ts(getattr(sub, "trial_end", None)), "cancel_at_period_end": bool(getattr(sub, "cancel_at_period_end", False)),
        "canceled_at": _ts(getattr(sub, "canceled_at", None)),
        # the grace runs from the first time the hub saw it unpaid, kept while it stays so
        "past_due_since": (before["past_due_since"] if before and before["past_due_since"] and not entered_dunning
                           else sa.func.now()) if status in DUNNING else None,
        "had_trial": bool(before and before["had_trial"]) or any(getattr(s, "trial_end", None) for s in subscriptions),
        "payment_method": card,
    }
    changed = before is None or any(before[k] != v for k, v in values.items() if k != "past_due_since")
    conn.execute(insert(billing_account).values(company_id=company_id, synced_at=sa.func.now(), **values)
                 .on_conflict_do_update(index_elements=[billing_account.c.company_id], set_={**values, "synced_at": sa.func.now()}))
    for inv in invoices:
        _upsert_invoice(conn, company_id, inv)
    if entered_dunning:
        _notify_dunning(conn, company_id, values, plans)
    return Refreshed(company_id, status, changed, len(invoices), entered_dunning)


def _notify_dunning(conn: Connection, company_id: int, values: dict[str, Any], plans: Catalog) -> None:
    """Tell the company (its notification routes and webhook endpoints take `billing.past_due`)
    once per episode: when the subscription first goes unpaid."""
    settings = current(conn)
    grace = settings.grace_days if settings else DEFAULT_GRACE_DAYS
    plan = next((p.name for p in plans.plans if p.key == values["plan_key"]), "subscription")
    emit(conn, company_id, "billing.past_due", {
        "company_id": company_id, "plan": values["plan_key"] or "", "status": values["status"],
        "subscription_id": values["subscription_id"], "grace_days": grace,
        "message": f"The payment for the {plan} plan failed. Update the card within {grace} days; after that the hub "
                   f"is read-only for changes (syncs keep running)."})


def _upsert_invoice(conn: Connection, company_id: int, inv: Any) -> None:
    values = {"company_id": company_id, "number": inv.number, "status": inv.status, "currency": inv.currency,
              "amount_due": inv.amount_due, "amount_paid": inv.amount_paid, "hosted_invoice_url": inv.hosted_invoice_url,
              "invoice_pdf": inv.invoice_pdf, "period_start": _ts(inv.period_start), "period_end": _ts(inv.period_end),
              "created": _ts(inv.created)}
    conn.execute(insert(billing_invoice).values(stripe_invoice_id=inv.id, **values)
                 .on_conflict_do_update(index_elements=[billing_invoice.c.stripe_invoice_id],
                                        set_={**values, "synced_at": sa.func.now()}))


def _forget(conn: Connection, customer_id: str) -> Refreshed:
    """The customer is gone at Stripe: the mirror says canceled (nothing is deleted here)."""
    company_id = conn.scalar(sa.update(billing_account).where(billing_account.c.stripe_customer_id == customer_id)
                             .values(status="canceled", subscription_id=None, past_due_since=None, synced_at=sa.func.now())
                             .returning(billing_account.c.company_id))
    return Refreshed(company_id, "canceled", company_id is not None)


def customer_of_event(payload: dict[str, Any]) -> str | None:
    """Which customer a Stripe event is about: the object itself when it is a customer, else
    its `customer` field (a checkout session, subscription, invoice, payment method)."""
    obj = ((payload.get("data") or {}).get("object")) or {}
    if not isinstance(obj, dict):
        return None
    if obj.get("object") == "customer":
        return obj.get("id") if isinstance(obj.get("id"), str) else None
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) and customer.startswith("cus_") else None


@dataclass
class Reconciled:
    checked: int = 0
    repaired: list[int] = field(default_factory=list)  # companies whose mirror differed from Stripe
    failed: list[str] = field(default_factory=list)


def reconcile(conn_factory, client: stripe.StripeClient, plans: Catalog | None = None) -> Reconciled:
    """Every customer the hub made (listed at Stripe, so one whose row a lost webhook never
    wrote is found too), refreshed; one transaction per customer so one failure stops
    nothing. `conn_factory` is `engine.begin`."""
    plans = plans or configured_catalog()
    report = Reconciled()
    try:
        customers = [c for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()
                     if _metadata(c).get(COMPANY_KEY)]
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    for customer in customers:
        report.checked += 1
        try:
            with conn_factory() as conn:
                done = refresh_customer(conn, client, customer.id, plans)
        except HubError as exc:
            report.failed.append(f"{customer.id}: {exc}")
            continue
        if done.changed and done.company_id is not None:
            report.repaired.append(done.company_id)
    return report
