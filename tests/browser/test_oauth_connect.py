"""Connecting integrations from the settings pages by OAuth, in Chromium, against the
emulators' consent pages (emulators/oauth.py): QuickBooks (realmId on the callback), Xero
(PKCE, organisation pick), Procore (company pick), Slack (OAuth v2 install); every way a
connect must fail and store nothing; disconnect revokes at the provider; the API-key
credential form."""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from emulators import procore as procore_emu
from emulators import quickbooks as qbo_emu
from emulators import slack as slack_emu
from emulators import xero as xero_emu
from emulators.serve import serve
from hub import integrations as store
from hub.connect.oauth_flow import CALLBACK_PATH
from hub.crypto import Keyring
from hub.inbound.verify import sign_hmac_base64
from hub.web import receiver
from hub.schema import integration, oauth_state
from tests.browser.conftest import CANARY, csrf_of, sign_in

HOME = "/settings/integrations"
APP = ("hub-app", "hub-app-secret-0001")
REALM = "9130350000000001"
XERO_MAIN, XERO_OTHER = xero_emu.DEFAULT_TENANT, "b4c2d6e8-0000-4000-8000-000000000002"
PROCORE_MAIN, PROCORE_OTHER = 562949953421312, 562949953421399


class Emulators:
    def __init__(self, site, monkeypatch):
        self.site = site
        self.qbo = qbo_emu.create_emulator(clients={})
        self.xero = xero_emu.create_emulator(clients={}, extra_tenants={XERO_OTHER: "Bella Holdings (UK)"})
        self.procore = procore_emu.create_emulator(clients={}, extra_companies={PROCORE_OTHER: "Other Builders"})
        self.slack = slack_emu.create_emulator(clients={})
        self.urls: dict[str, str] = {}
        self._stack = ExitStack()
        for name, emu in (("quickbooks", self.qbo), ("xero", self.xero), ("procore", self.procore), ("slack", self.slack)):
            # the app as a developer registers it: its one exact redirect URI (the hub's callback)
            emu.core.oauth.register_client(*APP, redirect_uris=[site.url + CALLBACK_PATH])
            self.urls[name] = self._stack.enter_context(serve(emu.app))
            prefix = f"HUB_OAUTH_{name.upper()}_"
            monkeypatch.setenv(prefix + "CLIENT_ID", APP[0])
            monkeypatch.setenv(prefix + "CLIENT_SECRET", APP[1])
            monkeypatch.setenv(prefix + "BASE_URL", self.urls[name])
        monkeypatch.setenv("HUB_OAUTH_SLACK_SIGNING_SECRET", "slack-app-signing-secret-0001")

    def close(self):
        self._stack.close()


@pytest.fixture
def emus(site, monkeypatch):
    emulators = Emulators(site, monkeypatch)
    yield emulators
    emulators.close()


def _rows(site, company: str, provider: str):
    with site.engine.connect() as conn:
        return conn.execute(sa.select(integration).where(integration.c.company_id == site.companies[company],
                                                         integration.c.provider == provider)).all()


def _decrypted(site, integration_id: int):
    with site.engine.connect() as conn:
        return store.get_integration(conn, Keyring.from_env(), integration_id)


def _states(site) -> list:
    with site.engine.connect() as conn:
        return conn.execute(sa.select(oauth_state)).all()


def _start(page, site, provider_label: str) -> None:
    """The Connect button of a provider not connected yet, on the hub page."""
    page.goto(site.url + HOME)
    page.get_by_role("button", name=f"Connect {provider_label}").click()
    page.wait_for_url(lambda url: not url.startswith(site.url))  # on to the provider's consent page


def test_connect_quickbooks_through_the_consent_page(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    _start(page, site, "QuickBooks Online")
    expect(page).to_have_url(re.compile(re.escape(emus.urls["quickbooks"]) + "/connect/oauth2"))
    expect(page.get_by_text("hub-app would like to connect")).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(site.url)}{HOME}/\d+/connection$"))
    expect(page.locator(".flash")).to_contain_text("connected to the QuickBooks Online company")
    expect(page.locator(".connected-account")).to_contain_text(REALM)
    [row] = _rows(site, "Bella", "quickbooks")
    assert (row.status, row.is_active, row.name) == ("connected", True, "QuickBooks Online (Bella)")
    item = _decrypted(site, row.id)
    assert item.config["realm_id"] == REALM and item.config["base_url"] == emus.urls["quickbooks"]
    assert item.credentials["client_id"] == APP[0]
    assert emus.qbo.core.oauth.is_live(item.credentials["refresh_token"])
    # the stored connection works for the hub's own client
    client_info = httpx.get(f"{emus.urls['quickbooks']}/v3/company/{REALM}/companyinfo/{REALM}",
                            headers={"Authorization": f"Bearer {item.credentials['access_token']}"})
    assert client_info.status_code == 200
    assert CANARY not in page.content() and item.credentials["refresh_token"] not in page.content()


