"""The Slack, SendGrid and Twilio tabs of an integration's page in Chromium, against the three
emulators served over real HTTP (the integrations point at them with config `base_url`, as
the demo's do): channel routing and a test message, the formatting preview, sender
verification, template sync, the number to send from, and delivery tracking with statuses
that came back through the hub's own webhook receiver. Every credential contains the canary
and is the one the emulator accepts, so the pages are proven to work with, and never show,
a real secret. Viewers see no buttons, forged posts change nothing, a provider's failure is
a clear message that changes nothing."""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators import sendgrid as sg_emulator
from emulators import slack as slack_emulator
from emulators import twilio as tw_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.notify.routes import add_route
from hub.notify.status import apply_pending
from hub.outbound import emit
from hub.outbound.outbox import EVENT_TYPES
from hub.schema import notification_route, provider_template, webhook_endpoint
from tests.browser.conftest import CANARY, csrf_of, make_site, seed, sign_in
from tests.test_notify_support import SG_TEMPLATE, World, messages, notify_worker, wait_until

pytestmark = pytest.mark.timeout(120)

HOME = "/settings/integrations"
SLACK_TOKEN = f"xoxb-{CANARY}-slack-bot-0123456789"
SG_KEY = f"SG.{CANARY}-sendgrid-key.0123456789abcdef"
TW_SID, TW_TOKEN = "AC" + "0" * 31 + "7", f"{CANARY}-twilio-auth-token-0123"
FROM_EMAIL, FROM_NUMBER = "noreply@acme-builders.example", "+15005550006"
OTHER_NUMBER = "+14155550100"


@dataclass
class Messaging:
    url: str
    engine: Any
    keyring: Keyring
    company_id: int
    slack: Any
    slack_url: str
    sendgrid: Any
    sendgrid_url: str
    twilio: Any
    twilio_url: str
    slack_id: int
    sendgrid_id: int
    twilio_id: int

    def page_of(self, integration_id: int, section: str) -> str:
        return f"{self.url}{HOME}/{integration_id}/{section}"

    def config(self, integration_id: int) -> dict:
        with self.engine.connect() as conn:
            return store.get_integration(conn, self.keyring, integration_id).config

    def state(self) -> list:
        """Everything an action of these pages may change (to prove a refused one changed nothing)."""
        with self.engine.connect() as conn:
            return [sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in (webhook_endpoint, notification_route, provider_template)] \
                + [{i: self.config(i) for i in (self.slack_id, self.sendgrid_id, self.twilio_id)}]

    def world(self) -> World:
        """The notification tests' world (tests/test_notify_support.py) over these integrations."""
        return World(self.engine, self.keyring, self.company_id, self.url, self.slack, self.slack_url, self.sendgrid,
                     self.sendgrid_url, self.twilio, self.twilio_url, self.slack_id, self.sendgrid_id, self.twilio_id)

    def fault(self, emulator_url: str, **plan) -> None:
        httpx.post(f"{emulator_url}/_emulator/faults", json=plan).raise_for_status()


