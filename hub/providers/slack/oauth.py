"""Installing the hub's Slack app from the settings pages (OAuth v2): `oauth.v2.access` answers
a bot token (`xoxb-…`) and the workspace (`team`); with the `incoming-webhook` scope the person
also chose a channel on Slack's consent page, which becomes the default channel. Errors come
as HTTP 200 `{"ok": false, "error"}` (hub/providers/oauth_calls.py reads them). Disconnect
calls `auth.revoke` with the bot token; a token Slack already refuses counts as revoked."""

from __future__ import annotations

from typing import Any

from hub.providers.oauth_calls import ConnectCall, ConnectFailed, RemoteAccount, RevokeCall, answer


def accounts(call: ConnectCall) -> list[RemoteAccount]:
    team = call.token.get("team") or {}
    if not team.get("id"):
        raise ConnectFailed("Slack did not say which workspace the app was installed in")
    return [RemoteAccount(str(team["id"]), str(team.get("name") or team["id"]))]


def config_from_token(token: dict[str, Any]) -> dict[str, Any]:
    channel = (token.get("incoming_webhook") or {}).get("channel")
    return {"default_channel": channel} if channel else {}


def revoke(call: RevokeCall) -> None:
    token = call.credentials.get("bot_token")
    if not token:
        return  # nothing installed to revoke
    try:
        answer(call.app, "the revocation", lambda: call.http.post(
            f"{call.api_base}/api/auth.revoke", headers={"Authorization": f"Bearer {token}"}))
    except ConnectFailed as exc:
        if not any(code in str(exc) for code in ("invalid_auth", "token_revoked", "account_inactive")):
            raise
