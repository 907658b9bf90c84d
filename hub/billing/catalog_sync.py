"""`hub billing plans sync`: make Stripe's products and prices say what plans.toml says.

Idempotent by construction: a plan's product has the id `hub_<key>` (created once, then
updated), and each price is found by its lookup key. Stripe prices cannot change their
amount, currency or interval, so a changed price is a new Price created with the same
lookup key and `transfer_lookup_key=true` (Stripe moves the key to it atomically), and the
old one is archived (`active=false`); subscriptions on it keep it until they change plan.
Running it twice changes nothing the second time. Creations carry idempotency keys derived
from what they create, so a retry after a lost answer makes nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import stripe

from hub.billing.plans import INTERVALS, Catalog
from hub.errors import ValidationError
from hub.providers.stripe.client import hub_error


@dataclass
class CatalogReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.archived)


def _key(*parts: object) -> str:
    return "hub-catalog-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def sync_catalog(client: stripe.StripeClient, plans: Catalog) -> CatalogReport:
    report = CatalogReport()
    try:
        for plan in plans.plans:
            _product(client, plan, report)
            for interval in INTERVALS:
                _price(client, plans, plan, interval, report)
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    return report


def _product(client: stripe.StripeClient, plan, report: CatalogReport) -> None:
    try:
        product = client.v1.products.retrieve(plan.product_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        client.v1.products.create(params={"id": plan.product_id, "name": plan.name, "metadata": {"hub_plan": plan.key}},
                                  options={"idempotency_key": _key("product", plan.product_id, plan.name)})
        report.created.append(f"product {plan.product_id}")
        return
    if product.name != plan.name or not product.active:
        client.v1.products.update(plan.product_id, params={"name": plan.name, "active": True})
        report.updated.append(f"product {plan.product_id}")
    else:
        report.unchanged.append(f"product {plan.product_id}")


def _price(client: stripe.StripeClient, plans: Catalog, plan, interval: str, report: CatalogReport) -> None:
    lookup_key = plan.lookup_key(interval)
    amount = plan.amount(interval)
    found = client.v1.prices.list(params={"lookup_keys": [lookup_key], "limit": 1}).data
    current = found[0] if found else None
    if (current is not None and current.active and current.unit_amount == amount and current.currency == plans.currency
            and current.recurring and current.recurring.interval == interval and current.product == plan.product_id):
        report.unchanged.append(f"price {lookup_key}")
        return
    created = client.v1.prices.create(
        params={"product": plan.product_id, "unit_amount": amount, "currency": plans.currency,
                "recurring": {"interval": interval}, "lookup_key": lookup_key, "transfer_lookup_key": True,
                "metadata": {"hub_plan": plan.key}},
        options={"idempotency_key": _key("price", lookup_key, amount, plans.currency, current.id if current else "")})
    report.created.append(f"price {lookup_key} ({amount} {plans.currency}/{interval}) {created.id}")
    if current is not None and current.active:
        client.v1.prices.update(current.id, params={"active": False})
        report.archived.append(f"price {current.id}")


def price_id(client: stripe.StripeClient, plan, interval: str) -> str:
    """The Stripe price of a plan and interval, by its lookup key."""
    try:
        found = client.v1.prices.list(params={"lookup_keys": [plan.lookup_key(interval)], "limit": 1}).data
    except stripe.StripeError as exc:
        raise hub_error(exc) from None
    if not found:
        raise ValidationError(f"Stripe has no price {plan.lookup_key(interval)}: run `hub billing plans sync`")
    return found[0].id
