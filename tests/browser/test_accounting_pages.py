"""The QuickBooks / Xero tabs in Chromium, as an admin and a viewer use them: account
mapping (search, choose, save, clear), sync preferences, "Sync now" (a real Dagster
webserver running the QuickBooks sync job against the emulator, followed live, then found in
the sync history), the history's filters and pages, conflicts; and what they must refuse
(a viewer's forged posts, bad input), their accessibility and the canary check."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators.quickbooks import create_emulator as quickbooks_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.schema import account_mapping, gl_account, integration, invoice, invoice_line, sync_conflict, sync_log, vendor
from hub.sync import preferences
from hub.web import sync_history
from hub.web.sections import sync as sync_section
from tests.browser.conftest import CANARY, csrf_of, sign_in
from tests.test_sync_now import CLIENT, _free_port, module_keys, webserver  # noqa: F401 - fixtures used below

HOME = "/settings/integrations"
TABS = ("mapping", "preferences", "sync", "history", "conflicts")
SHOTS = Path("/tmp/shots-accounting")
REALM = "9130350000000088"


@pytest.fixture
def secret_keys(monkeypatch, module_keys):  # noqa: F811 - the browser site and the Dagster runs share one key
    monkeypatch.setenv("HUB_SECRET_KEYS", ",".join(module_keys))
    return module_keys


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _qb(site) -> int:
    return site.integrations["QuickBooks (Acme)"]


def _company(site, name="Acme") -> int:
    return site.companies[name]


def seed_chart_and_bills(site) -> dict[str, int]:
    """A chart of six accounts (one inactive) and four hub bills: Equipment (unmapped, two
    bills), Fuel (mapped), Travel (unmapped, one bill), one voided bill (not held back)."""
    qb, company = _qb(site), _company(site)
    accounts = [("6100", "Equipment Rental", "Expense", True), ("6110", "Equipment Repairs", "Expense", True),
                ("6200", "Fuel", "Expense", True), ("6300", "Travel", "Expense", True),
                ("6400", "Rent or Lease", "Expense", True), ("6999", "Old Equipment", "Expense", False)]
    ids = {}
    with site.engine.begin() as conn:
        for n, (code, name, kind, active) in enumerate(accounts, 1):
            ids[name] = conn.scalar(sa.insert(gl_account).values(
                company_id=company, integration_id=qb, remote_id=str(80 + n), code=code, name=name, account_type=kind,
                is_active=active).returning(gl_account.c.id))
        conn.execute(sa.insert(account_mapping).values(company_id=company, integration_id=qb, local_category="Fuel",
                                                       gl_account_id=ids["Fuel"]))
        bills = [("HUB-1", "authorised", 1200, [("Equipment", 1000), ("Fuel", 200)]),
                 ("HUB-2", "authorised", 300, [("Equipment", 100), ("Equipment", 200)]),
                 ("HUB-3", "draft", 75.5, [("Travel", 75.5)]),
                 ("HUB-4", "voided", 999, [("Equipment", 999)])]
        for number, status, total, lines in bills:
            bill = conn.scalar(sa.insert(invoice).values(company_id=company, number=number, issue_date=date(2026, 11, 2),
                                                         status=status, total=total).returning(invoice.c.id))
            conn.execute(sa.insert(invoice_line), [{"invoice_id": bill, "line_no": n, "category": category, "amount": amount,
                                                    "unit_amount": amount} for n, (category, amount) in enumerate(lines, 1)])
    return ids


def mapped(site) -> dict[str, str]:
    with site.engine.connect() as conn:
        return dict(conn.execute(sa.select(account_mapping.c.local_category, gl_account.c.name)
                                 .join(gl_account, gl_account.c.id == account_mapping.c.gl_account_id)
                                 .where(account_mapping.c.integration_id == _qb(site))).all())


def test_an_admin_maps_a_category_by_searching_choosing_and_saving(site, page):
    seed_chart_and_bills(site)
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/mapping")
    rows = page.locator("table.mapping tbody tr")
    # unmapped first (with the bills they hold back: the voided one does not count), then mapped
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.category)") == ["Equipment", "Travel", "Fuel"]
    equipment = page.locator("tr[data-category='Equipment']")
    expect(equipment.locator("td").nth(0)).to_have_text("2")
    expect(equipment.locator("td").nth(1)).to_have_text("USD 1,500.00")
    expect(page.locator("tr[data-category='Travel'] td").nth(1)).to_have_text("USD 75.50")
    expect(page.locator("tr[data-category='Fuel'] td").nth(2)).to_contain_text("6200 Fuel")
    expect(page.get_by_role("note").first).to_contain_text("2 categories need an account; 3 bills wait for them.")

    equipment.get_by_role("button", name="Choose an account for Equipment").click()
    search = equipment.get_by_label("Search accounts for Equipment")
    expect(equipment.locator(".account-choice")).to_have_count(5)  # the active accounts; the inactive one is not offered
    search.press_sequentially("equip", delay=30)
    expect(equipment.locator("legend")).to_have_text("Accounts matching “equip”")
    expect(equipment.locator(".account-choice")).to_have_count(2)  # filtered on the server
    search.fill("61")  # a code prefix
    expect(equipment.locator("legend")).to_have_text("Accounts matching “61”")
    expect(equipment.locator(".account-choice")).to_have_count(2)
    search.fill("repairs")
    expect(equipment.locator(".account-choice")).to_have_count(1)
    shot(page, "mapping-picker")
    equipment.get_by_label(re.compile("Equipment Repairs")).check()
    equipment.get_by_role("button", name="Save mapping of Equipment").click()
    expect(page.locator(".flash")).to_have_text("Equipment is now booked to 6110 Equipment Repairs.")
    assert mapped(site) == {"Equipment": "Equipment Repairs", "Fuel": "Fuel"}
    assert page.locator("table.mapping tbody tr").evaluate_all("rs => rs.map(r => r.dataset.category)") == ["Travel", "Equipment", "Fuel"]
    shot(page, "mapping")

    # saving without choosing says so and changes nothing
    travel = page.locator("tr[data-category='Travel']")
    travel.get_by_role("button", name="Choose an account for Travel").click()
    travel.get_by_role("button", name="Save mapping of Travel").click()
    expect(page.locator(".flash")).to_have_text("Choose an account in the list, then save.")
    assert "Travel" not in mapped(site)

    page.get_by_role("button", name="Clear the mapping of Fuel").click()
    expect(page.locator(".flash")).to_contain_text("Fuel is no longer mapped")
    assert mapped(site) == {"Equipment": "Equipment Repairs"}


def test_mapping_refuses_an_inactive_or_foreign_account_and_an_unknown_category(site, page):
    ids = seed_chart_and_bills(site)
    with site.engine.begin() as conn:  # Bella's Xero chart: its account ids are not QuickBooks (Acme)'s
        bella = conn.scalar(sa.insert(gl_account).values(
            company_id=_company(site, "Bella"), integration_id=site.integrations["Xero (Bella)"], remote_id="x1", code="400",
            name="Bella Sales", account_type="Revenue").returning(gl_account.c.id))
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/mapping")
    token = csrf_of(page)
    before = mapped(site)
    target = f"{site.url}{HOME}/{_qb(site)}/mapping/set"
    for form, message in (({"category": "Equipment", "account_id": str(ids["Old Equipment"])}, "is inactive"),
                          ({"category": "Equipment", "account_id": str(bella)}, f"no account {bella}"),
                          ({"category": "Snacks", "account_id": str(ids["Fuel"])}, "No bill uses the category 'Snacks'"),
                          ({"category": "Equipment", "account_id": "x"}, "Please check: account")):
        page.request.post(target, form={"csrf_token": token, **form}, max_redirects=0)
        page.goto(f"{site.url}{HOME}/{_qb(site)}/mapping")
        expect(page.locator(".flash.tone-bad")).to_contain_text(message)
    assert mapped(site) == before


def test_an_admin_changes_the_sync_preferences(site, page):
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/preferences")
    keyring = Keyring.from_env()
    accounts = page.locator("tr[data-stream='accounts']")
    expect(accounts.get_by_role("switch")).to_be_checked()
    accounts.get_by_role("switch").uncheck()
    page.get_by_label("Direction of invoices").select_option("import")
    page.get_by_label("Nightly sync starts at").select_option("04:00")
    page.get_by_label("When a field changed on both sides").select_option("manual")
    shot(page, "preferences")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator(".flash")).to_have_text("Sync preferences saved; they apply from the next run.")
    with site.engine.connect() as conn:
        saved = preferences.read(conn, keyring, _qb(site))
    assert (saved.hour, saved.conflict_policy) == (4, "manual")
    assert not saved.runs("accounts", "import") and saved.runs("invoices", "import") and not saved.runs("invoices", "export")
    assert saved.runs("vendors", "export") and saved.runs("vendors", "import")
    expect(page.get_by_label("Nightly sync starts at")).to_have_value("4")
    expect(page.locator("tr[data-stream='accounts']").get_by_role("switch")).not_to_be_checked()

    # bad values: a clear message, and nothing of the form is saved (not even its valid parts)
    token = csrf_of(page)
    target = f"{site.url}{HOME}/{_qb(site)}/preferences/save"
    good = {"csrf_token": token, "hour": "5", "conflict_policy": "remote_wins", "accounts.direction": "import",
            "vendors.enabled": "on", "vendors.direction": "both", "invoices.enabled": "on", "invoices.direction": "both",
            "customers.enabled": "on", "customers.direction": "both", "sales_invoices.enabled": "on",
            "sales_invoices.direction": "both"}
    for change, message in (({"hour": "25"}, "Please check: nightly hour."),
                            ({"conflict_policy": "coin_toss"}, "Please check: conflict policy."),
                            ({"accounts.direction": "export"}, "can only run import")):
        page.request.post(target, form={**good, **change}, max_redirects=0)
        page.goto(f"{site.url}{HOME}/{_qb(site)}/preferences")
        expect(page.locator(".flash.tone-bad")).to_contain_text(message)
        with site.engine.connect() as conn:
            assert preferences.read(conn, keyring, _qb(site)) == saved


def seed_history(site, rows: int = 60) -> list[int]:
    """`rows` sync_log rows of QuickBooks (Acme), one every 3 hours back from now, streams and
    outcomes in turn; two of them share a start time (the keyset must keep both). Procore's
    rows must not show. Returns the QuickBooks ids, newest first."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    entities = ("vendor", "invoice", "account")
    values = []
    for n in range(rows):
        started = now - timedelta(hours=3 * n + 1) if n != 7 else now - timedelta(hours=3 * 6 + 1)  # 6 and 7 tie
        status = "failed" if n % 5 == 0 else "completed"
        entity = entities[n % 3]
        values.append({
            "integration_id": _qb(site), "sync_type": "incremental", "action": f"import_{entity}s", "direction": "inbound",
            "entity_type": entity, "status": status, "records_processed": 10 + n, "records_failed": 2 if status == "failed" else 0,
            "errors": [{"record_id": str(n), "code": "6240", "message": f"refused: token={CANARY}-in-an-error Bearer {CANARY}0001x"},
                       {"record_id": None, "code": None, "message": "second"}, {"message": "third"}, {"message": "fourth"}]
            if status == "failed" else [],
            "details": {"counts": {"created": n, "updated": 1}}, "dagster_run_id": f"{n:08x}-0000-4000-8000-000000000000",
            "started_at": started, "completed_at": started + timedelta(seconds=12.5)})
    with site.engine.begin() as conn:
        ids = list(conn.execute(sa.insert(sync_log).returning(sync_log.c.id), values).scalars())
        conn.execute(sa.insert(sync_log).values(
            integration_id=site.integrations["Procore (Acme)"], sync_type="incremental", action="import_rfis",
            direction="inbound", entity_type="rfi", status="completed", completed_at=sa.func.now()))
    order = sorted(zip(values, ids), key=lambda pair: (pair[0]["started_at"], pair[1]), reverse=True)
    return [i for _, i in order]


