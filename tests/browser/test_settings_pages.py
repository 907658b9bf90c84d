"""/login, /logout, /company and /settings/integrations in Chromium, as people use them,
plus the attacks a settings page must refuse (forged posts, other companies' ids)."""

from __future__ import annotations

import itertools
import re
import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from starlette.routing import Route

from emulators.serve import serve
from hub.auth import users
from hub.crypto import Keyring
from hub.outbound import endpoints as outbound_endpoints
from hub.schema import webhook_endpoint
from hub.web.integrations_view import CATEGORIES
from hub.web.record_trail import KINDS as RECORD_KINDS
from hub.web.sections.registry import SECTIONS
from hub.web.security import CONTENT_SECURITY_POLICY
from tests.browser.conftest import CANARY, PASSWORD, csrf_of, headings, make_site, seed_records, sign_in

HOME = "/settings/integrations"


def test_a_wrong_password_says_so_and_the_right_one_opens_the_hub(site, page):
    sign_in(page, site.url, "admin@acme.example", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value("admin@acme.example")
    sign_in(page, site.url, "ADMIN@acme.example")
    expect(page).to_have_url(site.url + HOME)
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations")
    expect(page.locator("header .company-name")).to_have_text("Acme")
    expect(page.locator("header .user")).to_have_text("admin@acme.example")


def test_failed_sign_ins_are_throttled(site, page):
    for _ in range(5):
        sign_in(page, site.url, "admin@acme.example", "guess guess guess")
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, site.url, "admin@acme.example")  # the right password, too late
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-ins for this account. Try again in 15 minutes.")
    expect(page).to_have_url(site.url + "/login")


def test_the_hub_shows_the_company_integrations_grouped_in_the_view_plan_order(site, page):
    sign_in(page, site.url, "admin@acme.example")
    order = [label for _, label in CATEGORIES]
    shown = headings(page)
    assert shown == [label for label in order if label in shown]
    assert {"Accounting", "Project Management", "Communication", "Delivery"} <= set(shown)
    cards = page.locator("article[data-integration]")
    assert sorted(int(i) for i in cards.evaluate_all("els => els.map(e => e.dataset.integration)")) == sorted(site.ids_of("Acme"))
    expect(page.get_by_text("Xero (Bella)")).to_have_count(0)

    qb = page.locator(f"article[data-integration='{site.integrations['QuickBooks (Acme)']}']")
    expect(qb.locator("h3")).to_have_text("QuickBooks Online")
    expect(qb.locator(".badge")).to_have_text("Connected")
    last = qb.locator("time")
    expect(last).to_have_text("5 minutes ago")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", last.get_attribute("datetime"))
    assert last.get_attribute("title").endswith(("EST", "EDT"))  # the company's timezone

    slack = page.locator(f"article[data-integration='{site.integrations['Slack (Acme)']}']")
    expect(slack.locator(".badge")).to_have_text("Needs attention")
    expect(slack.locator("time")).to_have_text("3 hours ago")
    error = slack.locator(".error-text").inner_text()
    assert error.startswith("HTTPStatusError: 401") and "token=***" in error and "Bearer ***" in error and CANARY not in error

    # a provider the company has not connected is listed, as such, with no connect button
    xero = page.locator("article.card-available[data-provider='xero']")
    expect(xero.locator(".badge")).to_have_text("Not connected")
    expect(xero.get_by_role("button")).to_have_count(0)
    expect(page.locator("article.card-available[data-provider='quickbooks']")).to_have_count(0)


def test_an_admin_disables_then_enables_an_integration(site, page):
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("button", name="Disable QuickBooks (Acme)").click()
    expect(page.get_by_role("status")).to_have_text("QuickBooks (Acme) disabled.")
    card = page.locator(f"article[data-integration='{site.integrations['QuickBooks (Acme)']}']")
    expect(card.locator(".badge")).to_have_text("Disabled")
    assert site.is_active("QuickBooks (Acme)") is False
    page.get_by_role("button", name="Enable QuickBooks (Acme)").click()
    expect(page.get_by_role("status")).to_have_text("QuickBooks (Acme) enabled.")
    expect(card.locator(".badge")).to_have_text("Not checked yet")
    assert site.is_active("QuickBooks (Acme)") is True


def test_a_viewer_sees_no_change_buttons_and_a_forged_post_is_refused(site, page):
    sign_in(page, site.url, "viewer@acme.example")
    expect(page.locator("article[data-integration]")).to_have_count(3)
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    expect(page.locator("header .role")).to_have_text("viewer")
    before = site.snapshot()
    answer = page.request.post(f"{site.url}{HOME}/{site.integrations['QuickBooks (Acme)']}/disable",
                               form={"csrf_token": csrf_of(page)}, max_redirects=0)
    assert answer.status == 403 and "Only an admin" in answer.text()
    assert site.snapshot() == before


