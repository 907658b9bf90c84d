"""The billing page (/settings/integrations/stripe) in Chromium against the Stripe emulator:
a trial started in Stripe's Checkout page, a renewal paid, a card that fails at renewal (past
due: the banner and the notification), the card updated in the Billing Portal (paid, active
again), a plan change with its proration preview, cancel at period end and resume, the end
of the subscription, read-only after the grace, a viewer who reads only.

Time moves with the emulator's clock (`POST /_emulator/clock`), which Stripe objects
without a test clock follow; its webhooks reach the page's own receiver, and each step then
applies them as the sensor's job does (hub/billing/events.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators.serve import serve
from emulators.stripe import DEFAULT_API_KEY, create_emulator
from hub import integrations as store
from hub.billing import events, settings as billing
from hub.billing.catalog_sync import sync_catalog
from hub.billing.plans import load_catalog
from hub.crypto import Keyring
from hub.inbound.provider_endpoints import create_inbound, follow_credential
from hub.providers.stripe.client import make_client
from hub.schema import billing_account, outbox_event
from tests.browser.conftest import CANARY, csrf_of, sign_in

BILLING = "/settings/integrations/stripe"
DAY = 86400


class Billed:
    def __init__(self, site, stripe_url: str, emulator):
        self.site, self.url, self.emulator = site, stripe_url, emulator
        self.keyring = Keyring.from_env()

    def advance(self, days: float) -> None:
        """Move Stripe's time; renewals, trial ends and retries happen; apply the webhooks."""
        assert httpx.post(f"{self.url}/_emulator/clock", json={"advance": int(days * DAY)}).status_code == 200
        make_client(DEFAULT_API_KEY, self.url, retries=0).v1.customers.list(params={"limit": 1})  # objects catch up on a call
        self.apply()

    def apply(self) -> None:
        assert self.emulator.wait_idle(10)
        events.apply_pending(self.site.engine, self.keyring)

    def status(self) -> str | None:
        with self.site.engine.connect() as conn:
            return conn.scalar(sa.select(billing_account.c.status).where(billing_account.c.company_id == self.site.companies["Acme"]))


@pytest.fixture
def billed(site):
    keyring = Keyring.from_env()
    emulator = create_emulator(webhook_retry_s=(0.05, 0.05, 0.05), retry_days=(3, 5), dunning_final="unpaid")
    with serve(emulator.app) as stripe_url:
        with site.engine.begin() as conn:
            operator_co = store.create_company(conn, "Hub Operator")
            operator = store.add_integration(conn, keyring, company_id=operator_co, provider="stripe", name="Billing",
                                             active=True, config={"base_url": stripe_url},
                                             credentials={"api_key": DEFAULT_API_KEY, "webhook_secret": "whsec_later"})
            endpoint = create_inbound(conn, keyring, operator)
        client = make_client(DEFAULT_API_KEY, stripe_url, retries=0)
        hook = client.v1.webhook_endpoints.create(params={"url": f"{site.url}/webhooks/stripe/{endpoint}", "enabled_events": ["*"]})
        with site.engine.begin() as conn:
            store.update_connection(conn, keyring, operator, credentials={"webhook_secret": hook.secret})
            follow_credential(conn, keyring, operator)
            billing.enable(conn, keyring, operator, grace_days=14)
        sync_catalog(client, load_catalog())
        world = Billed(site, stripe_url, emulator)
        world.apply()  # the catalog's own events
        yield world
        emulator.wait_idle(2)
        emulator.close()