def shown_ids(page) -> list[int]:
    return [int(i) for i in page.locator("table.history tbody tr").evaluate_all("rs => rs.map(r => r.dataset.log)")]


def test_the_history_pages_and_filters(site, page):
    newest_first = seed_history(site)
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/history")
    size = sync_history.PAGE_SIZE
    assert shown_ids(page) == newest_first[:size]
    first = page.locator(f"tr[data-log='{newest_first[0]}']")
    expect(first.locator("td").nth(1)).to_have_text("import vendors")
    expect(first.locator("td").nth(3)).to_contain_text("10")
    expect(first.locator("td").nth(6)).to_have_text("12.5 s")
    expect(first.locator("td a")).to_have_attribute("href", re.compile(r"/runs/00000000-0000-4000-8000-000000000000$"))
    errors = first.locator("td.errors")
    expect(errors.locator("p")).to_have_count(sync_history.ERRORS_SHOWN)
    expect(errors).to_contain_text("token=***")
    expect(errors).to_contain_text("and 1 more")
    expect(page.locator(".sync-chart .uplot canvas")).to_have_count(1)  # drawn by the static script under the CSP
    chart = json.loads(page.locator("[data-chart]").get_attribute("data-chart"))
    assert len(chart["days"]) == 30 and sum(chart["records"]) == sum(10 + n for n in range(60))  # all within 8 days
    page.get_by_text("The numbers per day").click()
    expect(page.locator("table.chart-table tbody tr")).to_have_count(30)
    shot(page, "history")

    seen = []
    for number in range(3):
        if number:
            page.get_by_role("link", name="Older →").click()
        assert shown_ids(page) == newest_first[number * size:(number + 1) * size]
        seen += shown_ids(page)
    assert seen == newest_first  # every row once, the tied pair included
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newer").click()
    assert shown_ids(page) == newest_first[size:2 * size]
    page.get_by_role("link", name="Newest").click()
    assert shown_ids(page) == newest_first[:size]

    page.get_by_label("Stream").select_option(label="Vendors")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Show").click()
    expected = [i for n, i in enumerate(sorted(newest_first)) if n % 5 == 0 and n % 3 == 0]
    assert sorted(shown_ids(page)) == expected and len(expected) == 4
    assert set(page.locator("table.history tbody tr").evaluate_all("rs => rs.map(r => r.dataset.status + r.dataset.entity)")) == {"failedvendor"}
    page.goto(f"{site.url}{HOME}/{_qb(site)}/history?status=bogus&before=not-a-cursor")
    expect(page.get_by_role("alert")).to_have_count(2)
    assert shown_ids(page) == newest_first[:size]
    assert violations == []


