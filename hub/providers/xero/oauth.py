"""Connecting Xero from the settings pages: PKCE (S256) on top of the app's secret; after the
exchange `GET /connections` lists the organisations (tenants) the user ticked, and the person
picks the one this integration syncs. Disconnect deletes that connection
(`DELETE /connections/{id}`) and then revokes the refresh token (RFC 7009 at
identity.xero.com/connect/revocation), which ends the grant."""

from __future__ import annotations

from hub.providers.oauth_calls import ConnectCall, ConnectFailed, RemoteAccount, RevokeCall, answer, revoke_rfc7009

REVOKE_URL = "https://identity.xero.com/connect/revocation"


def accounts(call: ConnectCall) -> list[RemoteAccount]:
    connections = call.get("/connections", "the list of organisations")
    if not isinstance(connections, list):
        raise ConnectFailed("Xero answered the list of organisations with something else than a list")
    return [RemoteAccount(str(c["tenantId"]), str(c.get("tenantName") or c["tenantId"]), connection_id=str(c.get("id") or ""))
            for c in connections if isinstance(c, dict) and c.get("tenantId") and c.get("tenantType", "ORGANISATION") == "ORGANISATION"]


def revoke(call: RevokeCall) -> None:
    connection = call.config.get("connection_id")
    if connection:
        token = call.fresh_access_token()
        try:
            answer(call.app, "removing the connection", lambda: call.http.delete(
                f"{call.api_base}/connections/{connection}", headers={"Authorization": f"Bearer {token}"}))
        except ConnectFailed as exc:
            if "HTTP 404" not in str(exc):  # already removed at Xero: nothing left to delete
                raise
    revoke_rfc7009(call, str(call.credentials.get("refresh_token") or ""))
