#!/usr/bin/env python3
"""Screenshots of the settings pages into docs/screenshots/, taken in Debian's Chromium
against a running hub web app with the demo logins (`make demo`, or `hub demo seed` and
`hub web run`):

    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000] [--out docs/screenshots]

Each page as a person sees it: the sign-in page (and its answer to a wrong password), the
integrations hub as an admin, as a viewer, and for a member of two companies; the outgoing
webhooks: the list, an endpoint's settings and its delivery log.
"""

from __future__ import annotations

import argparse
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
        page.get_by_role("link", name="Webhooks").click()  # the company's outgoing webhooks
        shot("webhooks")
        page.locator("table.webhooks tbody th a").first.click()
        shot("webhook-endpoint")
        page.get_by_role("link", name="Deliveries").click()
        page.wait_for_load_state("networkidle")
        shot("webhook-deliveries")
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
        browser.close()


if __name__ == "__main__":
    main()