def _settings_routes(site) -> list[Route]:
    return [r for r in site.app.router.default.routes if isinstance(r, Route)]


def _bella_webhook(site) -> tuple[int, tuple]:
    """An outgoing webhook endpoint of Bella's (the {endpoint_id} routes' other company's
    id), and its row as it is."""
    with site.engine.begin() as conn:
        endpoint_id, _ = outbound_endpoints.add_endpoint(conn, Keyring.from_env(), company_id=site.companies["Bella"],
                                                         name="Bella's hook", url="https://hooks.example.com/bella", events=["*"])
    return endpoint_id, _webhook_row(site, endpoint_id)


def _webhook_row(site, endpoint_id: int) -> tuple:
    with site.engine.connect() as conn:
        return tuple(conn.execute(sa.select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id)).one())


def _paths_with_ids_of(site, company: str, route: Route, endpoint_ids: list[int]) -> list[str]:
    """The route's path with every id of `company` (and one nobody has) in its id parameter:
    integration ids (with every section), record ids of every record kind, or outgoing
    webhook endpoint ids."""
    if "{record_id" in route.path:
        return [re.sub(r"\{record_id(:int)?\}", str(other), route.path).replace("{kind}", kind)
                for kind in RECORD_KINDS for other in site.record_ids(company, kind) + [999_999]]
    if "{endpoint_id" in route.path:
        return [re.sub(r"\{endpoint_id(:int)?\}", str(other), route.path) for other in endpoint_ids + [999_999]]
    keys = SECTIONS if "{section}" in route.path else ["-"]
    return [re.sub(r"\{integration_id(:int)?\}", str(other), route.path).replace("{section}", section)
            for other, section in itertools.product(site.ids_of(company) + [999_999], keys)]


def test_company_a_gets_404_for_company_b_ids_on_every_route(site, page):
    seed_records(site)
    assert all(site.record_ids("Bella", kind) for kind in RECORD_KINDS)  # every kind has an id of B's to try
    bella_hook, bella_hook_row = _bella_webhook(site)
    sign_in(page, site.url, "admin@acme.example")
    token = csrf_of(page)
    before = site.snapshot()
    with_ids = [r for r in _settings_routes(site) if any(p in r.path for p in ("{integration_id", "{record_id", "{endpoint_id"))]
    assert len(with_ids) >= 6  # enable, disable, the page, its sections, record trails, webhook endpoints (each is walked here)
    assert any("{endpoint_id" in r.path for r in with_ids) and any("{record_id" in r.path for r in with_ids)
    for route in with_ids:
        for method in sorted(route.methods - {"HEAD"}):
            for path in _paths_with_ids_of(site, "Bella", route, [bella_hook]):
                answer = page.request.fetch(site.url + path, method=method, form={"csrf_token": token} if method == "POST" else None,
                                            max_redirects=0)
                assert answer.status == 404, (method, path, answer.status)
                assert "Xero" not in answer.text() and "DoorDash" not in answer.text() and "Bella" not in answer.text()
    assert site.snapshot() == before
    assert _webhook_row(site, bella_hook) == bella_hook_row
    # the company switch: a company the user is not a member of is as unknown
    answer = page.request.post(f"{site.url}/company", form={"csrf_token": token, "company_id": str(site.companies["Bella"])},
                               max_redirects=0)
    assert answer.status == 404
    page.goto(site.url + HOME)
    expect(page.locator("header .company-name")).to_have_text("Acme")
    # control: the same routes answer for Acme's own id
    own = site.integrations["Procore (Acme)"]
    assert page.request.post(f"{site.url}{HOME}/{own}/disable", form={"csrf_token": token}, max_redirects=0).status == 303
    assert page.request.get(f"{site.url}/settings/records/vendor/{site.record_ids('Acme', 'vendor')[0]}").status == 200
    sale = site.record_ids("Acme", "sales_invoice")[0]  # a receivable is a sales invoice's trail, not a bill's
    assert page.request.get(f"{site.url}/settings/records/sales_invoice/{sale}").status == 200
    assert page.request.get(f"{site.url}/settings/records/invoice/{sale}").status == 404
    assert page.request.get(f"{site.url}/settings/records/customer/{site.record_ids('Acme', 'customer')[0]}").status == 200