@pytest.fixture
def messaging(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    companies, _ids = seed(clean_db, keyring)
    slack = slack_emulator.create_emulator(tokens=(SLACK_TOKEN,))
    sendgrid = sg_emulator.create_emulator(api_keys={SG_KEY: sg_emulator.ALL_SCOPES}, batch_window_s=0.02, deliver_delay_s=0.05,
                                           retry_schedule_s=(0.1, 0.2))
    twilio = tw_emulator.create_emulator(account_sid=TW_SID, auth_token=TW_TOKEN, mps=100, send_delay_s=0.02, deliver_delay_s=0.05)
    app, _ = make_site(clean_db, secret_keys)
    with ExitStack() as stack:
        slack_url, sg_url, tw_url = (stack.enter_context(serve(e.app)) for e in (slack, sendgrid, twilio))
        for emu in (sendgrid, twilio):
            stack.callback(emu.close)
        url = stack.enter_context(serve(app))
        for emu in (sendgrid, twilio):
            stack.callback(emu.wait_idle, 1.0)
        acme = companies["Acme"]
        with clean_db.begin() as conn:
            slack_id = store.add_integration(conn, keyring, company_id=acme, provider="slack", name="Slack workspace",
                                             config={"base_url": slack_url, "default_channel": "#ops"},
                                             credentials={"bot_token": SLACK_TOKEN, "signing_secret": f"{CANARY}-signing-0001"})
            sendgrid_id = store.add_integration(conn, keyring, company_id=acme, provider="sendgrid", name="SendGrid (Acme)",
                                                config={"base_url": sg_url, "from_email": FROM_EMAIL},
                                                credentials={"api_key": SG_KEY, "webhook_public_key": sendgrid.public_key})
            twilio_id = store.add_integration(conn, keyring, company_id=acme, provider="twilio", name="Twilio (Acme)",
                                              config={"base_url": tw_url, "from_number": FROM_NUMBER},
                                              credentials={"account_sid": TW_SID, "auth_token": TW_TOKEN})
        yield Messaging(url, clean_db, keyring, acme, slack, slack_url, sendgrid, sg_url, twilio, tw_url, slack_id,
                        sendgrid_id, twilio_id)


def flash(page):
    return page.locator("main .flash")


# ---- Slack ----------------------------------------------------------------------------------------
def test_map_a_channel_by_clicking_and_remove_it(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.slack_id, "channels"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Channels and routing")
    # the channels are the workspace's, live from the emulator (archived ones left out)
    options = page.locator("#route-channel option").all_text_contents()
    assert {"#ops", "#alerts", "#general", "#leadership (private)", "#random (bot not invited)"} <= set(options)
    assert not any("old-announcements" in o for o in options)
    page.get_by_label("order.status_changed").check()
    page.get_by_label("budget.alert").check()
    page.get_by_label("Post to channel").select_option(label="#alerts")
    page.get_by_role("button", name="Add route").click()
    expect(flash(page)).to_have_text("Route added: order.status_changed, budget.alert → #alerts (C0ALERTS01).")
    row = page.locator("table.routes tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("#alerts (C0ALERTS01)")
    with m.engine.connect() as conn:
        [stored] = conn.execute(sa.select(notification_route.c.kind, notification_route.c.target, notification_route.c.target_name,
                                          notification_route.c.integration_id, webhook_endpoint.c.events, webhook_endpoint.c.company_id)
                                .join(webhook_endpoint, webhook_endpoint.c.id == notification_route.c.endpoint_id)).all()
    assert stored[:4] == ("slack", "C0ALERTS01", "alerts", m.slack_id) and stored.company_id == m.company_id
    assert set(stored.events) == {"order.status_changed", "budget.alert", "webhook.test"}

    # a channel the bot is not in: Slack is asked, the route refused with the reason, nothing stored
    before = m.state()
    page.get_by_label("task.assigned").check()
    page.get_by_label("Post to channel").select_option(label="#random (bot not invited)")
    page.get_by_role("button", name="Add route").click()
    expect(flash(page)).to_contain_text("Route not added: the bot is not a member of #random")
    assert m.state() == before

    page.get_by_role("button", name="Remove route to #alerts (C0ALERTS01)").click()
    expect(flash(page)).to_contain_text("Route removed")
    expect(page.locator("table.routes")).to_have_count(0)
    with m.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(notification_route)) == 0


def test_send_a_test_message_to_a_chosen_channel(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.slack_id, "channels"))
    page.get_by_label("Channel for the test").select_option(label="#ops")
    page.get_by_role("button", name="Send test message").click()
    [posted] = wait_until(lambda: list(m.slack.messages), what="the test message at Slack")
    expect(flash(page)).to_have_text(f"Test message posted to C0OPS00001 (ts {posted['ts']}).")
    assert posted["channel"] == "C0OPS00001" and "Test notification from the Integrations Hub" in str(posted["blocks"])
    assert posted["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Webhook test", "emoji": True}}
    # a channel the bot was not invited to: Slack's refusal, said plainly
    page.get_by_label("Channel for the test").select_option(label="#random (bot not invited)")
    page.get_by_role("button", name="Send test message").click()
    expect(flash(page)).to_have_text("Test message failed: not sent: slack: the bot is not a member of the channel; invite it "
                                     "(code not_in_channel) [HTTP 200]")
    assert len(m.slack.messages) == 1


