"""The Procore tabs (projects, records, documents) and the delivery marketplaces' tabs (store,
menu, orders) in Chromium, against the Procore, DoorDash and Uber Eats emulators served over
real HTTP: what an admin clicks reaches the emulator, what a viewer may not do is refused
with nothing changed, and every tab passes axe and the canary check.

The integrations here carry canary secrets wherever the emulators allow it (the Procore and
Uber Eats client secrets, DoorDash's signing secret, every webhook token), so a page that
leaked a credential would show it."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators import doordash as doordash_emulator
from emulators import procore as procore_emulator
from emulators import ubereats as ubereats_emulator
from emulators.serve import serve
from hub import integrations as store
from hub.crypto import Keyring
from hub.orders.processing import OrderProcessor
from hub.providers import registry
from hub.providers.connect import open_client
from hub.inbound.provider_endpoints import create_inbound
from hub.schema import document, external_order, project, rfi, webhook_endpoint
from hub.sync import preferences
from hub.sync.document_upload import MAX_BYTES
from hub.sync.engine import sync_stream
from hub.sync.procore_link import link_project
from tests.browser.conftest import CANARY, Site, csrf_of, make_site, seed, sign_in

HOME = "/settings/integrations"
COMPANY = 562949953421312
PROCORE_CLIENT = ("hub-browser", f"{CANARY}-procore-client-secret-01")
UBER = {"client_id": "hub-browser-ue", "client_secret": f"{CANARY}-ubereats-client-secret-01"}
DOORDASH = {"developer_id": "hub-browser-dev", "key_id": "hub-browser-key",
            "signing_secret": "CANARYdoordashSigningSecret0123456789AB",  # base64url, as DoorDash's are
            "webhook_token": f"{CANARY}-doordash-webhook-token-01"}
PUBLIC_URL = "https://hub.example.com"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def emulators():
    procore = procore_emulator.create_emulator(projects=3, rfis_per_project=4, submittals_per_project=2,
                                               daily_logs_per_project=3, clients=dict([PROCORE_CLIENT]))
    uber = ubereats_emulator.create_emulator(client_id=UBER["client_id"], client_secret=UBER["client_secret"],
                                             retry_base_s=0.05)
    door = doordash_emulator.create_emulator(developer_id=DOORDASH["developer_id"], key_id=DOORDASH["key_id"],
                                             signing_secret=DOORDASH["signing_secret"],
                                             webhook_token=DOORDASH["webhook_token"], retry_base_s=0.05)
    with serve(procore.app) as procore_url, serve(uber.app) as uber_url, serve(door.app) as door_url:
        uber.base_url, door.base_url = uber_url, door_url
        yield {"procore": (procore, procore_url), "ubereats": (uber, uber_url), "doordash": (door, door_url)}
    uber.close()
    door.close()


@pytest.fixture
def live(clean_db, secret_keys, emulators, monkeypatch):
    """The browser tests' two companies (conftest.seed) plus Acme's integrations pointed at the
    emulators, served by the hub app (whose receiver takes the marketplaces' webhooks)."""
    monkeypatch.setenv("HUB_PUBLIC_URL", PUBLIC_URL)
    keyring = Keyring(secret_keys)
    companies, ids = seed(clean_db, keyring)
    procore, procore_url = emulators["procore"]
    uber, uber_url = emulators["ubereats"]
    door, door_url = emulators["doordash"]
    procore.state.files.clear()
    door.store.update(is_active=True, current_deactivations=[])
    uber.store_status.update(status="ONLINE", offlineReason=None, paused_until=None, reason=None)
    acme = companies["Acme"]
    with clean_db.begin() as conn:
        refresh = procore.core.oauth.issue_refresh_token(PROCORE_CLIENT[0], {"company_id": COMPANY})
        ids["procore"] = store.add_integration(
            conn, keyring, active=True, company_id=acme, provider="procore", name="Procore (Acme live)",
            config={"company_id": str(COMPANY), "base_url": procore_url, "token_url": procore_url + "/oauth/token"},
            credentials={"client_id": PROCORE_CLIENT[0], "client_secret": PROCORE_CLIENT[1], "refresh_token": refresh,
                         "webhook_token": f"{CANARY}-procore-webhook-token"})
        ids["ubereats"] = store.add_integration(
            conn, keyring, active=True, company_id=acme, provider="ubereats", name="Uber Eats (Acme)", credentials=UBER,
            config={"store_id": uber.store_id, "base_url": uber_url, "token_url": uber_url + "/oauth/v2/token"})
        ids["doordash"] = store.add_integration(
            conn, keyring, active=True, company_id=acme, provider="doordash", name="DoorDash (Acme)", credentials=DOORDASH,
            config={"store_id": door.store_id, "base_url": door_url})
        ids["projects"] = {name: conn.scalar(sa.insert(project).values(company_id=acme, name=name, code=code)
                                             .returning(project.c.id))
                           for name, code in (("Harbor Tower", "HT-1"), ("Mill Street Lofts", "MSL"))}
    app, _ = make_site(clean_db, secret_keys)
    with serve(app) as url:
        yield Live(url, clean_db, app, companies, ids, keyring, procore, uber, door)


class Live(Site):
    def __init__(self, url, engine, app, companies, ids, keyring, procore, uber, door):
        super().__init__(url, engine, app, companies, ids)
        self.keyring, self.procore, self.uber, self.door = keyring, procore, uber, door

    def tab(self, provider: str, section: str, query: str = "") -> str:
        return f"{self.url}{HOME}/{self.integrations[provider]}/{section}{query}"

    def rows(self, table) -> list:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]

    def state(self) -> tuple:
        """Everything the tabs' actions can change, in the hub and at the emulators."""
        return (self.snapshot(), self.rows(project), self.rows(document), self.rows(webhook_endpoint),
                sorted(self.procore.state.files), dict(self.door.store), dict(self.uber.store_status))


