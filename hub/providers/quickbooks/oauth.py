"""Connecting QuickBooks Online from the settings pages: Intuit names the company the user
chose on the callback (`realmId`); its name comes from CompanyInfo. Disconnect revokes the
refresh token at Intuit's revoke endpoint (a JSON body `{"token"}`, Basic client auth), which
ends the whole grant."""

from __future__ import annotations

from hub.providers.oauth_calls import ConnectCall, ConnectFailed, RemoteAccount, RevokeCall, answer

REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"


def accounts(call: ConnectCall) -> list[RemoteAccount]:
    realm = (call.callback.get("realmId") or "").strip()
    if not realm.isdigit():
        raise ConnectFailed("QuickBooks did not say which company was connected (no realmId on the callback)")
    info = call.get(f"/v3/company/{realm}/companyinfo/{realm}", "the company's details")
    name = ((info or {}).get("CompanyInfo") or {}).get("CompanyName") or f"Company {realm}"
    return [RemoteAccount(realm, str(name))]


def revoke(call: RevokeCall) -> None:
    token = call.credentials.get("refresh_token") or call.credentials.get("access_token")
    if not token:
        raise ConnectFailed("QuickBooks: no token is stored to revoke")
    answer(call.app, "the revocation", lambda: call.http.post(
        call.revoke_url, json={"token": token}, auth=(call.app.client_id, call.app.client_secret),
        headers={"Accept": "application/json"}))
