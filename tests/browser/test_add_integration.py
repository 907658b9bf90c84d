"""Adding an API-key integration from the hub page, as an admin does it: the Add button of a
provider not connected yet, its credential form, a refused form shown again with nothing
stored, the stored keys encrypted and never shown; a viewer cannot add."""

from __future__ import annotations

import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import integration
from tests.browser.conftest import CANARY, csrf_of, sign_in

HOME = "/settings/integrations"
KEY = f"SG.{CANARY}-added-key-0123456789"


def _sendgrid_rows(site) -> list:
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(integration.c.id, integration.c.name, integration.c.is_active).where(
            integration.c.company_id == site.companies["Acme"], integration.c.provider == "sendgrid")))


def test_an_admin_adds_sendgrid_from_the_hub_page(site, page, secret_keys):
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("button", name="Add SendGrid").click()
    expect(page).to_have_url(f"{site.url}{HOME}/add/sendgrid")
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    # a required key left out: the form comes back with the reason, nothing stored
    page.get_by_label("From address").fill("ops@acme.example")
    page.get_by_role("button", name="Add SendGrid").click()
    expect(page.locator("[role=alert]")).to_contain_text("api_key")
    expect(page.get_by_label("From address")).to_have_value("ops@acme.example")
    assert _sendgrid_rows(site) == []
    page.get_by_label("API key").fill(KEY)
    page.get_by_label("Name").fill("Mail (Acme)")
    page.get_by_role("button", name="Add SendGrid").click()
    [(new_id, name, active)] = _sendgrid_rows(site)
    assert name == "Mail (Acme)" and active is False  # inactive until enabled or checked
    expect(page).to_have_url(f"{site.url}{HOME}/{new_id}/connection")
    expect(page.locator(".flash")).to_contain_text("Mail (Acme) added")
    assert CANARY not in page.content()  # the key is never shown again
    with site.engine.connect() as conn:
        item = store.get_integration(conn, Keyring(secret_keys), new_id)
    assert item.credentials["api_key"] == KEY and item.config["from_email"] == "ops@acme.example"


def test_oauth_providers_and_unknown_names_are_not_added_here_and_a_viewer_cannot_add(site, page):
    sign_in(page, site.url, "admin@acme.example")
    assert page.goto(f"{site.url}{HOME}/add/xero").status == 404  # connected by OAuth's Connect instead
    assert page.goto(f"{site.url}{HOME}/add/nosuch").status == 404
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site.url, "viewer@acme.example")
    expect(page.get_by_role("button", name="Add SendGrid")).to_have_count(0)
    assert page.goto(f"{site.url}{HOME}/add/sendgrid").status == 403
    answer = page.request.post(f"{site.url}{HOME}/add/sendgrid", max_redirects=0,
                               form={"csrf_token": csrf_of(page), "name": "x", "credentials.api_key": KEY})
    assert answer.status == 403 and _sendgrid_rows(site) == []
