"""Slack Web API client for a bot token (shared/reference/providers.md section 5.1).

Slack answers almost every failure with HTTP 200 and `{"ok": false, "error": "<code>"}`, so the
dialect reads the body of every answer; only rate limiting is an HTTP status (429 with
Retry-After, which the transport honours). Auth is a static bot token (`xoxb-...`), sent as a
bearer token; there is nothing to refresh.

A message post is not idempotent (Slack has no idempotency key): a post retried after a
timeout or a 5xx may appear twice in the channel. Rate limits (429) are refused before
posting and are safe to retry.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.providers.errors import ConfigurationProblem, NeedsReauthentication, ProviderError, RateLimited, RecordProblem, TransientProblem
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, or_default, retry_after_seconds

NAME = "slack"
DEFAULT_BASE_URL = "https://slack.com"
LIMITS: tuple[Limit, ...] = ()  # chat.postMessage: ~1/s per channel, enforced by Slack with 429 + Retry-After
JSON = "application/json; charset=utf-8"

REAUTHENTICATE = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
                            "no_permission_for_token", "not_allowed_token_type"})
CONFIGURATION = frozenset({"channel_not_found", "not_in_channel", "is_archived", "missing_scope", "no_permission",
                           "restricted_action", "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
                           "restricted_action_non_threadable_channel", "team_access_not_granted", "ekm_access_denied",
                           "access_denied", "invalid_types", "org_login_required", "team_not_found", "enterprise_is_restricted"})
TRANSIENT = frozenset({"request_timeout", "fatal_error", "internal_error", "service_unavailable", "ratelimited", "rate_limited"})
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


class SlackDialect:
    name = NAME
    default_retry_after_s = 1.0

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        code = body.get("error") if isinstance(body, dict) else None
        code = code if isinstance(code, str) else None
        if status == 429 or code in RATE_LIMITED:
            retry_after = or_default(retry_after_seconds(response.headers.get("retry-after")), self.default_retry_after_s)
            return RateLimited(NAME, "rate limited", status=status, code=code or "ratelimited", retry_after=retry_after)
        if status >= 500:
            return TransientProblem(NAME, "Slack is unavailable", status=status, code=code)
        if isinstance(body, dict) and body.get("ok") is True and status < 300:
            return None
        if code is None:  # not Slack's envelope: a proxy's page, a cut body
            return TransientProblem(NAME, f"unreadable answer (HTTP {status})", status=status)
        if code in REAUTHENTICATE:
            return NeedsReauthentication(NAME, "the bot token was refused; reconnect Slack", status=status, code=code)
        if code in CONFIGURATION:
            return ConfigurationProblem(NAME, _MESSAGES.get(code, "the bot may not do this; check the app's scopes and channels"),
                                        status=status, code=code)
        if code in TRANSIENT:
            return TransientProblem(NAME, "Slack could not finish the request", status=status, code=code)
        detail = "; ".join(str(m) for m in (body.get("response_metadata") or {}).get("messages", [])[:3]) or None
        return RecordProblem(NAME, _MESSAGES.get(code, "Slack refused the message"), status=status, code=code, detail=detail)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Slack sends no limit headers on success; a 429's Retry-After is handled by classify."""


_MESSAGES = {
    "channel_not_found": "no such channel (or the bot cannot see it); check the channel mapping",
    "not_in_channel": "the bot is not a member of the channel; invite it",
    "is_archived": "the channel is archived",
    "missing_scope": "the bot token lacks a scope this call needs (chat:write, channels:read)",
    "msg_too_long": "the message text is too long (over 40,000 characters)",
    "no_text": "the message has no text, blocks or attachments",
    "invalid_blocks": "the message blocks are invalid",
    "invalid_blocks_format": "the message blocks are not a JSON array",
    "too_many_attachments": "too many attachments (over 100)",
}


class SlackClient:
    def __init__(self, transport: Transport, default_channel: str | None = None):
        self.transport, self.default_channel = transport, default_channel

    def _call(self, method: str, *, params: dict[str, Any] | None = None, json: dict[str, Any] | None = None) -> dict[str, Any]:
        if json is not None:
            return self.transport.request("POST", f"/api/{method}", json=json, headers={"Content-Type": JSON}).json()
        return self.transport.request("GET", f"/api/{method}", params=params or {}).json()

    def post_message(self, channel: str | None = None, text: str | None = None, blocks: list[dict[str, Any]] | None = None,
                     **options: Any) -> dict[str, Any]:
        """Post to `channel` (id or name; the integration's default channel when None).
        `text` is the notification/fallback text; `blocks` an optional Block Kit array;
        `options` more chat.postMessage arguments (thread_ts, unfurl_links, ...).
        Returns `{"channel": <id>, "ts": <message ts>}`."""
        target = channel or self.default_channel
        if not target:
            raise ValueError("no channel given and the integration has no default_channel")
        if not text and not blocks:
            raise ValueError("a Slack message needs text or blocks")
        if blocks is not None and (not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks)):
            raise ValueError("blocks must be a list of objects that each have a type")
        payload: dict[str, Any] = {"channel": target, **options}
        if text:
            payload["text"] = text
        if blocks:
            payload["blocks"] = blocks
        body = self._call("chat.postMessage", json=payload)
        return {"channel": body.get("channel"), "ts": body.get("ts")}

    def channels(self, include_private: bool = True, exclude_archived: bool = True, page_size: int = 200) -> list[dict[str, Any]]:
        """Every channel the bot can see (for channel mapping): `{"id", "name", "is_private",
        "is_member", "is_archived"}`, following Slack's cursor pagination."""
        params: dict[str, Any] = {"types": "public_channel,private_channel" if include_private else "public_channel",
                                  "exclude_archived": "true" if exclude_archived else "false", "limit": page_size}
        found: list[dict[str, Any]] = []
        while True:
            body = self._call("conversations.list", params=params)
            found.extend({k: c.get(k) for k in ("id", "name", "is_private", "is_member", "is_archived")}
                         for c in body.get("channels", []))
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return found
            params["cursor"] = cursor

    def check(self) -> dict[str, Any]:
        """Who the token is (auth.test) and whether the default channel exists and has the bot."""
        who = self._call("auth.test", json={})
        summary: dict[str, Any] = {"team": who.get("team"), "team_id": who.get("team_id"), "bot_user": who.get("user")}
        if self.default_channel:
            wanted = self.default_channel.lstrip("#")
            match = next((c for c in self.channels() if wanted in (c["id"], c["name"])), None)
            if match is None:
                raise ConfigurationProblem(NAME, f"the default channel {self.default_channel} was not found (or is archived, "
                                                 "or private without the bot)", code="channel_not_found")
            summary.update(default_channel=f"#{match['name']}", default_channel_id=match["id"], bot_in_channel=bool(match["is_member"]))
        return summary