def _procore_projects(emulator) -> list[tuple[int, str]]:
    return sorted((pid, p["display_name"]) for pid, p in emulator.state.projects.items())


def _remote_of(live, project_id):
    with live.engine.connect() as conn:
        return conn.scalar(sa.select(project.c.remote_id).where(project.c.id == project_id))


# ---- Procore ----------------------------------------------------------------------------
def test_an_admin_links_a_project_by_clicking_imports_another_and_unlinks(live, page):
    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab("procore", "projects"))
    (first_id, first), (second_id, second), _ = _procore_projects(live.procore)
    rows = page.locator("tr[data-procore-project]")
    expect(rows).to_have_count(3)
    row = page.locator(f"tr[data-procore-project='{first_id}']")
    expect(row).to_contain_text(first)
    expect(row.locator(".badge")).to_have_text("Not linked")

    row.get_by_label(f"Hub project for {first}").select_option(label="Harbor Tower (HT-1)")
    row.get_by_role("button", name=f"Link {first}").click()
    expect(page.locator(".flash")).to_have_text(f"Linked to Procore project {first_id}.")
    harbor = live.integrations["projects"]["Harbor Tower"]
    assert _remote_of(live, harbor) == str(first_id)
    expect(row.locator(".badge")).to_have_text("Linked")
    expect(row).to_contain_text("Harbor Tower")

    other = page.locator(f"tr[data-procore-project='{second_id}']")
    other.get_by_role("button", name=f"Link {second}").click()  # the default choice: import as a new hub project
    expect(page.locator(".flash")).to_contain_text(f"Procore project {second_id} imported as hub project")
    with live.engine.connect() as conn:
        imported = conn.execute(sa.select(project.c.name, project.c.integration_id).where(
            project.c.remote_id == str(second_id))).one()
    assert imported.integration_id == live.integrations["procore"]
    expect(other.locator(".badge")).to_have_text("Linked")

    row.get_by_role("button", name=f"Unlink {first}").click()
    expect(page.locator(".flash")).to_have_text(
        f"Unlinked from Procore project {first_id}; the project and its records stay in the hub.")
    assert _remote_of(live, harbor) is None
    expect(row.locator(".badge")).to_have_text("Not linked")


def test_an_unreachable_procore_is_said_on_the_page(live, page):
    with live.engine.begin() as conn:
        store.update_config(conn, live.keyring, live.integrations["procore"], {"base_url": "http://127.0.0.1:9"})
    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab("procore", "projects"))
    expect(page.get_by_role("alert")).to_contain_text("Procore's projects could not be read")
    assert CANARY not in page.content()