def test_slack_down_or_refusing_is_a_clear_message_and_nothing_changes(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    m.fault(m.slack_url, fail_next_5xx=1, status_5xx=503)
    page.goto(m.page_of(m.slack_id, "channels"))
    expect(page.get_by_role("alert")).to_have_text("The workspace's channels could not be read: slack: Slack is unavailable (code service_unavailable) [HTTP 503]")
    expect(page.get_by_role("button", name="Add route")).to_have_count(0)
    page.reload()  # the fault is spent: the channels are back
    expect(page.get_by_role("button", name="Add route")).to_be_visible()
    before = m.state()
    m.fault(m.slack_url, fail_next_5xx=1, status_5xx=500)  # the check add_route makes at Slack fails
    page.get_by_label("order.status_changed").check()
    page.get_by_label("Post to channel").select_option(label="#ops")
    page.get_by_role("button", name="Add route").click()
    expect(flash(page)).to_have_text("Route not added: slack: Slack is unavailable (code fatal_error) [HTTP 500]")
    assert m.state() == before
    # the token revoked at Slack: "reconnect", never the token
    httpx.post(f"{m.slack_url}/_emulator/tokens", json={"token": SLACK_TOKEN, "revoked": True}).raise_for_status()
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("the bot token was refused; reconnect Slack (code token_revoked)")
    assert CANARY not in page.content()


def test_formatting_previews_every_event_type_and_a_route_template(messaging, page):
    m = messaging
    route, _ = add_route(m.engine, m.keyring, company_id=m.company_id, kind="slack", events=["order.status_changed"], to="#ops",
                         integration_id=m.slack_id)
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.slack_id, "formatting"))
    previews = page.locator("article.preview")
    expect(previews).to_have_count(len(EVENT_TYPES))
    assert set(previews.evaluate_all("els => els.map(e => e.dataset.event)")) == set(EVENT_TYPES)
    task = page.locator("article[data-event='task.assigned'] .slack-message")
    expect(task.locator(".bk-header")).to_have_text("Task assigned")
    expect(task.locator(".bk-text")).to_contain_text("RFI #12 'Door hardware at level 2' assigned to Jane Doe on project Riverside Clinic")
    expect(task.locator(".bk-text a")).to_have_attribute("href", "https://app.procore.com/562949953425469/project/rfi/show/1203")
    expect(task.locator(".bk-fields strong").first).to_have_text("Project")

    # a route's own template: a draft is previewed without being stored, then saved
    page.get_by_label("Template", exact=True).select_option(label=route.name)
    page.get_by_role("button", name="Show").click()
    page.get_by_label("Title").fill("Order {{external_id}}")
    page.get_by_label("Text").fill("*{{external_id}}* is now {{status}} <script>alert(1)</script>")
    page.get_by_role("button", name="Preview draft").click()
    expect(page.locator("h3 .badge")).to_have_text("draft, not saved")
    order = page.locator("article[data-event='order.status_changed'] .slack-message")
    expect(order.locator(".bk-header")).to_have_text("Order F2A9-77C1")
    expect(order.locator(".bk-text strong")).to_have_text("F2A9-77C1")
    expect(order.locator(".bk-text")).to_contain_text("is now ready <script>alert(1)</script>")  # text, not markup
    assert page.locator(".slack-message script").count() == 0
    with m.engine.connect() as conn:
        assert conn.scalar(sa.select(notification_route.c.template)) == {}
    page.get_by_role("button", name="Save template").click()
    expect(flash(page)).to_have_text(f"Template of {route.name} saved.")
    expect(page.get_by_label("Title")).to_have_value("Order {{external_id}}")
    with m.engine.connect() as conn:
        assert conn.scalar(sa.select(notification_route.c.template)) == {
            "title": "Order {{external_id}}", "text": "*{{external_id}}* is now {{status}} <script>alert(1)</script>"}
    page.screenshot(path="/tmp/shots-messaging/slack-formatting-route.png", full_page=True)


