"""Uber Eats Marketplace order API client (shared/reference/providers.md section 4.3).

Auth is OAuth 2.0 client credentials (no user, no refresh token). After the
`orders.notification` webhook the full order is read with `GET /v2/eats/order/{id}`, then
accepted (`accept_pos_order`) or denied (`deny_pos_order`, with a reason code) within
11.5 minutes, or Uber cancels it.
"""

from __future__ import annotations

from typing import Any, Mapping

import httpx

from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.errors import ProviderError, RecordProblem
from hub.providers.status_errors import Wording, classify_status
from hub.providers.transport import Transport

NAME = "ubereats"
DEFAULT_BASE_URL = "https://api.uber.com"
DEFAULT_TOKEN_URL = "https://auth.uber.com/oauth/v2/token"
SCOPE = "eats.order eats.store.orders.read eats.store eats.store.status.write"
LIMITS: tuple[Limit, ...] = ()  # Uber publishes none for Eats (UNCONFIRMED); 429s are still honoured
DENY_CODES = frozenset({"STORE_CLOSED", "POS_NOT_READY", "POS_OFFLINE", "ITEM_AVAILABILITY", "MISSING_ITEM", "MISSING_INFO",
                        "PRICING", "CAPACITY", "ADDRESS", "SPECIAL_INSTRUCTIONS", "OTHER"})


class UberEatsDialect:
    name = NAME
    wording = Wording(
        rate_limited="rate limited",
        unavailable="Uber Eats is unavailable",
        unauthorized="the client credentials were refused",
        forbidden="this app may not manage the store's orders",
        not_found="no such order",
    )

    def classify(self, response: httpx.Response) -> ProviderError | None:
        return classify_status(NAME, response, self.wording)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Uber Eats documents no limit headers."""


# Uber's `current_state` of an order -> the hub's status (hub/orders/state_machine.py)
HUB_STATES = {"ACCEPTED": "accepted", "DENIED": "rejected", "CANCELED": "cancelled", "FINISHED": "delivered"}


class UberEatsClient:
    """A DeliveryClient (hub/providers/protocols.py): the order is read by id after its
    webhook, and its state can be read back."""

    order_state_readable = True

    def __init__(self, transport: Transport, store_id: str):
        self.transport, self.store_id = transport, store_id

    def check(self) -> dict[str, Any]:
        orders = self.transport.request("GET", f"/v1/eats/stores/{self.store_id}/created-orders").json().get("orders", [])
        return {"store_id": self.store_id, "orders_waiting": len(orders)}

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self.transport.request("GET", f"/v2/eats/order/{order_id}").json()

    def order_details(self, order_id: str, webhook: Mapping[str, Any]) -> dict[str, Any]:
        """The full order, read by id: the `orders.notification` webhook only announces it."""
        return self.get_order(order_id)

    def order_state(self, order_id: str) -> str | None:
        """The hub's status for the order's `current_state`; None for a state the hub does not
        map (still open) or an order Uber no longer shows."""
        try:
            return HUB_STATES.get(self.get_order(order_id).get("current_state"))
        except RecordProblem:
            return None

    def accept(self, order_id: str, order_number: str, reason: str = "Accepted by the hub") -> None:
        """accept_pos_order, the POS number as `external_reference_id`."""
        self.transport.request("POST", f"/v1/eats/orders/{order_id}/accept_pos_order",
                               json={"reason": reason, "external_reference_id": order_number})

    def cancel(self, order_id: str, reason: str, details: str = "") -> None:
        """The restaurant cancels an order it accepted (reason: OUT_OF_ITEMS, KITCHEN_CLOSED,
        CUSTOMER_CALLED_TO_CANCEL, RESTAURANT_TOO_BUSY, CANNOT_COMPLETE_CUSTOMER_NOTE, OTHER)."""
        body: dict[str, Any] = {"reason": reason}
        if details:
            body["details"] = details
        self.transport.request("POST", f"/v1/eats/orders/{order_id}/cancel", json=body)

    def push_status(self, order_id: str, status: str, order_number: str, reason: str, details: str = "") -> None:
        """`cancelled`: the POS cancel. Uber's Order API has no ready signal (its courier app
        handles pickup), so nothing else is pushed."""
        if status != "cancelled":
            raise ValueError(f"Uber Eats is not told about {status!r} orders")
        self.cancel(order_id, reason, details)

    def store_status(self) -> dict[str, Any]:
        """Whether the store takes orders on Uber Eats (Get Restaurant Status: `ONLINE`, or
        offline with an `offlineReason`)."""
        body = self.transport.request("GET", f"/v1/eats/store/{self.store_id}/status").json()
        is_open = body.get("status") == "ONLINE"
        return {"open": is_open, "detail": None if is_open else body.get("offlineReason") or body.get("status")}

    def set_store_open(self, is_open: bool, reason: str) -> None:
        """Set Restaurant Status: ONLINE, or PAUSED (shown as "currently unavailable") with the
        reason; needs the eats.store.status.write scope."""
        body: dict[str, Any] = {"status": "ONLINE" if is_open else "PAUSED", "reason": reason[:256]}
        self.transport.request("POST", f"/v1/eats/store/{self.store_id}/status", json=body)

    def deny(self, order_id: str, order_number: str, code: str, explanation: str, items: list[str] | None = None) -> None:
        """deny_pos_order with one of DENY_CODES; the items go out as out-of-stock items for
        ITEM_AVAILABILITY, as invalid items otherwise. deny_pos_order takes no merchant
        reference, so the order number is not sent."""
        if code not in DENY_CODES:
            raise ValueError(f"unknown Uber Eats deny code {code}")
        reason: dict[str, Any] = {"explanation": explanation, "code": code}
        if items:
            reason["out_of_stock_items" if code == "ITEM_AVAILABILITY" else "invalid_items"] = items
        self.transport.request("POST", f"/v1/eats/orders/{order_id}/deny_pos_order", json={"reason": reason})