def seed_conflicts(site) -> dict[str, int]:
    with site.engine.begin() as conn:
        ids = {}
        for name, local, remote in (("Acme Supply", "Acme Supply Local", "Acme Supply Remote"),
                                    ("Blue Hardware", "Blue Local", "Blue Remote")):
            vid = conn.scalar(sa.insert(vendor).values(
                company_id=_company(site), display_name=local, integration_id=_qb(site), remote_id=name[:4],
                synced_values={"display_name": remote}).returning(vendor.c.id))
            ids[name] = conn.scalar(sa.insert(sync_conflict).values(
                company_id=_company(site), integration_id=_qb(site), entity_type="vendor", local_id=vid, remote_id=name[:4],
                field="display_name", base_value=name, local_value=local, remote_value=remote).returning(sync_conflict.c.id))
            ids[name + " vendor"] = vid
    return ids


def conflict_state(site) -> list[tuple]:
    with site.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(sync_conflict.c.id, sync_conflict.c.status, sync_conflict.c.resolution)
                                               .order_by(sync_conflict.c.id))]


def test_an_admin_resolves_conflicts(site, page):
    ids = seed_conflicts(site)
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/conflicts")
    expect(page.locator("table.conflicts:not(.resolved) tbody tr")).to_have_count(2)
    row = page.locator(f"tr[data-conflict='{ids['Acme Supply']}']")
    expect(row.locator("td").nth(2)).to_have_text("Acme Supply Local")
    expect(row.locator("td").nth(3)).to_have_text("Acme Supply Remote")
    shot(page, "conflicts")
    page.get_by_role("button", name="Take the ledger's display name of Acme Supply Local").click()
    expect(page.locator(".flash")).to_have_text("Vendor display name: took the ledger's value.")
    page.get_by_role("button", name="Keep the hub's display name of Blue Local").click()
    expect(page.locator(".flash")).to_have_text("Vendor display name: kept the hub's value; it goes out with the next export.")
    expect(page.get_by_role("note")).to_have_text("No open conflict.")
    settled = page.locator("table.resolved tbody tr")
    expect(settled).to_have_count(2)
    expect(page.locator(f"table.resolved tr[data-conflict='{ids['Acme Supply']}'] td").last).to_have_text("took the ledger's value")
    with site.engine.connect() as conn:
        names = dict(conn.execute(sa.select(vendor.c.id, vendor.c.display_name)).all())
    assert names[ids["Acme Supply vendor"]] == "Acme Supply Remote" and names[ids["Blue Hardware vendor"]] == "Blue Local"
    assert {(s, r) for _, s, r in conflict_state(site)} == {("resolved", "took_remote"), ("resolved", "kept_local")}
    # settling it again says it is settled; another company's conflict id is unknown here
    token = csrf_of(page)
    page.request.post(f"{site.url}{HOME}/{_qb(site)}/conflicts/resolve",
                      form={"csrf_token": token, "conflict_id": str(ids["Acme Supply"]), "keep": "local"}, max_redirects=0)
    page.goto(f"{site.url}{HOME}/{_qb(site)}/conflicts")
    expect(page.locator(".flash.tone-bad")).to_contain_text("already resolved")
    with site.engine.begin() as conn:
        vid = conn.scalar(sa.insert(vendor).values(company_id=_company(site, "Bella"), display_name="Bella Co").returning(vendor.c.id))
        bella = conn.scalar(sa.insert(sync_conflict).values(
            company_id=_company(site, "Bella"), integration_id=site.integrations["Xero (Bella)"], entity_type="vendor",
            local_id=vid, field="display_name", local_value="a", remote_value="b").returning(sync_conflict.c.id))
    before = conflict_state(site)
    answer = page.request.post(f"{site.url}{HOME}/{_qb(site)}/conflicts/resolve",
                               form={"csrf_token": token, "conflict_id": str(bella), "keep": "remote"}, max_redirects=0)
    assert answer.status == 404 and conflict_state(site) == before


