"""Uber Eats Marketplace Order API emulator: orders placed by emulated eaters, the signed
`orders.notification` / `orders.cancel` webhooks (retried as Uber retries them), and the POS
side of the Order API (get order, accept, deny, cancel, created/canceled order lists) behind
OAuth client credentials. Facts follow providers.md section 4.3 and webhooks.md section (c).

Also home of what the two delivery emulators share (doordash.py imports it): the default menu
and its line resolution, `WebhookSender` (background delivery with retries and a record of
every attempt), `MarketplaceState`, the `MarketplaceEmulator` base (order records, timings,
admin routes) and money/time helpers.

Public API (`create_emulator(...) -> UberEatsEmulator`, with `.app`, `.core`, `.state`):
- `place_order(items=None, **overrides) -> dict` (the order as `GET /v2/eats/order/{id}` shows
  it; `overrides` replace top-level order keys, e.g. `type="PICK_UP"`), `cancel_order(id,
  reason="EATER_CANCELLED")` (as the eater / Uber would: CANCELED and an `orders.cancel` webhook),
  `finish_order(id)` (ACCEPTED -> FINISHED), `sweep()` (auto-cancel due orders now),
  `set_webhook_url(url)`, `wait_idle(timeout)` (every queued webhook delivered or given up),
  `close()` (stops the delivery threads), `menu`, `base_url`.
- `items`: a list of `{"id" | "sku", "quantity"?, "modifiers"?: [option id or sku],
  "special_instructions"?}`; an id/sku not on the menu becomes an item of that SKU with
  `title` / `price` (cents) from the entry (default "Unknown item", 500), so a hub's
  "unknown item" deny path is testable. `items=None`: 1-3 menu items chosen by the seed.
- `state.orders[id]`: `{"id", "state", "placed_at", "first_sent_at", "notified_at",
  "accepted_at", "denied_at", "canceled_at", "finished_at", "deny_reason", "cancel_reason",
  "accept", "history": [{"state", "at"}], "events": [event ids], "order": {...API shape...}}`.
  Times are emulator-clock epoch seconds (real time unless the clock was advanced).
  `notified_at` is when the first successful `orders.notification` send started, so
  `accepted_at - notified_at` is the hub's webhook-to-accept latency.
- `state.deliveries`: one record per send: `{"event_id", "event_type", "order_id", "attempt",
  "status" (int or None), "error" (str or None), "time", "duration_ms"}`; `state.events[id]`:
  `{"status": "pending"|"delivered"|"failed"|"no_target", "attempts", ...}`.

Admin routes (besides the framework's, see core.py):
| method and path | body | does |
|---|---|---|
| POST /_emulator/orders | `{"count"?: N, "items"?: [...], "overrides"?: {...}}` | place N orders -> `{"orders": [...]}` |
| GET /_emulator/orders | `?state=` | `{"orders": [record without "order"], "counts", "webhooks"}` |
| GET /_emulator/orders/{id} | - | the full record |
| POST /_emulator/orders/{id}/cancel | `{"reason"?}` | `cancel_order` (404 unknown, 409 not cancellable) |
| POST /_emulator/orders/{id}/finish | - | `finish_order` |
| GET, POST /_emulator/webhook | `{"url": ... or null}` | read / set the webhook target |
| GET /_emulator/deliveries | `?event_id=` | `{"deliveries": [...]}` |
| GET /_emulator/menu | - | `{"menu": [...]}` |

Choices where the reference is UNCONFIRMED (or silent):
- Access tokens live 30 days (2592000 s). Scopes are checked loosely: a token requested with
  no scope may do everything; one with scopes needs `eats.order` for accept/deny/cancel and
  any of `eats.order`, `eats.store.orders.read`, `eats.store` to read orders -> else 403.
- Errors are `{"code", "message"}`: 401 `unauthorized`, 403 `forbidden`, 404 `not_found`,
  400 `invalid_argument`, 409 `conflict`, 429 `rate_limited` (+ Retry-After), 5xx `internal_error`.
- Accept and deny answer 204 (no body). Accept needs a string `reason`; `pickup_time` (int
  unix s) and `external_reference_id` are optional (the latter is copied onto the order). Deny
  needs `reason.code` from the documented list (anything else -> 400). Accepting, denying or
  cancelling an order that is not in a state that allows it -> **409** (`conflict`, with the
  current state in the message); an unknown order -> 404.
- `POST /v1/eats/orders/{id}/cancel` (POS cancel) takes `{"reason": OUT_OF_ITEMS |
  KITCHEN_CLOSED | CUSTOMER_CALLED_TO_CANCEL | RESTAURANT_TOO_BUSY |
  CANNOT_COMPLETE_CUSTOMER_NOTE | OTHER, "details"?}` from CREATED or ACCEPTED -> 200 empty
  body; it sends no webhook (the POS asked for it).
- Webhooks: compact JSON; `meta.status` is `"pos"` for every order event (`orders.cancel`
  too); `resource_href` is `<base_url>/v2/eats/order/<id>` where `base_url` is the
  constructor's, else learned from the first HTTP request the app serves, else
  `http://127.0.0.1`. Any 2xx acknowledges (Uber asks for 200 with an empty body). Retries
  wait retry_base_s * 1, 2, 4, ... after the failed send ends, up to 7 sends; each send times
  out after 10 s. Events and order ids are random UUIDs (a restarted emulator never repeats
  an id the hub has stored); the seed drives order contents only. With no webhook URL set an
  event is recorded as `no_target` and never sent (setting a URL later does not replay it).
- Auto-cancel: an order still CREATED 690 s (emulator clock) after `placed_at` becomes
  CANCELED (`cancel_reason` "auto_cancel", `canceled_at` = the deadline) on the next API or
  admin access or the periodic sweep (every 0.5 s real time once an order exists), with an
  `orders.cancel` webhook.
- Money: item `price.unit_price` includes the selected modifiers (`base_unit_price` does not),
  `total_price` = unit x quantity; tax is 8% of the subtotal, included in `charges.total`
  with a 299-cent delivery fee (`total_fee`) for DELIVERY_BY_UBER; `cash_amount_due` 0.
- Store status (developer.uber.com Get / Set Restaurant Status): `GET
  /v1/eats/store/{store_id}/status` (scope eats.store) -> `{"status": "ONLINE"}`, or after a
  pause `{"status": "OFFLINE", "offlineReason": "PAUSED_BY_RESTAURANT"}`; `POST` the same path
  (scope eats.store.status.write) with `{"status": "ONLINE"|"PAUSED", "paused_until"?, "reason"?}`
  -> 204 (another status, a malformed `paused_until` or a non-string `reason` -> 400
  `invalid_argument`; another store's id -> 404). `store_status` holds the state (with
  `paused_until` and `reason` as sent). A paused store still receives the emulated orders.
- Not emulated: `orders.release`, `orders.failure`, delivery status changes, gzip, rate limits
  (the framework's fault injector can still inject 429/5xx on the API paths).
"""

