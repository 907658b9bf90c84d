"""/settings/integrations/webhooks in Chromium, as an admin and a viewer use it: endpoints
pointed at the webhook sink emulator (which checks signatures with the `standardwebhooks`
reference library, given the secret the page showed once), deliveries made by the real
dispatcher (running in a thread over the test database), retries, replay, rotation, and
the refusals (SSRF, viewers, forged posts), plus accessibility and canary checks."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators.serve import serve
from emulators.webhook_sink import WebhookSink
from hub.crypto import Keyring
from hub.outbound import emit
from hub.outbound import endpoints as ep
from hub.outbound.ssrf import ALLOW_VAR
from hub.schema import outbox_event, webhook_delivery, webhook_endpoint
from tests.browser.conftest import CANARY, csrf_of, sign_in
from tests.test_outbound_support import running, wait_until

BASE = "/settings/integrations/webhooks"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{32,}")


@pytest.fixture
def hooks(site, monkeypatch):
    """The site, a webhook sink on loopback (allowed to the page's SSRF check and to the
    dispatcher, as `HUB_OUTBOUND_ALLOW` would in a demo) and a running dispatcher."""
    monkeypatch.setenv(ALLOW_VAR, "127.0.0.1/32")
    sink = WebhookSink()
    with serve(sink.app) as sink_url, running(site.engine):
        site.sink_url = sink_url
        yield site


def sink_secrets(site, name: str, *secrets: str) -> None:
    httpx.post(f"{site.sink_url}/_emulator/secrets/{name}", json={"secret": secrets[0], "previous": list(secrets[1:])}).raise_for_status()


def sink_fail(site, name: str, status: int, count: int) -> None:
    httpx.post(f"{site.sink_url}/_emulator/fail/{name}", json={"status": status, "count": count}).raise_for_status()


def received(site, name: str) -> list[dict]:
    return httpx.get(f"{site.sink_url}/_emulator/received", params={"name": name}).json()["received"]


def snapshot(site) -> tuple:
    with site.engine.connect() as conn:
        return ([tuple(r) for r in conn.execute(sa.select(webhook_endpoint).order_by(webhook_endpoint.c.id))],
                [tuple(r) for r in conn.execute(sa.select(webhook_delivery).order_by(webhook_delivery.c.id))],
                conn.scalar(sa.select(sa.func.count()).select_from(outbox_event)))


def add_endpoint(page, site, name: str, url: str, events: tuple[str, ...] = ()) -> tuple[int, str]:
    """Through the form, as an admin: (endpoint id, the secret the page showed)."""
    page.goto(site.url + BASE)
    page.get_by_role("button", name="Add endpoint").click()  # a link that looks like a button
    page.get_by_label("Name").fill(name)
    page.get_by_label("URL", exact=True).fill(url)
    if events:
        page.get_by_label("All events").uncheck()
        for event in events:
            page.get_by_label(event, exact=True).check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("status")).to_have_text(f"Endpoint {name} added.")
    endpoint_id = int(re.search(r"/webhooks/(\d+)$", page.url)[1])
    return endpoint_id, page.get_by_label(f"Signing secret of {name}").input_value()


def delivery(page, event_id: int):
    return page.locator(f"tbody.delivery[data-event='{event_id}']")


def last_event(site) -> int:
    with site.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.max(outbox_event.c.id)))


def test_an_admin_adds_an_endpoint_sees_the_secret_once_and_a_test_event_arrives_signed(hooks, page):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    endpoint_id, secret = add_endpoint(page, site, "Ops sink", f"{site.sink_url}/hooks/acme", ("order.status_changed",))
    assert SECRET.fullmatch(secret)
    assert page.content().count(secret) == 1  # shown, once, on this page
    sink_secrets(site, "acme", secret)  # the receiver's operator stores it

    page.reload()  # never again
    assert secret not in page.content() and SECRET.search(page.content()) is None
    expect(page.get_by_label("Signing secret of Ops sink")).to_have_count(0)
    expect(page.locator(".secret-state")).to_contain_text("Set, created just now, never rotated.")
    expect(page.get_by_label("order.status_changed", exact=True)).to_be_checked()
    expect(page.get_by_label("All events")).not_to_be_checked()

    page.get_by_role("button", name="Send test event").click()
    expect(page).to_have_url(f"{site.url}{BASE}/{endpoint_id}/deliveries")
    event_id = last_event(site)
    expect(page.get_by_role("status")).to_have_text(f"Test event evt_{event_id} queued for Ops sink.")
    row = delivery(page, event_id)
    expect(row.locator(".delivery-head .badge")).to_have_text("succeeded", timeout=15000)  # htmx polls the log
    expect(row.locator("tr.attempt")).to_have_count(1)
    first = row.locator("tr.attempt[data-attempt='1']")
    expect(first).to_contain_text("HTTP 204")
    expect(first.locator(".badge")).to_have_text("succeeded")
    expect(first.locator("td").nth(3)).to_have_text(re.compile(r"^\d+ ms$"))
    [got] = received(site, "acme")
    assert got["verified"] is True and got["type"] == "webhook.test"
    assert got["webhook_id"] == row.locator(".msg-id").inner_text()

    # the list shows it, with its last success
    page.get_by_role("link", name="Webhooks").click()
    listed = page.locator(f"tr[data-endpoint='{endpoint_id}']")
    expect(listed).to_contain_text("order.status_changed")
    expect(listed.locator(".badge")).to_have_text("Active")
    expect(listed.locator("time")).to_have_text("just now")


def test_a_failing_endpoint_shows_the_attempt_and_its_next_retry_and_a_delivery_is_replayed(hooks, page):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    endpoint_id, secret = add_endpoint(page, site, "Flaky", f"{site.sink_url}/hooks/flaky")
    sink_secrets(site, "flaky", secret)
    page.reload()
    # the retry policy editor: 3 attempts, one minute apart
    page.get_by_label("Max attempts").fill("3")
    page.get_by_label("Waits before each retry").fill("1m")
    page.get_by_role("button", name="Save retry policy").click()
    expect(page.get_by_role("status")).to_have_text("Retry policy saved: at most 3 attempts.")
    expect(page.get_by_label("Waits before each retry")).to_have_value("1m, 1m")
    with site.engine.connect() as conn:
        assert conn.scalar(sa.select(webhook_endpoint.c.retry_policy).where(webhook_endpoint.c.id == endpoint_id))["schedule"] == [60, 60]

    sink_fail(site, "flaky", 503, 1)
    page.get_by_role("button", name="Send test event").click()
    event_id = last_event(site)
    row = delivery(page, event_id)
    first = row.locator("tr.attempt[data-attempt='1']")
    expect(first.locator(".badge")).to_have_text("failed", timeout=15000)
    expect(first).to_contain_text("HTTP 503")
    expect(first.locator(".next-retry")).to_have_text(re.compile(r"^in (1 minute|\d+ seconds?)$|^just now$"))
    expect(row.locator("tr.attempt[data-attempt='2'] .badge")).to_have_text("pending")
    expect(row.get_by_role("button", name=f"Replay evt_{event_id}")).to_have_count(0)  # not while one is pending

    # disabling closes the pending retry; enabled again, the delivery is replayed by hand
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Disable endpoint").click()
    expect(page.get_by_role("status")).to_contain_text("Flaky disabled. 1 pending attempt(s) closed as failed.")
    expect(page.locator(".page-title .badge")).to_have_text("Disabled")
    expect(page.get_by_role("button", name="Send test event")).to_be_disabled()
    page.get_by_role("button", name="Enable endpoint").click()
    expect(page.get_by_role("status")).to_have_text("Flaky enabled.")
    page.get_by_role("link", name="Deliveries").click()
    expect(row.locator("tr.attempt[data-attempt='2']")).to_contain_text("endpoint disabled")
    row.get_by_role("button", name=f"Replay evt_{event_id}").click()
    expect(page.get_by_role("status")).to_have_text(f"Delivery of evt_{event_id} replayed (attempt 3).")
    expect(row.locator("tr.attempt[data-attempt='3'] .badge")).to_have_text("succeeded", timeout=15000)
    expect(row.locator(".delivery-head .badge")).to_have_text("succeeded")
    expect(row.locator("tr.attempt[data-attempt='1'] .next-retry")).to_have_text("retried as #2")
    got = received(site, "flaky")
    assert [g["verified"] for g in got] == [True] and got[0]["webhook_id"] == row.locator(".msg-id").inner_text()

    # with one attempt and no waits, a failure says no retry follows
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Max attempts").fill("1")
    page.get_by_label("Waits before each retry").fill("")
    page.get_by_role("button", name="Save retry policy").click()
    expect(page.get_by_role("status")).to_have_text("Retry policy saved: at most 1 attempt.")
    sink_fail(site, "flaky", 500, 1)
    page.get_by_role("button", name="Send test event").click()
    last = delivery(page, last_event(site)).locator("tr.attempt[data-attempt='1']")
    expect(last.locator(".badge")).to_have_text("failed", timeout=15000)
    expect(last.locator(".next-retry")).to_have_text("no retry: the schedule is used up")
    # a bad policy is refused with its reason, and nothing changes
    page.get_by_role("link", name="Settings").click()
    before = snapshot(site)
    page.get_by_label("Max attempts").fill("2")
    page.get_by_label("Waits before each retry").fill("5s, 10s")
    page.get_by_role("button", name="Save retry policy").click()
    expect(page.get_by_role("status")).to_have_text("2 waits given for 2 attempts: give at most 1")
    page.get_by_label("Waits before each retry").fill("soon")
    page.get_by_role("button", name="Save retry policy").click()
    expect(page.get_by_role("status")).to_contain_text("'soon' is not a duration")
    assert snapshot(site) == before
    page.get_by_role("button", name="Reset to defaults").click()
    expect(page.get_by_role("status")).to_have_text("Retry policy saved: at most 8 attempts.")
    expect(page.get_by_label("Waits before each retry")).to_have_value("5s, 5m, 30m, 2h, 5h, 10h, 10h")


def test_rotating_the_secret_shows_the_new_one_once_and_the_old_one_signs_during_the_grace(hooks, page):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    endpoint_id, old = add_endpoint(page, site, "Rotating", f"{site.sink_url}/hooks/rot")
    page.reload()
    page.get_by_label("Keep the previous secret signing for").select_option(label="24 hours")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("status")).to_contain_text("Signing secret rotated. The previous secret also signs")
    new = page.get_by_label("Signing secret of Rotating").input_value()
    assert SECRET.fullmatch(new) and new != old and old not in page.content()
    expect(page.locator(".secret-state")).to_contain_text("Set, rotated just now.")
    expect(page.locator(".secret-state")).to_contain_text("The previous secret also signs until")
    page.reload()
    assert new not in page.content()

    # a receiver that still has only the old secret verifies; one with only the new, too
    for name, secret in (("old-only", old), ("new-only", new)):
        sink_secrets(site, "rot", secret)
        page.goto(f"{site.url}{BASE}/{endpoint_id}")
        page.get_by_role("button", name="Send test event").click()
        expect(delivery(page, last_event(site)).locator(".delivery-head .badge")).to_have_text("succeeded", timeout=15000)
    assert [g["verified"] for g in received(site, "rot")] == [True, True]

    # rotated again with no grace: the first secret is gone for good
    page.goto(f"{site.url}{BASE}/{endpoint_id}")
    page.get_by_label("Keep the previous secret signing for").select_option(label="none: the old secret stops now")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("status")).to_have_text("Signing secret rotated. The previous secret no longer signs.")
    expect(page.locator(".secret-state")).not_to_contain_text("also signs")
    sink_secrets(site, "rot", old)
    page.get_by_role("button", name="Send test event").click()
    failed = delivery(page, last_event(site)).locator("tr.attempt[data-attempt='1']")
    expect(failed.locator(".badge")).to_have_text("failed", timeout=15000)
    expect(failed).to_contain_text("HTTP 401")  # the sink's verdict: not signed with what it has


def test_an_admin_edits_subscriptions_and_payload_and_deletes_the_endpoint(hooks, page):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    endpoint_id, secret = add_endpoint(page, site, "Orders", f"{site.sink_url}/hooks/orders", ("order.status_changed",))
    sink_secrets(site, "orders", secret)
    page.reload()
    page.get_by_label("order.status_changed", exact=True).uncheck()
    page.get_by_label("invoice.status_changed", exact=True).check()
    page.get_by_label("budget.alert", exact=True).check()
    page.get_by_label("Thin: identifiers only").check()
    page.get_by_label("Name").fill("Invoices")
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_role("status")).to_have_text("Endpoint saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    expect(page.get_by_label("invoice.status_changed", exact=True)).to_be_checked()
    expect(page.get_by_label("order.status_changed", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Thin: identifiers only")).to_be_checked()
    endpoint = _endpoint(site, endpoint_id)
    assert sorted(endpoint.events) == ["budget.alert", "invoice.status_changed"] and endpoint.payload.mode == "thin"

    # what the subscription means: an invoice event arrives, an order event does not
    with site.engine.begin() as conn:
        emit(conn, site.companies["Acme"], "order.status_changed", {"order_id": "o-1", "status": "ready"})
        emit(conn, site.companies["Acme"], "invoice.status_changed", {"invoice_id": "i-9", "status": "paid", "total": 10})
    wait_until(lambda: received(site, "orders"), what="the invoice event")
    time.sleep(0.5)
    assert [(g["type"], g["verified"]) for g in received(site, "orders")] == [("invoice.status_changed", True)]

    # nothing subscribed, or a thin payload with fields: refused with the reason, nothing changed
    before = snapshot(site)
    for box in ("invoice.status_changed", "budget.alert"):
        page.get_by_label(box, exact=True).uncheck()
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_role("alert")).to_have_text("an endpoint must subscribe to at least one event type (or * for all)")
    page.get_by_label("budget.alert", exact=True).check()
    page.get_by_label("Only these fields").fill("invoice_id")
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("selected fields apply to the full payload only")
    assert snapshot(site) == before

    page.get_by_text("Delete endpoint…").click()
    page.get_by_role("button", name="Delete Invoices").click()
    expect(page).to_have_url(site.url + BASE)
    expect(page.get_by_role("status")).to_have_text("Endpoint Invoices deleted, with its delivery log.")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert page.goto(f"{site.url}{BASE}/{endpoint_id}").status == 404
    with site.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(webhook_delivery)) == 0


def _endpoint(site, endpoint_id: int):
    with site.engine.connect() as conn:
        return ep.get_endpoint(conn, endpoint_id)


@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/latest/meta-data", "endpoint URL points at 169.254.169.254 (a cloud metadata address); deliveries there are blocked"),
    ("http://10.0.0.5:8080/hook", "endpoint URL points at 10.0.0.5 (private); deliveries there are blocked"),
    ("http://[::1]:8080/hook", "endpoint URL points at ::1 (loopback); deliveries there are blocked"),
    ("ftp://example.com/hook", "endpoint URL must start with http:// or https://"),
])
def test_a_url_the_ssrf_policy_refuses_is_named_with_its_reason_and_nothing_is_saved(hooks, page, url, reason):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    before = snapshot(site)
    page.goto(f"{site.url}{BASE}/new")
    page.get_by_label("Name").fill("Internal")
    page.get_by_label("URL", exact=True).fill(url)
    page.locator("form.webhook-form").evaluate("f => f.noValidate = true")  # the browser's own URL check aside
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("alert")).to_have_text(reason)
    expect(page.get_by_label("URL", exact=True)).to_have_value(url)  # what was typed stays
    expect(page.get_by_label("Name")).to_have_value("Internal")
    assert snapshot(site) == before


def test_an_edit_to_a_blocked_url_is_refused_and_the_stored_url_stays(hooks, page):
    site = hooks
    sign_in(page, site.url, "admin@acme.example")
    endpoint_id, _ = add_endpoint(page, site, "Moving", f"{site.sink_url}/hooks/m")
    page.reload()
    page.get_by_label("URL", exact=True).fill("http://169.254.169.254/")
    page.get_by_role("button", name="Save endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("169.254.169.254 (a cloud metadata address)")
    assert _endpoint(site, endpoint_id).url == f"{site.sink_url}/hooks/m"


def _seed_endpoint(site, company: str = "Acme", name: str = "Seeded", url: str | None = None) -> int:
    """An endpoint with a canary in its URL's query, one failed and one successful delivery
    whose error and response body carry canaries too."""
    now = datetime.now(timezone.utc)
    with site.engine.begin() as conn:
        endpoint_id, _ = ep.add_endpoint(conn, Keyring.from_env(), company_id=site.companies[company], name=name,
                                         url=url or f"https://hooks.example.com/in?token={CANARY}-url-token", events=["*"])
        event_id = conn.scalar(sa.insert(outbox_event).values(
            company_id=site.companies[company], event_type="order.status_changed", payload={"order_id": "o-1"},
            dispatched_at=sa.func.now()).returning(outbox_event.c.id))
        conn.execute(sa.insert(webhook_delivery), [
            dict(endpoint_id=endpoint_id, outbox_event_id=event_id, attempt=1, message_id="msg_seeded1", status="failed",
                 response_code=500, duration_ms=12, error=f"HTTP 500 Authorization: Bearer {CANARY}bearer0001",
                 response_body=f"oops token={CANARY}-body", next_attempt_at=now),
            dict(endpoint_id=endpoint_id, outbox_event_id=event_id, attempt=2, message_id="msg_seeded1", status="succeeded",
                 response_code=200, duration_ms=8, response_body=None, error=None, next_attempt_at=now),
        ])
    return endpoint_id


def test_a_viewer_reads_everything_without_a_button_and_forged_posts_are_403_with_nothing_changed(site, page):
    endpoint_id = _seed_endpoint(site)
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(site.url + BASE)
    expect(page.locator(f"tr[data-endpoint='{endpoint_id}']")).to_contain_text("token=***")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)  # no "Add endpoint"
    for path in (f"{BASE}/{endpoint_id}", f"{BASE}/{endpoint_id}/deliveries"):
        page.goto(site.url + path)
        expect(page.get_by_role("heading", level=1)).to_have_text("Seeded")
        expect(page.locator("main").get_by_role("button")).to_have_count(0)
        expect(page.locator("main form")).to_have_count(0)
    expect(delivery(page, last_event(site)).locator("tr.attempt")).to_have_count(2)
    page.goto(f"{site.url}{BASE}/{endpoint_id}")
    expect(page.locator(".facts").first).to_contain_text("All events")
    assert page.goto(f"{site.url}{BASE}/new").status == 403

    token = csrf_of(page)
    before = snapshot(site)
    forged = {"edit": {"name": "x", "url": "https://evil.example/", "events": "*"}, "retry-policy": {"max_attempts": "1", "waits": ""},
              "rotate-secret": {"grace": "0"}, "test": {}, "replay": {"event": str(last_event(site))}, "enable": {}, "disable": {},
              "delete": {}}
    for action, form in forged.items():
        answer = page.request.post(f"{site.url}{BASE}/{endpoint_id}/{action}", form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403 and "Only an admin" in answer.text(), action
    answer = page.request.post(site.url + BASE, form={"csrf_token": token, "name": "x", "url": "https://a.example/", "events": "*"},
                               max_redirects=0)
    assert answer.status == 403
    assert snapshot(site) == before


def test_a_notification_route_and_another_companys_endpoint_are_not_webhooks_here(site, page):
    bella = _seed_endpoint(site, "Bella", "Bella's")
    with site.engine.begin() as conn:  # a notification route is an outbound endpoint too, with a slack:// URL
        route_id = conn.scalar(sa.insert(webhook_endpoint).values(
            company_id=site.companies["Acme"], direction="outbound", name="route", url="slack://C123", events=["*"])
            .returning(webhook_endpoint.c.id))
    sign_in(page, site.url, "admin@acme.example")
    page.goto(site.url + BASE)
    expect(page.locator("tr[data-endpoint]")).to_have_count(0)
    token = csrf_of(page)
    before = snapshot(site)
    for other in (bella, route_id):
        for path in ("", "/deliveries"):
            assert page.goto(f"{site.url}{BASE}/{other}{path}").status == 404
        answer = page.request.post(f"{site.url}{BASE}/{other}/delete", form={"csrf_token": token}, max_redirects=0)
        assert answer.status == 404
    assert snapshot(site) == before


def test_the_log_pages_through_deliveries(site, page):
    endpoint_id = _seed_endpoint(site)
    with site.engine.begin() as conn:
        for n in range(25):
            event_id = conn.scalar(sa.insert(outbox_event).values(company_id=site.companies["Acme"], event_type="budget.alert",
                                                                  payload={"n": n}, dispatched_at=sa.func.now()).returning(outbox_event.c.id))
            conn.execute(sa.insert(webhook_delivery).values(endpoint_id=endpoint_id, outbox_event_id=event_id, attempt=1,
                                                            message_id=f"msg_p{n}", status="succeeded", response_code=200,
                                                            duration_ms=5, next_attempt_at=sa.func.now()))
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{BASE}/{endpoint_id}/deliveries")
    expect(page.locator(".log-count")).to_have_text("26 deliveries · page 1 of 2")
    expect(page.locator("tbody.delivery")).to_have_count(20)
    first_page = set(page.locator("tbody.delivery").evaluate_all("els => els.map(e => e.dataset.event)"))
    page.get_by_role("link", name="Older").click()
    expect(page.locator("tbody.delivery")).to_have_count(6)
    second_page = set(page.locator("tbody.delivery").evaluate_all("els => els.map(e => e.dataset.event)"))
    assert not first_page & second_page and len(first_page | second_page) == 26
    expect(page.get_by_role("link", name="Newer")).to_be_visible()


def test_the_log_follows_a_pending_attempt_without_a_reload(site, page):
    endpoint_id = _seed_endpoint(site)
    with site.engine.begin() as conn:
        event_id = conn.scalar(sa.insert(outbox_event).values(company_id=site.companies["Acme"], event_type="task.assigned",
                                                              payload={"task_id": "t-1"}, dispatched_at=sa.func.now())
                               .returning(outbox_event.c.id))
        delivery_id = conn.scalar(sa.insert(webhook_delivery).values(
            endpoint_id=endpoint_id, outbox_event_id=event_id, attempt=1, message_id="msg_live", status="pending",
            next_attempt_at=datetime.now(timezone.utc)).returning(webhook_delivery.c.id))
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{BASE}/{endpoint_id}/deliveries")
    row = delivery(page, event_id)
    expect(row.locator(".delivery-head .badge")).to_have_text("pending")
    expect(page.locator(".log-count")).to_contain_text("updating while attempts are pending")
    with site.engine.begin() as conn:  # what the dispatcher's recorder does when the attempt succeeds
        conn.execute(sa.update(webhook_delivery).where(webhook_delivery.c.id == delivery_id).values(
            status="succeeded", response_code=204, duration_ms=7))
    expect(row.locator(".delivery-head .badge")).to_have_text("succeeded", timeout=10000)  # htmx polled it
    expect(row.locator("tr.attempt")).to_contain_text("HTTP 204")
    expect(page.locator(".log-count")).not_to_contain_text("updating")  # and stops polling once nothing is pending


def _pages(site, page, endpoint_id: int) -> dict[str, str]:
    seen = {}
    for email in ("admin@acme.example", "viewer@acme.example"):
        sign_in(page, site.url, email)
        for name, path in (("list", BASE), ("endpoint", f"{BASE}/{endpoint_id}"), ("log", f"{BASE}/{endpoint_id}/deliveries"),
                           ("new", f"{BASE}/new"), ("hub", "/settings/integrations")):
            page.goto(site.url + path)
            seen[f"{name} as {email}"] = page.content()
        page.get_by_role("button", name="Sign out").click()
    return seen


def test_no_canary_and_no_secret_reaches_any_webhooks_page_but_the_one_that_shows_it(hooks, page):
    site = hooks
    seeded = _seed_endpoint(site)
    sign_in(page, site.url, "admin@acme.example")
    created, secret = add_endpoint(page, site, "Fresh", f"{site.sink_url}/hooks/fresh")
    once = page.content()
    assert once.count(secret) == 1 and CANARY not in once
    page.get_by_role("button", name="Sign out").click()
    for endpoint_id in (seeded, created):
        for name, html in _pages(site, page, endpoint_id).items():
            assert CANARY not in html, name
            assert secret not in html and SECRET.search(html) is None, name
    # nor the session cookie, which held the secret encrypted until the page showed it
    assert all(secret not in c["value"] for c in page.context.cookies())


AXE = (("list", "admin@acme.example", BASE), ("new", "admin@acme.example", f"{BASE}/new"),
       ("endpoint", "admin@acme.example", f"{BASE}/{{id}}"), ("endpoint as viewer", "viewer@acme.example", f"{BASE}/{{id}}"),
       ("log", "admin@acme.example", f"{BASE}/{{id}}/deliveries"), ("log as viewer", "viewer@acme.example", f"{BASE}/{{id}}/deliveries"))


@pytest.mark.parametrize("name, email, path", AXE, ids=[a[0] for a in AXE])
def test_no_serious_accessibility_violation(site, page, name, email, path):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    endpoint_id = _seed_endpoint(site)
    sign_in(page, site.url, email)
    expect(page.locator("header .user")).to_be_visible()
    page.goto(site.url + path.format(id=endpoint_id))
    _assert_accessible(Axe(), page)


def test_the_one_time_secret_page_is_accessible(hooks, page):
    from axe_playwright_python.sync_playwright import Axe

    sign_in(page, hooks.url, "admin@acme.example")
    add_endpoint(page, hooks, "Shown", f"{hooks.sink_url}/hooks/shown")
    expect(page.locator(".secret-once")).to_be_visible()
    _assert_accessible(Axe(), page)


def _assert_accessible(axe, page) -> None:
    results = axe.run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
