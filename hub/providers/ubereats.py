"""Uber Eats Marketplace order API client (shared/reference/providers.md section 4.3).

Auth is OAuth 2.0 client credentials (no user, no refresh token). After the
`orders.notification` webhook the full order is read with `GET /v2/eats/order/{id}`, then
accepted (`accept_pos_order`) or denied (`deny_pos_order`, with a reason code) within
11.5 minutes, or Uber cancels it.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    ProviderError,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    TransientProblem,
)
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, or_default, retry_after_seconds

NAME = "ubereats"
DEFAULT_BASE_URL = "https://api.uber.com"
DEFAULT_TOKEN_URL = "https://auth.uber.com/oauth/v2/token"
SCOPE = "eats.order eats.store.orders.read eats.store"
LIMITS: tuple[Limit, ...] = ()  # Uber publishes none for Eats (UNCONFIRMED); 429s are still honoured
DENY_CODES = frozenset({"STORE_CLOSED", "POS_NOT_READY", "POS_OFFLINE", "ITEM_AVAILABILITY", "MISSING_ITEM", "MISSING_INFO",
                        "PRICING", "CAPACITY", "ADDRESS", "SPECIAL_INSTRUCTIONS", "OTHER"})


class UberEatsDialect:
    name = NAME

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if status < 400:
            return None
        message = _message(response)
        if status == 429:
            return RateLimited(NAME, "rate limited", status=429, retry_after=or_default(retry_after_seconds(response.headers.get("retry-after")), 5.0))
        if status >= 500:
            return TransientProblem(NAME, "Uber Eats is unavailable", status=status)
        if status == 401:
            return NeedsReauthentication(NAME, "the client credentials were refused", status=401)
        if status == 403:
            return ConfigurationProblem(NAME, message or "this app may not manage the store's orders", status=403)
        if status == 404:
            return RecordNotFound(NAME, message or "no such order", status=404)
        return RecordProblem(NAME, message or "request refused", status=status)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Uber Eats documents no limit headers."""


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body.get("code") or "")
    return ""


class UberEatsClient:
    def __init__(self, transport: Transport, store_id: str):
        self.transport, self.store_id = transport, store_id

    def check(self) -> dict[str, Any]:
        orders = self.transport.request("GET", f"/v1/eats/stores/{self.store_id}/created-orders").json().get("orders", [])
        return {"store_id": self.store_id, "orders_waiting": len(orders)}

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self.transport.request("GET", f"/v2/eats/order/{order_id}").json()

    def accept(self, order_id: str, external_reference_id: str, reason: str = "Accepted by the hub") -> None:
        self.transport.request("POST", f"/v1/eats/orders/{order_id}/accept_pos_order",
                               json={"reason": reason, "external_reference_id": external_reference_id})

    def deny(self, order_id: str, code: str, explanation: str, items: list[str] | None = None) -> None:
        if code not in DENY_CODES:
            raise ValueError(f"unknown Uber Eats deny code {code}")
        reason: dict[str, Any] = {"explanation": explanation, "code": code}
        if items:
            reason["out_of_stock_items" if code == "ITEM_AVAILABILITY" else "invalid_items"] = items
        self.transport.request("POST", f"/v1/eats/orders/{order_id}/deny_pos_order", json={"reason": reason})
