"""DoorDash Marketplace order API client (shared/reference/providers.md section 4.1).

Requests carry a short-lived JWT the hub signs itself (`dd-ver: DD-JWT-V1`, HS256 with the
base64url-decoded signing secret; claims aud, iss = developer id, kid = key id, iat, exp),
made fresh for each request with PyJWT. Orders arrive whole in the webhook; the hub
confirms (`order_status: success`) or fails them with a reason (`accept`, `deny`).
"""

from __future__ import annotations

import base64
import time
from typing import Any, Mapping

import httpx
import jwt

from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.errors import ProviderError
from hub.providers.status_errors import Wording, classify_status
from hub.providers.transport import Transport

NAME = "doordash"
DEFAULT_BASE_URL = "https://openapi.doordash.com"
LIMITS: tuple[Limit, ...] = ()
JWT_LIFETIME_S = 300
CANCEL_REASONS = frozenset({"ITEM_OUT_OF_STOCK", "STORE_CLOSED", "KITCHEN_BUSY", "OTHER"})
STORE_CLOSE_REASON = "operational_issues"  # of DoorDash's deactivation reasons


def make_jwt(developer_id: str, key_id: str, signing_secret: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    key = base64.urlsafe_b64decode(signing_secret + "=" * (-len(signing_secret) % 4))
    claims = {"aud": "doordash", "iss": developer_id, "kid": key_id, "iat": issued, "exp": issued + JWT_LIFETIME_S}
    return jwt.encode(claims, key, algorithm="HS256", headers={"dd-ver": "DD-JWT-V1"})


class DoorDashDialect:
    name = NAME
    wording = Wording(
        rate_limited="rate limited",
        unavailable="DoorDash is unavailable",
        unauthorized="the JWT was refused: check developer id, key id and signing secret",
        forbidden="not allowed for this store",
        not_found="no such order",
    )

    def classify(self, response: httpx.Response) -> ProviderError | None:
        return classify_status(NAME, response, self.wording)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """DoorDash documents no limit headers for Marketplace."""


class DoorDashClient:
    """A DeliveryClient (hub/providers/protocols.py). DoorDash's Marketplace API cannot be
    asked how an order stands, so `order_state` knows nothing and the order job records its
    answers in the ledger before sending them."""

    order_state_readable = False

    def __init__(self, transport: Transport, store_id: str):
        self.transport, self.store_id = transport, store_id

    def check(self) -> dict[str, Any]:
        return {"store_id": self.store_id, "auth": "DD-JWT-V1 (signed locally; DoorDash has no read-only check)"}

    def order_details(self, order_id: str, webhook: Mapping[str, Any]) -> dict[str, Any]:
        """The order as the webhook brought it (DoorDash sends it whole; there is no read)."""
        return webhook.get("order") or {}

    def accept(self, order_id: str, order_number: str, prep_time: str | None = None) -> None:
        """Confirm the order (`order_status: success`), the POS number as `merchant_supplied_id`."""
        body: dict[str, Any] = {"merchant_supplied_id": order_number, "order_status": "success"}
        if prep_time:
            body["prep_time"] = prep_time
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}", json=body)

    def deny(self, order_id: str, order_number: str, code: str, explanation: str, items: list[str] | None = None) -> None:
        """Fail the order (`order_status: fail`) with the explanation as `failure_reason` and
        the code in `errors`; DoorDash's failure has no list of items, so `items` is not sent."""
        body: dict[str, Any] = {"merchant_supplied_id": order_number, "order_status": "fail",
                                "failure_reason": explanation[:256], "errors": [{"code": code, "message": explanation}]}
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}", json=body)

    def order_state(self, order_id: str) -> str | None:
        """None: DoorDash's Marketplace API has no order read."""
        return None

    def push_status(self, order_id: str, status: str, order_number: str, reason: str, details: str = "") -> None:
        """`ready`: order_ready_for_pickup; `cancelled`: the merchant's cancellation."""
        if status == "ready":
            self.ready_for_pickup(order_id, order_number)
        elif status == "cancelled":
            self.cancel(order_id, reason, details)
        else:
            raise ValueError(f"DoorDash is not told about {status!r} orders")

    def cancel(self, order_id: str, reason: str, details: str = "") -> None:
        """The merchant cancels a confirmed order (reason: ITEM_OUT_OF_STOCK, STORE_CLOSED,
        KITCHEN_BUSY or OTHER)."""
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}/cancellation",
                               json={"cancel_reason": reason, "cancel_details": details[:256]})

    def store_status(self) -> dict[str, Any]:
        """Whether the store takes orders on DoorDash (Get Store Information: `is_active`, and
        why not from `current_deactivations`)."""
        details = self.transport.request("GET", f"/marketplace/api/v1/stores/{self.store_id}/store_details").json()
        reasons = [d.get("notes") or d.get("reason") for d in details.get("current_deactivations") or []]
        return {"open": details.get("is_active") is True, "detail": "; ".join(r for r in reasons if r) or None}

    def set_store_open(self, is_open: bool, reason: str) -> None:
        """Store activation status change: reactivate, or deactivate with DoorDash's reason
        `operational_issues` (the closest of its fixed list to a restaurant closing for a
        while) and the person's words as `notes`."""
        body: dict[str, Any] = {"is_active": True} if is_open else {
            "is_active": False, "reason": STORE_CLOSE_REASON, "notes": reason[:256]}
        self.transport.request("PUT", f"/marketplace/api/v1/stores/{self.store_id}/status", json=body)

    def ready_for_pickup(self, order_id: str, merchant_supplied_id: str) -> None:
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}/events/order_ready_for_pickup",
                               json={"merchant_supplied_id": merchant_supplied_id})
