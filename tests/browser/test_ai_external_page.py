"""The AI page's "External model" section in Chromium: an admin fills the form (an
OpenAI-compatible API: the bundled emulator), tests the saved connection, and after lines are
scored sees the external model's calls, tokens, cost and budget used in the cost table, and
its suggestions marked as the external model's. A refused value shows the sentence and keeps
what was typed, but never the key; the key never reaches the page; a viewer reads the section
without buttons and a forged POST is refused (403). Expected figures come from the emulator's
own record of the tokens it counted."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators import bill_lines
from emulators.openai_chat import create_emulator
from emulators.serve import serve
from hub.ai import external_settings
from hub.ai.scoring import LineToCode, suggest_for_lines
from hub.crypto import Keyring
from hub.schema import ai_external_call, ai_external_setting, gl_account, invoice, invoice_line, vendor
from tests.browser.conftest import csrf_of, sign_in

PAGE = "/settings/integrations/ai"
KEY = "sk-browser-test-key-7f3a9c0e5b1d2468ace0"
LINES = ("diesel 40 gal fleet card", "30 yd roll-off dumpster Job 2001", "12/2 Romex NM-B 250ft x 3")


@pytest.fixture
def world(site, secret_keys, monkeypatch):
    """Acme's QuickBooks with a chart and three uncoded bill lines (no model trained), and the
    OpenAI-compatible emulator on loopback (allowed by HUB_OUTBOUND_ALLOW) answering to KEY."""
    monkeypatch.setenv("HUB_OUTBOUND_ALLOW", "127.0.0.1/32")
    company_id, integration_id = site.companies["Acme"], site.integrations["QuickBooks (Acme)"]
    with site.engine.begin() as conn:
        for i, name in enumerate(bill_lines.chart_accounts("construction")):
            conn.execute(gl_account.insert().values(company_id=company_id, integration_id=integration_id, remote_id=f"a{i}",
                                                    code=str(500 + i), name=name, account_type="Expense"))
        vendor_id = conn.scalar(vendor.insert().values(company_id=company_id, integration_id=integration_id, remote_id="v1",
                                                       display_name="Fleet Fuel Co").returning(vendor.c.id))
        bill = conn.scalar(invoice.insert().values(company_id=company_id, integration_id=integration_id, remote_id="b1",
                                                   vendor_id=vendor_id, kind="payable", number="B-1",
                                                   issue_date=sa.func.current_date(), status="authorised").returning(invoice.c.id))
        line_ids = [conn.scalar(invoice_line.insert().values(invoice_id=bill, line_no=n, description=text, amount=100 + n)
                                .returning(invoice_line.c.id)) for n, text in enumerate(LINES, start=1)]
    emulator = create_emulator(api_keys=(KEY,))
    with serve(emulator.app) as url:
        site.external = {"emulator": emulator, "url": url, "company_id": company_id, "integration_id": integration_id,
                         "keyring": Keyring(secret_keys), "lines": [LineToCode(t, vendor_id, 100 + n, i)
                                                                    for n, (t, i) in enumerate(zip(LINES, line_ids), start=1)]}
        yield site


def _stored(site) -> dict | None:
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(ai_external_setting)).mappings().first()
    return dict(row) if row else None


def _fill(page, url: str, *, budget: str, key: str | None = KEY) -> None:
    section = page.locator("#external")
    section.get_by_role("switch", name="Use the external model").check()
    section.get_by_label("Base URL").fill(url + "/v1")
    if key is not None:
        section.get_by_label("API key").fill(key)
    section.get_by_label("Model", exact=True).fill("gpt-4o-mini")
    section.get_by_label("Price per 1,000 input tokens").fill("0.5")
    section.get_by_label("Price per 1,000 output tokens").fill("1.5")
    section.get_by_label("Monthly budget").fill(budget)


def test_an_admin_sets_up_the_external_model_and_sees_its_cost(world, page):
    site, ext = world, world.external
    sign_in(page, site.url, "admin@acme.example")
    page.goto(site.url + PAGE)
    expect(page.locator("#external h2")).to_have_text("External model")
    expect(page.locator("#cost")).to_contain_text("No external call yet: the external model is off.")

    # a refused value: the sentence, what was typed (never the key), nothing stored
    _fill(page, ext["url"], budget="0")
    page.get_by_role("button", name="Save external model").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Not saved: the external model needs a monthly budget above 0 to be turned on: calls stop at it.")
    expect(page.locator("#external").get_by_label("Model", exact=True)).to_have_value("gpt-4o-mini")
    expect(page.locator("#external").get_by_label("API key")).to_have_value("")
    assert KEY not in page.content() and _stored(site) is None

    # saved: the key stored encrypted, never shown again
    _fill(page, ext["url"], budget="5")
    page.get_by_role("button", name="Save external model").click()
    expect(page.get_by_role("status")).to_have_text("External model saved: on, gpt-4o-mini at 127.0.0.1, budget 5.00 a month.")
    stored = _stored(site)
    assert stored["enabled"] and stored["model"] == "gpt-4o-mini" and stored["monthly_budget"] == Decimal(5)
    assert KEY not in str(stored["api_key"])
    with site.engine.connect() as conn:
        assert external_settings.api_key(conn, ext["keyring"], ext["company_id"]).reveal() == KEY
    expect(page.locator("#ext-key-help")).to_have_text("A key is stored (never shown); blank keeps it.")
    assert KEY not in page.content()

    # the saved connection, tested: the model is read, nothing spent
    page.get_by_role("button", name="Test the saved connection").click()
    expect(page.get_by_role("status")).to_have_text("Connected to 127.0.0.1: model gpt-4o-mini is available.")
    assert ext["emulator"].completions == []

    # a blank key keeps the stored one; a model the API lacks fails the test with a sentence
    page.locator("#external").get_by_label("Model", exact=True).fill("gpt-imaginary")
    page.get_by_role("button", name="Save external model").click()
    expect(page.get_by_role("status")).to_contain_text("External model saved: on, gpt-imaginary")
    page.get_by_role("button", name="Test the saved connection").click()
    expect(page.get_by_role("alert")).to_have_text("Connection failed: 127.0.0.1 has no model gpt-imaginary, or the base URL is "
                                                   "wrong (404).")
    page.goto(site.url + PAGE)
    page.locator("#external").get_by_label("Model", exact=True).fill("gpt-4o-mini")
    page.get_by_role("button", name="Save external model").click()
    expect(page.get_by_role("status")).to_contain_text("External model saved: on, gpt-4o-mini")
    with site.engine.connect() as conn:
        assert external_settings.api_key(conn, ext["keyring"], ext["company_id"]).reveal() == KEY

    # lines scored with no model of the hub's own yet: the external model answers, metered
    with site.engine.begin() as conn:
        made = suggest_for_lines(conn, ext["integration_id"], ext["lines"], keyring=ext["keyring"])
    [done] = ext["emulator"].completions
    suggested = [s for s in made if s.source == "external"]
    assert suggested
    page.goto(site.url + PAGE)
    for s in suggested:
        row = page.locator(f"tr[data-suggestion='{s.suggestion_id}']")
        expect(row.locator(".answer")).to_have_text(s.account_name)
        expect(row.locator(".ai-source")).to_have_text("external model")
    q = Decimal("0.000001")
    cost = ((Decimal(done["prompt_tokens"]) * Decimal("0.5") / 1000).quantize(q, ROUND_HALF_UP)
            + (Decimal(done["completion_tokens"]) * Decimal("1.5") / 1000).quantize(q, ROUND_HALF_UP))
    month = page.locator("table.ai-external-costs tbody tr")
    expect(month).to_have_count(1)
    expect(month.locator(".calls")).to_have_text("1")
    expect(month.locator(".tokens-in")).to_have_text(f"{done['prompt_tokens']:,}")
    expect(month.locator(".tokens-out")).to_have_text(f"{done['completion_tokens']:,}")
    expect(month.locator(".cost")).to_have_text(f"{cost:.4f}")
    expect(month.locator(".used")).to_have_text(f"{float(cost / 5) * 100:.0f}% of 5.00")
    with site.engine.connect() as conn:
        assert conn.scalar(sa.select(ai_external_call.c.cost)) == cost
    assert KEY not in page.content()
    page.screenshot(path="/tmp/ai-external.png", full_page=True)


def test_a_viewer_reads_the_external_model_without_buttons_and_a_forged_post_is_refused(world, page):
    site, ext = world, world.external
    with site.engine.begin() as conn:
        external_settings.save(conn, ext["keyring"], ext["company_id"], enabled=True, base_url=ext["url"] + "/v1",
                               model="gpt-4o-mini", price_input_per_1k="0.5", price_output_per_1k="1.5", monthly_budget="5",
                               api_key=KEY)
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(site.url + PAGE)
    section = page.locator("#external")
    expect(section.get_by_label("Base URL")).to_have_value(ext["url"] + "/v1")
    expect(section.get_by_label("Base URL")).to_be_disabled()
    expect(section.get_by_role("button")).to_have_count(0)
    assert KEY not in page.content()
    token = csrf_of(page)
    before = _stored(site)
    for path in ("external", "external/test"):
        answer = page.request.post(f"{site.url}{PAGE}/{path}", max_redirects=0, form={
            "csrf_token": token, "enabled": "on", "base_url": "https://elsewhere.example/v1", "model": "x",
            "price_input_per_1k": "0", "price_output_per_1k": "0", "monthly_budget": "1000"})
        assert answer.status == 403 and "Only an admin" in answer.text(), path
    assert _stored(site) == before and re.search(r"^http://127\.0\.0\.1:\d+/v1$", before["base_url"])