def test_a_member_of_two_companies_switches(site, page):
    sign_in(page, site.url, "owner@both.example")
    expect(page.get_by_label("Company")).to_have_value(str(site.companies["Acme"]))
    expect(page.get_by_text("QuickBooks (Acme)")).to_be_visible()
    page.get_by_label("Company").select_option(label="Bella")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text("Now showing Bella.")
    expect(page.get_by_label("Company")).to_have_value(str(site.companies["Bella"]))
    expect(page.get_by_text("Xero (Bella)")).to_be_visible()
    expect(page.get_by_text("QuickBooks (Acme)")).to_have_count(0)
    # a viewer in Bella: no buttons there, while Acme (admin) had them
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    expect(page.locator("header .role")).to_have_text("viewer")


def test_sign_out_ends_the_session(site, page):
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(site.url + "/login")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(site.url + HOME)
    expect(page).to_have_url(site.url + "/login")


def test_a_disabled_user_or_a_reset_password_ends_open_sessions(site, page):
    sign_in(page, site.url, "admin@acme.example")
    expect(page).to_have_url(site.url + HOME)
    with site.engine.begin() as conn:
        users.reset_password(conn, "admin@acme.example", "a brand new password")
    page.reload()
    expect(page).to_have_url(site.url + "/login")
    sign_in(page, site.url, "admin@acme.example", "a brand new password")
    expect(page).to_have_url(site.url + HOME)
    with site.engine.begin() as conn:
        users.set_active(conn, "admin@acme.example", False)
    page.reload()
    expect(page).to_have_url(site.url + "/login")


def test_sign_in_issues_a_new_session_with_safe_cookie_flags(site, page, context):
    page.goto(site.url + "/login")
    anonymous_token = csrf_of(page)
    anonymous = {c["name"]: c for c in context.cookies()}["hub_session"]
    assert anonymous["httpOnly"] and anonymous["sameSite"] == "Lax" and not anonymous["secure"]
    sign_in(page, site.url, "admin@acme.example")
    expect(page).to_have_url(site.url + HOME)
    signed_in = {c["name"]: c for c in context.cookies()}["hub_session"]
    assert signed_in["value"] != anonymous["value"] and csrf_of(page) != anonymous_token
    # the token of the page before sign-in is worth nothing now
    answer = page.request.post(f"{site.url}{HOME}/{site.integrations['Slack (Acme)']}/disable",
                               form={"csrf_token": anonymous_token}, max_redirects=0)
    assert answer.status == 403


def test_csrf_missing_or_wrong_is_403_and_nothing_changes(site, page):
    sign_in(page, site.url, "admin@acme.example")
    token = csrf_of(page)
    before = site.snapshot()
    target = f"{site.url}{HOME}/{site.integrations['QuickBooks (Acme)']}/disable"
    for form, headers in (({}, {}), ({"csrf_token": "wrong"}, {}), ({}, {"X-CSRF-Token": "wrong"}), ({"csrf_token": ""}, {})):
        answer = page.request.post(target, form=form or {"x": "1"}, headers=headers, max_redirects=0)
        assert answer.status == 403, (form, headers)
    assert site.snapshot() == before
    # every POST route of the pages checks it, the sign-in included
    for route in _settings_routes(site):
        if "POST" in route.methods:
            assert getattr(route.endpoint, "csrf_protected", False), route.path
            path = re.sub(r"\{integration_id(:int)?\}", str(site.integrations["QuickBooks (Acme)"]), route.path)
            path = re.sub(r"\{endpoint_id(:int)?\}", "1", path).replace("{section}", "overview")
            assert page.request.post(site.url + path, form={"company_id": "1"}, max_redirects=0).status == 403, path
    assert site.snapshot() == before
    expect(page.locator("header .user")).to_have_text("admin@acme.example")  # still signed in
    # the header carries the token for htmx requests
    answer = page.request.post(target, headers={"X-CSRF-Token": token}, max_redirects=0)
    assert answer.status == 303 and site.is_active("QuickBooks (Acme)") is False


def _rendered_pages(site, page) -> dict[str, tuple[int, dict, str]]:
    """Every page a person can reach, as admin and as viewer: status, headers, HTML."""
    seen: dict[str, tuple[int, dict, str]] = {}

    def visit(name: str, url: str) -> None:
        response = page.goto(url)
        seen[name] = (response.status, response.headers, page.content())

    visit("login", site.url + "/login")
    sign_in(page, site.url, "admin@acme.example", "wrong password here")
    seen["login failed"] = (401, {}, page.content())
    for email in ("admin@acme.example", "viewer@acme.example", "owner@both.example"):
        sign_in(page, site.url, email)
        visit(f"hub as {email}", site.url + HOME)
        visit(f"404 as {email}", site.url + "/settings/integrations/nowhere")
        answer = page.request.post(f"{site.url}{HOME}/{site.ids_of('Bella')[0]}/disable", form={"csrf_token": csrf_of(page)},
                                   max_redirects=0)
        seen[f"forged 404 as {email}"] = (answer.status, answer.headers, answer.text())
        answer = page.request.post(f"{site.url}{HOME}/{site.ids_of('Acme')[0]}/enable", form={"csrf_token": "x"}, max_redirects=0)
        seen[f"csrf 403 as {email}"] = (answer.status, answer.headers, answer.text())
        page.get_by_role("button", name="Sign out").click()
    return seen