# ---- SendGrid ---------------------------------------------------------------------------------------
def test_sendgrid_start_a_sender_verification_and_use_a_verified_sender(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.sendgrid_id, "senders"))
    expect(page.locator("[data-current-sender]")).to_have_text(FROM_EMAIL)
    expect(page.locator("tr[data-sender='pending@acme-builders.example'] .badge")).to_have_text("verification pending")
    page.get_by_text("Verify a new sender").click()
    page.get_by_label("From address").fill("orders@acme-builders.example")
    page.get_by_label("From name").fill("Acme Orders")
    page.get_by_label("Nickname").fill("orders")
    page.get_by_label("Reply-to address").fill("help@acme-builders.example")
    page.get_by_label("Street address").fill("1 Main St")
    page.get_by_label("City").fill("Atlanta")
    page.get_by_label("Country").fill("USA")
    page.get_by_role("button", name="Start verification").click()
    expect(flash(page)).to_contain_text("SendGrid sent a verification email to orders@acme-builders.example")
    expect(page.locator("tr[data-sender='orders@acme-builders.example'] .badge")).to_have_text("verification pending")
    assert m.sendgrid.verification_requests == ["orders@acme-builders.example"]
    # the same address again: SendGrid's refusal, shown; nothing else happens
    page.get_by_text("Verify a new sender").click()
    for label, value in (("From address", "orders@acme-builders.example"), ("Nickname", "again"),
                         ("Reply-to address", "help@acme-builders.example"), ("Street address", "1 Main St"),
                         ("City", "Atlanta"), ("Country", "USA")):
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Start verification").click()
    expect(flash(page)).to_have_text("Verification not started: sendgrid: already exists (code from_email) [HTTP 400]")
    # someone clicks the link in the email; the sender becomes usable as the from address
    m.sendgrid.verify_sender("orders@acme-builders.example")
    page.reload()
    before = m.config(m.sendgrid_id)
    page.get_by_role("button", name="Send from orders@acme-builders.example").click()
    expect(flash(page)).to_have_text("Email now goes out from orders@acme-builders.example.")
    assert m.config(m.sendgrid_id) == {**before, "from_email": "orders@acme-builders.example"}
    # an unverified sender cannot be made the from address, even by a hand-made post
    answer = page.request.post(m.page_of(m.sendgrid_id, "senders/use"), max_redirects=0,
                               form={"csrf_token": csrf_of(page), "from_email": "pending@acme-builders.example"})
    assert answer.status == 303
    assert m.config(m.sendgrid_id)["from_email"] == "orders@acme-builders.example"
    page.screenshot(path="/tmp/shots-messaging/sendgrid-senders-done.png", full_page=True)