def test_connect_xero_with_pkce_and_an_organisation_pick(site, emus, page):
    sign_in(page, site.url, "admin@acme.example")
    _start(page, site, "Xero")
    assert "code_challenge_method=S256" in page.url and "code_challenge=" in page.url
    # the consent page: tick both organisations, as a Xero user with two would
    page.get_by_label("Bella Holdings (UK)").check()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose the Xero organisation")
    page.get_by_label(re.compile("Demo Company")).check()
    page.get_by_role("button", name="Connect this organisation").click()
    expect(page.locator(".connected-account")).to_contain_text(XERO_MAIN)
    [row] = _rows(site, "Acme", "xero")
    item = _decrypted(site, row.id)
    assert item.config["tenant_id"] == XERO_MAIN and item.config["connection_id"]
    assert row.status == "connected"
    # the pending grant is erased once picked, and the pick cannot be made twice
    assert all(s.pending is None for s in _states(site))
    flow_id = max(s.id for s in _states(site))
    again = page.request.post(f"{site.url}{HOME}/oauth/pick/{flow_id}", form={"csrf_token": csrf_of(page), "account": XERO_OTHER})
    assert again.status == 400 and "no longer open" in again.text()
    assert len(_rows(site, "Acme", "xero")) == 1


def test_connect_procore_with_a_company_pick(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    _start(page, site, "Procore")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose the Procore company")
    page.get_by_label(re.compile("Other Builders")).check()
    page.get_by_role("button", name="Connect this company").click()
    expect(page.locator(".connected-account")).to_contain_text(str(PROCORE_OTHER))
    [row] = _rows(site, "Bella", "procore")
    assert _decrypted(site, row.id).config["company_id"] == str(PROCORE_OTHER)


def test_connect_slack_installs_the_bot(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    _start(page, site, "Slack")
    assert "scope=chat%3Awrite%2Cchannels%3Aread%2Cincoming-webhook" in page.url
    page.get_by_label("Post to").select_option(label="#alerts")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".connected-account")).to_contain_text("Acme Builders")
    [row] = _rows(site, "Bella", "slack")
    item = _decrypted(site, row.id)
    assert item.credentials["bot_token"].startswith("xoxb-") and item.credentials["signing_secret"] == "slack-app-signing-secret-0001"
    assert (item.config["team_id"], item.config["default_channel"]) == ("T0ACME0001", "#alerts")
    posted = httpx.post(f"{emus.urls['slack']}/api/auth.test", headers={"Authorization": f"Bearer {item.credentials['bot_token']}"})
    assert posted.json()["ok"] is True


def test_a_denied_consent_says_so_and_stores_nothing(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    before = site.snapshot()
    _start(page, site, "QuickBooks Online")
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("alert")).to_contain_text("You declined the request on QuickBooks Online's page")
    assert site.snapshot() == before and _rows(site, "Bella", "quickbooks") == []


def test_a_replayed_callback_is_refused_and_stores_nothing_more(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    callbacks = []
    page.on("request", lambda r: callbacks.append(r.url) if CALLBACK_PATH in r.url else None)
    _start(page, site, "QuickBooks Online")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".connected-account")).to_contain_text(REALM)
    after_first = site.snapshot()
    page.goto(callbacks[0])  # the same callback URL again: same state, same code
    expect(page.get_by_role("alert")).to_contain_text("already used")
    assert site.snapshot() == after_first