def test_an_admin_turns_rfi_sync_off_and_on_and_sees_the_last_sync(live, page):
    iid = live.integrations["procore"]
    link_project(live.engine, live.keyring, iid, live.integrations["projects"]["Harbor Tower"],
                 _procore_projects(live.procore)[0][0])
    client = open_client(live.engine, live.keyring, iid)
    try:
        sync_stream(live.engine, live.keyring, iid, registry.stream("procore/rfis"), client=client)
    finally:
        client.transport.close()
    with live.engine.connect() as conn:
        held = conn.scalar(sa.select(sa.func.count()).select_from(rfi).where(
            rfi.c.integration_id == iid, rfi.c.status.is_distinct_from("deleted")))
    assert held > 0
    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab("procore", "records"))
    rfis = page.locator("tr[data-stream='rfis']")
    expect(page.locator("tr[data-stream]")).to_have_count(3)
    expect(rfis.locator(".badge").first).to_have_text("On")
    expect(rfis).to_contain_text("completed")
    expect(rfis.locator("td").nth(2)).to_have_text(str(held))
    expect(page.locator("tr[data-stream='submittals']")).to_contain_text("Never")

    rfis.get_by_role("button", name="Turn RFIs sync off").click()
    expect(page.locator(".flash")).to_have_text("RFIs sync turned off.")
    expect(rfis.locator(".badge").first).to_have_text("Off")
    with live.engine.connect() as conn:
        prefs = preferences.read(conn, live.keyring, iid)
    assert prefs.streams["rfis"].enabled is False and prefs.streams["submittals"].enabled is True

    rfis.get_by_role("button", name="Turn RFIs sync on").click()
    expect(rfis.locator(".badge").first).to_have_text("On")
    with live.engine.connect() as conn:
        assert preferences.read(conn, live.keyring, iid).streams["rfis"].enabled is True


def _files(live) -> list:
    return sorted((f["_project"], f["name"], f["sha256"]) for f in live.procore.state.files.values())