def test_sendgrid_template_sync_and_its_failure(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.sendgrid_id, "templates"))
    expect(page.get_by_text("No templates synced yet")).to_be_visible()
    page.get_by_role("button", name="Sync templates").click()
    expect(flash(page)).to_have_text("2 dynamic template(s) at SendGrid: 2 new, 0 changed, 0 removed.")
    rows = page.locator("table.templates tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f"tr[data-template='{SG_TEMPLATE}']")).to_contain_text("Invoice status changed")
    # SendGrid failing: said so, the synced list untouched
    m.sendgrid.add_template("Order ready", "Order {{external_id}} is ready")
    before = m.state()
    m.fault(m.sendgrid_url, fail_next_5xx=1, status_5xx=502)
    page.get_by_role("button", name="Sync templates").click()
    expect(flash(page)).to_have_text("Templates not synced: sendgrid: SendGrid is unavailable [HTTP 502]")
    assert m.state() == before
    page.get_by_role("button", name="Sync templates").click()
    expect(flash(page)).to_have_text("3 dynamic template(s) at SendGrid: 1 new, 0 changed, 0 removed.")
    expect(rows).to_have_count(3)


def test_deliveries_show_delivered_bounced_dropped_and_undelivered(messaging, page):
    m = messaging
    w = m.world()
    email, _ = add_route(m.engine, m.keyring, company_id=m.company_id, kind="email", events=["invoice.status_changed"],
                         to=["ok@customer.example", "bounce@customer.example", "drop@customer.example"],
                         template={"template_id": SG_TEMPLATE}, integration_id=m.sendgrid_id)
    sms, _ = add_route(m.engine, m.keyring, company_id=m.company_id, kind="sms", events=["invoice.status_changed"],
                       to=["+15005550010", "+15005559003"], integration_id=m.twilio_id)
    w.sendgrid_events_to_hub()  # after the route: it made the inbound endpoint the events go to
    with m.engine.begin() as conn:
        emit(conn, m.company_id, "invoice.status_changed", {"number": "INV-7", "status": "paid", "previous_status": "submitted"})
    expected = {"ok@customer.example": "delivered", "bounce@customer.example": "bounced", "drop@customer.example": "dropped",
                "+15005550010": "delivered", "+15005559003": "undelivered"}
    with notify_worker(w):
        wait_until(lambda: {r.recipient: r.status for r in messages(m.engine)} == expected, timeout=30,
                   what="statuses back from SendGrid and Twilio")
    apply_pending(m.engine)

    sign_in(page, m.url, "viewer@acme.example")  # reading: a viewer sees it all
    page.goto(m.page_of(m.sendgrid_id, "deliveries"))
    rows = page.locator("table.deliveries tbody tr")
    expect(rows).to_have_count(3)
    assert {r.get_attribute("data-status") for r in rows.all()} == {"delivered", "bounced", "dropped"}
    bounced = page.locator("tr[data-status='bounced']")
    expect(bounced).to_contain_text("bounce@customer.example")
    expect(bounced.locator(".badge")).to_have_class(re.compile("tone-bad"))
    bounced.get_by_text("2 reports from the provider").click()
    reports = bounced.locator(".history li")
    expect(reports).to_have_count(2)  # the two reports SendGrid sent (they may arrive in either order)
    assert sorted(t.split()[0] for t in reports.all_inner_texts()) == ["bounce", "processed"]
    expect(reports.filter(has_text=re.compile("^bounce"))).to_contain_text("5.1.1")
    expect(page.locator("tr[data-status='delivered'] .badge")).to_have_class(re.compile("tone-ok"))
    _no_serious_violation(page)
    page.screenshot(path="/tmp/shots-messaging/sendgrid-deliveries-filled.png", full_page=True)
    page.get_by_role("link", name="bounced: 1").click()
    expect(rows).to_have_count(1)

    page.goto(m.page_of(m.twilio_id, "deliveries"))
    expect(rows).to_have_count(2)
    expect(page.locator("tr[data-status='undelivered']")).to_contain_text("+15005559003")
    expect(page.locator("tr[data-status='delivered']")).to_contain_text("+15005550010")
    expect(page.locator("main form button")).to_have_count(0)


# ---- Twilio -----------------------------------------------------------------------------------------
def test_twilio_choose_the_number_to_send_from(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.twilio_id, "numbers"))
    expect(page.locator("[data-current-number]")).to_have_text(FROM_NUMBER)
    expect(page.locator(f"tr[data-number='{FROM_NUMBER}'] .badge")).to_have_text("in use")
    page.get_by_role("button", name=f"Send from {OTHER_NUMBER}").click()
    expect(flash(page)).to_have_text(f"Text messages now go out from {OTHER_NUMBER}.")
    expect(page.locator("[data-current-number]")).to_have_text(OTHER_NUMBER)
    assert m.config(m.twilio_id)["from_number"] == OTHER_NUMBER
    # a number that is not the account's, posted by hand: refused, nothing saved
    before = m.state()
    page.request.post(m.page_of(m.twilio_id, "numbers/choose"), form={"csrf_token": csrf_of(page), "phone_number": "+15005550007"},
                      max_redirects=0)
    assert m.state() == before
    page.reload()
    expect(flash(page)).to_have_text("Number not saved: it is not one of the account's numbers.")
    # Twilio refusing the credentials: said so, the token never shown
    m.fault(m.twilio_url, fail_next_5xx=1, status_5xx=503)
    page.reload()
    expect(page.get_by_role("alert")).to_have_text("The account's numbers could not be read: twilio: Twilio is unavailable (code 20500) [HTTP 503]")
    page.screenshot(path="/tmp/shots-messaging/twilio-numbers-error.png", full_page=True)


