"""The export preview tab and the record trail in Chromium, as people use them: an admin reads
what the next export to QuickBooks (the emulator, over HTTP) would do and clicks a bill into
its trail; a viewer reads both; the preview writes nothing; paging; another company's record
is a 404; no secret in either page; no serious accessibility violation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub import schema
from hub.crypto import Keyring
from hub.outbound.outbox import emit
from hub.providers import registry
from hub.providers.connect import open_client
from hub.schema import invoice, invoice_line, sync_conflict, vendor
from hub.sync.account_mapping import set_mapping
from hub.sync.engine import sync_stream
from hub.sync.export_invoices import export_invoices
from hub.web.sections import export_preview
from tests.browser.conftest import CANARY, seed_records, sign_in
from tests.test_vendor_two_way import CLIENT, FAST, REALM

HOME = "/settings/integrations"
SHOTS = "/tmp/shots-preview"


@dataclass
class Books:
    site: object
    iid: int
    emulator: object
    ids: dict[str, int]

    def tables(self) -> dict[str, list]:
        with self.site.engine.connect() as conn:
            return {t.name: sorted(repr(tuple(r)) for r in conn.execute(sa.select(t))) for t in schema.metadata.sorted_tables}


def _bill(engine, company_id, number, vendor_id, lines) -> int:
    total = sum(float(amount) for _, amount in lines)
    with engine.begin() as conn:
        bill = conn.scalar(sa.insert(invoice).values(
            company_id=company_id, vendor_id=vendor_id, number=number, issue_date=date(2025, 3, 1), due_date=date(2025, 3, 31),
            subtotal=total, total=total, status="authorised").returning(invoice.c.id))
        conn.execute(sa.insert(invoice_line), [
            {"invoice_id": bill, "line_no": n, "description": f"{category} work", "category": category, "quantity": 1,
             "unit_amount": amount, "amount": amount} for n, (category, amount) in enumerate(lines, 1)])
    return bill


@pytest.fixture
def books(site, secret_keys):
    """Acme's second QuickBooks integration, on the emulator: chart and vendors imported, two
    categories mapped, a bill exported (its trail has a write, a run, an event and a conflict),
    then a changed vendor, a new bill and one with an unmapped category for the preview."""
    # the preview evaluates the blocking quality checks with great-expectations, whose first
    # import in a process takes seconds (tens on a loaded machine): paid here, not inside the
    # first page load's timeout
    import great_expectations  # noqa: F401
    keyring, engine, acme = Keyring(secret_keys), site.engine, site.companies["Acme"]
    emulator = quickbooks_emulator(vendors=4, bills=0, invoices=0, accounts=12)
    with serve(emulator.app) as url:
        with engine.begin() as conn:
            iid = store.add_integration(
                conn, keyring, company_id=acme, provider="quickbooks", name="QuickBooks Books (Acme)",
                config={"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"},
                credentials={**CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})})
        for stream in ("accounts", "vendors"):
            sync_stream(engine, keyring, iid, registry.stream(f"quickbooks/{stream}"))
        with engine.begin() as conn:
            set_mapping(conn, iid, "Lumber", "Job Materials")
            set_mapping(conn, iid, "Rent", "Rent or Lease")
            first, second = conn.execute(sa.select(vendor.c.id).where(vendor.c.integration_id == iid).order_by(vendor.c.id)
                                         .limit(2)).scalars().all()
        sent = _bill(engine, acme, "T-100", first, [("Lumber", "120.00")])
        client = open_client(engine, keyring, iid, retry=FAST)
        try:
            assert export_invoices(engine, keyring, iid, client=client).created == 1
        finally:
            client.transport.close()
        with engine.begin() as conn:
            conn.execute(sa.update(invoice).where(invoice.c.id == sent).values(due_date=date(2025, 4, 30)))
            conn.execute(sa.update(vendor).where(vendor.c.id == second).values(email="accounts@changed.example"))
            emit(conn, acme, "invoice.status_changed", {"invoice_id": sent, "provider": "quickbooks", "number": "T-100",
                                                          "status": "paid", "previous_status": "authorised"})
            conn.execute(sa.insert(sync_conflict).values(
                company_id=acme, integration_id=iid, entity_type="invoice", local_id=sent, field="status",
                base_value="authorised", local_value="authorised", remote_value="paid", status="resolved", resolution="took_remote"))
        ids = {"sent": sent, "changed_vendor": second,
               "new": _bill(engine, acme, "T-101", first, [("Rent", "80.00")]),
               "unmapped": _bill(engine, acme, "T-102", first, [("Lumber", "5.00"), ("Produce", "7.50")])}
        yield Books(site, iid, emulator, ids)


def _row(page, kind: str, local_id: int):
    return page.locator(f"tr[data-record='{kind}-{local_id}']")


def test_an_admin_reads_the_preview_and_clicks_a_bill_into_its_trail(books, page):
    site = books.site
    sign_in(page, site.url, "admin@acme.example")
    expect(page.locator("header .user")).to_be_visible()
    tables, writes = books.tables(), books.emulator.state.writes  # after the sign-in (it records the login)
    page.goto(f"{site.url}{HOME}/{books.iid}/overview")
    page.get_by_role("link", name="Export preview").click()
    expect(page).to_have_url(f"{site.url}{HOME}/{books.iid}/export-preview")
    expect(page.get_by_role("heading", level=2)).to_have_text("Export preview")
    counts = page.get_by_role("navigation", name="Records per action")
    expect(counts.get_by_role("link", name=re.compile(r"^4 All"))).to_be_visible()
    expect(counts.get_by_role("link", name="1 Create")).to_be_visible()
    expect(counts.get_by_role("link", name="2 Update")).to_be_visible()
    expect(counts.get_by_role("link", name="1 Hold back")).to_be_visible()

    held = _row(page, "invoice", books.ids["unmapped"])
    expect(held.locator(".badge")).to_have_text("Hold back")
    expect(held).to_contain_text("account mapping")
    expect(held).to_contain_text("line 2: category 'Produce' has no account mapping for this integration")
    changed = _row(page, "vendor", books.ids["changed_vendor"])
    expect(changed.locator(".badge")).to_have_text("Update")
    expect(changed.locator("table.changes tbody tr")).to_have_count(1)
    expect(changed.locator("table.changes .new")).to_have_text("accounts@changed.example")
    updated = _row(page, "invoice", books.ids["sent"])
    expect(updated.locator("table.changes tbody tr")).to_have_text(re.compile(r"due date\s*2025-03-31\s*2025-04-30"))
    expect(_row(page, "invoice", books.ids["new"]).locator(".badge")).to_have_text("Create")
    page.screenshot(path=f"{SHOTS}/export-preview.png", full_page=True)

    # the filter keeps only one action
    counts.get_by_role("link", name="1 Hold back").click()
    expect(page.locator("tr[data-record]")).to_have_count(1)
    expect(page.locator("tr[data-action=hold]")).to_have_count(1)
    assert books.tables() == tables and books.emulator.state.writes == writes  # looking changed nothing anywhere

    # into the trail of the bill that was exported and changed since
    page.get_by_role("link", name="All").click()
    _row(page, "invoice", books.ids["sent"]).get_by_role("link", name="T-100").click()
    expect(page).to_have_url(f"{site.url}/settings/records/invoice/{books.ids['sent']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice T-100")
    remote_id = site.engine.connect().execute(sa.select(invoice.c.remote_id).where(invoice.c.id == books.ids["sent"])).scalar()
    link = page.locator(f"section.trail tr[data-integration='{books.iid}']")
    expect(link).to_contain_text("QuickBooks Books (Acme)")
    expect(link.locator("code")).to_have_text(remote_id)
    writes_table = page.get_by_role("region", name="Sent to providers")
    expect(writes_table.locator("tbody tr")).to_have_count(1)
    expect(writes_table.locator("tbody tr")).to_contain_text("create")
    expect(writes_table.locator("tbody tr .badge")).to_have_text("succeeded")
    runs = page.get_by_role("region", name="Sync runs that touched it")
    expect(runs.locator("tbody tr")).to_have_count(1)
    expect(runs.locator("tbody tr")).to_contain_text("export_invoices")
    expect(runs.locator("tbody tr")).to_contain_text("sent its create (succeeded)")
    events = page.get_by_role("region", name="Outbound events")
    expect(events.locator("tbody tr")).to_contain_text("invoice.status_changed")
    expect(events.locator("tbody tr")).to_contain_text("authorised → paid")
    conflicts = page.get_by_role("region", name="Conflicts")
    expect(conflicts.locator("tbody tr")).to_contain_text("took remote")
    page.screenshot(path=f"{SHOTS}/record-trail.png", full_page=True)
    # the link back to the integration
    link.get_by_role("link", name="QuickBooks Books (Acme)").click()
    expect(page).to_have_url(f"{site.url}{HOME}/{books.iid}/overview")


def test_a_viewer_reads_the_preview_and_a_trail_without_buttons(books, page):
    site = books.site
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{HOME}/{books.iid}/export-preview")
    expect(_row(page, "invoice", books.ids["unmapped"]).locator(".badge")).to_have_text("Hold back")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    _row(page, "vendor", books.ids["changed_vendor"]).get_by_role("link").click()
    expect(page).to_have_url(f"{site.url}/settings/records/vendor/{books.ids['changed_vendor']}")
    expect(page.get_by_role("region", name="In the integrations").locator("tbody tr")).to_have_count(1)
    expect(page.locator("main").get_by_role("button")).to_have_count(0)


def test_the_preview_pages_its_records_and_refuses_bad_paging(books, page, monkeypatch):
    monkeypatch.setattr(export_preview, "PAGE_SIZE", 3)  # the app runs in this process
    site = books.site
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{books.iid}/export-preview")
    expect(page.locator("tr[data-record]")).to_have_count(3)
    pager = page.get_by_role("navigation", name="Pages of the preview")
    expect(pager).to_contain_text("Page 1 of 2 (4 records)")
    first = set(page.locator("tr[data-record]").evaluate_all("rows => rows.map(r => r.dataset.record)"))
    pager.get_by_role("link", name="Next").click()
    expect(pager).to_contain_text("Page 2 of 2")
    expect(page.locator("tr[data-record]")).to_have_count(1)
    last = set(page.locator("tr[data-record]").evaluate_all("rows => rows.map(r => r.dataset.record)"))
    assert not first & last and len(first | last) == 4
    base = f"{site.url}{HOME}/{books.iid}/export-preview"
    assert page.goto(base + "?page=3").status == 404
    for bad in ("?page=0", "?page=x", "?action=delete"):
        answer = page.goto(base + bad)
        assert answer.status == 400, bad
        expect(page.locator("main")).to_contain_text("'" if "page" in bad else "no action")


def test_another_company_record_and_an_unknown_kind_are_not_found(site, page):
    seed_records(site)
    sign_in(page, site.url, "admin@acme.example")
    own = site.record_ids("Acme", "invoice")[0]
    assert page.goto(f"{site.url}/settings/records/invoice/{own}").status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice A-0001")
    for kind in ("vendor", "invoice", "order"):
        other = site.record_ids("Bella", kind)[0]
        answer = page.goto(f"{site.url}/settings/records/{kind}/{other}")
        assert answer.status == 404, kind
        expect(page.locator("main")).not_to_contain_text("Bella")
    assert page.goto(f"{site.url}/settings/records/nosuchkind/{own}").status == 404
    assert page.goto(f"{site.url}/settings/records/vendor/999999").status == 404
    # a member of both companies sees Bella's order once Bella is the company shown
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site.url, "owner@both.example")
    page.get_by_label("Company").select_option(label="Bella")
    page.get_by_role("button", name="Switch").click()
    order = site.record_ids("Bella", "order")[0]
    assert page.goto(f"{site.url}/settings/records/order/{order}").status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Order Bella-order-1")
    expect(page.locator("dl.facts")).to_contain_text("none (refused, or not answered yet)")


def _pages(books) -> dict[str, str]:
    site = books.site
    canary_books = site.integrations["QuickBooks (Acme)"]  # canary credentials, no emulator: the preview says why not
    return {"preview": f"{site.url}{HOME}/{books.iid}/export-preview",
            "preview failing": f"{site.url}{HOME}/{canary_books}/export-preview",
            "trail": f"{site.url}/settings/records/invoice/{books.ids['sent']}",
            "vendor trail": f"{site.url}/settings/records/vendor/{books.ids['changed_vendor']}"}


def test_no_secret_reaches_the_preview_or_a_trail(books, page):
    seed_records(books.site)  # an unlinked vendor: the canary integration's preview must ask its provider (and fails)
    for email in ("admin@acme.example", "viewer@acme.example"):
        sign_in(page, books.site.url, email)
        for name, url in _pages(books).items():
            answer = page.goto(url)
            assert answer.status == 200, (email, name)
            html = page.content()
            assert CANARY not in html, (email, name)
            page.screenshot(path=f"{SHOTS}/{name.replace(' ', '-')}-{email.split('@')[0]}.png", full_page=True)
        page.goto(_pages(books)["preview failing"])
        expect(page.get_by_role("alert")).to_contain_text("Could not work out the preview")
        page.get_by_role("button", name="Sign out").click()


@pytest.mark.parametrize("name", ["preview", "preview failing", "trail", "vendor trail"])
def test_no_serious_accessibility_violation_on_the_record_pages(books, page, name):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    seed_records(books.site)
    sign_in(page, books.site.url, "admin@acme.example")
    expect(page.locator("header .user")).to_be_visible()
    page.goto(_pages(books)[name])
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