def test_no_secret_reaches_any_rendered_page_and_every_page_has_the_security_headers(site, page):
    pages = _rendered_pages(site, page)
    assert len(pages) == 14
    for name, (status, headers, html) in pages.items():
        assert CANARY not in html, name
        if headers:
            assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin", name
            assert headers["cache-control"] == "no-store", name
    assert pages["forged 404 as admin@acme.example"][0] == 404 and pages["csrf 403 as viewer@acme.example"][0] == 403
    static = page.request.get(site.url + "/static/vendor/htmx.min.js")
    assert static.ok and static.headers["x-content-type-options"] == "nosniff"


def test_no_inline_script_or_style_runs_under_the_policy(site, page):
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, site.url, "owner@both.example")
    expect(page.locator("header .user")).to_be_visible()
    assert page.evaluate("typeof htmx") == "object"  # the vendored htmx loaded from /static
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(site.url + "/login")
    assert violations == []


def test_an_idle_session_expires(clean_db, secret_keys, page):
    from hub.crypto import Keyring
    from tests.browser.conftest import seed

    seed(clean_db, Keyring(secret_keys))
    app, _ = make_site(clean_db, secret_keys, idle_seconds=2)
    with serve(app) as url:
        sign_in(page, url, "admin@acme.example")
        expect(page).to_have_url(url + HOME)
        time.sleep(3.2)
        page.goto(url + HOME)
        expect(page).to_have_url(url + "/login")


def test_secure_cookies_behind_https(clean_db, secret_keys):
    import httpx

    from hub.web.session import WebSettings

    assert WebSettings.from_env("https://hub.example.com", {"HUB_SESSION_SECRET": "s"}).https
    assert not WebSettings.from_env("http://127.0.0.1:8000", {"HUB_SESSION_SECRET": "s"}).https
    app, _ = make_site(clean_db, secret_keys, https=True)
    with serve(app) as url:
        cookie = httpx.get(url + "/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


AXE_PAGES = (("login", None), ("hub as admin", "admin@acme.example"), ("hub as viewer", "viewer@acme.example"),
             ("hub for two companies", "owner@both.example"), ("not found", "admin@acme.example"))


@pytest.mark.parametrize("name, email", AXE_PAGES, ids=[n for n, _ in AXE_PAGES])
def test_no_serious_accessibility_violation(site, page, name, email):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    if email:
        sign_in(page, site.url, email)
        expect(page.locator("header .user")).to_be_visible()
        page.goto(site.url + ("/settings/integrations/nowhere" if name == "not found" else HOME))
    else:
        page.goto(site.url + "/login")
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_a_card_opens_the_integration_page_and_its_overview_disables_it(site, page):
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("link", name="QuickBooks Online").click()
    own = site.integrations["QuickBooks (Acme)"]
    expect(page).to_have_url(f"{site.url}{HOME}/{own}/overview")
    expect(page.get_by_role("heading", level=1)).to_have_text("QuickBooks (Acme)")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Overview")
    page.get_by_role("button", name="Disable QuickBooks (Acme)").click()
    expect(page).to_have_url(f"{site.url}{HOME}/{own}/overview")
    expect(page.locator(".flash")).to_have_text("QuickBooks (Acme) disabled.")
    assert site.is_active("QuickBooks (Acme)") is False
    # the provider's own address leads to the company's integration of it
    page.goto(f"{site.url}{HOME}/quickbooks")
    expect(page).to_have_url(f"{site.url}{HOME}/{own}/overview")
    assert page.goto(f"{site.url}{HOME}/{own}/nosuchtab").status == 404
    assert page.goto(f"{site.url}{HOME}/nosuchprovider").status == 404


def test_a_viewer_reads_the_integration_page_without_change_buttons(site, page):
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{HOME}/{site.integrations['Slack (Acme)']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Slack (Acme)")
    expect(page.locator(".section .error-text")).to_contain_text("401")
    assert page.get_by_role("button", name=re.compile("Disable")).count() == 0
