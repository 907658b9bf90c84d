"""The emulators' consent pages and OAuth extras (emulators/oauth.py and the providers'
emulators): exact redirect URIs and known clients, Approve/Deny, the account choice, PKCE
at the token endpoint, revocation, Xero's connections, Slack's oauth.v2.access."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest

from emulators import procore, quickbooks, slack, xero
from emulators.serve import serve

REDIRECT = "http://hub.example/settings/integrations/oauth/callback"
APP = ("app", "app-secret")


def _client(emulator):
    emulator.core.oauth.register_client(*APP, redirect_uris=[REDIRECT])
    return _http(emulator)


@contextmanager
def _http(emulator) -> Iterator[httpx.Client]:
    """The emulator served on a free port, and a client that shows redirects instead of following them."""
    with serve(emulator.app) as url, httpx.Client(base_url=url, follow_redirects=False) as http:
        yield http


def _consent_id(page: str) -> str:
    return re.search(r'name="consent_id" value="([^"]+)"', page).group(1)


def _query(response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def qbo():
    emulator = quickbooks.create_emulator(clients={})
    with _client(emulator) as http:
        yield emulator, http


def test_unknown_client_or_unregistered_redirect_uri_is_an_error_page_not_a_redirect(qbo):
    _, http = qbo
    base = {"response_type": "code", "client_id": APP[0], "redirect_uri": REDIRECT, "state": "s"}
    for change, words in (({"client_id": "nobody"}, "invalid client_id"), ({"redirect_uri": REDIRECT + "/other"}, "redirect_uri"),
                          ({"redirect_uri": "http://evil.example/cb"}, "redirect_uri"), ({"response_type": "token"}, "response_type")):
        page = http.get("/connect/oauth2", params={**base, **change})
        assert page.status_code == 400 and "location" not in page.headers, change
        assert words in page.text and page.headers["content-type"].startswith("text/html")


def test_approve_redirects_with_code_state_and_realm_and_the_code_works_once(qbo):
    emulator, http = qbo
    page = http.get("/connect/oauth2", params={"response_type": "code", "client_id": APP[0], "redirect_uri": REDIRECT,
                                               "state": "st-1", "scope": "com.intuit.quickbooks.accounting"})
    assert page.status_code == 200 and "Approve" in page.text and "Deny" in page.text
    query = _query(http.post("/connect/oauth2", data={"consent_id": _consent_id(page.text), "decision": "approve",
                                                      "account": emulator.realm_id}))
    assert query["state"] == "st-1" and query["realmId"] == emulator.realm_id
    token = http.post(quickbooks.TOKEN_PATH, auth=APP, data={"grant_type": "authorization_code", "code": query["code"],
                                                             "redirect_uri": REDIRECT})
    assert token.status_code == 200
    again = http.post(quickbooks.TOKEN_PATH, auth=APP, data={"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT})
    assert again.json()["error"] == "invalid_grant"
    # the consent id is single use too
    assert http.post("/connect/oauth2", data={"consent_id": _consent_id(page.text), "decision": "approve"}).status_code == 400
    # revoke: the grant is dead, the refresh token cannot be exchanged
    refresh = token.json()["refresh_token"]
    assert http.post(quickbooks.REVOKE_PATH, auth=("app", "wrong"), json={"token": refresh}).status_code == 401
    assert http.post(quickbooks.REVOKE_PATH, auth=APP, json={"token": refresh}).status_code == 200
    assert not emulator.core.oauth.is_live(refresh) and not emulator.core.oauth.is_live(token.json()["access_token"])


def test_deny_redirects_with_access_denied_and_no_code(qbo):
    _, http = qbo
    page = http.get("/connect/oauth2", params={"response_type": "code", "client_id": APP[0], "redirect_uri": REDIRECT, "state": "st-2"})
    query = _query(http.post("/connect/oauth2", data={"consent_id": _consent_id(page.text), "decision": "deny"}))
    assert query["error"] == "access_denied" and query["state"] == "st-2" and "code" not in query


def test_token_faults_fail_the_next_exchange(qbo):
    emulator, http = qbo
    emulator.core.oauth.set_token_faults(1, 503)
    assert http.post(quickbooks.TOKEN_PATH, auth=APP, data={"grant_type": "refresh_token", "refresh_token": "x"}).status_code == 503
    assert http.post(quickbooks.TOKEN_PATH, auth=APP, data={"grant_type": "refresh_token", "refresh_token": "x"}).status_code == 400


def test_xero_pkce_is_checked_and_connections_follow_the_ticked_organisations():
    other = "b4c2d6e8-0000-4000-8000-000000000002"
    emulator = xero.create_emulator(clients={}, extra_tenants={other: "Second Org"})
    with _client(emulator) as http:
        verifier = "verifier-" + "a" * 50

        def authorize(accounts):
            page = http.get("/identity/connect/authorize", params={
                "response_type": "code", "client_id": APP[0], "redirect_uri": REDIRECT, "state": "s",
                "code_challenge": _s256(verifier), "code_challenge_method": "S256"})
            assert "Second Org" in page.text and 'type="checkbox"' in page.text
            return _query(http.post("/identity/connect/authorize", data={"consent_id": _consent_id(page.text), "decision": "approve",
                                                                          "account": accounts}))["code"]

        def exchange(code, code_verifier):
            data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
            return http.post("/connect/token", auth=APP, data={**data, **({"code_verifier": code_verifier} if code_verifier else {})})

        assert "code_verifier" in exchange(authorize([xero.DEFAULT_TENANT]), None).json()["error_description"]
        assert "does not match" in exchange(authorize([xero.DEFAULT_TENANT]), "wrong-verifier-" + "b" * 40).json()["error_description"]
        token = exchange(authorize([xero.DEFAULT_TENANT, other]), verifier).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        connections = http.get("/connections", headers=bearer).json()
        assert {(c["tenantId"], c["tenantName"]) for c in connections} == {(xero.DEFAULT_TENANT, "Demo Company (US)"), (other, "Second Org")}
        gone = next(c for c in connections if c["tenantId"] == other)
        assert http.delete(f"/connections/{gone['id']}", headers=bearer).status_code == 204
        assert http.delete(f"/connections/{gone['id']}", headers=bearer).status_code == 404
        assert [c["tenantId"] for c in http.get("/connections", headers=bearer).json()] == [xero.DEFAULT_TENANT]
        assert http.post("/connect/revocation", auth=APP, data={"token": token["refresh_token"]}).status_code == 200
        assert http.get("/connections", headers=bearer).status_code == 401


def test_procore_lists_every_company_of_the_user_and_revokes():
    emulator = procore.create_emulator(clients={}, extra_companies={42: "Other Co"})
    with _client(emulator) as http:
        page = http.get("/oauth/authorize", params={"response_type": "code", "client_id": APP[0], "redirect_uri": REDIRECT})
        code = _query(http.post("/oauth/authorize", data={"consent_id": _consent_id(page.text), "decision": "approve"}))["code"]
        token = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                                "client_id": APP[0], "client_secret": APP[1]}).json()
        companies = http.get("/rest/v1.0/companies", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        assert {c["name"] for c in companies} == {"Hub Demo Builders", "Other Co"}
        http.post("/oauth/revoke", data={"token": token["refresh_token"], "client_id": APP[0], "client_secret": APP[1]})
        assert not emulator.core.oauth.is_live(token["refresh_token"])


def test_slack_install_gives_a_bot_token_with_the_chosen_channel_and_auth_revoke_ends_it():
    emulator = slack.create_emulator(clients={})
    with _client(emulator) as http:
        page = http.get("/oauth/v2/authorize", params={"client_id": APP[0], "response_type": "code", "redirect_uri": REDIRECT,
                                                       "scope": "chat:write,incoming-webhook", "state": "s"})
        assert "Post to" in page.text and "#alerts" in page.text
        code = _query(http.post("/oauth/v2/authorize", data={"consent_id": _consent_id(page.text), "decision": "approve",
                                                             "account": "T0ACME0001", "channel": "C0ALERTS01"}))["code"]
        bad = http.post("/api/oauth.v2.access", data={"client_id": APP[0], "client_secret": "wrong", "code": code, "redirect_uri": REDIRECT})
        assert bad.json() == {"ok": False, "error": "bad_client_secret"}
        answer = http.post("/api/oauth.v2.access", data={"client_id": APP[0], "client_secret": APP[1], "code": code,
                                                         "redirect_uri": REDIRECT}).json()
        assert answer["ok"] and answer["token_type"] == "bot" and answer["access_token"].startswith("xoxb-")
        assert answer["team"] == {"id": "T0ACME0001", "name": "Acme Builders"} and answer["incoming_webhook"]["channel"] == "#alerts"
        reused = http.post("/api/oauth.v2.access", data={"client_id": APP[0], "client_secret": APP[1], "code": code, "redirect_uri": REDIRECT})
        assert reused.json() == {"ok": False, "error": "invalid_code"}
        bearer = {"Authorization": f"Bearer {answer['access_token']}"}
        assert http.post("/api/auth.test", headers=bearer).json()["ok"] is True
        assert http.post("/api/auth.revoke", headers=bearer).json() == {"ok": True, "revoked": True}
        assert http.post("/api/auth.test", headers=bearer).json()["error"] == "token_revoked"


def test_a_client_without_redirect_uris_still_consents_at_once():
    """The protocol-test behaviour the SDK and client tests rely on."""
    emulator = quickbooks.create_emulator()
    with _http(emulator) as http:
        response = http.get("/connect/oauth2", params={"response_type": "code", "client_id": "hub-demo", "redirect_uri": "http://x/cb"})
        assert response.status_code == 302 and "code=" in response.headers["location"]