def test_an_admin_uploads_a_document_and_bad_files_are_refused_with_clear_messages(live, page):
    iid = live.integrations["procore"]
    procore_id, _ = _procore_projects(live.procore)[0]
    link_project(live.engine, live.keyring, iid, live.integrations["projects"]["Harbor Tower"], procore_id)
    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab("procore", "documents"))
    expect(page.get_by_text("No documents yet.")).to_be_visible()

    page.get_by_label("Linked project").select_option(label="Harbor Tower (HT-1)")
    page.get_by_label("File").set_input_files({"name": "site-plan.pdf", "mimeType": "application/pdf", "buffer": PDF})
    page.get_by_role("button", name="Upload and share").click()
    expect(page.locator(".flash")).to_have_text("Uploaded and shared to Procore.")
    assert [(p, n) for p, n, _ in _files(live)] == [(procore_id, "site-plan.pdf")]
    shared = page.locator("tr[data-document]")
    expect(shared).to_have_count(1)
    expect(shared).to_contain_text("site-plan.pdf")
    expect(shared.locator(".badge")).to_have_text("Shared")

    before_files, before_docs = _files(live), live.rows(document)
    refused = (
        ({"name": "huge.pdf", "mimeType": "application/pdf", "buffer": PDF + b"0" * (MAX_BYTES + 60_000)},
         "Not uploaded: huge.pdf is 10.1 MB; files can be at most 10.0 MB."),
        ({"name": "empty.txt", "mimeType": "text/plain", "buffer": b""}, "Not uploaded: empty.txt is empty."),
        ({"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"},
         "Not uploaded: setup.exe: .exe cannot be shared; allowed: .csv, .docx, .dwg, .jpeg, .jpg, .pdf, .png, .txt, .xlsx."),
        ({"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"just some text"},
         "Not uploaded: notes.pdf is not a real PDF file (its content does not match its extension)."),
        ({"name": "photo.png", "mimeType": "text/html", "buffer": b"\x89PNG\r\n\x1a\n..."},
         "Not uploaded: photo.png says it is text/html, which does not match .png; allowed: "
         ".csv, .docx, .dwg, .jpeg, .jpg, .pdf, .png, .txt, .xlsx."),
    )
    for file, message in refused:
        page.get_by_label("File").set_input_files(file)
        page.get_by_role("button", name="Upload and share").click()
        expect(page.locator(".flash")).to_have_text(message)
        assert _files(live) == before_files and live.rows(document) == before_docs, file["name"]
    # far over the limit: refused before the body is read
    answer = page.request.post(live.tab("procore", "documents/upload"), max_redirects=0, multipart={
        "csrf_token": csrf_of(page), "project_id": str(live.integrations["projects"]["Harbor Tower"]),
        "file": {"name": "enormous.pdf", "mimeType": "application/pdf", "buffer": PDF + b"0" * (MAX_BYTES + 200_000)}})
    assert answer.status == 413 and "at most 10 MB" in answer.text()
    assert _files(live) == before_files and live.rows(document) == before_docs


# ---- DoorDash and Uber Eats -------------------------------------------------------------------
def _marketplace_store(live, provider: str) -> tuple[bool, str | None]:
    if provider == "doordash":  # the test reads each emulator's own state
        notes = [d["notes"] for d in live.door.store["current_deactivations"]]
        return live.door.store["is_active"], notes[-1] if notes else None
    status = live.uber.store_status
    return status["status"] == "ONLINE", status["reason"]


@pytest.mark.parametrize("provider", ["doordash", "ubereats"])
def test_store_webhook_url_and_open_close_round_trip_at_the_marketplace(live, page, provider):
    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab(provider, "store"))
    expect(page.get_by_text("no webhook address yet: create one below")).to_be_visible()
    page.get_by_role("button", name="Create the webhook address").click()
    with live.engine.connect() as conn:
        endpoint = conn.scalar(sa.select(webhook_endpoint.c.id).where(
            webhook_endpoint.c.integration_id == live.integrations[provider], webhook_endpoint.c.direction == "inbound"))
    expect(page.get_by_label("Webhook URL")).to_have_value(f"{PUBLIC_URL}/webhooks/{provider}/{endpoint}")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()

    status = page.locator("[data-store-status]")
    expect(status).to_have_text("Open")
    page.get_by_label("Why it closes").fill("Power cut in the kitchen")
    page.get_by_role("button", name="Close the store").click()
    expect(page.locator(".flash")).to_have_text("The store is closed to new orders.")
    assert _marketplace_store(live, provider) == (False, "Power cut in the kitchen")
    expect(status).to_have_text("Closed")
    expect(page.get_by_text("Refuses orders (store closed)")).to_be_visible()
    with live.engine.connect() as conn:
        assert store.get_integration(conn, live.keyring, live.integrations[provider]).config["accepting_orders"] is False

    page.get_by_role("button", name="Open the store").click()
    expect(page.locator(".flash")).to_have_text("The store is open for orders again.")
    assert _marketplace_store(live, provider)[0] is True
    expect(status).to_have_text("Open")
    expect(page.get_by_text("Takes orders")).to_be_visible()