from __future__ import annotations

import hashlib
import hmac
import heapq
import itertools
import json
import logging
import queue
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterable, Sequence

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.core import ADMIN_PREFIX, EmulatorCore
from emulators.oauth import Grant, RefreshPolicy

log = logging.getLogger(__name__)

AUTO_CANCEL_S = 690.0  # 11.5 minutes
ACCESS_TTL = 2_592_000  # 30 days
UBER_MAX_SENDS = 7
DENY_CODES = ("STORE_CLOSED", "POS_NOT_READY", "POS_OFFLINE", "ITEM_AVAILABILITY", "MISSING_ITEM", "MISSING_INFO",
              "PRICING", "CAPACITY", "ADDRESS", "SPECIAL_INSTRUCTIONS", "OTHER")
POS_CANCEL_REASONS = ("OUT_OF_ITEMS", "KITCHEN_CLOSED", "CUSTOMER_CALLED_TO_CANCEL", "RESTAURANT_TOO_BUSY",
                      "CANNOT_COMPLETE_CUSTOMER_NOTE", "OTHER")
ORDER_TYPES = ("PICK_UP", "DINE_IN", "DELIVERY_BY_UBER", "DELIVERY_BY_RESTAURANT")
TAX_RATE = 0.08
DELIVERY_FEE = 299

# One restaurant's menu, shared by both delivery emulators. Prices in cents; `sku` is the
# merchant's own id (Uber `external_data`, DoorDash `merchant_supplied_id`).
DEFAULT_MENU: list[dict[str, Any]] = [
    {"id": "margherita", "sku": "PIZ-MARG", "title": "Margherita Pizza", "category": "Pizza", "price": 1299,
     "modifier_groups": [{"id": "pizza-extras", "sku": "GRP-PIZ-EXTRA", "title": "Extras", "options": [
         {"id": "extra-mozzarella", "sku": "MOD-MOZZ", "title": "Extra mozzarella", "price": 200},
         {"id": "fresh-basil", "sku": "MOD-BASIL", "title": "Fresh basil", "price": 100}]}]},
    {"id": "pepperoni", "sku": "PIZ-PEPP", "title": "Pepperoni Pizza", "category": "Pizza", "price": 1499,
     "modifier_groups": [{"id": "pizza-crust", "sku": "GRP-PIZ-CRUST", "title": "Crust", "options": [
         {"id": "thin-crust", "sku": "MOD-THIN", "title": "Thin crust", "price": 0},
         {"id": "gluten-free", "sku": "MOD-GF", "title": "Gluten-free crust", "price": 300}]}]},
    {"id": "caesar-salad", "sku": "SAL-CAES", "title": "Caesar Salad", "category": "Salads", "price": 899,
     "modifier_groups": [{"id": "salad-protein", "sku": "GRP-SAL-PROT", "title": "Add protein", "options": [
         {"id": "grilled-chicken", "sku": "MOD-CHKN", "title": "Grilled chicken", "price": 350}]}]},
    {"id": "garlic-knots", "sku": "APP-KNOT", "title": "Garlic Knots", "category": "Starters", "price": 549, "modifier_groups": []},
    {"id": "tiramisu", "sku": "DES-TIRA", "title": "Tiramisu", "category": "Desserts", "price": 699, "modifier_groups": []},
    {"id": "lemonade", "sku": "BEV-LEMO", "title": "Lemonade", "category": "Drinks", "price": 349, "modifier_groups": []},
]

_FIRST_NAMES = ("Larry", "Maria", "Kelley", "Omar", "Priya", "Jonas", "Aiko", "Diego", "Fatima", "Sam", "Lena", "Tom")
_LAST_NAMES = ("L", "B", "K", "M", "R", "S", "T", "W", "N", "O")
_NOTES = ("", "", "", "No onions please", "Extra napkins", "Ring the bell", "Leave at the door")
_STREETS = ("Main St", "Oak Ave", "Pine Rd", "Market St", "Harbor Blvd", "Mill Ln")