def test_conflicts_and_export_errors_lead_to_the_record_trail(site, page):
    ids = seed_conflicts(site)
    vid = ids["Acme Supply vendor"]
    with site.engine.begin() as conn:
        conn.execute(sa.insert(sync_log), [
            {"integration_id": _qb(site), "sync_type": "incremental", "action": "export_vendors", "direction": "outbound",
             "entity_type": "vendor", "status": "failed", "records_processed": 1, "records_failed": 1,
             "errors": [{"record_id": str(vid), "code": "6240", "message": "Duplicate Name Exists Error"}],
             "completed_at": datetime.now(timezone.utc)},
            # an import's error names the provider's id: no link (it is not a hub id)
            {"integration_id": _qb(site), "sync_type": "incremental", "action": "import_vendors", "direction": "inbound",
             "entity_type": "vendor", "status": "failed", "records_processed": 1, "records_failed": 1,
             "errors": [{"record_id": "58", "code": "x", "message": "unreadable"}], "completed_at": datetime.now(timezone.utc)}])
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/history")
    expect(page.locator("td.errors a")).to_have_count(1)
    page.get_by_role("link", name=f"vendor {vid}").click()
    expect(page).to_have_url(f"{site.url}/settings/records/vendor/{vid}")
    expect(page.locator("h1, h2").filter(has_text="Acme Supply Local").first).to_be_visible()
    page.goto(f"{site.url}{HOME}/{_qb(site)}/conflicts")
    page.locator(f"tr[data-conflict='{ids['Blue Hardware']}']").get_by_role("link", name="Blue Local").click()
    expect(page).to_have_url(f"{site.url}/settings/records/vendor/{ids['Blue Hardware vendor']}")


