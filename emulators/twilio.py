"""Twilio Programmable Messaging emulator (REST API 2010-04-01): send an SMS, read messages and
the account's phone numbers, and **status callbacks** (`sent`, then `delivered` /
`undelivered`, or `failed`) POSTed form-encoded to the message's StatusCallback and signed with
`X-Twilio-Signature` exactly as Twilio signs. Facts follow providers.md section 5.3 and
webhooks.md section (c).

Public API (`create_emulator(...) -> TwilioEmulator`, with `.app`, `.core`):
- `messages` (sid -> the message resource as the API shows it, plus `_history`: [{"status",
  "at"}] and `_callback` (the StatusCallback URL)), `callbacks` (one record per callback:
  `{"id", "message_sid", "status" (the MessageStatus it reports), "params", "attempts",
  "status"...}`), `dispatcher.attempts` (every HTTP attempt); `add_number(phone_number)`,
  `designate(to, outcome)`, `signature(url, params)`, `wait_idle(timeout)`, `close()`.
- Auth: HTTP Basic `AccountSid:AuthToken` (demo: `DEFAULT_ACCOUNT_SID` / `DEFAULT_AUTH_TOKEN`,
  the values hub/demo.py stores). The account owns `+15005550006` (Twilio's magic valid
  From) and `+14155550100`, and the Messaging Service `DEFAULT_SERVICE_SID` over both.

Routes (under /2010-04-01/Accounts/{AccountSid}):
| method and path | does |
|---|---|
| GET .json | the account (`friendly_name`, `status` active, `type` Full) |
| POST /Messages.json | form `To`, `From` or `MessagingServiceSid`, `Body` / `MediaUrl`, `StatusCallback` -> 201 |
| GET /Messages.json | list, newest first; filters `To`, `From`; paging `PageSize`, `Page`, `PageToken` |
| GET /Messages/{Sid}.json | one message, with its current status |
| GET /IncomingPhoneNumbers.json | the account's numbers (`PhoneNumber` filter), paged like Messages |

Admin routes (besides the framework's): GET /_emulator/messages, GET /_emulator/callbacks
(records and attempts), POST /_emulator/numbers `{"phone_number"}`, POST /_emulator/outcomes
`{"to", "outcome": delivered|undelivered|failed}`.

Signing (webhooks.md (c), verified against twilio-python's RequestValidator in the tests):
`X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + concat(name + value for the POST
parameters sorted by name)))`, where URL is the StatusCallback as given, without any `#...`
fragment (connection overrides; a fragment never reaches the receiver). Each callback also
carries `I-Twilio-Idempotency-Token` (the same on its retries), `User-Agent: TwilioProxy/1.1`
and `Content-Type: application/x-www-form-urlencoded; charset=utf-8`.

Choices where the reference is UNCONFIRMED (or silent):
- Lifecycle: `queued` (no callback, as the reference says) -> `sent` (callback) -> `delivered`
  (callback), or for designated numbers `sent` -> `undelivered` (ErrorCode 30003) or straight
  to `failed` (ErrorCode 30008). `sending` is not reported (it is not in the reference's
  callback list). With `MessagingServiceSid` the message starts `accepted`, and `queued` is
  then reported by callback. Designated defaults: To `+15005559003` -> undelivered,
  `+15005559008` -> failed.
- Queueing instead of refusing: each sender number sends `mps` messages per second (default 1,
  a US long code); a message waits its turn in `queued` (`date_sent` null) and goes out at
  its slot. A message whose slot would be more than `max_queue_s` (default 4 h) away fails at
  once with error 30001 (queue overflow). `send_delay_s` / `deliver_delay_s` (real time,
  default 0.1 s / 0.3 s) pace the steps after the slot.
- API rate limit: at most `max_concurrent` (default 100) requests in flight per account; more
  -> 429 `{"code": 20429, "message": "Too Many Requests", ...}` with a
  `Twilio-Concurrent-Requests` header and no Retry-After. `api_latency_s` (default 0) holds each
  API request inside that gate, to make concurrency testable.
- Callback retries follow Twilio's connection overrides in the URL fragment
  (`#rc=..&rp=..&ct=..&rt=..`): `rc` retries (default 1, at most 5) for the failure classes in
  `rp` (`ct` connect failure, `rt` read timeout, `4xx`, `5xx`, `all`; default `ct,rt`), `ct`
  connect and `rt` read timeouts in ms (defaults 5000 / 15000). Retries wait
  `callback_retry_delay_s` (default 0.5 s). A non-2xx answer is not retried by default.
- Validation, in Twilio's order: `To` missing 21604, not E.164 21211; neither `From` nor
  `MessagingServiceSid` 21603, unknown service 21701, `From` invalid 21212, not the account's
  21606; `Body` and `MediaUrl` missing 21602, Body over 1600 characters 21617; a
  StatusCallback that is not an http(s) URL 21609. Twilio's test-credential magic numbers are
  honoured: To +15005550001 21211, +15005550002 21612, +15005550003 21408, +15005550004 21610,
  +15005550009 21614; From +15005550001 21212, +15005550007 21606, +15005550008 21611.
- Segments: GSM-7 bodies 160 characters in one segment, 153 per segment above; any other
  character makes it UCS-2 (70 / 67). Price is -0.0079 USD per segment once sent.
- 401 (20003 "Authenticate", `WWW-Authenticate: Basic realm="Twilio API"`) for missing or wrong
  credentials and for an AccountSid in the path that is not the authenticated one; unknown
  message -> 404 20404.
- Not emulated: MMS media, scheduling, API keys (SK...), subaccounts, inbound messages.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore, admin_action
from emulators.oauth import RefreshPolicy
from emulators.ratelimit import ConcurrencyGate
from emulators.sendgrid import CallbackDispatcher

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "demo-auth-token-000001"
DEFAULT_SERVICE_SID = "MG" + "0" * 31 + "1"
DEFAULT_NUMBERS = ("+15005550006", "+14155550100")
API = "/2010-04-01"
UNDELIVERED_TO, FAILED_TO = "+15005559003", "+15005559008"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
           "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")
MAGIC_TO = {"+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
            "+15005550002": (21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone "
                                    "number via SMS."),
            "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: "
                                    "+15005550003."),
            "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
            "+15005550009": (21614, "'To' number is not a valid mobile number")}
MAGIC_FROM = {"+15005550001": (21212, "The 'From' number +15005550001 is not a valid phone number, shortcode, or "
                                      "alphanumeric sender ID."),
              "+15005550007": (21606, "The From phone number +15005550007 is not a valid, SMS-capable inbound phone number "
                                      "or short code for your account."),
              "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages")}
ERROR_MESSAGES = {30001: "Queue overflow", 30003: "Unreachable destination handset", 30008: "Unknown error"}
_RETRY_CLASSES = {"ct", "rt", "4xx", "5xx", "all"}


def rfc2822(ts: float) -> str:
    return formatdate(ts, usegmt=False).replace("-0000", "+0000")


def segments(body: str) -> int:
    if not body:
        return 1
    gsm = all(ch in GSM7 for ch in body)
    single, multi = (160, 153) if gsm else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 over the URL followed by each POST parameter's
    name and value, parameters sorted by name (what Twilio's RequestValidator checks)."""
    text = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()).decode("ascii")