def test_an_expired_or_unknown_state_is_refused(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    before = site.snapshot()
    _start(page, site, "QuickBooks Online")
    with site.engine.begin() as conn:  # the person came back after more than 10 minutes
        conn.execute(sa.update(oauth_state).values(created_at=sa.func.now() - sa.text("interval '11 minutes'")))
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("expired (10 minutes)")
    page.goto(f"{site.url}{CALLBACK_PATH}?state=made-up-state&code=x&realmId={REALM}")
    expect(page.get_by_role("alert")).to_contain_text("unknown state")
    assert site.snapshot() == before


def test_a_state_from_another_session_is_refused(site, emus, page, browser):
    sign_in(page, site.url, "admin@bella.example")
    _start(page, site, "QuickBooks Online")
    consent_url = page.url
    other = browser.new_page()  # the same admin in another browser session finishes it
    sign_in(other, site.url, "admin@bella.example")
    other.goto(consent_url)
    other.get_by_role("button", name="Approve").click()
    expect(other.get_by_role("alert")).to_contain_text("another browser session")
    assert _rows(site, "Bella", "quickbooks") == []
    other.close()


def test_a_failed_code_exchange_says_so_and_stores_nothing(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    before = site.snapshot()
    _start(page, site, "QuickBooks Online")
    emus.qbo.core.oauth.set_token_faults(1, 503)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("QuickBooks Online refused the authorization code (HTTP 503")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was stored")
    assert site.snapshot() == before


def test_disconnect_revokes_at_the_provider_then_reconnect(site, emus, page):
    sign_in(page, site.url, "admin@acme.example")
    _start(page, site, "Xero")
    page.get_by_role("button", name="Approve").click()  # one organisation: no pick
    expect(page.locator(".connected-account")).to_contain_text(XERO_MAIN)
    [row] = _rows(site, "Acme", "xero")
    tokens = _decrypted(site, row.id).credentials
    connection = httpx.get(f"{emus.urls['xero']}/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert [c["tenantId"] for c in connection] == [XERO_MAIN]
    page.get_by_role("button", name="Disconnect Xero").click()
    expect(page.locator(".flash")).to_contain_text("Xero revoked the grant")
    assert not emus.xero.core.oauth.is_live(tokens["refresh_token"])  # the emulator shows the grant dead
    assert not emus.xero.core.oauth.is_live(tokens["access_token"])
    [row] = _rows(site, "Acme", "xero")
    item = _decrypted(site, row.id)
    assert (row.status, row.is_active) == ("disconnected", False) and "refresh_token" not in item.credentials
    assert item.config["tenant_id"] == XERO_MAIN  # what it was connected to stays, for the reconnect
    # reconnect from the tab: the same integration, connected again
    page.get_by_role("button", name="Reconnect Xero").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash")).to_contain_text("connected again")
    [again] = _rows(site, "Acme", "xero")
    assert again.id == row.id and (again.status, again.is_active) == ("connected", True)


def test_a_failed_revocation_changes_nothing_until_the_admin_confirms(site, emus, page):
    sign_in(page, site.url, "admin@bella.example")
    _start(page, site, "Procore")
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("button", name="Connect this company").click()
    [row] = _rows(site, "Bella", "procore")
    refresh = _decrypted(site, row.id).credentials["refresh_token"]
    emus._stack.close()  # the provider is unreachable
    page.get_by_role("button", name="Disconnect Procore").click()
    expect(page.locator(".flash")).to_contain_text("could not be reached for the revocation")
    [still] = _rows(site, "Bella", "procore")
    assert still.status == "connected" and _decrypted(site, row.id).credentials["refresh_token"] == refresh
    page.get_by_role("button", name="Disconnect anyway").click()
    expect(page.locator(".flash")).to_contain_text("remove the app there too")
    [gone] = _rows(site, "Bella", "procore")
    assert gone.status == "disconnected" and "refresh_token" not in _decrypted(site, row.id).credentials


def test_a_viewer_cannot_start_a_connect(site, emus, page):
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(site.url + HOME)
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    answer = page.request.post(f"{site.url}{HOME}/connect/xero", form={"csrf_token": csrf_of(page)}, max_redirects=0)
    assert answer.status == 403
    own = site.integrations["QuickBooks (Acme)"]
    for action in ("reconnect", "disconnect"):
        answer = page.request.post(f"{site.url}{HOME}/{own}/connection/{action}", form={"csrf_token": csrf_of(page)}, max_redirects=0)
        assert answer.status == 403
    assert _states(site) == []


def test_api_key_credentials_are_masked_blank_keeps_and_a_new_value_is_saved(site, page):
    sign_in(page, site.url, "admin@bella.example")
    own = site.integrations["DoorDash (Bella)"]
    page.goto(f"{site.url}{HOME}/{own}/connection")
    stored = _decrypted(site, own).credentials.reveal()
    assert CANARY not in page.content()
    expect(page.get_by_label(re.compile("^Signing secret"))).to_have_value("")
    expect(page.locator("label[for='field-credentials.signing_secret'] .badge")).to_have_text("set")
    # a new signing secret, the rest blank: only that one changes
    page.get_by_label(re.compile("^Signing secret")).fill("new-signing-secret-0002")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.locator(".flash")).to_have_text("DoorDash (Bella): credentials saved.")
    saved = _decrypted(site, own)
    assert saved.credentials["signing_secret"] == "new-signing-secret-0002"
    assert {k: v for k, v in saved.credentials.items() if k != "signing_secret"} == {k: v for k, v in stored.items() if k != "signing_secret"}
    assert saved.config["store_id"] == "601135"
    # a required identifier emptied: the form again, with the message, nothing written
    before = site.snapshot()
    page.get_by_label(re.compile("^Store")).fill("")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.get_by_role("alert")).to_contain_text("store_id")
    assert site.snapshot() == before
    assert "new-signing-secret-0002" not in page.content()


def _qbo_webhook(url: str, path: str, token: str) -> int:
    """A QuickBooks change notification signed with `token`, as Intuit sends it; the answer's status."""
    body = json.dumps({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {
        "entities": [{"name": "Vendor", "id": "5", "operation": "Update", "lastUpdated": "2026-12-07T10:00:00Z"}]}}]}).encode()
    return httpx.post(url + path, content=body, headers={"intuit-signature": sign_hmac_base64(token, body),
                                                        "content-type": "application/json"}).status_code