def _state(site) -> tuple:
    """Everything the accounting tabs can change (to prove a refused request changed nothing)."""
    with site.engine.connect() as conn:
        return (site.snapshot(), [tuple(r) for r in conn.execute(sa.select(account_mapping).order_by(account_mapping.c.id))],
                conflict_state(site), conn.scalar(sa.select(sa.func.count()).select_from(sync_log)))


def test_a_viewer_sees_no_change_buttons_and_forged_posts_are_refused(site, page):
    ids = seed_chart_and_bills(site)
    conflicts = seed_conflicts(site)
    sign_in(page, site.url, "viewer@acme.example")
    for tab in TABS:
        page.goto(f"{site.url}{HOME}/{_qb(site)}/{tab}")
        expect(page.locator("nav.tabs a[aria-current=page]")).to_have_count(1)
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.locator("main").get_by_role("button", name=re.compile("Sync|Save|Clear|Keep|Take|Choose"))).to_have_count(0)
    page.goto(f"{site.url}{HOME}")
    expect(page.get_by_role("button", name=re.compile("Sync"))).to_have_count(0)
    token = csrf_of(page)  # the sign-out form's
    before = _state(site)
    base = f"{site.url}{HOME}/{_qb(site)}"
    for path, form in (("mapping/set", {"category": "Equipment", "account_id": str(ids["Fuel"])}),
                       ("mapping/clear", {"category": "Fuel"}),
                       ("preferences/save", {"hour": "3", "conflict_policy": "manual"}),
                       ("sync/now", {}),
                       ("conflicts/resolve", {"conflict_id": str(conflicts["Acme Supply"]), "keep": "remote"})):
        answer = page.request.post(f"{base}/{path}", form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403 and "Only an admin" in answer.text(), path
        missing = page.request.post(f"{base}/{path}", form=form or {"x": "1"}, max_redirects=0)  # and without the token
        assert missing.status == 403, path
    assert _state(site) == before


def test_sync_now_explains_why_it_cannot_start(site, page, monkeypatch):
    dead = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("HUB_DAGSTER_URL", dead)
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/sync")
    before = _state(site)
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".flash.tone-bad")).to_contain_text(f"did not start: cannot reach Dagster at {dead} (HUB_DAGSTER_URL)")
    # from the hub's card: back to the hub with the same reason
    page.goto(site.url + HOME)
    page.get_by_role("button", name="Sync QuickBooks (Acme) now").click()
    expect(page).to_have_url(site.url + HOME)
    expect(page.locator(".flash.tone-bad")).to_contain_text("cannot reach Dagster")
    # a disabled integration: no button, and a forged post says why
    with site.engine.begin() as conn:
        store.set_active(conn, _qb(site), False)
    page.goto(f"{site.url}{HOME}/{_qb(site)}/sync")
    expect(page.get_by_role("note")).to_contain_text("is disabled")
    expect(page.locator("main").get_by_role("button", name="Sync now")).to_have_count(0)
    page.request.post(f"{site.url}{HOME}/{_qb(site)}/sync/now", form={"csrf_token": csrf_of(page)}, max_redirects=0)
    page.goto(f"{site.url}{HOME}/{_qb(site)}/sync")
    expect(page.locator(".flash.tone-bad")).to_have_text("QuickBooks (Acme) is disabled: enable it, then sync.")
    # a run id that is not one is refused
    assert page.goto(f"{site.url}{HOME}/{_qb(site)}/sync/progress?run=../../graphql").status == 404
    # following a run while Dagster is down: the fragment counts its misses, then stops asking
    run = "0123abcd-0000-4000-8000-000000000000"
    page.goto(f"{site.url}{HOME}/{_qb(site)}/sync?run={run}")
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("Cannot follow run 0123abcd right now")
    expect(progress).to_have_attribute("hx-get", re.compile(r"&miss=\d+$"))
    page.goto(f"{site.url}{HOME}/{_qb(site)}/sync/progress?run={run}&miss={sync_section.MAX_MISSES - 1}")
    expect(page.locator("#run-progress")).to_contain_text("Stopped following run 0123abcd")
    assert page.locator("#run-progress").get_attribute("hx-get") is None
    page.get_by_role("link", name="follow it again").click()
    expect(page).to_have_url(f"{site.url}{HOME}/{_qb(site)}/sync?run={run}")
    after = _state(site)
    assert after[1:] == before[1:]