def test_twilio_sms_template_preview(messaging, page):
    m = messaging
    route, _ = add_route(m.engine, m.keyring, company_id=m.company_id, kind="sms", events=["order.status_changed"],
                         to=["+15005550010"], integration_id=m.twilio_id)
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.twilio_id, "formatting"))
    expect(page.locator("article.preview")).to_have_count(len(EVENT_TYPES))
    expect(page.locator("article[data-event='invoice.status_changed'] .sms-message")).to_have_text(
        "Invoice INV-1042 in QuickBooks Online is now paid (was submitted)")
    page.get_by_label("Template", exact=True).select_option(label=route.name)
    page.get_by_role("button", name="Show").click()
    page.get_by_label("Body").fill("Order {{external_id}}: {{status}}")
    page.get_by_role("button", name="Save template").click()
    expect(flash(page)).to_have_text(f"Template of {route.name} saved.")
    expect(page.locator("article[data-event='order.status_changed'] .sms-message")).to_have_text("Order F2A9-77C1: ready")
    expect(page.locator("article[data-event='order.status_changed'] .hint")).to_have_text("22 characters, 1 segment")
    # the route gets order.status_changed (and webhook.test, as every route): the other previews say so
    expect(page.locator("article.preview header .badge")).to_have_count(len(EVENT_TYPES) - 2)
    expect(page.locator("article[data-event='order.status_changed'] header .badge")).to_have_count(0)
    # a body over Twilio's limit: refused with the reason, the saved template kept
    before = m.state()
    page.get_by_label("Body").fill("x" * 1700)
    page.get_by_role("button", name="Save template").click()
    expect(flash(page)).to_have_text("Template not saved: an SMS template is longer than 1600 characters")
    assert m.state() == before
    page.screenshot(path="/tmp/shots-messaging/twilio-formatting-route.png", full_page=True)


# ---- who may do what ------------------------------------------------------------------------------
ACTIONS = (("slack", "channels/route", {"event": "order.status_changed", "channel": "C0OPS00001"}),
           ("slack", "channels/test", {"channel": "C0OPS00001"}),
           ("slack", "formatting/template", {"route_id": "1", "text": "x"}),
           ("sendgrid", "senders/verify", {"nickname": "n", "from_email": "a@b.example", "reply_to": "a@b.example",
                                           "address": "1", "city": "c", "country": "d"}),
           ("sendgrid", "senders/use", {"from_email": "billing@acme-builders.example"}),
           ("sendgrid", "templates/sync", {}),
           ("twilio", "numbers/choose", {"phone_number": OTHER_NUMBER}))