def test_the_orders_tab_shows_each_order_with_its_status_history_and_the_menu_tab_its_skus(live, page):
    iid = live.integrations["doordash"]
    with live.engine.begin() as conn:
        endpoint = create_inbound(conn, live.keyring, iid)
        store.update_config(conn, live.keyring, iid, {"menu_skus": ["PIZ-MARG", "SAL-CAES"]})
    live.door.set_webhook_url(f"{live.url}/webhooks/doordash/{endpoint}")
    try:
        taken = live.door.place_order(items=[{"id": "margherita", "quantity": 1}])
        assert live.door.wait_idle(10)  # received before the next one is placed: "newest" is well defined
        refused = live.door.place_order(items=[{"id": "pepperoni", "quantity": 2}])
        assert live.door.wait_idle(10)
    finally:
        live.door.set_webhook_url(None)
    processor = OrderProcessor(live.engine, live.keyring)
    try:
        processor.run()
    finally:
        processor.close()

    sign_in(page, live.url, "admin@acme.example")
    page.goto(live.tab("doordash", "orders"))
    rows = page.locator("tr[data-order]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(refused["id"])  # newest first
    expect(rows.nth(0)).to_contain_text("rejected")
    expect(rows.nth(1)).to_contain_text(taken["id"])
    expect(rows.nth(1)).to_contain_text("accepted")
    rows.nth(1).get_by_role("link", name=taken["id"]).click()
    expect(page).to_have_url(re.compile(r"/orders\?order=\d+$"))
    expect(page.locator("[data-order-status]")).to_have_text("accepted")
    history = page.locator("ol.timeline li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("received")
    expect(history.nth(0)).to_contain_text("from OrderCreate")
    expect(history.nth(1)).to_contain_text("accepted")
    page.get_by_role("link", name=f"Record trail of order {taken['id']}").click()
    expect(page).to_have_url(re.compile(rf"/settings/records/order/{_order_id(live, taken['id'])}$"))
    expect(page.get_by_role("heading", name=f"Order {taken['id']}")).to_be_visible()
    page.go_back()
    page.get_by_role("link", name="← All orders").click()
    expect(rows).to_have_count(2)

    page.goto(live.tab("doordash", "menu"))
    expect(page.locator(".sku-list li code")).to_have_text(["PIZ-MARG", "SAL-CAES"])
    expect(page.locator("tr[data-sku='PIZ-PEPP'] .badge")).to_have_text("No: orders with it are refused")
    expect(page.locator("tr[data-sku='PIZ-PEPP']")).to_contain_text("Pepperoni Pizza")
    expect(page.locator("tr[data-sku='PIZ-MARG'] .badge")).to_have_text("Yes")
    page.get_by_role("button", name="Add PIZ-PEPP to the POS menu").click()
    expect(page.locator(".flash")).to_have_text("PIZ-PEPP added to the POS menu.")
    expect(page.locator("tr[data-sku='PIZ-PEPP'] .badge")).to_have_text("Yes")
    page.get_by_role("button", name="Take SAL-CAES off the POS menu").click()
    expect(page.locator(".sku-list li code")).to_have_text(["PIZ-MARG", "PIZ-PEPP"])
    with live.engine.connect() as conn:
        assert store.get_integration(conn, live.keyring, iid).config["menu_skus"] == ["PIZ-MARG", "PIZ-PEPP"]
    # another company's order id, or one that is not this integration's, is no order here
    assert page.goto(live.tab("doordash", "orders", "?order=999999")).status == 404
    assert page.goto(live.tab("ubereats", "orders", f"?order={_order_id(live, taken['id'])}")).status == 404


def _order_id(live, external_id: str) -> int:
    with live.engine.connect() as conn:
        return conn.scalar(sa.select(external_order.c.id).where(external_order.c.external_id == external_id))


def test_orders_page_through_newest_first_in_a_stable_order(live, page):
    iid = live.integrations["ubereats"]
    same_instant = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    with live.engine.begin() as conn:
        ids = list(conn.scalars(sa.insert(external_order).returning(external_order.c.id), [
            {"integration_id": iid, "external_id": f"ue-{n:03d}", "raw_data": {}, "status": "received",
             "created_at": same_instant} for n in range(45)]))
        newest = conn.scalar(sa.insert(external_order).values(
            integration_id=iid, external_id="ue-newest", raw_data={}, status="received").returning(external_order.c.id))
    sign_in(page, live.url, "viewer@acme.example")
    page.goto(live.tab("ubereats", "orders"))
    seen = []
    while True:
        seen += [int(i) for i in page.locator("tr[data-order]").evaluate_all("els => els.map(e => e.dataset.order)")]
        older = page.get_by_role("link", name="Older")
        if older.count() == 0:
            break
        older.click()
    assert seen == [newest] + sorted(ids, reverse=True)
    expect(page.get_by_text("Page 3 of 3")).to_be_visible()


# ---- viewers, forged posts, other companies -----------------------------------------------------
TABS = [("procore", s) for s in ("projects", "records", "documents")] + \
       [(p, s) for p in ("doordash", "ubereats") for s in ("store", "menu", "orders")]


def _actions(live) -> list[tuple[str, dict]]:
    harbor = str(live.integrations["projects"]["Harbor Tower"])
    procore_id = str(_procore_projects(live.procore)[0][0])
    return [("procore", "projects/link", {"procore_project_id": procore_id, "project_id": harbor}),
            ("procore", "projects/unlink", {"project_id": harbor}),
            ("procore", "records/toggle", {"stream": "rfis", "enabled": "off"}),
            ("procore", "documents/upload", {"project_id": harbor}),
            *[(p, f"store/{a}", {"reason": "forged"}) for p in ("doordash", "ubereats") for a in ("open", "close", "webhook")],
            ("doordash", "menu/add", {"sku": "FORGED"}), ("doordash", "menu/remove", {"sku": "PIZ-MARG"})]


def test_a_viewer_sees_no_change_buttons_and_forged_posts_are_refused(live, page):
    with live.engine.begin() as conn:
        store.update_config(conn, live.keyring, live.integrations["doordash"], {"menu_skus": ["PIZ-MARG"]})
    sign_in(page, live.url, "viewer@acme.example")
    for provider, section in TABS:
        page.goto(live.tab(provider, section))
        expect(page.get_by_role("heading", level=2)).to_be_visible()
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.locator("main button[type=submit]")).to_have_count(0)
    token = csrf_of(page)
    before = live.state()
    for provider, action, form in _actions(live):
        answer = page.request.post(live.tab(provider, action), form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403 and "Only an admin" in answer.text(), action
    assert live.state() == before


def test_forged_posts_of_another_company_and_without_csrf_change_nothing(live, page):
    sign_in(page, live.url, "admin@bella.example")
    token = csrf_of(page)
    before = live.state()
    for provider, action, form in _actions(live):
        answer = page.request.post(live.tab(provider, action), form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 404, action
    for provider, section in TABS:
        assert page.goto(live.tab(provider, section)).status == 404
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live.url, "admin@acme.example")
    for provider, action, form in _actions(live):
        answer = page.request.post(live.tab(provider, action), form=form, max_redirects=0)
        assert answer.status == 403, action
    assert live.state() == before


# ---- accessibility and secrets on every tab -------------------------------------------------------
def _with_data(live) -> None:
    """A linked project, a shared document, a webhook address and an order: every tab has content."""
    iid = live.integrations["procore"]
    link_project(live.engine, live.keyring, iid, live.integrations["projects"]["Harbor Tower"],
                 _procore_projects(live.procore)[0][0])
    with live.engine.begin() as conn:
        for provider in ("doordash", "ubereats"):
            create_inbound(conn, live.keyring, live.integrations[provider])
        store.update_config(conn, live.keyring, live.integrations["doordash"], {"menu_skus": ["SAL-CAES"]})
        conn.execute(sa.insert(document).values(company_id=live.companies["Acme"], filename="plan.pdf",
                                                project_id=live.integrations["projects"]["Harbor Tower"],
                                                content_type="application/pdf", content=PDF, size_bytes=len(PDF)))
        conn.execute(sa.insert(external_order).values(
            integration_id=live.integrations["doordash"], external_id="dd-1", status="received",
            raw_data={"order": {"id": "dd-1", "categories": [{"items": [{"merchant_supplied_id": "PIZ-MARG",
                                                                          "name": "Margherita", "quantity": 1, "price": 1299}]}]}},
            status_history=[{"status": "received", "applied": True, "why": "webhook", "source": "OrderCreate",
                             "at": "2026-12-01T10:00:00+00:00"}]))


def _pages(live) -> list[tuple[str, str]]:
    with live.engine.connect() as conn:
        order = conn.scalar(sa.select(external_order.c.id).where(external_order.c.external_id == "dd-1"))
    return [(f"{p} {s}", live.tab(p, s)) for p, s in TABS] + [("doordash order", live.tab("doordash", "orders", f"?order={order}"))]


@pytest.mark.parametrize("email", ["admin@acme.example", "viewer@acme.example"])
def test_every_tab_has_no_serious_accessibility_violation_and_no_secret(live, page, email):
    from axe_playwright_python.sync_playwright import Axe  # heavy: only the accessibility tests load axe-core

    _with_data(live)
    sign_in(page, live.url, email)
    axe = Axe()
    for name, url in _pages(live):
        response = page.goto(url)
        assert response.status == 200, name
        html = page.content()
        assert CANARY not in html, name
        assert "error-text" not in html and "role=\"alert\"" not in html, name  # every tab read its provider
        results = axe.run(page)
        serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                   for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], (name, serious)