@pytest.fixture
def books(site, monkeypatch, module_keys, webserver, dagster_instance):  # noqa: F811
    """A second QuickBooks integration of Acme, on the emulator, whose partition Dagster has."""
    monkeypatch.setenv("HUB_DAGSTER_URL", webserver)
    emulator = quickbooks_emulator(vendors=3, bills=3, invoices=1, accounts=6, realm_id=REALM, seed=11)
    with serve(emulator.app) as url:
        config = {"realm_id": REALM, "base_url": url, "token_url": url + "/oauth2/v1/tokens/bearer"}
        with site.engine.begin() as conn:
            iid = store.add_integration(conn, Keyring(module_keys), active=True, company_id=_company(site), provider="quickbooks",
                                        name="Books (Acme)", config=config, credentials={
                                            **CLIENT, "refresh_token": emulator.core.oauth.issue_refresh_token("hub-demo", {"realmId": REALM})})
        dagster_instance.add_dynamic_partitions("quickbooks_integrations", [f"quickbooks-{iid}"])
        yield iid


def test_sync_now_runs_the_job_in_dagster_and_the_history_shows_it(site, books, page, dagster_instance):
    sign_in(page, site.url, "admin@acme.example")
    page.get_by_role("button", name="Sync Books (Acme) now").click()  # the hub card's quick action
    expect(page).to_have_url(re.compile(rf"{HOME}/{books}/sync\?run=[0-9a-f-]{{36}}$"))
    run_id = page.url.rsplit("=", 1)[1]
    expect(page.locator(".flash")).to_have_text(f"Sync of Books (Acme) started (run {run_id[:8]}).")
    progress = page.locator("#run-progress")
    expect(progress.get_by_role("link", name="open it in the Dagster UI")).to_have_attribute("href", f"{site_dagster(page)}/runs/{run_id}")
    expect(progress.locator(".steps li").first).to_be_visible(timeout=120_000)  # steps show while it runs
    shot(page, "sync-running")
    expect(progress).to_have_attribute("data-status", "SUCCESS", timeout=240_000)
    expect(progress.locator(".badge")).to_have_text("Succeeded")
    expect(progress.locator(".step-success code").filter(has_text=re.compile(r"^quickbooks__vendors$"))).to_have_count(1)
    expect(progress.locator(".records")).to_contain_text("processed")
    assert progress.get_attribute("hx-get") is None  # polling stopped with the run
    shot(page, "sync-done")
    run = dagster_instance.get_run_by_id(run_id)
    assert run.status.value == "SUCCESS" and run.tags["dagster/partition"] == f"quickbooks-{books}"

    progress.get_by_role("link", name="See it in the sync history").click()
    with site.engine.connect() as conn:
        logged = conn.execute(sa.select(sync_log.c.id, sync_log.c.action).where(sync_log.c.dagster_run_id == run_id)).all()
    assert {"import_accounts", "import_vendors", "import_invoices"} <= {r.action for r in logged}
    for log_id, _ in logged:
        expect(page.locator(f"tr[data-log='{log_id}'] td a")).to_have_text(run_id[:8])
    vendors = next(i for i, action in logged if action == "import_vendors")
    expect(page.locator(f"tr[data-log='{vendors}'] td").nth(3)).to_contain_text("3 created")
    shot(page, "history-after-sync")
    # the run is this integration's: another integration's page does not show it
    assert page.goto(f"{site.url}{HOME}/{_qb(site)}/sync/progress?run={run_id}").status == 404
    page.goto(f"{site.url}{HOME}/{books}/sync")
    expect(page.locator("table.recent-runs tbody tr")).to_have_count(1)
    expect(page.locator("table.recent-runs .badge")).to_have_text("completed")


