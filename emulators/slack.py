"""Slack Web API emulator: `chat.postMessage`, `conversations.list` and `auth.test` for a bot
token, with Slack's envelopes (`{"ok": true, ...}` / `{"ok": false, "error": "<code>"}` on
HTTP 200), its per-channel rate limit (HTTP 429 + Retry-After) and an admin view of every
posted message. Facts follow providers.md section 5.1.

Public API (`create_emulator(...) -> SlackEmulator`, with `.app`, `.core`):
- `messages` (every posted message: `{"channel", "channel_name", "ts", "text", "blocks",
  "attachments", "thread_ts", "user", "at"}`), `channels` (id -> channel record),
  `add_channel(name, is_member=True, is_private=False, is_archived=False) -> dict`,
  `add_token(token)`, `revoke_token(token)`.
- Auth: `Authorization: Bearer xoxb-...` (or, for form and GET requests only, a `token`
  argument, as Slack still accepts). The demo bot token is `DEFAULT_BOT_TOKEN` (the value
  hub/demo.py stores). Missing -> `not_authed`, unknown -> `invalid_auth`, revoked ->
  `token_revoked`.
- Workspace: team "Acme Builders" (`T0ACME0001`), bot user `U0HUBBOT01`; channels `#general`
  (C0GENERAL1), `#ops` (C0OPS00001), `#alerts` (C0ALERTS01), `#random` (C0RANDOM01, the bot is
  not a member), `#old-announcements` (C0OLDANN01, archived), private `#leadership`
  (G0LEADER01, the bot is a member).

Routes: `GET|POST /api/chat.postMessage`, `/api/conversations.list`, `/api/auth.test`; any other
`/api/<method>` -> HTTP 404 `{"ok": false, "error": "unknown_method"}`.

Admin routes (besides the framework's, see core.py):
| method and path | body | does |
|---|---|---|
| GET, DELETE /_emulator/messages | `?channel=<id or name>` | posted messages / forget them |
| GET, POST /_emulator/channels | `{"name", "is_member"?, "is_private"?, "is_archived"?}` | list / add a channel |
| POST /_emulator/tokens | `{"token", "revoked"?: bool}` | add or revoke a bot token |

chat.postMessage (reference [C] unless noted):
- Arguments from a JSON body (`application/json`, where `blocks`/`attachments` are arrays), a
  form body or the query string (where they are JSON-encoded strings). `channel` is an id
  (C.../G...) or a name with or without `#`.
- Errors, HTTP 200: `channel_not_found` (missing or unknown channel), `not_in_channel`,
  `is_archived`, `no_text` (no text, blocks or attachments), `msg_too_long` (text over 40,000
  characters: Slack documents truncation there; the emulator refuses, UNCONFIRMED),
  `invalid_blocks_format` (blocks not an array or not JSON), `invalid_blocks` (an element
  that is not an object with a string `type`, or more than 50 blocks; with
  `response_metadata.messages` as Slack gives), `too_many_attachments` (over 100),
  `invalid_json` (a JSON body that does not parse), `invalid_arguments` (a JSON body that is
  not an object).
- Success: `{"ok": true, "channel": <id>, "ts": "<secs>.<6 digits>", "message": {"type":
  "message", "subtype": "bot_message", "text", "ts", "bot_id", "user", "team", "app_id",
  "blocks"?, "thread_ts"?}}`; JSON bodies without `charset` get Slack's `missing_charset`
  warning (`warning` + `response_metadata.warnings`).
- Rate limit: a token bucket per channel, `per_channel_per_s` messages per second (default 1)
  with bursts up to `burst` (default 3), and a workspace-wide `workspace_per_minute` (default
  600, UNCONFIRMED) on the emulator clock. Over it: **HTTP 429**, `Retry-After: <whole
  seconds, at least 1>`, body `{"ok": false, "error": "ratelimited"}` ([P]; the method doc
  also lists `rate_limited`). Refused calls do not use up the budget.

conversations.list: `types` (default `public_channel`; `private_channel` lists private
channels the bot is in), `exclude_archived`, `limit` (default 100, 1..1000, else
`invalid_limit`), `cursor` (opaque; a bad one -> `invalid_cursor`); answers `{"ok": true,
"channels": [...], "response_metadata": {"next_cursor": "" when done}}`. Tier 2 rate limit,
`tier2_per_minute` (default 20) per token. auth.test: `{"ok": true, "url", "team", "user",
"team_id", "user_id", "bot_id", "is_enterprise_install": false}` (Tier 4-ish, 100 per minute).

Choices where the reference is UNCONFIRMED (or silent): the ids and names above, the
workspace limit, `unknown_method` on HTTP 404, 5xx bodies `{"ok": false, "error": "fatal_error"}`
(500) / `"service_unavailable"` (others), `thread_ts` stored without checking the parent.
Not emulated: other methods, incoming webhooks' posting URL, Events API.

OAuth v2 install (reference: oauth-and-billing.md): `GET /oauth/v2/authorize?client_id&scope&
redirect_uri&state` is the consent page (emulators/oauth.py; client "hub-demo" /
"hub-demo-secret" by default, a consent page once redirect URIs are registered for it), for
the one workspace; with the `incoming-webhook` scope the user also picks the channel, as in
Slack. `POST /api/oauth.v2.access` (`client_id`, `client_secret` as form fields or Basic auth,
`code`, `redirect_uri`) answers `{"ok": true, "access_token": "xoxb-...", "token_type": "bot",
"scope", "bot_user_id", "app_id", "team": {"id", "name"}, "enterprise": null,
"is_enterprise_install": false, "authed_user": {"id"}, "incoming_webhook"?: {"channel",
"channel_id", "configuration_url", "url"}}`, the bot token then usable on every method;
errors `invalid_client_id`, `bad_client_secret`, `invalid_code`, `bad_redirect_uri`,
`invalid_code_verifier` (HTTP 200, `ok: false`). `auth.revoke` ends the calling token
(`{"ok": true, "revoked": true}`; later calls `token_revoked`).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import secrets
import threading
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore
from emulators.oauth import Consent, Grant, RefreshPolicy, client_credentials
from emulators.ratelimit import SlidingWindow

DEFAULT_BOT_TOKEN = "xoxb-demo-token-000000"
TEAM = {"id": "T0ACME0001", "name": "Acme Builders", "domain": "acme-builders"}
BOT = {"user_id": "U0HUBBOT01", "user": "hubbot", "bot_id": "B0HUBBOT01", "app_id": "A0HUBAPP01"}
MAX_TEXT, MAX_BLOCKS, MAX_ATTACHMENTS = 40_000, 50, 100
DEFAULT_CHANNELS = (
    {"id": "C0GENERAL1", "name": "general", "is_general": True},
    {"id": "C0OPS00001", "name": "ops"},
    {"id": "C0ALERTS01", "name": "alerts"},
    {"id": "C0RANDOM01", "name": "random", "is_member": False},
    {"id": "C0OLDANN01", "name": "old-announcements", "is_archived": True},
    {"id": "G0LEADER01", "name": "leadership", "is_private": True},
)


class SlackError(Exception):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, headers or {}, extra


class _TokenBuckets:
    """`rate` tokens per second, at most `burst` saved up, per key (emulator clock)."""

    def __init__(self, clock, rate: float, burst: int):
        self.clock, self.rate, self.burst = clock, rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """0 if a token is available now (without taking it), else seconds until one is."""
        with self._lock:
            tokens, _ = self._refill(key)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str) -> None:
        with self._lock:
            tokens, now = self._refill(key)
            self._state[key] = (tokens - 1, now)

    def _refill(self, key: str) -> tuple[float, float]:
        now = self.clock.time()
        tokens, last = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        self._state[key] = (tokens, now)
        return tokens, now


class SlackEmulator:
    def __init__(self, *, tokens: tuple[str, ...], channels: tuple[dict[str, Any], ...], per_channel_per_s: float, burst: int,
                 workspace_per_minute: int, tier2_per_minute: int, clients: dict[str, str] | None = None):
        self.core = EmulatorCore("slack", RefreshPolicy(access_ttl=43200))
        for client_id, secret in (clients if clients is not None else {"hub-demo": "hub-demo-secret"}).items():
            self.core.oauth.register_client(client_id, secret)
        self.core.oauth.consent = Consent("Slack", "workspace", lambda: [(TEAM["id"], TEAM["name"])], subject_key="team_id",
                                          extra_choice=self._webhook_channel_choice)
        self.clock = self.core.clock
        self.lock = threading.RLock()
        self.tokens: dict[str, bool] = {t: True for t in tokens}  # token -> active
        self.channels: dict[str, dict[str, Any]] = {}
        for channel in channels:
            self.add_channel(**channel)
        self.messages: list[dict[str, Any]] = []
        self.buckets = _TokenBuckets(self.clock, per_channel_per_s, burst)
        self.workspace = SlidingWindow(self.clock, workspace_per_minute, 60.0, "workspace")
        self.tier2 = SlidingWindow(self.clock, tier2_per_minute, 60.0, "tier2")
        self.tier4 = SlidingWindow(self.clock, 100, 60.0, "tier4")
        self._seq = itertools.count(1)
        self.app = self.core.build_app(
            api_routes=[Route("/api/oauth.v2.access", self._oauth_access, methods=["GET", "POST"]),
                        Route("/api/{method}", self._dispatch, methods=["GET", "POST"])],
            oauth_token_path=f"{ADMIN_PREFIX}/oauth/token", oauth_authorize_path="/oauth/v2/authorize",
            is_api_path=lambda path: path.startswith("/api/"),
            unauthorized_response=lambda reason: self._fail(SlackError("invalid_auth")),
            throttle_response=self._throttled, error_response=self._server_error, admin_routes=self._admin_routes())

    # ---- public ---------------------------------------------------------------------------------
    def add_channel(self, name: str, id: str | None = None, is_member: bool = True, is_private: bool = False,
                    is_archived: bool = False, is_general: bool = False) -> dict[str, Any]:
        name = name.lstrip("#")
        created = int(self.clock.time()) - 86400 * 90
        with self.lock:
            channel_id = id or f"{'G' if is_private else 'C'}{len(self.channels) + 1:09d}"
            channel = {"id": channel_id, "name": name, "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False,
                       "is_private": is_private, "created": created, "is_archived": is_archived, "is_general": is_general,
                       "unlinked": 0, "name_normalized": name, "is_shared": False, "is_org_shared": False,
                       "is_pending_ext_shared": False, "is_ext_shared": False, "context_team_id": TEAM["id"],
                       "creator": "U0ADMIN001", "is_member": is_member, "num_members": 5 + len(name),
                       "topic": {"value": "", "creator": "", "last_set": 0},
                       "purpose": {"value": f"#{name}", "creator": "U0ADMIN001", "last_set": created},
                       "previous_names": []}
            self.channels[channel_id] = channel
            return dict(channel)

    def add_token(self, token: str) -> None:
        with self.lock:
            self.tokens[token] = True

    def revoke_token(self, token: str) -> None:
        with self.lock:
            if token in self.tokens:
                self.tokens[token] = False

    # ---- OAuth v2 install -------------------------------------------------------------------------
    def _webhook_channel_choice(self, scope: str) -> tuple[str, str, list[tuple[str, str]]] | None:
        if "incoming-webhook" not in scope.replace(",", " ").split():
            return None
        with self.lock:
            open_channels = [(c["id"], f"#{c['name']}") for c in self.channels.values() if not c["is_archived"] and not c["is_private"]]
        return "channel", "Post to", open_channels

    async def _oauth_access(self, request: Request) -> Response:
        """oauth.v2.access: a code from the consent page -> a bot token for the workspace."""
        try:
            args, _, _ = await self._arguments(request)
        except SlackError as exc:
            return self._fail(exc)
        oauth = self.core.oauth
        with oauth._lock:
            failing = oauth.fail_next_token > 0
            if failing:
                oauth.fail_next_token -= 1
        if failing:
            return self._server_error(oauth.token_fail_status)
        client_id, secret = client_credentials(request, args)
        if client_id not in oauth.clients:
            return self._fail(SlackError("invalid_client_id"))
        grant = oauth.redeem_code(str(client_id), secret, str(args.get("code") or ""), str(args.get("redirect_uri") or ""),
                                  args.get("code_verifier"))
        if not isinstance(grant, Grant):
            error = {"invalid_client": "bad_client_secret"}.get(grant) or (
                "bad_redirect_uri" if "redirect" in grant else "invalid_code_verifier" if "verifier" in grant else "invalid_code")
            return self._fail(SlackError(error))
        token = "xoxb-" + secrets.token_hex(12)
        self.add_token(token)
        body: dict[str, Any] = {"ok": True, "app_id": BOT["app_id"], "authed_user": {"id": "U0ADMIN001"}, "scope": grant.scope,
                                "token_type": "bot", "access_token": token, "bot_user_id": BOT["user_id"],
                                "team": {"id": TEAM["id"], "name": TEAM["name"]}, "enterprise": None, "is_enterprise_install": False}
        channel_id = grant.subject.get("channel")
        if channel_id and channel_id in self.channels:
            body["incoming_webhook"] = {"channel": f"#{self.channels[channel_id]['name']}", "channel_id": channel_id,
                                        "configuration_url": f"https://{TEAM['domain']}.slack.com/services/B0HOOK0001",
                                        "url": "https://hooks.slack.com/services/T0ACME0001/B0HOOK0001/" + secrets.token_hex(12)}
        return JSONResponse(body)

    def auth_revoke(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        self.revoke_token(token)
        return {"ok": True, "revoked": True}

    # ---- request handling ------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        method = request.path_params["method"]
        handler = {"chat.postMessage": self.post_message, "conversations.list": self.conversations_list,
                   "auth.test": self.auth_test, "auth.revoke": self.auth_revoke}.get(method)
        try:
            if handler is None:
                raise SlackError("unknown_method", status=404, req_method=method)
            args, is_json, charset = await self._arguments(request)
            token = self._authenticate(request, args, is_json)
            body = handler(args, token)
            if is_json and not charset and method == "chat.postMessage":
                body["warning"] = "missing_charset"
                body.setdefault("response_metadata", {})["warnings"] = ["missing_charset"]
            return JSONResponse(body)
        except SlackError as exc:
            return self._fail(exc)

    async def _arguments(self, request: Request) -> tuple[dict[str, Any], bool, bool]:
        args: dict[str, Any] = dict(request.query_params)
        content_type = request.headers.get("content-type", "").lower()
        is_json = content_type.startswith("application/json")
        raw = await request.body() if request.method == "POST" else b""
        if is_json:
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise SlackError("invalid_arguments")
                args.update(body)
        elif raw:
            try:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise SlackError("invalid_form_data") from None
        return args, is_json, "charset" in content_type

    def _authenticate(self, request: Request, args: dict[str, Any], is_json: bool) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token and not is_json:
            token = str(args.get("token") or "")
        if not token:
            raise SlackError("not_authed")
        with self.lock:
            active = self.tokens.get(token)
        if active is None:
            raise SlackError("invalid_auth")
        if not active:
            raise SlackError("token_revoked")
        return token

    def _resolve(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, str) or not value.strip():
            raise SlackError("channel_not_found")
        wanted = value.strip()
        with self.lock:
            channel = self.channels.get(wanted) or next(
                (c for c in self.channels.values() if c["name"] == wanted.lstrip("#")), None)
            if channel is None or (channel["is_private"] and not channel["is_member"]):
                raise SlackError("channel_not_found")
            return dict(channel)

    @staticmethod
    def _json_list(args: dict[str, Any], name: str, error: str) -> list[Any] | None:
        value = args.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise SlackError(error) from None
        if not isinstance(value, list):
            raise SlackError(error)
        return value

    def _rate_limit(self, key: str, window: SlidingWindow) -> None:
        verdict = window.hit(key)
        if not verdict.allowed:
            wait = max(1, math.ceil(verdict.reset_at - self.clock.time()))
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})

    # ---- methods ---------------------------------------------------------------------------------
    def post_message(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        channel = self._resolve(args.get("channel"))
        if channel["is_archived"]:
            raise SlackError("is_archived")
        if not channel["is_member"]:
            raise SlackError("not_in_channel")
        text = args.get("text")
        text = "" if text is None else str(text)
        blocks = self._json_list(args, "blocks", "invalid_blocks_format")
        attachments = self._json_list(args, "attachments", "invalid_attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        if blocks is not None:
            problems = [f"missing required field: type [json-pointer:/blocks/{i}/type]" for i, block in enumerate(blocks)
                        if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block["type"]]
            if len(blocks) > MAX_BLOCKS:
                problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
            if problems:
                raise SlackError("invalid_blocks", errors=problems,
                                 response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
        # rate limits last: a refused message does not use up the channel's budget
        wait = self.buckets.wait_needed(channel["id"])
        if wait > 0:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        self._rate_limit(TEAM["id"], self.workspace)
        self.buckets.take(channel["id"])
        now = self.clock.time()
        ts = f"{int(now)}.{next(self._seq) % 1_000_000:06d}"
        message: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts, "bot_id": BOT["bot_id"],
                                   "user": BOT["user_id"], "team": TEAM["id"], "app_id": BOT["app_id"],
                                   "bot_profile": {"id": BOT["bot_id"], "name": BOT["user"], "app_id": BOT["app_id"],
                                                   "team_id": TEAM["id"], "deleted": False}}
        if blocks is not None:
            message["blocks"] = blocks
        if attachments is not None:
            message["attachments"] = attachments
        thread_ts = args.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        with self.lock:
            self.messages.append({"channel": channel["id"], "channel_name": channel["name"], "ts": ts, "text": text,
                                  "blocks": blocks, "attachments": attachments, "thread_ts": message.get("thread_ts"),
                                  "user": BOT["user_id"], "at": now})
        return {"ok": True, "channel": channel["id"], "ts": ts, "message": message}

    def conversations_list(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
        if not types <= {"public_channel", "private_channel", "im", "mpim"}:
            raise SlackError("invalid_types")
        exclude_archived = str(args.get("exclude_archived", "false")).lower() in ("true", "1")
        try:
            limit = int(args.get("limit") or 100)
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        if not 1 <= limit <= 1000:
            raise SlackError("invalid_limit")
        cursor = str(args.get("cursor") or "")
        start = 0
        if cursor:
            try:
                decoded = base64.b64decode(cursor, validate=True).decode()
                if not decoded.startswith("channel:"):
                    raise ValueError(cursor)
                start = int(decoded[len("channel:"):])
            except (ValueError, UnicodeDecodeError):
                raise SlackError("invalid_cursor") from None
        self._rate_limit(token, self.tier2)
        with self.lock:
            rows = [dict(c) for c in self.channels.values()
                    if (("private_channel" in types) if c["is_private"] else ("public_channel" in types))
                    and (c["is_member"] or not c["is_private"]) and not (exclude_archived and c["is_archived"])]
        page = rows[start:start + limit]
        next_cursor = base64.b64encode(f"channel:{start + limit}".encode()).decode() if start + limit < len(rows) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def auth_test(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        self._rate_limit(token, self.tier4)
        return {"ok": True, "url": f"https://{TEAM['domain']}.slack.com/", "team": TEAM["name"], "user": BOT["user"],
                "team_id": TEAM["id"], "user_id": BOT["user_id"], "bot_id": BOT["bot_id"], "is_enterprise_install": False}

    # ---- admin ---------------------------------------------------------------------------------
    def _admin_routes(self) -> list[Route]:
        async def messages(request: Request) -> Response:
            wanted = (request.query_params.get("channel") or "").lstrip("#")
            with self.lock:
                if request.method == "DELETE":
                    self.messages.clear()
                rows = [dict(m) for m in self.messages if not wanted or wanted in (m["channel"], m["channel_name"])]
            return JSONResponse({"messages": rows})

        async def channels(request: Request) -> Response:
            if request.method == "POST":
                try:
                    body = json.loads(await request.body() or b"{}")
                    allowed = {"name", "id", "is_member", "is_private", "is_archived"}
                    return JSONResponse(self.add_channel(**{k: v for k, v in body.items() if k in allowed}))
                except (ValueError, TypeError, AttributeError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            with self.lock:
                return JSONResponse({"channels": [dict(c) for c in self.channels.values()]})

        async def tokens(request: Request) -> Response:
            try:
                body = json.loads(await request.body() or b"{}")
                token = str(body["token"])
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": f"body needs a token ({type(exc).__name__})"}, status_code=400)
            (self.revoke_token if body.get("revoked") else self.add_token)(token)
            return JSONResponse({"ok": True})

        return [Route(f"{ADMIN_PREFIX}/messages", messages, methods=["GET", "DELETE"]),
                Route(f"{ADMIN_PREFIX}/channels", channels, methods=["GET", "POST"]),
                Route(f"{ADMIN_PREFIX}/tokens", tokens, methods=["POST"])]

    # ---- provider-shaped responses ---------------------------------------------------------------
    @staticmethod
    def _fail(exc: SlackError) -> Response:
        return JSONResponse({"ok": False, "error": exc.error, **exc.extra}, status_code=exc.status, headers=exc.headers)

    def _throttled(self, retry_after: str) -> Response:
        return self._fail(SlackError("ratelimited", status=429, headers={"Retry-After": retry_after}))

    def _server_error(self, status: int) -> Response:
        return self._fail(SlackError("fatal_error" if status == 500 else "service_unavailable", status=status))


def create_emulator(*, tokens: tuple[str, ...] = (DEFAULT_BOT_TOKEN,), channels: tuple[dict[str, Any], ...] = DEFAULT_CHANNELS,
                    per_channel_per_s: float = 1.0, burst: int = 3, workspace_per_minute: int = 600,
                    tier2_per_minute: int = 20, clients: dict[str, str] | None = None) -> SlackEmulator:
    """A Slack workspace with the demo bot token and six channels (see the module docstring)."""
    return SlackEmulator(tokens=tokens, channels=channels, per_channel_per_s=per_channel_per_s, burst=burst,
                         workspace_per_minute=workspace_per_minute, tier2_per_minute=tier2_per_minute, clients=clients)
