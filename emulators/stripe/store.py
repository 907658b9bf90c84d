"""Where the account's objects live: ids to objects, creation order, hidden bookkeeping, the
time of each scope (a test clock or the emulator clock), rendering and events."""

from __future__ import annotations

import calendar
import copy
import threading
from datetime import datetime, timezone
from typing import Any, Callable

from emulators.stripe.wire import new_id, no_such


DAY = 86400
INTERVALS = ("day", "week", "month", "year")
CURRENCIES = {"usd", "eur", "gbp", "cad", "aud", "chf", "jpy", "sek", "nok", "dkk", "nzd", "sgd", "mxn"}
LIVE = ("trialing", "active", "past_due", "unpaid", "incomplete")
KINDS = {"customer": "customer", "product": "product", "price": "price", "payment_method": "payment_method",
         "subscription": "subscription", "subscription_item": "subscription_item", "invoice": "invoice",
         "invoiceitem": "invoiceitem", "payment_intent": "payment_intent", "event": "event",
         "webhook_endpoint": "webhook_endpoint", "test_helpers.test_clock": "test_clock",
         "checkout.session": "checkout session", "billing_portal.session": "billing portal session",
         "billing_portal.configuration": "billing portal configuration", "setup_intent": "setupintent"}


def add_interval(anchor: int, interval: str, count: int, n: int) -> int:
    """`anchor` stepped n intervals: calendar months keep the anchor's day (clamped)."""
    if interval in ("day", "week"):
        return anchor + n * count * DAY * (7 if interval == "week" else 1)
    months = n * count * (12 if interval == "year" else 1)
    a = datetime.fromtimestamp(anchor, timezone.utc)
    y, m = divmod(a.month - 1 + months, 12)
    year, month = a.year + y, m + 1
    day = min(a.day, calendar.monthrange(year, month)[1])
    return int(a.replace(year=year, month=month, day=day).timestamp())


def date_label(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%d %b %Y")


class Store:
    """Every object of one Stripe account: time, storage, rendering, events. Not thread-safe by
    itself: callers hold `self.lock` (the app does for each request)."""

    def __init__(self, clock: Any, *, retry_days: tuple[int, ...] = (3, 5, 7), dunning_final: str = "canceled",
                 upcoming_days: int = 7, account_name: str = "Hub Emulator"):
        if dunning_final not in ("canceled", "unpaid", "past_due"):
            raise ValueError("dunning_final must be canceled, unpaid or past_due")
        self.clock, self.retry_days, self.dunning_final, self.upcoming_days = clock, tuple(retry_days), dunning_final, upcoming_days
        self.account_name = account_name
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.order: dict[str, list[str]] = {}  # object type -> ids, oldest first
        self.hidden: dict[str, dict[str, Any]] = {}  # id -> bookkeeping the API does not show
        self.on_event: Callable[[dict], None] = lambda event: None
        self.request: dict[str, Any] = {"id": None, "idempotency_key": None}
        self.base_url = "http://127.0.0.1"
        self._time_override: dict[str | None, int] = {}
        self._lookup_keys: dict[str, str] = {}  # lookup_key -> price id

    # ---- time ----------------------------------------------------------------------------------
    def now(self, scope: str | None = None) -> int:
        if scope in self._time_override:
            return self._time_override[scope]
        if scope is not None and scope in self.objects:
            return int(self.objects[scope]["frozen_time"])
        return int(self.clock.time())

    def scope_of(self, obj: dict | str | None) -> str | None:
        """The test clock an object lives on (through its customer), or None."""
        if isinstance(obj, str):
            obj = self.objects.get(obj)
        if not obj:
            return None
        if obj.get("object") == "customer":
            return obj.get("test_clock")
        customer = obj.get("customer")
        if isinstance(customer, str) and customer in self.objects:
            return self.objects[customer].get("test_clock")
        return obj.get("test_clock")

    # ---- storage -------------------------------------------------------------------------------
    def add(self, obj: dict, **hidden: Any) -> dict:
        self.objects[obj["id"]] = obj
        self.order.setdefault(obj["object"], []).append(obj["id"])
        self.hidden[obj["id"]] = hidden
        return obj

    def get(self, kind: str, ident: Any, param: str = "id") -> dict:
        obj = self.objects.get(ident) if isinstance(ident, str) else None
        if obj is None or obj.get("object") != kind or self.hidden.get(ident, {}).get("deleted"):
            raise no_such(KINDS.get(kind, kind), str(ident), param)
        return obj

    def deleted_stub(self, kind: str, ident: str) -> dict | None:
        """A deleted customer still answers a retrieve, as `{"id", "object", "deleted": true}`."""
        obj = self.objects.get(ident)
        if obj is not None and obj["object"] == kind and self.hidden[ident].get("deleted"):
            return {"id": ident, "object": kind, "deleted": True}
        return None

    def all(self, kind: str) -> list[dict]:
        """Newest first, as Stripe lists."""
        return [self.objects[i] for i in reversed(self.order.get(kind, [])) if not self.hidden[i].get("deleted")]

    def render(self, obj: dict) -> dict:
        """What the API shows: a copy, with subscription items' prices embedded as Stripe does."""
        out = copy.deepcopy(obj)
        if out.get("object") == "subscription":
            out["items"]["data"] = [self.render(self.objects[i]) for i in obj["items"]["data"]]
        elif out.get("object") == "subscription_item":
            out["price"] = copy.deepcopy(self.objects[obj["price"]])
        return out

    def resolve(self, ident: str) -> dict | None:
        obj = self.objects.get(ident)
        return self.render(obj) if obj is not None else None

    def _base(self, prefix: str, kind: str, scope: str | None = None, **fields: Any) -> dict:
        return {"id": new_id(prefix), "object": kind, "created": self.now(scope), "livemode": False, **fields}

    # ---- events --------------------------------------------------------------------------------
    def emit(self, kind: str, obj: dict, previous: dict | None = None, scope: str | None = None) -> dict:
        scope = scope if scope is not None else self.scope_of(obj)
        data: dict[str, Any] = {"object": self.render(obj)}
        if previous:
            data["previous_attributes"] = previous
        event = self._base("evt_", "event", scope, api_version="2026-10-28.endive", data=data, pending_webhooks=0,
                           request=dict(self.request), type=kind)
        if obj.get("object") != "test_helpers.test_clock":
            event["context"] = None
        self.add(event)
        self.on_event(event)
        return event

    def emit_updated(self, kind: str, obj: dict, before: dict) -> None:
        after = self.render(obj)
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        if previous:
            self.emit(kind, obj, previous)