def test_a_viewer_sees_no_buttons_and_forged_posts_are_refused(messaging, page):
    m = messaging
    add_route(m.engine, m.keyring, company_id=m.company_id, kind="slack", events=["order.status_changed"], to="#ops",
              integration_id=m.slack_id)
    sign_in(page, m.url, "viewer@acme.example")
    ids = {"slack": m.slack_id, "sendgrid": m.sendgrid_id, "twilio": m.twilio_id}
    for provider, sections in (("slack", ("channels", "formatting")), ("sendgrid", ("senders", "templates", "deliveries")),
                               ("twilio", ("numbers", "formatting", "deliveries"))):
        for section in sections:
            page.goto(m.page_of(ids[provider], section))
            expect(page.locator("section.section h2")).to_be_visible()
            # only the formatting tab's "Show" (a GET that changes nothing) is a button for a viewer
            assert page.locator("main form[method=post]").count() == 0, (provider, section)
            assert page.locator("main button").all_text_contents() in ([], ["Show"]), (provider, section)
    before, slack_posts, verifications = m.state(), len(m.slack.messages), list(m.sendgrid.verification_requests)
    token = csrf_of(page)
    for provider, action, form in ACTIONS:
        answer = page.request.post(m.page_of(ids[provider], action), form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403 and "Only an admin" in answer.text(), (provider, action, answer.status)
        # and for anyone, a post without the token
        answer = page.request.post(m.page_of(ids[provider], action), form=form, max_redirects=0)
        assert answer.status == 403, (provider, action)
    assert m.state() == before and len(m.slack.messages) == slack_posts and m.sendgrid.verification_requests == verifications


def test_another_companys_admin_gets_404_on_every_messaging_action(messaging, page):
    m = messaging
    sign_in(page, m.url, "admin@bella.example")
    ids = {"slack": m.slack_id, "sendgrid": m.sendgrid_id, "twilio": m.twilio_id}
    before = m.state()
    token = csrf_of(page)
    for provider, action, form in ACTIONS:
        answer = page.request.post(m.page_of(ids[provider], action), form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 404, (provider, action)
    for provider, section in (("slack", "channels"), ("sendgrid", "deliveries"), ("twilio", "numbers")):
        assert page.request.get(m.page_of(ids[provider], section), max_redirects=0).status == 404
    assert m.state() == before and m.slack.messages == []


# ---- canaries and accessibility -------------------------------------------------------------------
PAGES = (("slack", "channels"), ("slack", "formatting"), ("sendgrid", "senders"), ("sendgrid", "templates"),
         ("sendgrid", "deliveries"), ("twilio", "numbers"), ("twilio", "formatting"), ("twilio", "deliveries"))


def _prepare(m: Messaging) -> None:
    """A route of each kind, so every page has rows to draw."""
    add_route(m.engine, m.keyring, company_id=m.company_id, kind="slack", events=["order.status_changed"], to="#ops",
              integration_id=m.slack_id)
    add_route(m.engine, m.keyring, company_id=m.company_id, kind="sms", events=["order.status_changed"], to=["+15005550010"],
              integration_id=m.twilio_id)


def test_no_secret_on_any_messaging_page_for_admin_or_viewer_even_when_providers_fail(messaging, page):
    m = messaging
    _prepare(m)
    ids = {"slack": m.slack_id, "sendgrid": m.sendgrid_id, "twilio": m.twilio_id}
    urls = {"slack": m.slack_url, "sendgrid": m.sendgrid_url, "twilio": m.twilio_url}
    for email in ("admin@acme.example", "viewer@acme.example"):
        sign_in(page, m.url, email)
        for provider, section in PAGES:
            for fault in (None, {"fail_next_5xx": 1}):
                if fault:
                    m.fault(urls[provider], **fault)
                response = page.goto(m.page_of(ids[provider], section))
                assert response.status == 200, (provider, section)
                html = page.content()
                assert CANARY not in html, (email, provider, section, fault)
        page.get_by_role("button", name="Sign out").click()
    # refused credentials: the refusal message carries no part of them either
    httpx.post(f"{m.slack_url}/_emulator/tokens", json={"token": SLACK_TOKEN, "revoked": True}).raise_for_status()
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(m.slack_id, "channels"))
    expect(page.get_by_role("alert")).to_be_visible()
    assert CANARY not in page.content()


def _no_serious_violation(page) -> None:
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility checks load axe-core

    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in serious]


@pytest.mark.parametrize("provider, section", PAGES, ids=[f"{p}-{s}" for p, s in PAGES])
def test_no_serious_accessibility_violation_on_messaging_pages(messaging, page, provider, section):
    m = messaging
    _prepare(m)
    ids = {"slack": m.slack_id, "sendgrid": m.sendgrid_id, "twilio": m.twilio_id}
    sign_in(page, m.url, "admin@acme.example")
    page.goto(m.page_of(ids[provider], section))
    expect(page.locator("section.section h2")).to_be_visible()
    if section == "senders":
        page.get_by_text("Verify a new sender").click()  # the form checked too
    _no_serious_violation(page)
    page.screenshot(path=f"/tmp/shots-messaging/{provider}-{section}.png", full_page=True)