# ---- helpers ------------------------------------------------------------------------------------
def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def money(cents: int, currency: str = "USD") -> dict[str, Any]:
    sign = "-" if cents < 0 else ""
    return {"amount": int(cents), "currency_code": currency, "formatted_amount": f"{sign}${abs(cents) / 100:,.2f}"}


def new_id() -> str:
    return str(uuid.uuid4())


def resolve_lines(menu: Sequence[dict[str, Any]], rng: random.Random, items: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Order lines: `{"item": menu item, "quantity", "modifiers": [(group, option)],
    "special_instructions", "unit_price" (item + modifiers), "total_price"}`.

    `items=None`: 1-3 distinct menu items, quantities and modifiers chosen by `rng`."""
    lines: list[dict[str, Any]] = []
    if items is None:
        for item in rng.sample(list(menu), rng.randint(1, min(3, len(menu)))):
            mods = [(g, rng.choice(g["options"])) for g in item.get("modifier_groups", []) if g["options"] and rng.random() < 0.4]
            lines.append(_line(item, rng.choice((1, 1, 1, 2)), mods, rng.choice(_NOTES)))
        return lines
    by_key = {}
    for item in menu:
        by_key[item["id"]] = item
        by_key[item["sku"]] = item
    for entry in items:
        key = entry.get("id") or entry.get("sku")
        item = by_key.get(key)
        if item is None:  # not on the menu: an item the POS will not know
            sku = entry.get("sku") or str(key)
            item = {"id": entry.get("id") or sku, "sku": sku, "title": entry.get("title", "Unknown item"),
                    "category": entry.get("category", "Other"), "price": int(entry.get("price", 500)), "modifier_groups": []}
        mods = []
        for wanted in entry.get("modifiers", []):
            for group in item.get("modifier_groups", []):
                option = next((o for o in group["options"] if wanted in (o["id"], o["sku"])), None)
                if option is not None:
                    mods.append((group, option))
                    break
            else:
                raise ValueError(f"modifier {wanted!r} is not offered for {item['id']!r}")
        lines.append(_line(item, int(entry.get("quantity", 1)), mods, entry.get("special_instructions", "")))
    return lines


def _line(item: dict[str, Any], quantity: int, mods: list[tuple[dict, dict]], note: str) -> dict[str, Any]:
    unit = int(item["price"]) + sum(int(o["price"]) for _, o in mods)
    return {"item": item, "quantity": quantity, "modifiers": mods, "special_instructions": note,
            "unit_price": unit, "total_price": unit * quantity}


def random_person(rng: random.Random) -> dict[str, str]:
    return {"first_name": rng.choice(_FIRST_NAMES), "last_name": rng.choice(_LAST_NAMES),
            "phone": f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"}


def random_address(rng: random.Random) -> dict[str, str]:
    return {"street": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}", "city": "Atlanta", "state": "GA",
            "zip_code": "30316", "country_code": "US", "lat": f"{33.74 + rng.random() / 50:.6f}", "lng": f"{-84.35 - rng.random() / 50:.6f}"}


# ---- webhook delivery -----------------------------------------------------------------------------
class MarketplaceState:
    """Orders, webhook events and every delivery attempt. `lock` guards all three."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []


class WebhookSender:
    """Sends webhooks from background threads: a scheduler thread (retry timers and a periodic
    `on_tick`) feeds `workers` sender threads, so a slow receiver never blocks the caller.

    A send that answers 2xx delivers the event; anything else (or a connection error / timeout)
    is retried `retry_base_s * 2**(n-1)` seconds after send n ended, up to `max_sends` sends.
    `on_done(event, delivered)` runs once per event when it is delivered or given up."""

    def __init__(self, state: MarketplaceState, clock, *, max_sends: int, retry_base_s: float, timeout_s: float = 10.0,
                 workers: int = 8, on_done: Callable[[dict[str, Any], bool], None] | None = None,
                 on_tick: Callable[[], None] | None = None, tick_s: float = 0.5, name: str = "webhooks"):
        self.state, self.clock = state, clock
        self.max_sends, self.retry_base_s, self.timeout_s = max_sends, retry_base_s, timeout_s
        self.workers, self.on_done, self.on_tick, self.tick_s, self.name = workers, on_done, on_tick, tick_s, name
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._started = self._closed = False
        self.pending = 0

    def start(self) -> None:
        with self._cv:
            if self._started or self._closed:
                return
            self._started = True
        threading.Thread(target=self._schedule_loop, daemon=True, name=f"{self.name}:scheduler").start()
        for n in range(self.workers):
            threading.Thread(target=self._work_loop, daemon=True, name=f"{self.name}:sender{n}").start()

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        for _ in range(self.workers):
            self._queue.put(None)

    def submit(self, event: dict[str, Any], url: str | None, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """Record `event` (needs "event_id") and queue its delivery to `url` now."""
        event.update(status="pending" if url else "no_target", attempts=0, url=url, created_at=self.clock.time(),
                     first_sent_at=None, delivered_at=None, last_status=None)
        with self.state.lock:
            self.state.events[event["event_id"]] = event
        if not url:
            return event
        self.start()
        job = {"event": event, "url": url, "body": body, "headers": headers, "attempt": 0}
        with self._cv:
            self.pending += 1
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), job))
            self._cv.notify_all()
        return event

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once no event is waiting for a send or a retry."""
        with self._cv:
            return self._cv.wait_for(lambda: self.pending == 0, timeout)

    # ---- threads -------------------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        next_tick = time.monotonic()
        while True:
            due: list[dict[str, Any]] = []
            with self._cv:
                if self._closed:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due and now < next_tick:
                    until = min(next_tick, self._heap[0][0]) if self._heap else next_tick
                    self._cv.wait(max(0.0, until - now))
                    continue
            for job in due:
                self._queue.put(job)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_s
                if self.on_tick is not None:
                    try:
                        self.on_tick()
                    except Exception:  # a sweep bug must not stop deliveries
                        log.exception("%s: periodic tick failed", self.name)

    def _work_loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                try:
                    self._attempt(client, job)
                except Exception:
                    log.exception("%s: delivery crashed", self.name)

    def _attempt(self, client: httpx.Client, job: dict[str, Any]) -> None:
        event = job["event"]
        job["attempt"] += 1
        started, t0 = self.clock.time(), time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(job["url"], content=job["body"], headers=job["headers"]).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivered = status is not None and 200 <= status < 300
        record = {"event_id": event["event_id"], "event_type": event.get("event_type"), "order_id": event.get("order_id"),
                  "attempt": job["attempt"], "status": status, "error": error, "time": started,
                  "duration_ms": round((time.monotonic() - t0) * 1000, 2)}
        with self.state.lock:
            self.state.deliveries.append(record)
            event["attempts"], event["last_status"] = job["attempt"], status if status is not None else error
            if event["first_sent_at"] is None:
                event["first_sent_at"] = started
            if delivered:
                event["status"], event["delivered_at"], event["sent_at"] = "delivered", self.clock.time(), started
            elif job["attempt"] >= self.max_sends:
                event["status"] = "failed"
        if delivered or job["attempt"] >= self.max_sends:
            try:
                if self.on_done is not None:
                    self.on_done(event, delivered)
            finally:
                with self._cv:
                    self.pending -= 1
                    self._cv.notify_all()
            return
        with self._cv:
            due = time.monotonic() + self.retry_base_s * 2 ** (job["attempt"] - 1)
            heapq.heappush(self._heap, (due, next(self._seq), job))
            self._cv.notify_all()


class _LearnBaseUrl:
    """Remembers the first request's scheme and Host, for `resource_href` links."""

    def __init__(self, app: ASGIApp, emulator: "MarketplaceEmulator"):
        self.app, self.emulator = app, emulator
        self.state = emulator.core  # like the framework's outermost middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.emulator._learned_base is None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not host and scope.get("server"):
                host = "%s:%s" % tuple(scope["server"])
            if host:
                self.emulator._learned_base = f"{scope.get('scheme', 'http')}://{host}"
        await self.app(scope, receive, send)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "invalid_argument", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_argument", "request body must be a JSON object")
    return body


