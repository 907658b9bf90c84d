"""DoorDash Marketplace order API client (shared/reference/providers.md section 4.1).

Requests carry a short-lived JWT the hub signs itself (`dd-ver: DD-JWT-V1`, HS256 with the
base64url-decoded signing secret; claims aud, iss = developer id, kid = key id, iat, exp),
made fresh for each request with PyJWT. Orders arrive whole in the webhook; the hub
confirms (`order_status: success`) or fails them with a reason.
"""

from __future__ import annotations

import base64
import time
from typing import Any

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
    def __init__(self, transport: Transport, store_id: str):
        self.transport, self.store_id = transport, store_id

    def check(self) -> dict[str, Any]:
        return {"store_id": self.store_id, "auth": "DD-JWT-V1 (signed locally; DoorDash has no read-only check)"}

    def confirm(self, order_id: str, merchant_supplied_id: str, prep_time: str | None = None) -> None:
        body: dict[str, Any] = {"merchant_supplied_id": merchant_supplied_id, "order_status": "success"}
        if prep_time:
            body["prep_time"] = prep_time
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}", json=body)

    def fail(self, order_id: str, merchant_supplied_id: str, reason: str, errors: list[dict[str, str]] | None = None) -> None:
        body: dict[str, Any] = {"merchant_supplied_id": merchant_supplied_id, "order_status": "fail", "failure_reason": reason[:256]}
        if errors:
            body["errors"] = errors
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}", json=body)

    def cancel(self, order_id: str, reason: str, details: str = "") -> None:
        """The merchant cancels a confirmed order (reason: ITEM_OUT_OF_STOCK, STORE_CLOSED,
        KITCHEN_BUSY or OTHER)."""
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}/cancellation",
                               json={"cancel_reason": reason, "cancel_details": details[:256]})

    def ready_for_pickup(self, order_id: str, merchant_supplied_id: str) -> None:
        self.transport.request("PATCH", f"/marketplace/api/v1/orders/{order_id}/events/order_ready_for_pickup",
                               json={"merchant_supplied_id": merchant_supplied_id})
