"""Connecting Procore from the settings pages: the grant is the user's; after the exchange
`GET /rest/v1.0/companies` lists the companies the user belongs to and the person picks the
one this integration syncs. Disconnect revokes at /oauth/revoke (form `token` with the client
id and secret), which ends the whole authorization."""

from __future__ import annotations

from hub.providers.oauth_calls import ConnectCall, ConnectFailed, RemoteAccount, RevokeCall, revoke_rfc7009

REVOKE_URL = "https://login.procore.com/oauth/revoke"


def accounts(call: ConnectCall) -> list[RemoteAccount]:
    companies = call.get("/rest/v1.0/companies", "the list of companies")
    if not isinstance(companies, list):
        raise ConnectFailed("Procore answered the list of companies with something else than a list")
    return [RemoteAccount(str(c["id"]), str(c.get("name") or c["id"])) for c in companies
            if isinstance(c, dict) and c.get("id") is not None and c.get("is_active", True)]


def revoke(call: RevokeCall) -> None:
    revoke_rfc7009(call, str(call.credentials.get("refresh_token") or call.credentials.get("access_token") or ""), client_auth="form")
