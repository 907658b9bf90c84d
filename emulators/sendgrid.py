"""Twilio SendGrid v3 emulator: Mail Send, dynamic templates, verified senders, the event
webhook settings, and the **signed Event Webhook** (delivery events POSTed to a configured
URL, ECDSA-signed as SendGrid signs them, retried on non-2xx). Facts follow providers.md
section 5.2 and webhooks.md section (c); `CallbackDispatcher` (background timers and signed
callbacks with a retry policy) is shared with twilio.py.

Public API (`create_emulator(...) -> SendGridEmulator`, with `.app`, `.core`):
- `messages` (every accepted send: `{"x_message_id", "from", "subject", "template_id",
  "personalizations", "categories", "custom_args", "sandbox", "at", "recipients": [{"email",
  "kind" (to|cc|bcc), "sg_message_id", "outcome", "events": [event, ...]}]}`),
  `batches` (every event POST: `{"id", "events", "status", "attempts", ...}`) and
  `dispatcher.attempts` (every HTTP attempt: `{"id", "attempt", "status", "error", "time",
  "duration_ms"}`); `public_key` (base64 DER, what Mail Settings shows), `private_key`;
  `set_event_webhook(url, enabled=True, signed=True)`, `add_sender(email, verified=True)`,
  `verify_sender(email)`, `verification_requests` (addresses a verification email went to),
  `add_template(name, subject)`, `add_key(key, scopes)`, `designate(email, outcome)`,
  `wait_idle(timeout)`, `close()`.
- Auth: `Authorization: Bearer <API key>`; the demo key is `DEFAULT_API_KEY` with every scope.

Routes (all need the API key; scopes checked: mail.send, templates.read, verified_senders,
user.webhooks.event.settings.read / .update):
| method and path | does |
|---|---|
| POST /v3/mail/send | validate, 202 + `X-Message-Id` (200 empty in sandbox mode), then events |
| GET /v3/templates | `?generations=legacy|dynamic|legacy,dynamic&page_size=1..200[&page_token=]` |
| GET /v3/templates/{id} | one template with its versions |
| GET /v3/verified_senders | `{"results": [...]}` (`?id=`, `?limit=`, `?lastSeenID=`) |
| POST /v3/verified_senders | start a verification: nickname, from_email, reply_to, address, city, country required -> 201, unverified |
| POST /v3/verified_senders/resend/{id} | the verification email again -> 204 (400 when already verified) |
| GET /v3/scopes | `{"scopes": [...]}` of the calling key |
| GET, PATCH /v3/user/webhooks/event/settings | `{"enabled", "url", "processed", "delivered", ...}` |
| GET, PATCH /v3/user/webhooks/event/settings/signed | `{"public_key"}`; PATCH `{"enabled": bool}` |

Admin routes (besides the framework's, see core.py):
| method and path | body | does |
|---|---|---|
| GET, POST /_emulator/event_webhook | `{"url"?, "enabled"?, "signed"?}` | read / set; answers with `public_key` |
| GET /_emulator/messages | `?to=` | accepted sends (with their events) |
| GET /_emulator/batches | - | event POSTs and their attempts |
| POST /_emulator/senders | `{"email", "name"?, "verified"?}` | add a (verified) sender |
| POST /_emulator/senders/verify | `{"email"}` | play the click on the sender's verification link |
| POST /_emulator/templates | `{"name", "subject"?, "id"?}` | add a dynamic template |
| POST /_emulator/keys | `{"key", "scopes"?}` | add an API key (all scopes by default) |
| POST /_emulator/outcomes | `{"email", "outcome"}` | designate an address's outcome |

Signing (webhooks.md (c) [C]; the sendgrid-python `EventWebhook` helper verifies it):
`X-Twilio-Email-Event-Webhook-Timestamp: <unix s>` and
`X-Twilio-Email-Event-Webhook-Signature: base64(DER(ECDSA-P256-SHA256(private key,
"<timestamp>" + body)))`. The body is the compact JSON array of events followed by `\\r\\n`
(as in SendGrid's own test vector). Every attempt is signed anew with its own timestamp, so
a retry hours later is still fresh for a verifier with a replay window. The key pair is
derived from `seed`, so the public key is stable across restarts of the same emulator.

Choices where the reference is UNCONFIRMED (or silent):
- Event outcomes by recipient address (case-insensitive), unless `designate`d, by the local
  part before any `+tag`: `bounce@` / `bounce+x@` -> processed, then `bounce` (type bounce,
  5.1.1); `blocked` -> processed, then `bounce` (type blocked); `dropped` or `drop` ->
  processed and `dropped` (reason "Bounced Address") in the same batch; `deferred` ->
  processed, `deferred`, then `delivered`; anything else -> processed, then `delivered`.
- Batching: events wait `batch_window_s` (default 0.1 s; SendGrid batches for longer) and go
  out as one JSON array (at most 1000 events per POST). `processed` batches are sent at once,
  outcome events `deliver_delay_s` later (default 0.2 s).
- **Retry schedule**: SendGrid retries a non-2xx answer (or no answer) "at increasing intervals
  for up to 24 hours" [SG-troubleshoot]. The emulator retries every failed POST after
  `retry_schedule_s`, by default `retry_base_s * 2**n` for n = 0..9 (10 retries, 11 POSTs). At
  `retry_base_s=60` that is 1, 2, 4 ... 512 minutes: the last retry ~17 h after the first POST,
  inside SendGrid's 24-hour window. The default `retry_base_s` is 1 s (compressed time for the
  demo); tests use less. Each POST times out after 10 s.
- `sg_message_id` = `<X-Message-Id>.filterdrecv-<n>-<recipient index>.0` (starts with the
  X-Message-Id, as the reference says it does); `sg_event_id` is 22 url-safe base64 chars;
  custom args (message-level, then personalization-level) are echoed as top-level keys;
  `category` is always an array; `template_id` is included when the send used one.
- Validation messages follow SendGrid's errors page wording where known; `help` links point
  at the errors page. Custom args values must be strings (UNCONFIRMED wording). A from address that is neither a verified sender nor on an
  authenticated domain (`domains`) -> 403 with `field: "from"`.
- Rate limits: every v3 answer carries `X-RateLimit-Limit/Remaining/Reset` (reset = Unix
  seconds, emulator clock). mail/send allows `mail_send_limit` requests per
  `mail_send_window_s` (default 10000 per 1 s), other endpoints `api_limit` per
  `api_window_s` (default 600 per 60 s), per API key and endpoint; over it -> 429
  `{"errors":[{"field":null,"message":"too many requests"}]}` with the same headers and no
  Retry-After (SendGrid documents the reset header only).
- 401 `{"errors":[{"field":null,"message":"authorization required"}]}` without a key, and
  "The provided authorization grant is invalid, expired, or revoked" for an unknown one; 403
  "access forbidden" for a key without the scope. Bodies over 30 MB -> 413.
- Not emulated: engagement events (open, click, ...), scheduled sends (`send_at` is stored,
  sending is immediate), attachments' content, suppression-group APIs, subusers, OAuth.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import json
import logging
import math
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore, admin_action, admin_body
from emulators.oauth import RefreshPolicy
from emulators.ratelimit import SlidingWindow

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "SG.demo-key-000000000000.demo-sendgrid-secret-00000000000000000001"
ALL_SCOPES = ("mail.send", "templates.read", "verified_senders", "user.webhooks.event.settings.read",
              "user.webhooks.event.settings.update")
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
MAX_BODY = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = MAX_RECIPIENTS = 1000
MAX_EVENTS_PER_POST = 1000
EVENT_TYPES = ("processed", "dropped", "deferred", "delivered", "bounce", "open", "click", "spamreport",
               "unsubscribe", "group_unsubscribe", "group_resubscribe")
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SENDER_REQUIRED = ("nickname", "from_email", "reply_to", "address", "city", "country")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# designated outcomes by local part (before any "+tag"): bounce@, bounce+1@, drop+x@ ...
_BY_LOCAL_PART = {"bounce": "bounce", "blocked": "blocked", "dropped": "dropped", "drop": "dropped", "deferred": "deferred"}


# ---- background timers and signed callbacks (shared with twilio.py) ----------------------------
class CallbackDispatcher:
    """Timers and HTTP callbacks on background threads, so a slow receiver never blocks the API.

    `call_later(delay_s, fn)` runs `fn` on a worker thread after `delay_s` (real time).
    `post(record, url, body, sign, retry)` POSTs `body` with the headers `sign(body)` returns
    (called again for every attempt, so each attempt can carry a fresh timestamp); after a
    failed attempt `retry(attempt_number, failure)` gives the delay before the next one, or
    None to give up. `failure` is "3xx" | "4xx" | "5xx" (the answer's class), "ct" (could not
    connect) or "rt" (no answer in time). `record` (a dict with an "id") is updated in place:
    "status" pending | delivered | failed, "attempts", "last_status", "delivered_at".
    `attempts` lists every HTTP attempt. `wait_idle()` is true once no timer or callback is
    waiting (a message still moving through its statuses counts as waiting)."""

    def __init__(self, name: str, clock, *, workers: int = 4, timeout_s: float = 10.0):
        self.name, self.clock, self.workers, self.timeout_s = name, clock, workers, timeout_s
        self.attempts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._pending = 0
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None

    def _start(self) -> None:
        # called with _cv held
        if self._pool is None and not self._closed:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.name}:callbacks")
            self._http = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
            threading.Thread(target=self._loop, daemon=True, name=f"{self.name}:timers").start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        with self._cv:
            if self._closed:
                return
            self._start()
            self._pending += 1
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay_s), next(self._seq), fn))
            self._cv.notify_all()

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._heap.clear()
            self._cv.notify_all()
            pool, http = self._pool, self._http
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if http is not None:
            http.close()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._closed:
                    return
                due = []
                while self._heap and self._heap[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._heap)[2])
                pool = self._pool
            for fn in due:
                try:
                    pool.submit(self._run, fn)
                except RuntimeError:  # shut down meanwhile
                    return

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a bug in one callback must not stop the others
            log.exception("%s: background task failed", self.name)
        finally:
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()

    # ---- callbacks -------------------------------------------------------------------------
    def post(self, record: dict[str, Any], url: str, body: bytes, sign: Callable[[bytes], dict[str, str]],
             retry: Callable[[int, str], float | None], timeout: httpx.Timeout | float | None = None) -> dict[str, Any]:
        with self.lock:
            record.update(status="pending", attempts=0, url=url, last_status=None, delivered_at=None)
        self.call_later(0, lambda: self._attempt(record, url, body, sign, retry, timeout))
        return record

    def _attempt(self, record, url, body, sign, retry, timeout) -> None:
        with self.lock:
            record["attempts"] += 1
            number = record["attempts"]
        started, t0 = self.clock.time(), time.monotonic()
        status: int | None = None
        error: str | None = None
        failure: str | None = None
        try:
            kwargs = {"timeout": timeout} if timeout is not None else {}
            status = self._http.post(url, content=body, headers=sign(body), **kwargs).status_code
            if not 200 <= status < 300:
                failure = f"{status // 100}xx"
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure, error = "ct", type(exc).__name__
        except httpx.TimeoutException as exc:
            failure, error = "rt", type(exc).__name__
        except httpx.HTTPError as exc:  # reset mid-request, protocol errors
            failure, error = "ct", type(exc).__name__
        except RuntimeError:  # the client was closed: the emulator is stopping
            return
        with self.lock:
            self.attempts.append({"id": record["id"], "attempt": number, "url": url, "status": status, "error": error,
                                  "time": started, "duration_ms": round((time.monotonic() - t0) * 1000, 2)})
            record["last_status"] = status if status is not None else error
            if failure is None:
                record["status"], record["delivered_at"] = "delivered", self.clock.time()
                return
        delay = retry(number, failure)
        if delay is None:
            with self.lock:
                record["status"] = "failed"
            return
        self.call_later(delay, lambda: self._attempt(record, url, body, sign, retry, timeout))


# ---- helpers ----------------------------------------------------------------------------------
def key_from_seed(seed: int | str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key derived from `seed` (stable public key across restarts)."""
    digest = hashlib.sha256(f"sendgrid-emulator-event-webhook:{seed}".encode()).digest()
    return ec.derive_private_key(int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid's Mail Settings shows it: base64 DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def _uid(n: int = 16) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).decode("ascii").rstrip("=")


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _custom_args_errors(custom: Any, field: str) -> list[dict[str, Any]]:
    """Custom args are echoed on events as strings; SendGrid refuses other value types."""
    if not isinstance(custom, dict):
        return []
    return [_err(f"Invalid type. Expected: string, given: {type(v).__name__}.", f"{field}.{k}", "message.custom_args")
            for k, v in custom.items() if not isinstance(v, str)]


class SendGridError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.errors, self.headers = status, errors, headers or {}


def _err(message: str, field: str | None = None, help_anchor: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": f"{HELP}#{help_anchor}" if help_anchor else None}


# ---- the emulator -----------------------------------------------------------------------------
class SendGridEmulator:
    def __init__(self, *, api_keys: dict[str, tuple[str, ...]] | None, senders: list[dict[str, Any]] | None,
                 domains: tuple[str, ...], templates: list[dict[str, Any]] | None, event_webhook_url: str | None,
                 seed: int, retry_schedule_s: tuple[float, ...], batch_window_s: float, deliver_delay_s: float,
                 mail_send_limit: int, mail_send_window_s: float, api_limit: int, api_window_s: float):
        self.core = EmulatorCore("sendgrid", RefreshPolicy(access_ttl=3600))
        self.clock = self.core.clock
        self.lock = threading.RLock()
        self.keys: dict[str, set[str]] = {k: set(v) for k, v in (api_keys or {DEFAULT_API_KEY: ALL_SCOPES}).items()}
        self.senders: list[dict[str, Any]] = []
        for sender in senders if senders is not None else [
            {"email": "noreply@acme-builders.example", "name": "Acme Builders", "verified": True},
            {"email": "billing@acme-builders.example", "name": "Acme Billing", "verified": True},
            {"email": "pending@acme-builders.example", "name": "Not yet verified", "verified": False},
        ]:
            self.add_sender(**sender)
        self.domains = tuple(d.lower() for d in domains)
        self.templates: list[dict[str, Any]] = []
        for template in templates if templates is not None else [
            {"name": "Invoice status changed", "subject": "Invoice {{invoice_number}} is {{status}}", "id": "d-5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"},
            {"name": "Budget alert", "subject": "Budget alert for {{project}}", "id": "d-9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"},
            {"name": "Legacy receipt", "subject": "Your receipt", "generation": "legacy", "id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"},
        ]:
            self.add_template(**template)
        self.outcomes: dict[str, str] = {}
        self.verification_requests: list[str] = []  # addresses a verification email went to (created or resent)
        self.private_key = key_from_seed(seed)
        self.public_key = public_key_b64(self.private_key)
        self.webhook: dict[str, Any] = {"enabled": bool(event_webhook_url), "url": event_webhook_url or "", "signed": True,
                                        **{name: True for name in EVENT_TYPES}}
        self.retry_schedule_s = tuple(retry_schedule_s)
        self.batch_window_s, self.deliver_delay_s = batch_window_s, deliver_delay_s
        self.mail_window = SlidingWindow(self.clock, mail_send_limit, mail_send_window_s, "mail.send")
        self.api_window = SlidingWindow(self.clock, api_limit, api_window_s, "api")
        self.messages: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self._pending_events: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self._batch_seq = itertools.count(1)
        self._msg_seq = itertools.count(1)
        self.dispatcher = CallbackDispatcher("sendgrid", self.clock)
        self.app = self.core.build_app(
            api_routes=self._routes(), oauth_token_path=f"{ADMIN_PREFIX}/oauth/token",
            oauth_authorize_path=f"{ADMIN_PREFIX}/oauth/authorize", is_api_path=lambda path: path.startswith("/v3/"),
            unauthorized_response=lambda reason: self._errors(401, [_err("authorization required")]),
            throttle_response=self._throttled, error_response=self._server_error, admin_routes=self._admin_routes())

    # ---- public ---------------------------------------------------------------------------------
    def add_sender(self, email: str, name: str = "", verified: bool = True, **extra: Any) -> dict[str, Any]:
        with self.lock:
            sender = {"id": 1000 + len(self.senders) + 1, "nickname": extra.get("nickname", name or email), "from_email": email,
                      "from_name": name, "reply_to": extra.get("reply_to", email), "reply_to_name": name,
                      "address": "1 Main St", "address2": "", "state": "GA", "city": "Atlanta", "zip": "30316",
                      "country": "USA", "verified": bool(verified), "locked": False}
            self.senders.append(sender)
            return dict(sender)

    def add_template(self, name: str, subject: str = "", generation: str = "dynamic", id: str | None = None) -> dict[str, Any]:
        now = _stamp(self.clock.time())
        template_id = id or (f"d-{secrets.token_hex(16)}" if generation == "dynamic" else
                             "-".join((secrets.token_hex(4), secrets.token_hex(2), secrets.token_hex(2), secrets.token_hex(2), secrets.token_hex(6))))
        version = {"id": secrets.token_hex(16), "template_id": template_id, "active": 1, "name": f"{name} v1",
                   "subject": subject, "updated_at": now, "generation": generation, "editor": "code",
                   "thumbnail_url": ""}
        template = {"id": template_id, "name": name, "generation": generation, "updated_at": now, "versions": [version]}
        with self.lock:
            self.templates.append(template)
        return json.loads(json.dumps(template))

    def add_key(self, key: str, scopes: tuple[str, ...] | list[str] = ALL_SCOPES) -> None:
        with self.lock:
            self.keys[key] = set(scopes)

    def designate(self, email: str, outcome: str) -> None:
        if outcome not in ("delivered", "bounce", "blocked", "dropped", "deferred"):
            raise ValueError("outcome must be delivered, bounce, blocked, dropped or deferred")
        with self.lock:
            self.outcomes[email.lower()] = outcome

    def set_event_webhook(self, url: str | None, enabled: bool = True, signed: bool | None = None) -> dict[str, Any]:
        with self.lock:
            self.webhook["url"] = url or ""
            self.webhook["enabled"] = bool(enabled and url)
            if signed is not None:
                self.webhook["signed"] = bool(signed)
            return {**self.webhook, "public_key": self.public_key}

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        return self.dispatcher.wait_idle(timeout)

    def close(self) -> None:
        self.dispatcher.close()

    def sign(self, timestamp: int, body: bytes) -> str:
        """Base64 DER ECDSA-P256-SHA256 over `"<timestamp>" + body`, as SendGrid signs."""
        signature = self.private_key.sign(str(timestamp).encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode("ascii")

    # ---- auth and limits -----------------------------------------------------------------------
    def _authenticate(self, request: Request, scope: str | None) -> str:
        """The caller's API key; `scope` None: any valid key (GET /v3/scopes)."""
        header = request.headers.get("authorization", "")
        if not header.strip():
            raise SendGridError(401, [_err("authorization required")])
        scheme, _, key = header.partition(" ")
        key = key.strip()
        with self.lock:
            scopes = self.keys.get(key) if scheme.lower() in ("bearer", "token") else None
        if scopes is None:
            raise SendGridError(401, [_err("The provided authorization grant is invalid, expired, or revoked")])
        if scope is not None and scope not in scopes:
            raise SendGridError(403, [_err("access forbidden")])
        return key

    def _limit(self, key: str, endpoint: str) -> dict[str, str]:
        window = self.mail_window if endpoint == "mail.send" else self.api_window
        verdict = window.hit(hashlib.sha256(f"{key}|{endpoint}".encode()).hexdigest())
        headers = {"X-RateLimit-Limit": str(verdict.limit), "X-RateLimit-Remaining": str(verdict.remaining),
                   "X-RateLimit-Reset": str(math.ceil(verdict.reset_at))}
        if not verdict.allowed:
            raise SendGridError(429, [{"field": None, "message": "too many requests"}], headers)
        return headers

    def _endpoint(self, scope: str | None, limit_name: str, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                key = self._authenticate(request, scope)
                headers = self._limit(key, limit_name)
                response = await handler(request)
                response.headers.update(headers)
                return response
            except SendGridError as exc:
                return self._errors(exc.status, exc.errors, exc.headers)

        return endpoint

    # ---- mail send -----------------------------------------------------------------------------
    async def mail_send(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise SendGridError(413, [_err("The JSON payload you have included in your request is too large.")])
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise SendGridError(413, [_err("The JSON payload you have included in your request is too large.")])
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise SendGridError(400, [_err("Bad Request", None, "-Request-Body-Parameters")]) from None
        if not isinstance(body, dict):
            raise SendGridError(400, [_err("Bad Request", None, "-Request-Body-Parameters")])
        errors, recipients = self._validate(body)
        if errors:
            raise SendGridError(400, errors)
        sender = str(body["from"]["email"])
        if not self._sender_allowed(sender):
            raise SendGridError(403, [{"message": "The from address does not match a verified Sender Identity. Mail cannot be sent "
                                                  "until this error is resolved. Visit https://sendgrid.com/docs/for-developers/"
                                                  "sending-email/sender-identity/ to see the Sender Identity requirements",
                                       "field": "from", "help": None}])
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
        if sandbox:
            return Response(status_code=200)
        x_message_id = _uid(16)
        self._accept(body, recipients, x_message_id)
        return Response(status_code=202, headers={"X-Message-Id": x_message_id})

    def _validate(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
        errors: list[dict[str, Any]] = []
        recipients: list[tuple[int, str, str]] = []  # (personalization index, kind, email)
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            errors.append(_err("The personalizations field is required and must have at least one personalization.",
                               "personalizations", "-Personalizations-Errors"))
            personalizations = []
        elif len(personalizations) > MAX_PERSONALIZATIONS:
            errors.append(_err("The personalizations field is limited to 1000 personalization objects.", "personalizations",
                               "-Personalizations-Errors"))
        template_id = body.get("template_id")
        seen: set[str] = set()
        for i, p in enumerate(personalizations):
            if not isinstance(p, dict):
                errors.append(_err("The personalization must be an object.", f"personalizations.{i}", "-Personalizations-Errors"))
                continue
            to = p.get("to")
            if not isinstance(to, list) or not to:
                errors.append(_err("The to array is required for all personalization objects, and must have at least one "
                                   "email object with a valid email address.", f"personalizations.{i}.to",
                                   "message.personalizations.to"))
                to = []
            for kind, people in (("to", to), ("cc", p.get("cc") or []), ("bcc", p.get("bcc") or [])):
                if not isinstance(people, list):
                    errors.append(_err(f"The {kind} field must be an array.", f"personalizations.{i}.{kind}", "message.personalizations"))
                    continue
                for j, person in enumerate(people):
                    email = person.get("email") if isinstance(person, dict) else None
                    if not isinstance(email, str) or not _EMAIL.match(email):
                        errors.append(_err("Does not contain a valid address.", f"personalizations.{i}.{kind}.{j}.email",
                                           "message.personalizations.to"))
                        continue
                    if email.lower() in seen:
                        errors.append(_err(f"Each email address in the personalization block should be unique between to, cc, "
                                           f"and bcc. We found the first duplicate instance of [{email}] in the "
                                           f"personalizations.{i}.{kind} field.", f"personalizations.{i}", "message.recipient_errors"))
                        continue
                    seen.add(email.lower())
                    recipients.append((i, kind, email))
            for name in ("dynamic_template_data", "custom_args", "substitutions", "headers"):
                if p.get(name) is not None and not isinstance(p[name], dict):
                    errors.append(_err(f"The {name} must be an object.", f"personalizations.{i}.{name}", "message.personalizations"))
            errors.extend(_custom_args_errors(p.get("custom_args"), f"personalizations.{i}.custom_args"))
        if len(recipients) > MAX_RECIPIENTS:
            errors.append(_err("The total number of recipients (to, cc and bcc) must be at most 1000.", "personalizations",
                               "message.recipient_errors"))
        sender = body.get("from")
        if not isinstance(sender, dict) or not isinstance(sender.get("email"), str):
            errors.append(_err('The from object must be provided for every email send. It is an object that requires the email '
                               'parameter, but may also contain a name parameter.  e.g. {"email" : "example@example.com"}  or '
                               '{"email" : "example@example.com", "name" : "Example Recipient"}.', "from.email", "message.from"))
        elif not _EMAIL.match(sender["email"]):
            errors.append(_err("The from email does not contain a valid address.", "from.email", "message.from"))
        template = None
        if template_id is not None:
            with self.lock:
                template = next((t for t in self.templates if t["id"] == template_id), None)
            if template is None:
                errors.append(_err("The template_id is not a valid template ID.", "template_id", "message.template_id"))
        content = body.get("content")
        if content is not None:
            if not isinstance(content, list) or not content:
                errors.append(_err("The content field must be an array of at least one content object.", "content", "message.content"))
            else:
                for k, block in enumerate(content):
                    if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block.get("type"):
                        errors.append(_err("The content type must be a string at least one character in length.",
                                           f"content.{k}.type", "message.content.type"))
                    elif not isinstance(block.get("value"), str) or not block["value"]:
                        errors.append(_err("The content value must be a string at least one character in length.",
                                           f"content.{k}.value", "message.content.value"))
        elif template_id is None:
            errors.append(_err("Unless a valid template_id is provided, the content parameter is required. There must be at least "
                               "one defined content block. We typically suggest both text/plain and text/html blocks are "
                               "included, but only one block is required.", "content", "message.content"))
        has_subject = isinstance(body.get("subject"), str) and body["subject"] != ""
        every_has = bool(personalizations) and all(isinstance(p, dict) and isinstance(p.get("subject"), str) and p["subject"]
                                                   for p in personalizations)
        template_subject = template is not None and any(v.get("subject") for v in template["versions"])
        if not (has_subject or every_has or template_subject):
            errors.append(_err("The subject is required. You can get around this requirement if you use a template with a subject "
                               "defined or if every personalization has a subject defined.", "subject", "message.subject"))
        if body.get("custom_args") is not None and not isinstance(body["custom_args"], dict):
            errors.append(_err("The custom_args must be an object.", "custom_args", "message.custom_args"))
        errors.extend(_custom_args_errors(body.get("custom_args"), "custom_args"))
        categories = body.get("categories")
        if categories is not None and (not isinstance(categories, list) or len(categories) > 10
                                       or not all(isinstance(c, str) for c in categories)):
            errors.append(_err("The categories must be an array of at most 10 strings.", "categories", "message.categories"))
        return errors, recipients

    def _sender_allowed(self, email: str) -> bool:
        with self.lock:
            if any(s["from_email"].lower() == email.lower() and s["verified"] for s in self.senders):
                return True
        return email.rpartition("@")[2].lower() in self.domains

    def _outcome(self, email: str) -> str:
        with self.lock:
            designated = self.outcomes.get(email.lower())
        if designated:
            return designated
        local = email.partition("@")[0].lower().partition("+")[0]
        return _BY_LOCAL_PART.get(local, "delivered")

    def _accept(self, body: dict[str, Any], recipients: list[tuple[int, str, str]], x_message_id: str) -> None:
        now = self.clock.time()
        seq = next(self._msg_seq)
        categories = list(body.get("categories") or [])
        message = {"x_message_id": x_message_id, "from": body["from"], "subject": body.get("subject"),
                   "template_id": body.get("template_id"), "personalizations": body["personalizations"],
                   "categories": categories, "custom_args": body.get("custom_args") or {}, "send_at": body.get("send_at"),
                   "at": now, "recipients": []}
        first: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []
        for index, (p_index, kind, email) in enumerate(recipients):
            personalization = body["personalizations"][p_index]
            recipient = {"email": email, "kind": kind, "personalization": p_index, "outcome": self._outcome(email),
                         "sg_message_id": f"{x_message_id}.filterdrecv-{seq}-{index}.0", "events": []}
            message["recipients"].append(recipient)
            base = {"email": email, "smtp-id": f"<{x_message_id}@ismtpd0001p1.sendgrid.net>",
                    "sg_message_id": recipient["sg_message_id"]}
            if categories:
                base["category"] = categories
            if body.get("template_id"):
                base["template_id"] = body["template_id"]
            custom = {**(body.get("custom_args") or {}), **(personalization.get("custom_args") or {})}
            outcome = recipient["outcome"]
            first.append(self._event(recipient, base, custom, "processed"))
            if outcome == "dropped":
                first.append(self._event(recipient, base, custom, "dropped", reason="Bounced Address", status="5.0.0"))
            elif outcome == "deferred":
                later.append(self._event(recipient, base, custom, "deferred", response="421 4.7.0 Try again later", attempt="1"))
                later.append(self._event(recipient, base, custom, "delivered", response="250 OK", ip="168.1.1.1", tls=1))
            elif outcome == "bounce":
                later.append(self._event(recipient, base, custom, "bounce", type="bounce", status="5.1.1",
                                         reason="550 5.1.1 The email account that you tried to reach does not exist.",
                                         bounce_classification="Invalid Address", ip="168.1.1.1", tls=1))
            elif outcome == "blocked":
                later.append(self._event(recipient, base, custom, "bounce", type="blocked", status="5.7.1",
                                         reason="550 5.7.1 Message rejected due to local policy",
                                         bounce_classification="Reputation", ip="168.1.1.1", tls=1))
            else:
                later.append(self._event(recipient, base, custom, "delivered", response="250 OK", ip="168.1.1.1", tls=1))
        with self.lock:
            self.messages.append(message)
        self._queue_events(first)
        if later:
            self.dispatcher.call_later(self.deliver_delay_s, lambda: self._queue_events(later))

    def _event(self, recipient: dict[str, Any], base: dict[str, Any], custom: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
        event = {**{str(k): v for k, v in custom.items()}, **base, "event": name, "sg_event_id": _uid(16), **fields}
        recipient["events"].append(event)
        return event

    # ---- the event webhook ---------------------------------------------------------------------
    def _queue_events(self, events: list[dict[str, Any]]) -> None:
        now = int(self.clock.time())
        with self.lock:
            for event in events:
                event["timestamp"] = now
            self._pending_events.extend(events)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self.dispatcher.call_later(self.batch_window_s, self._flush)

    def _flush(self) -> None:
        with self.lock:
            events, self._pending_events, self._flush_scheduled = self._pending_events, [], False
            settings = dict(self.webhook)
        wanted = [e for e in events if settings.get(e["event"], True)]
        for start in range(0, len(wanted), MAX_EVENTS_PER_POST):
            chunk = wanted[start:start + MAX_EVENTS_PER_POST]
            batch = {"id": f"batch-{next(self._batch_seq)}", "events": chunk, "created_at": self.clock.time()}
            with self.lock:
                self.batches.append(batch)
            if not (settings["enabled"] and settings["url"]):
                batch["status"] = "no_target"
                continue
            body = json.dumps(chunk, separators=(",", ":")).encode() + b"\r\n"
            self.dispatcher.post(batch, settings["url"], body, self._headers(bool(settings["signed"])), self._retry)

    def _headers(self, signed: bool) -> Callable[[bytes], dict[str, str]]:
        def headers(body: bytes) -> dict[str, str]:
            result = {"Content-Type": "application/json", "User-Agent": "SendGrid Event API"}
            if signed:
                timestamp = int(self.clock.time())
                result[TIMESTAMP_HEADER] = str(timestamp)
                result[SIGNATURE_HEADER] = self.sign(timestamp, body)
            return result

        return headers

    def _retry(self, attempt: int, failure: str) -> float | None:
        return self.retry_schedule_s[attempt - 1] if attempt - 1 < len(self.retry_schedule_s) else None

    # ---- other endpoints -----------------------------------------------------------------------
    async def templates_list(self, request: Request) -> Response:
        q = request.query_params
        generations = set((q.get("generations") or "legacy").split(","))
        if not generations <= {"legacy", "dynamic"}:
            raise SendGridError(400, [_err("generations must be legacy, dynamic or legacy,dynamic", "generations")])
        try:
            page_size = int(q.get("page_size", ""))
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= 200:
            raise SendGridError(400, [_err("page_size must be an integer between 1 and 200", "page_size")])
        token = q.get("page_token")
        try:
            start = int(base64.urlsafe_b64decode(token.encode() + b"==").decode()) if token else 0
        except (ValueError, UnicodeDecodeError):
            raise SendGridError(400, [_err("invalid page_token", "page_token")]) from None
        with self.lock:
            rows = [t for t in self.templates if t["generation"] in generations]
            page = json.loads(json.dumps(rows[start:start + page_size]))
        base = f"{request.url.scheme}://{request.url.netloc}/v3/templates?generations={','.join(sorted(generations))}&page_size={page_size}"
        metadata: dict[str, Any] = {"self": base + (f"&page_token={token}" if token else ""), "count": len(rows)}
        if start + page_size < len(rows):
            metadata["next"] = base + "&page_token=" + base64.urlsafe_b64encode(str(start + page_size).encode()).decode().rstrip("=")
        if start > 0:
            prev = max(0, start - page_size)
            metadata["prev"] = base + "&page_token=" + base64.urlsafe_b64encode(str(prev).encode()).decode().rstrip("=")
        return JSONResponse({"result": page, "_metadata": metadata})

    async def template_get(self, request: Request) -> Response:
        with self.lock:
            template = next((t for t in self.templates if t["id"] == request.path_params["template_id"]), None)
            if template is None:
                raise SendGridError(404, [_err("resource not found", "template_id")])
            return JSONResponse(json.loads(json.dumps(template)))

    async def verified_senders(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit", 100))
            last_seen = int(q.get("lastSeenID", 0))
            wanted_id = int(q["id"]) if q.get("id") else None
        except ValueError:
            raise SendGridError(400, [_err("limit, lastSeenID and id must be integers", None)]) from None
        with self.lock:
            rows = [dict(s) for s in self.senders if s["id"] > last_seen and (wanted_id is None or s["id"] == wanted_id)]
        return JSONResponse({"results": rows[:max(1, limit)]})

    async def create_verified_sender(self, request: Request) -> Response:
        """POST /v3/verified_senders: a new, unverified identity (the verification email is
        not sent anywhere; the admin route or `verify_sender` plays the click on its link)."""
        body = await self._json_object(request)
        errors = [_err(f"{name} is required", name) for name in SENDER_REQUIRED
                  if not isinstance(body.get(name), str) or not body[name].strip()]
        for name in ("from_email", "reply_to"):
            if isinstance(body.get(name), str) and body[name].strip() and not _EMAIL.match(body[name].strip()):
                errors.append(_err(f"{name} must be a valid email address", name))
        if errors:
            raise SendGridError(400, errors)
        email = body["from_email"].strip()
        with self.lock:
            if any(s["from_email"].lower() == email.lower() for s in self.senders):
                raise SendGridError(400, [_err("already exists", "from_email")])
            sender = self.add_sender(email, str(body.get("from_name") or ""), verified=False, nickname=body["nickname"].strip(),
                                     reply_to=body["reply_to"].strip())
            for name in ("address", "address2", "city", "state", "zip", "country", "reply_to_name"):
                if isinstance(body.get(name), str):
                    sender[name] = body[name]
            self.senders[-1].update(sender)
            self.verification_requests.append(email)
        return JSONResponse(sender, status_code=201)

    async def resend_verification(self, request: Request) -> Response:
        try:
            sender_id = int(request.path_params["sender_id"])
        except ValueError:
            raise SendGridError(404, [_err("resource not found", "id")]) from None
        with self.lock:
            sender = next((s for s in self.senders if s["id"] == sender_id), None)
            if sender is None:
                raise SendGridError(404, [_err("resource not found", "id")])
            if sender["verified"]:
                raise SendGridError(400, [_err("sender is already verified", "id")])
            self.verification_requests.append(sender["from_email"])
        return Response(status_code=204)

    def verify_sender(self, email: str) -> dict[str, Any]:
        """Play the click on a verification link: the sender with `email` is verified."""
        with self.lock:
            sender = next((s for s in self.senders if s["from_email"].lower() == email.lower()), None)
            if sender is None:
                raise ValueError(f"no sender {email}")
            sender["verified"] = True
            return dict(sender)

    async def scopes(self, request: Request) -> Response:
        key = request.headers.get("authorization", "").partition(" ")[2].strip()
        with self.lock:
            return JSONResponse({"scopes": sorted(self.keys.get(key, ()))})

    async def webhook_settings(self, request: Request) -> Response:
        if request.method == "PATCH":
            body = await self._json_object(request)
            with self.lock:
                if "url" in body:
                    self.webhook["url"] = str(body["url"] or "")
                for name in ("enabled", *EVENT_TYPES):
                    if name in body:
                        self.webhook[name] = bool(body[name])
                if not self.webhook["url"]:
                    self.webhook["enabled"] = False
        with self.lock:
            return JSONResponse({k: v for k, v in self.webhook.items() if k != "signed"})

    async def webhook_signed(self, request: Request) -> Response:
        if request.method == "PATCH":
            body = await self._json_object(request)
            if not isinstance(body.get("enabled"), bool):
                raise SendGridError(400, [_err("enabled must be a boolean", "enabled")])
            with self.lock:
                self.webhook["signed"] = body["enabled"]
        with self.lock:
            return JSONResponse({"public_key": self.public_key if self.webhook["signed"] else ""})

    @staticmethod
    async def _json_object(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise SendGridError(400, [_err("Bad Request")]) from None
        if not isinstance(body, dict):
            raise SendGridError(400, [_err("Bad Request")])
        return body

    def _routes(self) -> list[Route]:
        e = self._endpoint
        read, update = "user.webhooks.event.settings.read", "user.webhooks.event.settings.update"

        def by_method(get_scope: str, patch_scope: str, handler):
            get, patch = e(get_scope, "webhook", handler), e(patch_scope, "webhook", handler)

            async def endpoint(request: Request) -> Response:
                return await (patch if request.method == "PATCH" else get)(request)

            return endpoint

        def by_method_post(scope: str, get_handler, post_handler):
            get, post = e(scope, "verified_senders", get_handler), e(scope, "verified_senders", post_handler)

            async def endpoint(request: Request) -> Response:
                return await (post if request.method == "POST" else get)(request)

            return endpoint

        return [
            Route("/v3/mail/send", e("mail.send", "mail.send", self.mail_send), methods=["POST"]),
            Route("/v3/templates", e("templates.read", "templates", self.templates_list), methods=["GET"]),
            Route("/v3/templates/{template_id}", e("templates.read", "templates", self.template_get), methods=["GET"]),
            Route("/v3/verified_senders", by_method_post("verified_senders", self.verified_senders, self.create_verified_sender),
                  methods=["GET", "POST"]),
            Route("/v3/verified_senders/resend/{sender_id}", e("verified_senders", "verified_senders", self.resend_verification),
                  methods=["POST"]),
            Route("/v3/scopes", e(None, "scopes", self.scopes), methods=["GET"]),
            Route("/v3/user/webhooks/event/settings", by_method(read, update, self.webhook_settings), methods=["GET", "PATCH"]),
            Route("/v3/user/webhooks/event/settings/signed", by_method(read, update, self.webhook_signed), methods=["GET", "PATCH"]),
        ]

    # ---- admin ---------------------------------------------------------------------------------
    def _admin_routes(self) -> list[Route]:
        async def event_webhook(request: Request) -> Response:
            if request.method == "POST":
                try:
                    body = await admin_body(request)
                except ValueError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
                with self.lock:
                    url = body.get("url", self.webhook["url"])
                return JSONResponse(self.set_event_webhook(url, body.get("enabled", True), body.get("signed")))
            with self.lock:
                return JSONResponse({**self.webhook, "public_key": self.public_key})

        async def messages(request: Request) -> Response:
            to = (request.query_params.get("to") or "").lower()
            with self.lock:
                rows = [m for m in self.messages if not to or any(r["email"].lower() == to for r in m["recipients"])]
                return JSONResponse({"messages": json.loads(json.dumps(rows))})

        async def batches(request: Request) -> Response:
            with self.dispatcher.lock, self.lock:
                return JSONResponse(json.loads(json.dumps({"batches": self.batches, "attempts": self.dispatcher.attempts})))

        return [
            Route(f"{ADMIN_PREFIX}/event_webhook", event_webhook, methods=["GET", "POST"]),
            Route(f"{ADMIN_PREFIX}/messages", messages, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/batches", batches, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/senders", admin_action(lambda b: self.add_sender(b["email"], b.get("name", ""), b.get("verified", True))),
                  methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/templates", admin_action(lambda b: self.add_template(b["name"], b.get("subject", ""),
                                                                                 b.get("generation", "dynamic"), b.get("id"))),
                  methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/senders/verify", admin_action(lambda b: self.verify_sender(b["email"])), methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/keys", admin_action(lambda b: self.add_key(b["key"], b.get("scopes", ALL_SCOPES))), methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/outcomes", admin_action(lambda b: self.designate(b["email"], b["outcome"])), methods=["POST"]),
        ]

    # ---- provider-shaped responses ---------------------------------------------------------------
    @staticmethod
    def _errors(status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"errors": errors}, status_code=status, headers=headers or {})

    def _throttled(self, retry_after: str) -> Response:
        reset = math.ceil(self.clock.time() + float(retry_after)) if retry_after.isdigit() else math.ceil(self.clock.time() + 1)
        return self._errors(429, [{"field": None, "message": "too many requests"}],
                            {"X-RateLimit-Limit": str(self.api_window.limit), "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset": str(reset), "Retry-After": retry_after})

    def _server_error(self, status: int) -> Response:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        return self._errors(status, [{"field": None, "message": phrase}])


def create_emulator(*, api_keys: dict[str, tuple[str, ...]] | None = None, senders: list[dict[str, Any]] | None = None,
                    domains: tuple[str, ...] = (), templates: list[dict[str, Any]] | None = None,
                    event_webhook_url: str | None = None, seed: int = 0, retry_base_s: float = 1.0,
                    retry_schedule_s: tuple[float, ...] | None = None, batch_window_s: float = 0.1,
                    deliver_delay_s: float = 0.2, mail_send_limit: int = 10_000, mail_send_window_s: float = 1.0,
                    api_limit: int = 600, api_window_s: float = 60.0) -> SendGridEmulator:
    """A SendGrid emulator: the demo key, three senders (two verified), two dynamic and one legacy
    template, an ECDSA key pair derived from `seed`, and the event webhook off until a URL is set."""
    schedule = retry_schedule_s if retry_schedule_s is not None else tuple(retry_base_s * 2 ** n for n in range(10))
    return SendGridEmulator(api_keys=api_keys, senders=senders, domains=domains, templates=templates,
                            event_webhook_url=event_webhook_url, seed=seed, retry_schedule_s=schedule,
                            batch_window_s=batch_window_s, deliver_delay_s=deliver_delay_s, mail_send_limit=mail_send_limit,
                            mail_send_window_s=mail_send_window_s, api_limit=api_limit, api_window_s=api_window_s)