# ---- the shared emulator base -----------------------------------------------------------------------
class MarketplaceEmulator:
    """Order records, state transitions with history, webhook emission, admin routes.

    Subclasses set `initial_state`, build orders (`_build_order`), send events (`_emit`) and
    implement `cancel_order`."""

    initial_state = "CREATED"
    open_states: tuple[str, ...] = ("CREATED",)  # states the auto-cancel / expiry sweep watches

    def __init__(self, core: EmulatorCore, *, webhook_url: str | None, seed: int, retry_base_s: float, max_sends: int,
                 menu: list[dict[str, Any]] | None, base_url: str | None):
        self.core = core
        self.clock = core.clock
        self.state = MarketplaceState()
        self.menu = [dict(item) for item in (menu or DEFAULT_MENU)]
        self.rng = random.Random(seed)
        self.webhook_url = webhook_url
        self._base_url, self._learned_base = base_url, None
        self._open: dict[str, None] = {}  # ids of orders in `open_states`, oldest first
        self.sender = WebhookSender(self.state, self.clock, max_sends=max_sends, retry_base_s=retry_base_s,
                                    on_done=self._on_delivery_done, on_tick=self.sweep, name=core.provider)

    # ---- public ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (self._base_url or self._learned_base or "http://127.0.0.1").rstrip("/")

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        self._base_url = value

    def set_webhook_url(self, url: str | None) -> None:
        self.webhook_url = url or None

    def wait_idle(self, timeout: float | None = 10.0) -> bool:
        return self.sender.wait_idle(timeout)

    def close(self) -> None:
        self.sender.close()

    def place_orders(self, count: int, items: list[dict[str, Any]] | None = None, **overrides: Any) -> list[dict[str, Any]]:
        return [self.place_order(items, **overrides) for _ in range(count)]

    def place_order(self, items: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
        now = self.clock.time()
        with self.state.lock:
            lines = resolve_lines(self.menu, self.rng, items)
            order = self._build_order(new_id(), lines, now)
            order.update(overrides)
            rec = {"id": order["id"], "state": self.initial_state, "placed_at": now, "first_sent_at": None, "notified_at": None,
                   "accepted_at": None, "denied_at": None, "canceled_at": None, "cancel_reason": None,
                   "history": [{"state": self.initial_state, "at": now}], "events": [], "order": order}
            rec.update(self._extra_record_fields())
            self.state.orders[order["id"]] = rec
            self._open[order["id"]] = None
        self.sender.start()  # the periodic sweep runs from here on
        self._emit_created(rec)
        return json.loads(json.dumps(order))

    def get_record(self, order_id: str) -> dict[str, Any]:
        self.sweep()
        with self.state.lock:
            rec = self.state.orders.get(order_id)
            if rec is None:
                raise KeyError(order_id)
            return json.loads(json.dumps(rec))

    def summaries(self, state: str | None = None) -> dict[str, Any]:
        self.sweep()
        with self.state.lock:
            rows = [{k: v for k, v in rec.items() if k != "order"} for rec in self.state.orders.values()
                    if state is None or rec["state"] == state]
            counts: dict[str, int] = {}
            for rec in self.state.orders.values():
                counts[rec["state"]] = counts.get(rec["state"], 0) + 1
            webhooks: dict[str, int] = {"sends": len(self.state.deliveries)}
            for event in self.state.events.values():
                webhooks[event["status"]] = webhooks.get(event["status"], 0) + 1
        return json.loads(json.dumps({"orders": rows, "counts": counts, "webhooks": webhooks}))

    def sweep(self) -> None:
        """Apply time-based transitions that are due (subclasses: auto-cancel, expiry)."""

    # ---- for subclasses ------------------------------------------------------------------------
    def _extra_record_fields(self) -> dict[str, Any]:
        return {}

    def _build_order(self, order_id: str, lines: list[dict[str, Any]], now: float) -> dict[str, Any]:
        raise NotImplementedError

    def _emit_created(self, rec: dict[str, Any]) -> None:
        raise NotImplementedError

    def _on_event_done(self, rec: dict[str, Any], event: dict[str, Any], delivered: bool) -> None:
        """Called (without the lock) when an order's event is delivered or given up."""

    def cancel_order(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _transition(self, rec: dict[str, Any], new_state: str, at: float | None = None, **fields: Any) -> None:
        """Call with the lock held."""
        at = self.clock.time() if at is None else at
        rec["state"] = new_state
        rec["history"].append({"state": new_state, "at": at})
        rec.update(fields)
        if new_state not in self.open_states:
            self._open.pop(rec["id"], None)

    def _submit(self, rec: dict[str, Any], event_type: str, event_id: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        with self.state.lock:
            rec["events"].append(event_id)
        return self.sender.submit({"event_id": event_id, "event_type": event_type, "order_id": rec["id"]},
                                  self.webhook_url, body, headers)

    def _on_delivery_done(self, event: dict[str, Any], delivered: bool) -> None:
        with self.state.lock:
            rec = self.state.orders.get(event.get("order_id") or "")
            if rec is None:
                return
            if delivered and rec["notified_at"] is None and event["event_type"] in self._created_event_types():
                rec["notified_at"], rec["first_sent_at"] = event["sent_at"], event["first_sent_at"]
        self._on_event_done(rec, event, delivered)

    def _created_event_types(self) -> tuple[str, ...]:
        return ()

    # ---- admin ---------------------------------------------------------------------------------
    def _order_admin_routes(self) -> list[Route]:
        async def orders(request: Request) -> Response:
            if request.method == "GET":
                return JSONResponse(self.summaries(request.query_params.get("state")))
            try:
                body = await json_object(request)
                count = int(body.get("count", 1))
                overrides = dict(body.get("overrides") or {})
                placed = self.place_orders(count, body.get("items"), **overrides)
            except (ApiError, ValueError, TypeError) as exc:
                return JSONResponse({"error": getattr(exc, "message", str(exc))}, status_code=400)
            return JSONResponse({"orders": placed})

        async def one(request: Request) -> Response:
            try:
                return JSONResponse(self.get_record(request.path_params["order_id"]))
            except KeyError:
                return JSONResponse({"error": "no such order"}, status_code=404)

        async def cancel(request: Request) -> Response:
            try:
                body = await json_object(request)
                self.cancel_order(request.path_params["order_id"], body.get("reason"))
                return JSONResponse(self.get_record(request.path_params["order_id"]))
            except KeyError:
                return JSONResponse({"error": "no such order"}, status_code=404)
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)

        async def webhook(request: Request) -> Response:
            if request.method == "POST":
                try:
                    self.set_webhook_url((await json_object(request)).get("url"))
                except ApiError as exc:
                    return JSONResponse({"error": exc.message}, status_code=400)
            return JSONResponse({"url": self.webhook_url})

        async def deliveries(request: Request) -> Response:
            event_id = request.query_params.get("event_id")
            with self.state.lock:
                rows = [d for d in self.state.deliveries if event_id is None or d["event_id"] == event_id]
                return JSONResponse({"deliveries": json.loads(json.dumps(rows))})

        async def menu(request: Request) -> Response:
            return JSONResponse({"menu": self.menu})

        return [Route(f"{ADMIN_PREFIX}/orders", orders, methods=["GET", "POST"]),
                Route(f"{ADMIN_PREFIX}/orders/{{order_id}}", one, methods=["GET"]),
                Route(f"{ADMIN_PREFIX}/orders/{{order_id}}/cancel", cancel, methods=["POST"]),
                Route(f"{ADMIN_PREFIX}/webhook", webhook, methods=["GET", "POST"]),
                Route(f"{ADMIN_PREFIX}/deliveries", deliveries, methods=["GET"]),
                Route(f"{ADMIN_PREFIX}/menu", menu, methods=["GET"])]


# ---- Uber Eats --------------------------------------------------------------------------------------

    # ---- provider-shaped responses shared by both marketplaces ---------------------------
    def _throttled(self, retry_after: str) -> Response:
        return JSONResponse({"code": "rate_limited", "message": "Too many requests"}, status_code=429,
                            headers={"Retry-After": retry_after})

    def _error(self, status: int) -> Response:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Server Error"
        return JSONResponse({"code": "internal_error", "message": phrase}, status_code=status)


class UberEatsEmulator(MarketplaceEmulator):
    """The ASGI app (`.app`) over a `MarketplaceState` (`.state`) and the framework core (`.core`)."""

    initial_state = "CREATED"
    open_states = ("CREATED",)

    def __init__(self, *, store_id: str, store_name: str, client_id: str, client_secret: str, webhook_url: str | None,
                 seed: int, retry_base_s: float, max_sends: int, menu: list[dict[str, Any]] | None, base_url: str | None,
                 environment: str = "sandbox"):
        core = EmulatorCore("ubereats", RefreshPolicy(access_ttl=ACCESS_TTL))
        core.oauth.register_client(client_id, client_secret)
        super().__init__(core, webhook_url=webhook_url, seed=seed, retry_base_s=retry_base_s, max_sends=max_sends,
                         menu=menu, base_url=base_url)
        self.store_id, self.store_name, self.client_id, self.client_secret = store_id, store_name, client_id, client_secret
        self.environment = environment
        self.store_status: dict[str, Any] = {"status": "ONLINE", "offlineReason": None, "paused_until": None, "reason": None}
        app = core.build_app(
            api_routes=self._routes(), oauth_token_path="/oauth/v2/token", oauth_authorize_path="/oauth/v2/authorize",
            is_api_path=lambda path: path.startswith(("/v1/eats/", "/v2/eats/")), unauthorized_response=self._unauthorized,
            throttle_response=self._throttled, error_response=self._error, admin_routes=self._admin_routes())
        self.app = _LearnBaseUrl(app, self)

    # ---- orders ------------------------------------------------------------------------------
    def _extra_record_fields(self) -> dict[str, Any]:
        return {"finished_at": None, "deny_reason": None, "accept": None}

    def _build_order(self, order_id: str, lines: list[dict[str, Any]], now: float) -> dict[str, Any]:
        rng = self.rng
        eater = random_person(rng)
        eater["phone_code"] = f"{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(100, 999)}"
        order_type = rng.choice(("DELIVERY_BY_UBER", "DELIVERY_BY_UBER", "DELIVERY_BY_UBER", "PICK_UP"))
        items = []
        for n, line in enumerate(lines):
            item, qty = line["item"], line["quantity"]
            groups: dict[str, dict[str, Any]] = {}
            for group, option in line["modifiers"]:
                entry = groups.setdefault(group["id"], {"id": group["id"], "title": group["title"], "external_data": group["sku"],
                                                        "selected_items": []})
                entry["selected_items"].append({"id": option["id"], "title": option["title"], "external_data": option["sku"],
                                                "quantity": 1, "price": {"unit_price": money(option["price"]),
                                                                          "total_price": money(option["price"])}})
            items.append({"id": item["id"], "instance_id": f"{item['id']}-{order_id[-5:]}-{n + 1}", "title": item["title"],
                          "external_data": item["sku"], "quantity": qty,
                          "price": {"unit_price": money(line["unit_price"]), "total_price": money(line["total_price"]),
                                    "base_unit_price": money(item["price"]), "base_total_price": money(item["price"] * qty)},
                          "selected_modifier_groups": list(groups.values()), "special_instructions": line["special_instructions"]})
        sub_total = sum(line["total_price"] for line in lines)
        tax = round(sub_total * TAX_RATE)
        fee = DELIVERY_FEE if order_type == "DELIVERY_BY_UBER" else 0
        order = {
            "id": order_id, "display_id": order_id[-5:].upper(), "external_reference_id": None, "current_state": "CREATED",
            "type": order_type, "brand": "UBER_EATS",
            "store": {"id": self.store_id, "name": self.store_name, "integrator_store_id": self.store_id,
                      "merchant_store_id": self.store_id},
            "eater": eater,
            "cart": {"items": items, "special_instructions": rng.choice(_NOTES)},
            "payment": {"charges": {"total": money(sub_total + tax + fee), "sub_total": money(sub_total), "tax": money(tax),
                                    "total_fee": money(fee), "total_fee_tax": money(0), "bag_fee": money(0),
                                    "cash_amount_due": money(0)}},
            "placed_at": iso(now), "estimated_ready_for_pickup_at": iso(now + 20 * 60),
            "deliveries": [],
        }
        if order_type == "DELIVERY_BY_UBER":
            courier = random_person(rng)
            order["deliveries"] = [{"id": new_id(), "first_name": courier["first_name"], "current_state": "SCHEDULED",
                                    "estimated_pickup_time": iso(now + 20 * 60)}]
        return order

    def _created_event_types(self) -> tuple[str, ...]:
        return ("orders.notification",)

    def _emit_created(self, rec: dict[str, Any]) -> None:
        self._emit(rec, "orders.notification")

    def _emit(self, rec: dict[str, Any], event_type: str) -> dict[str, Any]:
        event_id = new_id()
        body = json.dumps({"event_id": event_id, "event_time": int(self.clock.time()), "event_type": event_type,
                           "meta": {"user_id": self.store_id, "resource_id": rec["id"], "status": "pos"},
                           "resource_href": f"{self.base_url}/v2/eats/order/{rec['id']}"}, separators=(",", ":")).encode()
        return self._submit(rec, event_type, event_id, body, self.webhook_headers(body))

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        signature = hmac.new(self.client_secret.encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Uber-Signature": signature, "X-Environment": self.environment}

    def _set_state(self, rec: dict[str, Any], new_state: str, at: float | None = None, **fields: Any) -> None:
        at = self.clock.time() if at is None else at
        self._transition(rec, new_state, at, **fields)
        rec["order"]["current_state"] = new_state

    def sweep(self) -> None:
        """CREATED orders past the 11.5-minute deadline become CANCELED (+ orders.cancel)."""
        now, due = self.clock.time(), []
        with self.state.lock:
            for order_id in list(self._open):
                rec = self.state.orders[order_id]
                deadline = rec["placed_at"] + AUTO_CANCEL_S
                if rec["state"] == "CREATED" and now >= deadline:
                    self._set_state(rec, "CANCELED", deadline, canceled_at=deadline, cancel_reason="auto_cancel")
                    due.append(rec)
        for rec in due:
            self._emit(rec, "orders.cancel")

    def cancel_order(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        """As the eater or Uber would: CANCELED from CREATED or ACCEPTED, and an orders.cancel
        webhook. Unknown id -> KeyError; other states -> ApiError 409."""
        self.sweep()
        with self.state.lock:
            rec = self.state.orders[order_id]
            if rec["state"] not in ("CREATED", "ACCEPTED"):
                raise ApiError(409, "conflict", f"order is {rec['state']}, it cannot be cancelled")
            self._set_state(rec, "CANCELED", canceled_at=self.clock.time(), cancel_reason=reason or "EATER_CANCELLED")
            order = json.loads(json.dumps(rec["order"]))
        self._emit(rec, "orders.cancel")
        return order

    def finish_order(self, order_id: str) -> dict[str, Any]:
        with self.state.lock:
            rec = self.state.orders[order_id]
            if rec["state"] != "ACCEPTED":
                raise ApiError(409, "conflict", f"order is {rec['state']}, only ACCEPTED orders finish")
            self._set_state(rec, "FINISHED", finished_at=self.clock.time())
            return json.loads(json.dumps(rec["order"]))

    # ---- API ---------------------------------------------------------------------------------------
    def _endpoint(self, handler: Callable[[Request, dict[str, Any] | None], Any], *scopes: str, order: bool = True) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            grant = self.core.oauth.authenticate(request)  # Unauthorized -> 401
            try:
                self._check_scope(grant, scopes)
                self.sweep()
                rec = None
                if order:
                    with self.state.lock:
                        rec = self.state.orders.get(request.path_params["order_id"])
                    if rec is None:
                        raise ApiError(404, "not_found", "order not found")
                return await handler(request, rec)
            except ApiError as exc:
                return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

        return endpoint

    @staticmethod
    def _check_scope(grant: Grant, needed: Sequence[str]) -> None:
        granted = set(grant.scope.split())
        if granted and needed and not granted & set(needed):
            raise ApiError(403, "forbidden", f"this call needs one of the scopes: {', '.join(needed)}")

    async def get_order(self, request: Request, rec: dict[str, Any] | None) -> Response:
        with self.state.lock:
            return JSONResponse(json.loads(json.dumps(rec["order"])))

    async def accept(self, request: Request, rec: dict[str, Any] | None) -> Response:
        body = await json_object(request)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ApiError(400, "invalid_argument", "reason is required (a string)")
        pickup = body.get("pickup_time")
        if pickup is not None and (isinstance(pickup, bool) or not isinstance(pickup, int)):
            raise ApiError(400, "invalid_argument", "pickup_time must be a unix time in seconds")
        ref = body.get("external_reference_id")
        if ref is not None and not isinstance(ref, str):
            raise ApiError(400, "invalid_argument", "external_reference_id must be a string")
        with self.state.lock:
            if rec["state"] != "CREATED":
                raise ApiError(409, "conflict", f"order is {rec['state']}, only CREATED orders can be accepted")
            self._set_state(rec, "ACCEPTED", accepted_at=self.clock.time(), accept=body)
            if ref is not None:
                rec["order"]["external_reference_id"] = ref
            if pickup is not None:
                rec["order"]["estimated_ready_for_pickup_at"] = iso(pickup)
        return Response(status_code=204)

    async def deny(self, request: Request, rec: dict[str, Any] | None) -> Response:
        reason = (await json_object(request)).get("reason")
        if not isinstance(reason, dict) or reason.get("code") not in DENY_CODES:
            raise ApiError(400, "invalid_argument", f"reason.code must be one of {', '.join(DENY_CODES)}")
        with self.state.lock:
            if rec["state"] != "CREATED":
                raise ApiError(409, "conflict", f"order is {rec['state']}, only CREATED orders can be denied")
            self._set_state(rec, "DENIED", denied_at=self.clock.time(), deny_reason=reason)
        return Response(status_code=204)

    async def pos_cancel(self, request: Request, rec: dict[str, Any] | None) -> Response:
        body = await json_object(request)
        if body.get("reason") not in POS_CANCEL_REASONS:
            raise ApiError(400, "invalid_argument", f"reason must be one of {', '.join(POS_CANCEL_REASONS)}")
        with self.state.lock:
            if rec["state"] not in ("CREATED", "ACCEPTED"):
                raise ApiError(409, "conflict", f"order is {rec['state']}, it cannot be cancelled")
            self._set_state(rec, "CANCELED", canceled_at=self.clock.time(),
                            cancel_reason={"reason": body["reason"], "details": body.get("details"), "by": "pos"})
        return Response(status_code=200)

    def _store_orders(self, state: str, window_s: float | None) -> Callable[[Request, Any], Any]:
        async def handler(request: Request, _: Any) -> Response:
            if request.path_params["store_id"] != self.store_id:
                raise ApiError(404, "not_found", "store not found")
            try:
                limit = max(1, int(request.query_params.get("limit", 50)))
            except ValueError:
                raise ApiError(400, "invalid_argument", "limit must be an integer") from None
            since = self.clock.time() - window_s if window_s else None
            with self.state.lock:
                rows = [{"id": r["id"], "current_state": r["state"], "placed_at": r["order"]["placed_at"]}
                        for r in self.state.orders.values()
                        if r["state"] == state and (since is None or (r["canceled_at"] or 0) >= since)]
            return JSONResponse({"orders": rows[:limit]})

        return handler

    # ---- store status -----------------------------------------------------------------------------
    def _own_store(self, request: Request) -> None:
        if request.path_params["store_id"] != self.store_id:
            raise ApiError(404, "not_found", "store not found")

    async def get_store_status(self, request: Request, _: Any) -> Response:
        self._own_store(request)
        with self.state.lock:
            status = self.store_status
            body = {"status": status["status"]}
            if status["offlineReason"]:
                body["offlineReason"] = status["offlineReason"]
        return JSONResponse(body)

    async def set_store_status(self, request: Request, _: Any) -> Response:
        self._own_store(request)
        body = await json_object(request)
        status = body.get("status")
        if status not in ("ONLINE", "PAUSED"):
            raise ApiError(400, "invalid_argument", "status must be ONLINE or PAUSED")
        until = body.get("paused_until")
        if until is not None:
            try:
                datetime.fromisoformat(str(until).replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "invalid_argument", "paused_until must be a timestamp like 2022-01-06T03:02:11Z") from None
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ApiError(400, "invalid_argument", "reason must be a string")
        with self.state.lock:
            if status == "ONLINE":
                self.store_status.update(status="ONLINE", offlineReason=None, paused_until=None, reason=reason)
            else:
                self.store_status.update(status="OFFLINE", offlineReason="PAUSED_BY_RESTAURANT", paused_until=until, reason=reason)
        return Response(status_code=204)

    def _routes(self) -> list[Route]:
        e, order = self._endpoint, "/v1/eats/orders/{order_id}"
        read = ("eats.store.orders.read", "eats.order", "eats.store")
        return [
            Route("/v2/eats/order/{order_id}", e(self.get_order, *read), methods=["GET"]),
            Route(f"{order}/accept_pos_order", e(self.accept, "eats.order"), methods=["POST"]),
            Route(f"{order}/deny_pos_order", e(self.deny, "eats.order"), methods=["POST"]),
            Route(f"{order}/cancel", e(self.pos_cancel, "eats.order"), methods=["POST"]),
            Route("/v1/eats/stores/{store_id}/created-orders", e(self._store_orders("CREATED", None), *read, order=False)),
            Route("/v1/eats/stores/{store_id}/canceled-orders", e(self._store_orders("CANCELED", 7200), *read, order=False)),
            Route("/v1/eats/store/{store_id}/status", e(self.get_store_status, "eats.store", order=False), methods=["GET"]),
            Route("/v1/eats/store/{store_id}/status", e(self.set_store_status, "eats.store.status.write", order=False),
                  methods=["POST"]),
        ]

    def _admin_routes(self) -> list[Route]:
        async def finish(request: Request) -> Response:
            try:
                return JSONResponse(self.finish_order(request.path_params["order_id"]))
            except KeyError:
                return JSONResponse({"error": "no such order"}, status_code=404)
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)

        return [*self._order_admin_routes(), Route(f"{ADMIN_PREFIX}/orders/{{order_id}}/finish", finish, methods=["POST"])]

    # ---- provider-shaped responses ------------------------------------------------------------
    def _unauthorized(self, reason: str) -> Response:
        return JSONResponse({"code": "unauthorized", "message": reason}, status_code=401)



def create_emulator(*, store_id: str = "bella-001", client_id: str = "demo-ue", client_secret: str = "demo-ue-secret-00001",
                    webhook_url: str | None = None, seed: int = 0, retry_base_s: float = 1.0,
                    menu: list[dict] | None = None, store_name: str = "Bella Cucina", max_sends: int = UBER_MAX_SENDS,
                    base_url: str | None = None) -> UberEatsEmulator:
    """An Uber Eats emulator for one store (same seed -> same order contents; ids are random)."""
    return UberEatsEmulator(store_id=store_id, store_name=store_name, client_id=client_id, client_secret=client_secret,
                            webhook_url=webhook_url, seed=seed, retry_base_s=retry_base_s, max_sends=max_sends, menu=menu,
                            base_url=base_url)
