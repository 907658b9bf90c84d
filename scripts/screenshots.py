#!/usr/bin/env python3
"""Screenshots of the settings pages into docs/screenshots/, taken in Debian's Chromium
against a running hub web app with the demo logins (`make demo`, or `hub demo seed` and
`hub web run`):

    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000] [--out docs/screenshots]

Each page as a person sees it: the sign-in page (and its answer to a wrong password), the
integrations hub as an admin, as a viewer, and for a member of two companies; then every
tab of every integration of the first demo company, found by following the links a person
would follow (the cards, then the tabs), so a new section is photographed without an edit
here; and the company-level pages linked from the hub;
the Connection tab (an OAuth integration, an API-key credential form) and a Connect
that goes to the emulator's consent page (denied there, so the demo's state does not change);
the outgoing webhooks: the list, an endpoint's settings and its delivery log; billing (the
plan and a plan change's proration preview) and the AI assist page.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import sync_playwright

from hub.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def sign_in(page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state("networkidle")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def every_tab(page, url: str, shot) -> None:
    """Each integration card's page, each of its tabs (admin view)."""
    page.goto(f"{url}/settings/integrations")
    cards = [(a.get_attribute("href"), a.inner_text()) for a in page.locator("article.card h3 a").all()]
    for href, name in cards:
        page.goto(url + href)
        tabs = [(a.get_attribute("href"), a.inner_text()) for a in page.locator("nav.tabs a").all()]
        for tab_href, label in tabs:
            page.goto(url + tab_href)
            page.wait_for_load_state("networkidle")
            shot(f"{slug(name)}-{slug(label)}")
    page.goto(f"{url}/settings/integrations")
    links = [(a.get_attribute("href"), a.inner_text()) for a in page.locator("a.company-page").all()]
    for href, name in links:  # company-level pages the hub links to (class company-page)
        page.goto(url + href)
        shot(slug(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    url = args.url.rstrip("/")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def shot(name: str) -> None:
            page.screenshot(path=args.out / f"{name}.png", full_page=True)
            print(f"{args.out / name}.png")

        page.goto(f"{url}/login")
        shot("login")
        sign_in(page, url, "admin@acme.example", "not the password")
        shot("login-wrong-password")
        sign_in(page, url, "admin@acme.example", args.password)
        shot("integrations-admin")
        every_tab(page, url, shot)
        page.goto(f"{url}/settings/integrations")
        page.get_by_role("link", name="Webhooks").click()  # the company's outgoing webhooks
        shot("webhooks")
        page.locator("table.webhooks tbody th a").first.click()
        shot("webhook-endpoint")
        page.get_by_role("link", name="Deliveries").click()
        page.wait_for_load_state("networkidle")
        shot("webhook-deliveries")
        page.goto(f"{url}/settings/integrations")
        page.get_by_role("link", name="Open billing").click()  # the company's subscription (Stripe)
        shot("billing")
        page.locator("tr[data-plan='business']").get_by_role("button", name="Switch to Business monthly").click()
        shot("billing-change-plan")
        page.goto(f"{url}/settings/integrations")
        page.get_by_role("link", name="Open AI assist").click()
        page.wait_for_load_state("networkidle")
        shot("ai-assist")
        sign_out(page)
        sign_in(page, url, "admin@bella.example", args.password)  # the other demo company's integrations
        every_tab(page, url, shot)
        sign_out(page)
        sign_in(page, url, "viewer@bella.example", args.password)
        shot("integrations-viewer")
        sign_out(page)
        sign_in(page, url, "owner@demo.example", args.password)
        page.get_by_label("Company").select_option(label="Bella Pizza")
        page.get_by_role("button", name="Switch").click()
        page.wait_for_load_state("networkidle")
        shot("integrations-company-switch")
        page.goto(f"{url}/settings/integrations/404")
        shot("not-found")
        sign_out(page)
        sign_in(page, url, "admin@acme.example", args.password)
        page.goto(f"{url}/settings/integrations/quickbooks")
        page.get_by_role("link", name="Connection").click()
        shot("connection-oauth")
        sign_out(page)
        sign_in(page, url, "admin@bella.example", args.password)
        page.goto(f"{url}/settings/integrations/doordash")
        page.get_by_role("link", name="Connection").click()
        shot("connection-api-keys")
        page.goto(f"{url}/settings/integrations")
        page.get_by_role("button", name="Connect QuickBooks Online").click()
        page.wait_for_url(lambda address: not address.startswith(url))
        shot("connect-consent-page")
        page.get_by_role("button", name="Deny").click()
        page.wait_for_load_state("networkidle")
        shot("connect-denied")
        browser.close()


if __name__ == "__main__":
    main()
