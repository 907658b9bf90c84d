"""The demo's platform billing (`hub demo billing`, run by `make demo`): the hub operator's
Stripe account is the bundled Stripe emulator, so the billing page, Checkout, the portal and
the webhooks all work without the internet.

It creates the operator company "Hub Operator" with its Stripe integration, registers the
hub's receiver as a webhook endpoint at Stripe and stores the signing secret Stripe made,
turns billing on, makes Stripe's catalog match plans.toml, and gives each demo company a
subscription the way the operator's own tooling would: Acme Builders a Pro trial, Bella Pizza
Business (it has DoorDash and Uber Eats). Run after `hub demo connect`: the plans are
checked whenever an integration becomes active, and the demo's own are active by then.
Idempotent; each `make demo` starts a fresh emulator, whose empty account this fills again.
"""

from __future__ import annotations

from typing import Iterator

import sqlalchemy as sa
import stripe
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.billing import mirror, settings as billing
from hub.billing.catalog_sync import price_id, sync_catalog
from hub.billing.plans import catalog
from hub.crypto import Keyring
from hub.errors import HubError, NotFoundError
from hub.inbound.provider_endpoints import create_inbound, follow_credential
from hub.providers.stripe.client import make_client
from hub.schema import billing_account, integration

# the emulator's test-mode secret key (emulators/stripe DEFAULT_API_KEY: the hub imports no emulator)
DEMO_STRIPE_KEY = "sk_test_51HubEmulator0000000000000000"
OPERATOR = "Hub Operator"
INTEGRATION = "Platform billing (Stripe)"
DEMO_PLANS = {"Acme Builders": ("pro", True), "Bella Pizza": ("business", False)}  # company -> (plan, with the trial)


def connect_billing(engine: Engine, keyring: Keyring, stripe_url: str, hub_web_url: str) -> Iterator[str]:
    with engine.begin() as conn:
        try:
            operator_co = store.find_company(conn, OPERATOR).id
        except NotFoundError:
            operator_co = store.create_company(conn, OPERATOR)
        existing = conn.scalar(sa.select(integration.c.id).where(integration.c.company_id == operator_co,
                                                                  integration.c.name == INTEGRATION))
        if existing is None:
            existing = store.add_integration(conn, keyring, company_id=operator_co, provider="stripe", name=INTEGRATION,
                                             active=True, config={"base_url": stripe_url},
                                             credentials={"api_key": DEMO_STRIPE_KEY, "webhook_secret": "whsec_set_below"})
        else:
            store.update_connection(conn, keyring, existing, config={"base_url": stripe_url})
        endpoint = create_inbound(conn, keyring, existing)
    client = make_client(DEMO_STRIPE_KEY, stripe_url)
    hook_url = f"{hub_web_url}/webhooks/stripe/{endpoint}"
    try:
        registered = [e for e in client.v1.webhook_endpoints.list(params={"limit": 100}).auto_paging_iter() if e.url == hook_url]
        if not registered:
            hook = client.v1.webhook_endpoints.create(params={"url": hook_url, "enabled_events": ["*"]})
            with engine.begin() as conn:
                store.update_connection(conn, keyring, existing, credentials={"webhook_secret": hook.secret})
                follow_credential(conn, keyring, existing)
        with engine.begin() as conn:
            billing.enable(conn, keyring, existing)
        report = sync_catalog(client, catalog())
    except (stripe.StripeError, HubError) as exc:
        yield f"billing: the Stripe emulator at {stripe_url} did not answer ({exc}); billing left as it was"
        return
    yield (f"billing on: Stripe at {stripe_url}, webhooks to {hook_url}; catalog {len(report.created)} created, "
           f"{len(report.unchanged)} unchanged")
    for company_name, (plan_key, trial) in DEMO_PLANS.items():
        yield _subscribe(engine, client, company_name, plan_key, trial)


def _subscribe(engine: Engine, client: stripe.StripeClient, company_name: str, plan_key: str, trial: bool) -> str:
    plans = catalog()
    plan = plans.get(plan_key)
    with engine.begin() as conn:
        try:
            company_id = store.find_company(conn, company_name).id
        except NotFoundError:
            return f"{company_name}: not in this database; no subscription"
        row = conn.execute(sa.select(billing_account.c.status, billing_account.c.stripe_customer_id)
                           .where(billing_account.c.company_id == company_id)).first()
        try:
            if row is not None:  # a customer of an earlier run: is it still at this (fresh) emulator?
                client.v1.customers.retrieve(row.stripe_customer_id)
                refreshed = mirror.refresh_customer(conn, client, row.stripe_customer_id, plans)
                if refreshed.status in ("trialing", "active", "past_due"):
                    return f"{company_name}: {plan.name if refreshed.status else ''} subscription {refreshed.status} (already)"
        except stripe.InvalidRequestError:
            conn.execute(sa.delete(billing_account).where(billing_account.c.company_id == company_id))
        try:
            customer = mirror.ensure_customer(conn, client, company_id)
            card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer})
            client.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": card.id}})
            client.v1.subscriptions.create(params={
                "customer": customer, "items": [{"price": price_id(client, plan, "month")}],
                **({"trial_period_days": plans.trial_days} if trial else {}),
                "metadata": {mirror.COMPANY_KEY: str(company_id)}})
            done = mirror.refresh_customer(conn, client, customer, plans)
        except (stripe.StripeError, HubError) as exc:
            return f"{company_name}: no subscription ({exc})"
    return f"{company_name}: {plan.name} plan, {done.status}"
