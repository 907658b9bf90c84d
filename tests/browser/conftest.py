"""Browser tests of the settings pages: Playwright driving Debian's Chromium
(/usr/bin/chromium, installed by scripts/test.sh when missing; Playwright's own browser
download is not used), against the hub web app served by uvicorn on a free loopback port
over the test database.

`site` seeds two companies with canary secrets in every credential and in an error
message, users of each role, and serves the app; the tests sign in as a person would."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from emulators.serve import serve
from hub import integrations as store
from hub.auth import users
from hub.auth.throttle import ThrottlePolicy
from hub.crypto import Keyring
from hub.schema import customer, external_order, integration, invoice, vendor
from hub.web.app import create_app
from hub.web.record_trail import KINDS
from hub.web.session import WebSettings

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-test-password"
CANARY = "CANARY"  # every secret seeded below contains it; no rendered page may


@pytest.fixture(scope="session", autouse=True)
def chromium_present():
    """Under CI (scripts/test.sh installs it) a missing Chromium fails; elsewhere it skips."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it when run as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options, with Debian's Chromium."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@dataclass
class Site:
    url: str
    engine: sa.Engine
    app: object
    companies: dict[str, int]
    integrations: dict[str, int]  # integration name -> id

    def ids_of(self, company: str) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(integration.c.id).where(integration.c.company_id == self.companies[company])))

    def is_active(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(integration.c.is_active).where(integration.c.id == self.integrations[name]))

    def record_ids(self, company: str, kind: str) -> list[int]:
        """Ids of the company's records of a record-trail kind (hub/web/record_trail.py KINDS)."""
        table, only = KINDS[kind].table, KINDS[kind].only
        query = sa.select(table.c.id)
        if only:
            query = query.where(table.c[only[0]] == only[1])
        if "company_id" in table.c:
            query = query.where(table.c.company_id == self.companies[company])
        else:
            query = query.join(integration, integration.c.id == table.c.integration_id).where(
                integration.c.company_id == self.companies[company])
        with self.engine.connect() as conn:
            return list(conn.scalars(query.order_by(table.c.id)))

    def snapshot(self) -> list:
        """Every integration row as it is (to prove a refused request changed nothing)."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(integration).order_by(integration.c.id))]


def _canaries(spec_fields, tag: str) -> dict[str, str]:
    return {f: f"{CANARY}-{tag}-{f}-0123456789" for f in spec_fields}


SEED = {
    "Acme": [("quickbooks", "QuickBooks (Acme)", {"realm_id": "9130350000000001"}),
             ("slack", "Slack (Acme)", {"default_channel": "#ops"}),
             ("procore", "Procore (Acme)", {"company_id": "562949953421312"})],
    "Bella": [("xero", "Xero (Bella)", {"tenant_id": "a3b1c5d7"}),
              ("doordash", "DoorDash (Bella)", {"store_id": "601135"})],
}
USERS = {
    "admin@acme.example": (("Acme", "admin"),),
    "viewer@acme.example": (("Acme", "viewer"),),
    "admin@bella.example": (("Bella", "admin"),),
    "owner@both.example": (("Acme", "admin"), ("Bella", "viewer")),
}


def seed(engine, keyring: Keyring) -> tuple[dict, dict]:
    from hub.providers import registry

    companies, ids = {}, {}
    with engine.begin() as conn:
        for name, tz in (("Acme", "America/New_York"), ("Bella", "America/Chicago")):
            companies[name] = store.create_company(conn, name, tz)
        for company_name, items in SEED.items():
            for provider, name, config in items:
                credentials = _canaries([f.name for f in registry.get(provider).credentials], provider)
                ids[name] = store.add_integration(conn, keyring, company_id=companies[company_name], provider=provider,
                                                  name=name, config=config, credentials=credentials, active=True)
        now = datetime.now(timezone.utc)
        conn.execute(sa.update(integration).where(integration.c.id == ids["QuickBooks (Acme)"]).values(
            status="connected", last_sync_at=now - timedelta(minutes=5)))
        conn.execute(sa.update(integration).where(integration.c.id == ids["Slack (Acme)"]).values(
            status="error", last_sync_at=now - timedelta(hours=3),
            error_message=f"HTTPStatusError: 401 for url https://slack.example/api?token={CANARY}-tok "
                          f"Authorization: Bearer {CANARY}bearer0001 client_secret={CANARY}-cs"))
        conn.execute(sa.update(integration).where(integration.c.id == ids["Xero (Bella)"]).values(
            status="connected", last_sync_at=now - timedelta(days=2)))
        for email, roles in USERS.items():
            user_id = users.create_user(conn, email, PASSWORD)
            for company_name, role in roles:
                users.grant(conn, user_id, companies[company_name], role)
    return companies, ids


def seed_records(site: Site) -> None:
    """A vendor, an invoice and a marketplace order for each company (for the record pages and
    the walk of other companies' ids); not part of `seed`, so pages that list records start empty."""
    with site.engine.begin() as conn:
        for company, order_integration in (("Acme", None), ("Bella", "DoorDash (Bella)")):
            company_id = site.companies[company]
            vendor_id = conn.scalar(sa.insert(vendor).values(company_id=company_id, display_name=f"{company} Lumber Supply")
                                    .returning(vendor.c.id))
            conn.execute(sa.insert(invoice).values(company_id=company_id, vendor_id=vendor_id, number=f"{company[0]}-0001",
                                                   issue_date=datetime(2025, 3, 1).date(), total=10, subtotal=10))
            customer_id = conn.scalar(sa.insert(customer).values(company_id=company_id, display_name=f"{company} Catering Client")
                                      .returning(customer.c.id))
            conn.execute(sa.insert(invoice).values(company_id=company_id, customer_id=customer_id, kind="receivable",
                                                   number=f"{company[0]}-S-0001", issue_date=datetime(2025, 3, 2).date(),
                                                   total=20, subtotal=20))
            if order_integration:
                conn.execute(sa.insert(external_order).values(integration_id=site.integrations[order_integration],
                                                              external_id=f"{company}-order-1", raw_data={}))


def make_site(engine, keys, **settings) -> tuple[object, WebSettings]:
    web = WebSettings(secret="test-session-secret-" + keys[0][:8],
                      throttle=settings.pop("throttle", ThrottlePolicy(account_limit=5, address_limit=100)), **settings)
    return create_app(engine, settings=web), web


@pytest.fixture
def site(clean_db, secret_keys):
    companies, ids = seed(clean_db, Keyring(secret_keys))
    app, _ = make_site(clean_db, secret_keys)
    with serve(app) as url:
        yield Site(url, clean_db, app, companies, ids)


def sign_in(page, url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def csrf_of(page) -> str:
    """The session's CSRF token, as a form on the page carries it."""
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def headings(page) -> list[str]:
    return [re.sub(r"\s+", " ", t).strip() for t in page.locator("main h2").all_text_contents()]