def site_dagster(page) -> str:
    return os.environ["HUB_DAGSTER_URL"].rstrip("/")


def _everything_seeded(site) -> None:
    seed_chart_and_bills(site)
    seed_history(site, rows=30)
    seed_conflicts(site)


def test_no_secret_reaches_any_accounting_tab(site, page):
    _everything_seeded(site)
    for email in ("admin@acme.example", "viewer@acme.example"):
        sign_in(page, site.url, email)
        for tab in TABS:
            response = page.goto(f"{site.url}{HOME}/{_qb(site)}/{tab}")
            assert response.status == 200, tab
            assert CANARY not in page.content(), (email, tab)
        fragment = page.request.get(f"{site.url}{HOME}/{_qb(site)}/mapping/accounts?q=e")
        assert fragment.ok and CANARY not in fragment.text()
        page.get_by_role("button", name="Sign out").click()


@pytest.mark.parametrize("tab", TABS)
def test_no_serious_accessibility_violation_on_the_accounting_tabs(site, page, tab):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    _everything_seeded(site)
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{_qb(site)}/{tab}")
    if tab == "mapping":
        page.get_by_role("button", name="Choose an account for Equipment").click()  # the open picker too
    if tab == "history":
        expect(page.locator(".sync-chart .uplot")).to_have_count(1)
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    shot(page, f"tab-{tab}")