def connection_overrides(url: str) -> tuple[str, dict[str, Any]]:
    """The URL Twilio calls (fragment removed) and its connection settings from the fragment."""
    parts = urlsplit(url)
    settings: dict[str, Any] = {"rc": 1, "rp": {"ct", "rt"}, "ct": 5000, "rt": 15000}
    for name, value in parse_qsl(parts.fragment):
        if name == "rc" and value.isdigit():
            settings["rc"] = min(5, int(value))
        elif name == "rp":
            settings["rp"] = {v.strip() for v in value.split(",") if v.strip() in _RETRY_CLASSES}
        elif name in ("ct", "rt") and value.isdigit():
            settings[name] = max(1, int(value))
    return urlunsplit(parts._replace(fragment="")), settings


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class TwilioEmulator:
    def __init__(self, *, account_sid: str, auth_token: str, numbers: tuple[str, ...], service_sid: str | None,
                 friendly_name: str, mps: float, max_queue_s: float, send_delay_s: float, deliver_delay_s: float,
                 max_concurrent: int, api_latency_s: float, callback_retry_delay_s: float, outcomes: dict[str, str] | None):
        self.core = EmulatorCore("twilio", RefreshPolicy(access_ttl=3600))
        self.clock = self.core.clock
        self.account_sid, self.auth_token, self.friendly_name = account_sid, auth_token, friendly_name
        self.lock = threading.RLock()
        self.numbers: list[dict[str, Any]] = []
        for number in numbers:
            self.add_number(number)
        self.service_sid = service_sid
        self.mps, self.max_queue_s = mps, max_queue_s
        self.send_delay_s, self.deliver_delay_s = send_delay_s, deliver_delay_s
        self.api_latency_s, self.callback_retry_delay_s = api_latency_s, callback_retry_delay_s
        self.gate = ConcurrencyGate(max_concurrent)
        self.outcomes: dict[str, str] = {UNDELIVERED_TO: "undelivered", FAILED_TO: "failed", **(outcomes or {})}
        self.messages: dict[str, dict[str, Any]] = {}
        self.callbacks: list[dict[str, Any]] = []
        self._next_slot: dict[str, float] = {}
        self._callback_seq = itertools.count(1)
        self.dispatcher = CallbackDispatcher("twilio", self.clock)
        self.app = self.core.build_app(
            api_routes=self._routes(), oauth_token_path=f"{ADMIN_PREFIX}/oauth/token",
            oauth_authorize_path=f"{ADMIN_PREFIX}/oauth/authorize", is_api_path=lambda path: path.startswith(API + "/"),
            unauthorized_response=lambda reason: self._error(TwilioError(401, 20003, "Authenticate")),
            throttle_response=self._throttled, error_response=self._server_error, admin_routes=self._admin_routes())

    # ---- public ---------------------------------------------------------------------------------
    def add_number(self, phone_number: str, sms: bool = True) -> dict[str, Any]:
        if not E164.match(phone_number):
            raise ValueError("phone_number must be E.164, e.g. +14155550100")
        now = rfc2822(self.clock.time())
        sid = "PN" + hashlib.sha256(f"{self.account_sid}{phone_number}".encode()).hexdigest()[:32]
        digits = phone_number[-10:]
        record = {"sid": sid, "account_sid": self.account_sid, "friendly_name": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                  "phone_number": phone_number, "capabilities": {"voice": True, "sms": sms, "mms": sms, "fax": False},
                  "status": "in-use", "origin": "twilio", "api_version": "2010-04-01", "sms_url": "", "sms_method": "POST",
                  "sms_fallback_url": "", "sms_fallback_method": "POST", "sms_application_sid": "", "status_callback": "",
                  "status_callback_method": "POST", "voice_url": "", "voice_method": "POST", "address_requirements": "none",
                  "beta": False, "date_created": now, "date_updated": now,
                  "uri": f"{API}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json"}
        with self.lock:
            self.numbers = [n for n in self.numbers if n["phone_number"] != phone_number] + [record]
        return dict(record)

    def designate(self, to: str, outcome: str) -> None:
        if outcome not in ("delivered", "undelivered", "failed"):
            raise ValueError("outcome must be delivered, undelivered or failed")
        with self.lock:
            self.outcomes[to] = outcome

    def signature(self, url: str, params: dict[str, str]) -> str:
        return sign(self.auth_token, url, params)

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        return self.dispatcher.wait_idle(timeout)

    def close(self) -> None:
        self.dispatcher.close()

    # ---- auth ----------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = ""
        ok = (scheme.lower() == "basic" and hmac.compare_digest(user.encode(), self.account_sid.encode())
              and hmac.compare_digest(password.encode(), self.auth_token.encode()))
        if not ok or request.path_params.get("account_sid") != self.account_sid:
            raise TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _endpoint(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                self._authenticate(request)
                if not self.gate.enter(self.account_sid):
                    raise TwilioError(429, 20429, "Too Many Requests", {"Twilio-Concurrent-Requests": str(self.gate.limit)})
                try:
                    if self.api_latency_s:
                        await asyncio.sleep(self.api_latency_s)
                    return await handler(request)
                finally:
                    self.gate.leave(self.account_sid)
            except TwilioError as exc:
                return self._error(exc)

        return endpoint

    # ---- messages ------------------------------------------------------------------------------
    async def create_message(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            form.setdefault(name, []).append(value)
        one = {name: values[0] for name, values in form.items()}
        to, sender, service = one.get("To", "").strip(), one.get("From", "").strip(), one.get("MessagingServiceSid", "").strip()
        body, media = one.get("Body", ""), form.get("MediaUrl", [])
        callback = one.get("StatusCallback", "").strip()
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if to in MAGIC_TO:
            raise TwilioError(400, *MAGIC_TO[to])
        if not E164.match(to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if service and service != self.service_sid:
            raise TwilioError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender:
            if sender in MAGIC_FROM:
                raise TwilioError(400, *MAGIC_FROM[sender])
            if not E164.match(sender):
                raise TwilioError(400, 21212, f"The 'From' number {sender} is not a valid phone number, shortcode, or "
                                              "alphanumeric sender ID.")
            with self.lock:
                owned = any(n["phone_number"] == sender and n["capabilities"]["sms"] for n in self.numbers)
            if not owned:
                raise TwilioError(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                                              "or short code for your account.")
        if not body and not media:
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if callback and urlsplit(callback).scheme not in ("http", "https"):
            raise TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        if not sender:
            with self.lock:
                sender = self.numbers[0]["phone_number"] if self.numbers else ""
        message = self._new_message(to, sender, service or None, body, len(media), callback)
        return JSONResponse(self._public(message), status_code=201)

    def _new_message(self, to: str, sender: str, service: str | None, body: str, num_media: int, callback: str) -> dict[str, Any]:
        now = self.clock.time()
        sid = "SM" + secrets.token_hex(16)
        initial = "accepted" if service else "queued"
        message = {"sid": sid, "account_sid": self.account_sid, "to": to, "from": None if service else sender,
                   "messaging_service_sid": service, "body": body, "status": initial, "num_segments": str(segments(body)),
                   "num_media": str(num_media), "direction": "outbound-api", "api_version": "2010-04-01", "price": None,
                   "price_unit": "USD", "error_code": None, "error_message": None, "date_created": rfc2822(now),
                   "date_updated": rfc2822(now), "date_sent": None,
                   "uri": f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json",
                   "subresource_uris": {"media": f"{API}/Accounts/{self.account_sid}/Messages/{sid}/Media.json",
                                        "feedback": f"{API}/Accounts/{self.account_sid}/Messages/{sid}/Feedback.json"},
                   "_history": [{"status": initial, "at": now}], "_callback": callback, "_sender": sender}
        with self.lock:
            self.messages[sid] = message
            slot = max(now, self._next_slot.get(sender, now))
            overflow = slot - now > self.max_queue_s
            if not overflow:
                self._next_slot[sender] = slot + 1.0 / self.mps
        outcome = "overflow" if overflow else self.outcomes.get(to, "delivered")
        due = time.monotonic() + (0.0 if overflow else slot - now) + self.send_delay_s

        def first_step() -> None:  # one chain per message, so its statuses change in order
            if service:
                self._transition(sid, "queued")
            self.dispatcher.call_later(due - time.monotonic(), leave_queue)

        def leave_queue() -> None:
            if outcome in ("failed", "overflow"):
                self._transition(sid, "failed", 30001 if outcome == "overflow" else 30008)
                return
            self._transition(sid, "sent")
            final, code = ("undelivered", 30003) if outcome == "undelivered" else ("delivered", None)
            self.dispatcher.call_later(self.deliver_delay_s, lambda: self._transition(sid, final, code))

        self.dispatcher.call_later(0.0, first_step)
        return message

    def _transition(self, sid: str, status: str, error_code: int | None = None) -> None:
        now = self.clock.time()
        with self.lock:
            message = self.messages[sid]
            message["status"], message["date_updated"] = status, rfc2822(now)
            message["_history"].append({"status": status, "at": now})
            if status == "sent":
                message["date_sent"] = rfc2822(now)
                message["price"] = f"{-0.0079 * int(message['num_segments']):.5f}"
                if message["from"] is None:
                    message["from"] = message["_sender"]
            if error_code is not None:
                message["error_code"], message["error_message"] = error_code, ERROR_MESSAGES.get(error_code)
            callback = message["_callback"]
            params = {"SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": message["to"],
                      "MessageSid": sid, "AccountSid": self.account_sid, "From": message["_sender"], "ApiVersion": "2010-04-01"}
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
        if callback:
            self._callback(sid, status, callback, params)

    def _callback(self, sid: str, status: str, callback: str, params: dict[str, str]) -> None:
        url, settings = connection_overrides(callback)
        body = urlencode(params).encode()
        token = f"{secrets.token_hex(8)}-{sid}"
        signature = sign(self.auth_token, url, params)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "User-Agent": "TwilioProxy/1.1",
                   "X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": token}
        record = {"id": f"callback-{next(self._callback_seq)}", "message_sid": sid, "message_status": status, "params": params}
        with self.lock:
            self.callbacks.append(record)

        def retry(attempt: int, failure: str) -> float | None:
            if attempt > settings["rc"] or not ({failure, "all"} & settings["rp"]):
                return None
            return self.callback_retry_delay_s

        timeout = httpx.Timeout(settings["rt"] / 1000, connect=settings["ct"] / 1000)
        self.dispatcher.post(record, url, body, lambda _: dict(headers), retry, timeout)

    def _public(self, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in json.loads(json.dumps(message)).items() if not k.startswith("_")}

    async def get_message(self, request: Request) -> Response:
        with self.lock:
            message = self.messages.get(request.path_params["message_sid"])
        if message is None:
            raise TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
        return JSONResponse(self._public(message))

    def _page(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        q = request.query_params
        try:
            size = max(1, min(1000, int(q.get("PageSize", 50))))
            page = max(0, int(q.get("Page", 0)))
        except ValueError:
            raise TwilioError(400, 20001, "Invalid paging parameter") from None
        start = page * size
        chunk = rows[start:start + size]
        path = request.url.path
        filters = {k: v for k, v in q.items() if k not in ("PageSize", "Page", "PageToken")}

        def uri(n: int) -> str:
            extra = {"PageToken": f"PA{secrets.token_hex(8)}"} if n > 0 else {}
            return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': n, **extra})}"

        return JSONResponse({key: chunk, "end": start + len(chunk) - 1 if chunk else start, "first_page_uri": uri(0),
                             "next_page_uri": uri(page + 1) if start + size < len(rows) else None, "page": page,
                             "page_size": size, "previous_page_uri": uri(page - 1) if page > 0 else None, "start": start,
                             "uri": f"{path}?{request.url.query}" if request.url.query else path})

    async def list_messages(self, request: Request) -> Response:
        q = request.query_params
        with self.lock:
            rows = [self._public(m) for m in reversed(list(self.messages.values()))
                    if (not q.get("To") or m["to"] == q["To"]) and (not q.get("From") or m["_sender"] == q["From"])]
        return self._page(request, "messages", rows)

    async def list_numbers(self, request: Request) -> Response:
        wanted = request.query_params.get("PhoneNumber")
        with self.lock:
            rows = [dict(n) for n in self.numbers if not wanted or n["phone_number"] == wanted]
        return self._page(request, "incoming_phone_numbers", rows)

    async def get_account(self, request: Request) -> Response:
        created = rfc2822(self.clock.time() - 86400 * 30)
        base = f"{API}/Accounts/{self.account_sid}"
        return JSONResponse({"sid": self.account_sid, "owner_account_sid": self.account_sid, "friendly_name": self.friendly_name,
                             "status": "active", "type": "Full", "date_created": created, "date_updated": created,
                             "auth_token": "", "uri": f"{base}.json",
                             "subresource_uris": {"messages": f"{base}/Messages.json",
                                                  "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json"}})

    async def create_or_list(self, request: Request) -> Response:
        return await (self.create_message if request.method == "POST" else self.list_messages)(request)

    def _routes(self) -> list[Route]:
        e, account = self._endpoint, API + "/Accounts/{account_sid}"
        return [
            Route(account + ".json", e(self.get_account), methods=["GET"]),
            Route(account + "/Messages.json", e(self.create_or_list), methods=["GET", "POST"]),
            Route(account + "/Messages/{message_sid}.json", e(self.get_message), methods=["GET"]),
            Route(account + "/IncomingPhoneNumbers.json", e(self.list_numbers), methods=["GET"]),
        ]

    # ---- admin ---------------------------------------------------------------------------------
    def _admin_routes(self) -> list[Route]:
        async def messages(request: Request) -> Response:
            with self.lock:
                rows = [{**self._public(m), "history": list(m["_history"]), "status_callback": m["_callback"]}
                        for m in self.messages.values()]
            return JSONResponse({"messages": rows})

        async def callbacks(request: Request) -> Response:
            with self.dispatcher.lock, self.lock:
                return JSONResponse(json.loads(json.dumps({"callbacks": self.callbacks, "attempts": self.dispatcher.attempts})))

        return [Route(f"{ADMIN_PREFIX}/messages", messages, methods=["GET"]),
                Route(f"{ADMIN_PREFIX}/callbacks", callbacks, methods=["GET"]),
                Route(f"{ADMIN_PREFIX}/numbers", admin_action(lambda b: self.add_number(b["phone_number"])), methods=["POST"]),
                Route(f"{ADMIN_PREFIX}/outcomes", admin_action(lambda b: self.designate(b["to"], b["outcome"])), methods=["POST"])]

    # ---- provider-shaped responses ---------------------------------------------------------------
    @staticmethod
    def _error(exc: TwilioError) -> Response:
        return JSONResponse({"code": exc.code, "message": exc.message, "more_info": f"https://www.twilio.com/docs/errors/{exc.code}",
                             "status": exc.status}, status_code=exc.status, headers=exc.headers)

    def _throttled(self, retry_after: str) -> Response:
        response = self._error(TwilioError(429, 20429, "Too Many Requests"))
        response.headers["Retry-After"] = retry_after
        return response

    def _server_error(self, status: int) -> Response:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        return self._error(TwilioError(status, 20500, phrase))


def create_emulator(*, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN,
                    numbers: tuple[str, ...] = DEFAULT_NUMBERS, service_sid: str | None = DEFAULT_SERVICE_SID,
                    friendly_name: str = "Bella Pizza", mps: float = 1.0, max_queue_s: float = 4 * 3600,
                    send_delay_s: float = 0.1, deliver_delay_s: float = 0.3, max_concurrent: int = 100,
                    api_latency_s: float = 0.0, callback_retry_delay_s: float = 0.5,
                    outcomes: dict[str, str] | None = None) -> TwilioEmulator:
    """A Twilio emulator for one account (the demo's credentials by default)."""
    return TwilioEmulator(account_sid=account_sid, auth_token=auth_token, numbers=numbers, service_sid=service_sid,
                          friendly_name=friendly_name, mps=mps, max_queue_s=max_queue_s, send_delay_s=send_delay_s,
                          deliver_delay_s=deliver_delay_s, max_concurrent=max_concurrent, api_latency_s=api_latency_s,
                          callback_retry_delay_s=callback_retry_delay_s, outcomes=outcomes)
