"""DoorDash Marketplace (Menus & Orders API) emulator: orders placed by emulated consumers,
the `OrderCreate` / `OrderCancel` webhooks (sent with the partner's static credential, no
signature), and the merchant side of the Orders API (confirm or fail, cancel, ready for
pickup) behind DoorDash's DD-JWT-V1 tokens. Facts follow providers.md section 4.1 and
webhooks.md section (c); shared machinery (menu, `WebhookSender`, order records, admin routes)
lives in ubereats.py.

Public API (`create_emulator(...) -> DoorDashEmulator`, with `.app`, `.core`, `.state`):
- `place_order(items=None, **overrides) -> dict` (the webhook's `order` object; overrides
  replace top-level order keys, e.g. `is_pickup=True, fulfillment_type="pickup"`; `items` as in
  ubereats.py), `cancel_order(id, reason=None)` (as the consumer / DoorDash would: CANCELLED and
  an `OrderCancel` webhook), `make_jwt(ttl_s=300)` (a valid token for this emulator's
  credentials), `sweep()`, `set_webhook_url(url)`, `wait_idle(timeout)`, `close()`, `menu`.
- `state.orders[id]`: `{"id", "state": NEW|CONFIRMED|FAILED|CANCELLED|READY, "placed_at",
  "first_sent_at", "notified_at", "accepted_at", "confirmed_at", "denied_at", "failed_at",
  "canceled_at", "ready_at", "merchant_supplied_id", "prep_time", "pickup_instructions",
  "failure_reason", "errors", "cancel_reason", "history", "events", "order"}`; a confirmation
  with `order_status: "success"` sets both `confirmed_at` and `accepted_at` (the same name as
  Uber's, for latency), `"fail"` sets `denied_at` and `failed_at`. `state.deliveries` and
  `state.events` as in ubereats.py.
- Admin routes: the same as Uber's (`/_emulator/orders` GET/POST, `/_emulator/orders/{id}`,
  `/_emulator/orders/{id}/cancel`, `/_emulator/webhook`, `/_emulator/deliveries`,
  `/_emulator/menu`) plus `GET /_emulator/jwt` -> `{"token": ...}` for manual poking.

Choices where the reference is UNCONFIRMED (or silent):
- Webhook: `Authorization: <webhook_token>` verbatim (no scheme), `Content-Type:
  application/json`, compact JSON. Events: `{"event": {"type": "OrderCreate", "status":
  "NEW"}, "order": {...}}` and `{"event": {"type": "OrderCancel", "status": "CANCELLED"},
  "order": {...}}`; DoorDash carries no event id (dedupe on order id + event type).
- Retries: up to 3 sends per event (`max_sends`), waiting retry_base_s * 1, 2 after a failed
  send; if an `OrderCreate` is still not acknowledged with a 2xx after the last send, the order
  is FAILED (`failure_reason` "webhook_delivery_failed"), as DoorDash treats a non-2xx as an
  order failure. A failed `OrderCancel` changes nothing.
- Order shape: amounts are integer cents; an item's `price` is its unit price without options
  (each option carries its own `price`); `subtotal` = sum of (item + options) x quantity, tax
  8% of it, `delivery_fee` 299 for deliveries (0 for pickup), `tip_amount` seeded. Items carry
  `line_item_id` and options `line_option_id` (used by DoorDash's adjustment API, not
  emulated). Categories are the menu's, with `merchant_supplied_id` "CAT-<NAME>".
- JWT: `Authorization: Bearer <jwt>`; header `alg` HS256 and `dd-ver: DD-JWT-V1`; claims `aud`
  "doordash", `iss` developer_id, `kid` key_id, `iat`, `exp` all required; key = the
  base64url-decoded signing secret (padding added). `exp` is checked against the emulator
  clock (no leeway), `iat` may be at most 60 s in the future and `exp - iat` at most 1800 s.
  The same token type is accepted for ready-for-pickup (the reference says it needs "a
  separate token"; not emulated). Any failure -> 401 `{"code": "authentication_error",
  "message": ...}`. pyjwt's short-key warning is silenced (the demo secret is 19 bytes).
- Errors are `{"code", "message"}`: 400 `validation_error` (bad body) or `bad_request` ("Order
  has already been processed or order has expired"), 404 `not_found`, 429 `rate_limited`,
  5xx `internal_error`. 202 answers have an empty body.
- Confirm (`PATCH /marketplace/api/v1/orders/{id}`): `order_status` "success" | "fail"
  required; `merchant_supplied_id` optional string; `prep_time` an ISO 8601 datetime;
  `pickup_instructions` at most 128 characters. Only a NEW order can be confirmed; anything
  else -> 400 "already processed or expired".
- Cancel (`PATCH .../cancellation`): `cancel_reason` in ITEM_OUT_OF_STOCK | STORE_CLOSED |
  KITCHEN_BUSY | OTHER; only CONFIRMED or READY orders -> CANCELLED (no webhook: the merchant
  asked); otherwise 400. Ready (`PATCH .../events/order_ready_for_pickup`): CONFIRMED -> READY,
  again on READY -> 202 (idempotent); a `merchant_supplied_id` different from the confirmed one
  -> 400; other states -> 400.
- Confirmation deadline: off by default (`confirm_deadline_s=None`); when set, a NEW order
  older than that (emulator clock) is CANCELLED (`cancel_reason` "confirmation_timeout") with
  an `OrderCancel` webhook, on access or in the periodic sweep.
- Store status (developer.doordash.com Marketplace "Update store & item status" and "Get
  Store and Menu Information"): `PUT /marketplace/api/v1/stores/{merchant_supplied_id}/status`
  with `{"is_active": bool, "reason", "notes", "end_time"}` -> 200 (empty body); `is_active`
  must be a boolean and a deactivation needs `reason` from DEACTIVATION_REASONS (else 400
  `validation_error`); reactivating needs only `is_active: true` and clears the current
  deactivations; another store's id -> 404. `GET .../stores/{merchant_supplied_id}/store_details`
  -> the documented shape (`provider_name`, `merchant_supplied_id`, `is_active`,
  `is_order_protocol_pos`, `auto_release_enabled`, `special_instructions_max_length`,
  `current_deactivations` [{reason, notes, created_at, end_time}]). `store` holds the state.
  Orders keep arriving while the store is inactive (the emulated consumers do not check it).
- Not emulated: OrderAdjust events, the adjustment endpoint, item status, menu_details, Drive.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from datetime import datetime
from typing import Any, Callable

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore
from emulators.oauth import RefreshPolicy, Unauthorized
from emulators.ubereats import (DELIVERY_FEE, TAX_RATE, ApiError, MarketplaceEmulator, _LearnBaseUrl, iso, json_object, new_id,
                                random_address, random_person)

DD_MAX_SENDS = 3
CANCEL_REASONS = ("ITEM_OUT_OF_STOCK", "STORE_CLOSED", "KITCHEN_BUSY", "OTHER")
ALREADY_PROCESSED = "Order has already been processed or order has expired"
# the reasons DoorDash accepts for a store deactivation (store status PUT)
DEACTIVATION_REASONS = ("out_of_business", "delete_store", "payment_issue", "operational_issues",
                        "store_self_disabled_in_their_POS_portal", "store_pos_connectivity_issues")
MAX_TOKEN_LIFE_S = 1800
IAT_SKEW_S = 60


def decode_signing_secret(secret: str) -> bytes:
    """DoorDash signing secrets are base64url without padding."""
    return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))


class DoorDashEmulator(MarketplaceEmulator):
    """The ASGI app (`.app`) over a `MarketplaceState` (`.state`) and the framework core (`.core`)."""

    initial_state = "NEW"
    open_states = ("NEW",)

    def __init__(self, *, store_id: str, developer_id: str, key_id: str, signing_secret: str, webhook_url: str | None,
                 webhook_token: str, seed: int, retry_base_s: float, max_sends: int, menu: list[dict[str, Any]] | None,
                 confirm_deadline_s: float | None, base_url: str | None):
        # DoorDash has no OAuth: the framework's token endpoint exists but knows no client.
        core = EmulatorCore("doordash", RefreshPolicy(access_ttl=300))
        super().__init__(core, webhook_url=webhook_url, seed=seed, retry_base_s=retry_base_s, max_sends=max_sends,
                         menu=menu, base_url=base_url)
        self.store_id, self.developer_id, self.key_id = store_id, developer_id, key_id
        self.signing_secret, self.webhook_token = signing_secret, webhook_token
        self.key = decode_signing_secret(signing_secret)
        self.confirm_deadline_s = confirm_deadline_s
        self._cart_ids = 3_000_005_000_000_000 + self.rng.randint(0, 10**6) * 1000
        self.store: dict[str, Any] = {"is_active": True, "current_deactivations": []}
        app = core.build_app(
            api_routes=self._routes(), oauth_token_path="/oauth/token", oauth_authorize_path="/oauth/authorize",
            is_api_path=lambda path: path.startswith("/marketplace/"), unauthorized_response=self._unauthorized,
            throttle_response=self._throttled, error_response=self._error, admin_routes=self._admin_routes())
        self.app = _LearnBaseUrl(app, self)

    # ---- auth ---------------------------------------------------------------------------------
    def make_jwt(self, ttl_s: int = 300, **claims: Any) -> str:
        now = int(self.clock.time())
        payload = {"aud": "doordash", "iss": self.developer_id, "kid": self.key_id, "iat": now, "exp": now + ttl_s, **claims}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return jwt.encode(payload, self.key, algorithm="HS256", headers={"dd-ver": "DD-JWT-V1"})

    def authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token")
        token = header[7:].strip()
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed JWT") from None
        if head.get("dd-ver") != "DD-JWT-V1":
            raise Unauthorized("the JWT header must have dd-ver DD-JWT-V1")
        if head.get("alg") != "HS256":
            raise Unauthorized("the JWT must be signed with HS256")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims = jwt.decode(token, self.key, algorithms=["HS256"], audience="doordash", issuer=self.developer_id,
                                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                             "require": ["aud", "iss", "kid", "iat", "exp"]})
        except jwt.InvalidSignatureError:
            raise Unauthorized("invalid JWT signature") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid JWT: {exc}") from None
        if claims.get("kid") != self.key_id:
            raise Unauthorized("unknown key id (kid)")
        now = self.clock.time()
        try:
            iat, exp = float(claims["iat"]), float(claims["exp"])
        except (TypeError, ValueError):
            raise Unauthorized("iat and exp must be numbers") from None
        if exp <= now:
            raise Unauthorized("the JWT has expired")
        if iat > now + IAT_SKEW_S:
            raise Unauthorized("the JWT was issued in the future (iat)")
        if exp - iat > MAX_TOKEN_LIFE_S:
            raise Unauthorized(f"the JWT lives longer than {MAX_TOKEN_LIFE_S} seconds")
        return claims

    # ---- orders ----------------------------------------------------------------------------------
    def _extra_record_fields(self) -> dict[str, Any]:
        return {"confirmed_at": None, "failed_at": None, "ready_at": None, "merchant_supplied_id": None, "prep_time": None,
                "pickup_instructions": None, "failure_reason": None, "errors": None}

    def _build_order(self, order_id: str, lines: list[dict[str, Any]], now: float) -> dict[str, Any]:
        rng = self.rng
        person = random_person(rng)
        consumer = {"id": rng.randint(10_000_000, 99_999_999), "first_name": person["first_name"], "last_name": person["last_name"],
                    "email": f"{person['first_name'].lower()}.{person['last_name'].lower()}@consumer.example.com",
                    "phone": person["phone"].replace("+1 ", "").replace("-", "")}
        is_pickup = rng.random() < 0.2
        categories: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(lines):
            item = line["item"]
            category = item.get("category", "Other")
            entry = categories.setdefault(category, {"merchant_supplied_id": item.get("category_sku") or f"CAT-{category.upper().replace(' ', '-')}",
                                                     "name": category, "items": []})
            extras: dict[str, dict[str, Any]] = {}
            for m, (group, option) in enumerate(line["modifiers"]):
                extra = extras.setdefault(group["id"], {"merchant_supplied_id": group["sku"], "name": group["title"], "options": []})
                extra["options"].append({"merchant_supplied_id": option["sku"], "name": option["title"], "quantity": 1,
                                         "price": int(option["price"]), "line_option_id": f"{order_id[:8]}-{n + 1}-{m + 1}",
                                         "extras": []})
            entry["items"].append({"merchant_supplied_id": item["sku"], "name": item["title"], "quantity": line["quantity"],
                                   "price": int(item["price"]), "special_instructions": line["special_instructions"],
                                   "consumer_name": consumer["first_name"], "line_item_id": f"{order_id[:8]}-{n + 1}",
                                   "extras": list(extras.values())})
        subtotal = sum(line["total_price"] for line in lines)
        tax = round(subtotal * TAX_RATE)
        self._cart_ids += 1
        order = {
            "id": order_id, "store_order_cart_id": str(self._cart_ids),
            "store": {"merchant_supplied_id": self.store_id, "provider_type": "posprovider_1", "timezone": "US/Eastern"},
            "consumer": consumer, "categories": list(categories.values()),
            "subtotal": subtotal, "tax": tax, "tip_amount": rng.choice((0, 100, 200, 300, 500)), "merchant_tip_amount": 0,
            "delivery_fee": 0 if is_pickup else DELIVERY_FEE, "is_pickup": is_pickup,
            "fulfillment_type": "pickup" if is_pickup else rng.choice(("dx_delivery", "dx_delivery", "mx_delivery")),
            "estimated_pickup_time": iso(now + 20 * 60), "delivery_short_code": f"{rng.randint(0, 999_999):06d}",
            "delivery_address": None if is_pickup else random_address(rng),
            "is_tax_remitted_by_doordash": True, "tax_amount_remitted_by_doordash": tax,
            "commission_type": rng.choice(("regular", "dashpass")), "order_special_instructions": "", "experience": "DOORDASH",
        }
        return order

    def _created_event_types(self) -> tuple[str, ...]:
        return ("OrderCreate",)

    def _emit_created(self, rec: dict[str, Any]) -> None:
        self._emit(rec, "OrderCreate", "NEW")

    def _emit(self, rec: dict[str, Any], event_type: str, status: str) -> dict[str, Any]:
        with self.state.lock:
            body = json.dumps({"event": {"type": event_type, "status": status}, "order": rec["order"]},
                              separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Authorization": self.webhook_token}
        return self._submit(rec, event_type, f"dd-{new_id()}", body, headers)

    def _on_event_done(self, rec: dict[str, Any], event: dict[str, Any], delivered: bool) -> None:
        if delivered or event["event_type"] != "OrderCreate":
            return
        with self.state.lock:
            if rec["state"] == "NEW":
                self._transition(rec, "FAILED", failed_at=self.clock.time(), failure_reason="webhook_delivery_failed")

    def sweep(self) -> None:
        if self.confirm_deadline_s is None:
            return
        now, due = self.clock.time(), []
        with self.state.lock:
            for order_id in list(self._open):
                rec = self.state.orders[order_id]
                deadline = rec["placed_at"] + self.confirm_deadline_s
                if rec["state"] == "NEW" and now >= deadline:
                    self._transition(rec, "CANCELLED", deadline, canceled_at=deadline, cancel_reason="confirmation_timeout")
                    due.append(rec)
        for rec in due:
            self._emit(rec, "OrderCancel", "CANCELLED")

    def cancel_order(self, order_id: str, reason: str | None = None) -> dict[str, Any]:
        """As the consumer or DoorDash would: CANCELLED from NEW, CONFIRMED or READY, and an
        OrderCancel webhook. Unknown id -> KeyError; other states -> ApiError 409."""
        self.sweep()
        with self.state.lock:
            rec = self.state.orders[order_id]
            if rec["state"] not in ("NEW", "CONFIRMED", "READY"):
                raise ApiError(409, "conflict", f"order is {rec['state']}, it cannot be cancelled")
            self._transition(rec, "CANCELLED", canceled_at=self.clock.time(), cancel_reason=reason or "CONSUMER_CANCELLED")
            order = json.loads(json.dumps(rec["order"]))
        self._emit(rec, "OrderCancel", "CANCELLED")
        return order

    # ---- API ----------------------------------------------------------------------------------------
    def _endpoint(self, handler: Callable[[Request, dict[str, Any]], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self.authenticate(request)  # Unauthorized -> 401
            try:
                self.sweep()
                with self.state.lock:
                    rec = self.state.orders.get(request.path_params["order_id"])
                if rec is None:
                    raise ApiError(404, "not_found", "Order not found")
                return await handler(request, rec)
            except ApiError as exc:
                return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

        return endpoint

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            return await json_object(request)
        except ApiError as exc:
            raise ApiError(400, "validation_error", exc.message) from None

    async def confirm(self, request: Request, rec: dict[str, Any]) -> Response:
        body = await self._body(request)
        status = body.get("order_status")
        if status not in ("success", "fail"):
            raise ApiError(400, "validation_error", "order_status must be 'success' or 'fail'")
        msid = body.get("merchant_supplied_id")
        if msid is not None and not isinstance(msid, str):
            raise ApiError(400, "validation_error", "merchant_supplied_id must be a string")
        prep = body.get("prep_time")
        if prep is not None:
            try:
                datetime.fromisoformat(str(prep).replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "validation_error", "prep_time must be an ISO 8601 datetime") from None
        instructions = body.get("pickup_instructions")
        if instructions is not None and (not isinstance(instructions, str) or len(instructions) > 128):
            raise ApiError(400, "validation_error", "pickup_instructions must be a string of at most 128 characters")
        with self.state.lock:
            if rec["state"] != "NEW":
                raise ApiError(400, "bad_request", ALREADY_PROCESSED)
            now = self.clock.time()
            common = {"merchant_supplied_id": msid, "prep_time": prep, "pickup_instructions": instructions}
            if status == "success":
                self._transition(rec, "CONFIRMED", now, confirmed_at=now, accepted_at=now, **common)
            else:
                self._transition(rec, "FAILED", now, denied_at=now, failed_at=now, failure_reason=body.get("failure_reason"),
                                 errors=body.get("errors"), **common)
        return Response(status_code=202)

    async def cancellation(self, request: Request, rec: dict[str, Any]) -> Response:
        body = await self._body(request)
        if body.get("cancel_reason") not in CANCEL_REASONS:
            raise ApiError(400, "validation_error", f"cancel_reason must be one of {', '.join(CANCEL_REASONS)}")
        with self.state.lock:
            if rec["state"] not in ("CONFIRMED", "READY"):
                raise ApiError(400, "bad_request", f"Order cannot be cancelled: it is {rec['state'].lower()}")
            self._transition(rec, "CANCELLED", canceled_at=self.clock.time(),
                             cancel_reason={"reason": body["cancel_reason"], "details": body.get("cancel_details"), "by": "merchant"})
        return Response(status_code=202)

    async def ready(self, request: Request, rec: dict[str, Any]) -> Response:
        body = await self._body(request)
        msid = body.get("merchant_supplied_id")
        with self.state.lock:
            if rec["state"] not in ("CONFIRMED", "READY"):
                raise ApiError(400, "bad_request", f"Order is not confirmed: it is {rec['state'].lower()}")
            if msid is not None and rec["merchant_supplied_id"] is not None and msid != rec["merchant_supplied_id"]:
                raise ApiError(400, "validation_error", "merchant_supplied_id does not match the confirmed order")
            if rec["state"] == "CONFIRMED":
                self._transition(rec, "READY", ready_at=self.clock.time())
        return Response(status_code=202)

    # ---- store status --------------------------------------------------------------------------
    def _store_endpoint(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self.authenticate(request)  # Unauthorized -> 401
            try:
                if request.path_params["store_id"] != self.store_id:
                    raise ApiError(404, "not_found", "Store not found")
                return await handler(request)
            except ApiError as exc:
                return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

        return endpoint

    async def store_status(self, request: Request) -> Response:
        body = await self._body(request)
        active = body.get("is_active")
        if not isinstance(active, bool):
            raise ApiError(400, "validation_error", "is_active must be a boolean")
        with self.state.lock:
            if active:
                self.store.update(is_active=True, current_deactivations=[])
                return Response(status_code=200)
            reason = body.get("reason")
            if reason not in DEACTIVATION_REASONS:
                raise ApiError(400, "validation_error", f"reason must be one of {', '.join(DEACTIVATION_REASONS)}")
            end_time = body.get("end_time")
            if end_time is not None:
                try:
                    datetime.fromisoformat(str(end_time).replace("Z", "+00:00"))
                except ValueError:
                    raise ApiError(400, "validation_error", "end_time must be an ISO 8601 datetime") from None
            self.store["is_active"] = False
            self.store["current_deactivations"].append({"reason": reason, "notes": str(body.get("notes") or ""),
                                                        "created_at": iso(self.clock.time()), "end_time": end_time})
        return Response(status_code=200)

    async def store_details(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({
                "provider_name": "hub-emulator", "merchant_supplied_id": self.store_id, "is_active": self.store["is_active"],
                "is_order_protocol_pos": True, "auto_release_enabled": False, "auto_release_distance": 0,
                "auto_release_from_store_enabled": False, "special_instructions_max_length": 256,
                "current_deactivations": [dict(d) for d in self.store["current_deactivations"]]})

    def _routes(self) -> list[Route]:
        e, order = self._endpoint, "/marketplace/api/v1/orders/{order_id}"
        stores = "/marketplace/api/v1/stores/{store_id}"
        return [Route(order, e(self.confirm), methods=["PATCH"]),
                Route(f"{order}/cancellation", e(self.cancellation), methods=["PATCH"]),
                Route(f"{order}/events/order_ready_for_pickup", e(self.ready), methods=["PATCH"]),
                Route(f"{stores}/status", self._store_endpoint(self.store_status), methods=["PUT"]),
                Route(f"{stores}/store_details", self._store_endpoint(self.store_details), methods=["GET"])]

    def _admin_routes(self) -> list[Route]:
        async def token(request: Request) -> Response:
            return JSONResponse({"token": self.make_jwt()})

        return [*self._order_admin_routes(), Route(f"{ADMIN_PREFIX}/jwt", token, methods=["GET"])]

    # ---- provider-shaped responses ------------------------------------------------------------------
    def _unauthorized(self, reason: str) -> Response:
        return JSONResponse({"code": "authentication_error", "message": reason}, status_code=401)



def create_emulator(*, store_id: str = "601135", developer_id: str = "demo-dev", key_id: str = "demo-key",
                    signing_secret: str = "ZGVtby1zaWduaW5nLXNlY3JldA", webhook_url: str | None = None,
                    webhook_token: str = "demo-webhook-token-0001", seed: int = 0, retry_base_s: float = 1.0,
                    menu: list[dict] | None = None, max_sends: int = DD_MAX_SENDS, confirm_deadline_s: float | None = None,
                    base_url: str | None = None) -> DoorDashEmulator:
    """A DoorDash Marketplace emulator for one store (same seed -> same order contents)."""
    try:
        decode_signing_secret(signing_secret)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"signing_secret is not base64url: {exc}") from None
    return DoorDashEmulator(store_id=store_id, developer_id=developer_id, key_id=key_id, signing_secret=signing_secret,
                            webhook_url=webhook_url, webhook_token=webhook_token, seed=seed, retry_base_s=retry_base_s,
                            max_sends=max_sends, menu=menu, confirm_deadline_s=confirm_deadline_s, base_url=base_url)