def test_an_admin_sets_the_webhook_key_of_an_oauth_provider_and_the_receiver_verifies_with_it(site, page):
    qbo = site.integrations["QuickBooks (Acme)"]
    stored = _decrypted(site, qbo).credentials["webhook_verifier_token"]
    sign_in(page, site.url, "admin@acme.example")
    page.goto(f"{site.url}{HOME}/{qbo}/connection")
    expect(page.get_by_role("heading", name="Webhooks from QuickBooks Online")).to_be_visible()
    expect(page.locator(".webhook-url")).to_contain_text("None yet")
    expect(page.locator("label[for='field-credentials.webhook_verifier_token'] .badge")).to_have_text("set")
    # saved blank: the stored token is kept, and the endpoint QuickBooks calls is made with it
    page.get_by_role("button", name="Save webhook verifier token").click()
    expect(page.locator(".flash")).to_contain_text("webhook verifier token saved")
    path = page.locator(".webhook-url code").inner_text()
    assert re.fullmatch(r"/webhooks/quickbooks/\d+", path)
    assert _qbo_webhook(site.url, path, stored) == 200
    # a new token: the receiver verifies with it from now on, the old one is refused
    page.get_by_label(re.compile("^Webhook verifier token")).fill("new-verifier-token-0002")
    page.get_by_role("button", name="Save webhook verifier token").click()
    expect(page.locator(".flash")).to_contain_text("webhook verifier token saved")
    expect(page.locator(".webhook-url code")).to_have_text(path)
    assert _decrypted(site, qbo).credentials["webhook_verifier_token"] == "new-verifier-token-0002"
    time.sleep(receiver.REVERIFY_AFTER_S)  # the receiver re-reads an endpoint it cached over a second ago
    assert _qbo_webhook(site.url, path, "new-verifier-token-0002") == 200  # at once: no wait for the cache
    assert _qbo_webhook(site.url, path, stored) == 401
    assert "new-verifier-token-0002" not in page.content() and CANARY not in page.content()
    # Slack's signing secret is set the same way; an API-key provider has no such form
    page.goto(f"{site.url}{HOME}/{site.integrations['Slack (Acme)']}/connection")
    expect(page.get_by_role("button", name="Save signing secret")).to_be_visible()
    # a viewer sees whether it is set, and cannot change it
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site.url, "viewer@acme.example")
    page.goto(f"{site.url}{HOME}/{qbo}/connection")
    expect(page.locator(".webhook-url code")).to_have_text(path)
    expect(page.get_by_role("button", name="Save webhook verifier token")).to_have_count(0)
    answer = page.request.post(f"{site.url}{HOME}/{qbo}/connection/webhook", max_redirects=0,
                               form={"csrf_token": csrf_of(page), "credentials.webhook_verifier_token": "viewer-token"})
    assert answer.status == 403
    assert _decrypted(site, qbo).credentials["webhook_verifier_token"] == "new-verifier-token-0002"


def test_oauth_pages_pass_axe_and_show_no_secret(site, emus, page):
    from axe_playwright_python.sync_playwright import Axe

    sign_in(page, site.url, "admin@acme.example")
    seen = {}
    for name, url in (("qbo connection", f"{HOME}/{site.integrations['QuickBooks (Acme)']}/connection"),
                      ("slack connection", f"{HOME}/{site.integrations['Slack (Acme)']}/connection")):
        page.goto(site.url + url)
        seen[name] = page.content()
        serious = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], (name, serious)
    _start(page, site, "Xero")
    page.get_by_label("Bella Holdings (UK)").check()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose the Xero organisation")
    seen["pick"] = page.content()
    assert [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")] == []
    page.goto(f"{site.url}{CALLBACK_PATH}?state=nope")
    seen["refused"] = page.content()
    assert [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")] == []
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site.url, "admin@bella.example")
    page.goto(f"{site.url}{HOME}/{site.integrations['DoorDash (Bella)']}/connection")
    seen["doordash credentials"] = page.content()
    assert [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")] == []
    for name, html in seen.items():
        assert CANARY not in html, name