def _card(page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")


def test_trial_renewal_failed_card_portal_fix_plan_change_and_cancel(billed, page):
    site = billed.site
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("link", name="Open billing").click()
    expect(page).to_have_url(site.url + BILLING)
    expect(page.get_by_role("heading", name="Choose a plan")).to_be_visible()
    expect(page.get_by_text("Each plan starts with a 14-day free trial.")).to_be_visible()
    # Checkout, on Stripe's page, with the card that succeeds
    page.locator("tr[data-plan='pro']").get_by_role("button", name="Start Pro monthly").click()
    expect(page).to_have_url(re.compile(re.escape(billed.url) + "/c/pay/cs_test_"))
    page.get_by_label("Name on card").fill("Ann Admin")
    _card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Subscribe").click()
    expect(page).to_have_url(site.url + BILLING)
    expect(page.locator(".flash")).to_have_text("Subscription started. Welcome aboard.")
    expect(page.locator(".plan-name")).to_have_text("Pro · monthly")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "trialing")
    expect(page.locator(".payment-method")).to_contain_text("Visa ending 4242, expires 12/2034")
    expect(page.locator(".next-invoice")).to_contain_text("149.00 USD")

    # the trial ends and the first paid period starts; a month later the renewal is paid
    billed.advance(15)
    billed.advance(31)
    page.reload()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "active")
    paid = page.locator("table.invoices tbody tr").filter(has_text="149.00 USD").filter(has_text="paid")
    expect(paid).to_have_count(2)
    expect(paid.first.get_by_role("link", name="PDF")).to_have_attribute("href", re.compile(r"/i/.+/pdf$"))

    # the card is changed in the portal to one whose charges fail: the next renewal fails
    page.get_by_role("button", name="Manage billing").click()
    expect(page).to_have_url(re.compile(re.escape(billed.url) + "/p/session/"))
    _card(page, "4000 0000 0000 0341")
    page.get_by_role("button", name="Update payment method").click()
    page.get_by_role("link", name="Return").click()
    expect(page).to_have_url(site.url + BILLING)
    expect(page.locator(".payment-method")).to_contain_text("ending 0341")
    billed.advance(31)
    page.reload()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "past_due")
    expect(page.locator(".billing-banner")).to_contain_text("The last payment failed. Update the card before")
    page.goto(site.url + "/settings/integrations")
    expect(page.locator(".billing-banner")).to_be_visible()  # on every page
    with site.engine.connect() as conn:
        notices = conn.scalar(sa.select(sa.func.count()).select_from(outbox_event).where(
            outbox_event.c.event_type == "billing.past_due", outbox_event.c.company_id == site.companies["Acme"]))
    assert notices == 1
    # a good card in the portal pays the open invoice: active again, the banner gone
    page.goto(site.url + BILLING)
    page.get_by_role("button", name="Manage billing").click()
    _card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Update payment method").click()
    page.get_by_role("link", name="Return").click()
    billed.apply()
    page.reload()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "active")
    expect(page.locator(".billing-banner")).to_have_count(0)
    expect(page.locator("table.invoices tbody tr").filter(has_text="open")).to_have_count(0)

    # a plan change: the proration preview, then the switch
    page.locator("tr[data-plan='business']").get_by_role("button", name="Switch to Business monthly").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Switch to Business (monthly)")
    expect(page.locator(".proration-now")).to_contain_text("USD")
    page.get_by_role("button", name="Confirm the switch to Business").click()
    expect(page.locator(".flash")).to_have_text("Now on the Business plan (monthly).")
    expect(page.locator(".plan-name")).to_have_text("Business · monthly")
    expect(page.locator("tr[data-plan='business'] .badge")).to_have_text("current")

    # cancel at period end, resume, cancel again: canceled once the clock passes the period's end
    page.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page.locator(".flash")).to_contain_text("The subscription ends on")
    page.get_by_role("button", name="Resume the subscription").click()
    expect(page.locator(".flash")).to_have_text("The subscription goes on (active).")
    page.get_by_role("button", name="Cancel at the end of the period").click()
    billed.advance(32)
    assert billed.status() == "canceled"
    page.reload()
    expect(page.get_by_role("heading", name="Choose a plan")).to_be_visible()
    assert CANARY not in page.content() and "sk_test_" not in page.content()


def test_a_viewer_reads_and_a_company_unpaid_past_the_grace_is_read_only(billed, page):
    site = billed.site
    acme = site.companies["Acme"]
    with site.engine.begin() as conn:
        conn.execute(sa.insert(billing_account).values(company_id=acme, stripe_customer_id="cus_acme_local", status="past_due",
                                                       plan_key="pro", interval="month",
                                                       past_due_since=sa.func.now() - timedelta(days=15)))
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(site.url + BILLING)
    expect(page.locator(".billing-banner")).to_contain_text("is read-only for changes")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site.url, "admin@acme.example")
    token = csrf_of(page)
    qbo = site.integrations["QuickBooks (Acme)"]
    refused = page.request.post(f"{site.url}/settings/integrations/{qbo}/disable", form={"csrf_token": token}, max_redirects=0)
    assert refused.status == 403 and "read-only for changes" in refused.text()
    with site.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.text("is_active")).select_from(sa.text("integration")).where(sa.text(f"id = {qbo}")))
    # the billing actions stay open: that is how the company pays its way out (this customer is
    # only in the local mirror, so Stripe answers 404 and the page says so)
    opened = page.request.post(f"{site.url}{BILLING}/portal", form={"csrf_token": token}, max_redirects=0)
    assert opened.status == 303 and opened.headers["location"] == BILLING
    page.goto(site.url + BILLING)
    expect(page.locator(".flash.tone-bad")).to_contain_text("Stripe refused the request (404, resource_missing)")


def test_the_billing_page_passes_axe(billed, page):
    from axe_playwright_python.sync_playwright import Axe

    sign_in(page, billed.site.url, "admin@acme.example")
    page.goto(billed.site.url + BILLING)
    serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
