"""The Stripe account's objects and the billing engine that moves them through time.

Objects are kept as the API shows them (API version 2026-10-28, what stripe-python 16 sends):
subscription periods live on the items (`items.data[].current_period_start/end`), an invoice
names its subscription in `parent.subscription_details.subscription`, invoice lines price in
`pricing.price_details`, payments in `invoice.payments`. Hidden bookkeeping is in `self.hidden`.

Time: every object belongs to a scope, its customer's test clock (frozen until advanced) or
the emulator clock. `run_due(scope, until)` performs what falls due in that scope in time order
(renewals, trial ends, invoice finalization, payment retries, cancellations), so one advance of
a test clock over three months renews three times. Objects on the emulator clock are brought up
to date at the start of every API request.

Billing choices (Stripe's defaults where it has one; all configurable on `create_emulator`):
- Subscriptions bill in advance; periods step by calendar month/year from the billing cycle
  anchor (start, or the trial end), clamped to the month's last day. All items share one interval.
- Creating without a trial invoices at once (billing_reason subscription_create) and charges the
  default card: paid -> active; declined -> incomplete (payment_behavior allow_incomplete, the
  default) or a 402 (error_if_incomplete); default_incomplete charges nothing. An incomplete
  subscription expires (incomplete_expired, invoice voided) 23 hours after creation.
- A trial starts `trialing` with a paid 0.00 invoice; `customer.subscription.trial_will_end` 3
  days before it ends; at its end the subscription is `active` and the first real invoice made.
- At each period end a draft invoice (subscription_cycle, with pending invoice items) is made;
  it finalizes and is charged an hour later (`automatically_finalizes_at`), as Stripe does.
  `invoice.upcoming` is sent `upcoming_days` (7) before a renewal.
- Dunning: a failed renewal charge makes the subscription `past_due` and the invoice is retried
  `retry_days` (3, 5, 7) days after each failed automatic attempt; after the last one fails
  the subscription becomes `dunning_final` ("canceled", Stripe's default; or "unpaid" or
  "past_due"). Paying the invoice (retry, API pay, portal card update) makes it `active` again.
  Unpaid subscriptions keep renewing with draft invoices that are not charged.
- Changing quantity or price prorates by the second over the item's current period: a credit
  ("Unused time on ...") and a charge ("Remaining time on ...") as pending invoice items
  (create_prorations, the default), invoiced now (always_invoice) or not at all (none). A price
  of another interval resets the billing cycle and invoices at once.
- cancel_at_period_end / cancel_at end the subscription when that time comes; DELETE ends it now.
"""

from __future__ import annotations

import calendar
import copy
import secrets
import threading
from datetime import datetime, timezone
from typing import Any, Callable

from emulators.stripe import cards
from emulators.stripe.wire import (StripeError, as_bool, as_int, as_list, check_params, invalid, list_object, metadata,
                                   missing, new_id, no_such, state_error)

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


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%d %b %Y")


class Billing:
    """Every object of one Stripe account, and every change to them. Not thread-safe by itself:
    callers hold `self.lock` (the app does for each request)."""

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

    # ---- customers ---------------------------------------------------------------------------------
    CUSTOMER_FIELDS = ("email", "name", "description", "phone", "address", "metadata", "invoice_settings", "test_clock",
                       "payment_method", "preferred_locales", "shipping", "tax_exempt", "invoice_prefix", "balance")

    def create_customer(self, p: dict) -> dict:
        check_params(p, self.CUSTOMER_FIELDS)
        clock = p.get("test_clock") or None
        if clock:
            self.get("test_helpers.test_clock", clock, "test_clock")
        prefix = "".join(secrets.choice("ABCDEF0123456789") for _ in range(8))
        customer = self._base("cus_", "customer", clock, address=p.get("address") or None, balance=as_int(p, "balance", 0),
                              currency=None, default_source=None, delinquent=False, description=p.get("description") or None,
                              discount=None, email=p.get("email") or None, invoice_prefix=p.get("invoice_prefix") or prefix,
                              invoice_settings={"custom_fields": None, "default_payment_method": None, "footer": None,
                                                "rendering_options": None},
                              metadata=metadata(p), name=p.get("name") or None, next_invoice_sequence=1,
                              phone=p.get("phone") or None, preferred_locales=as_list(p, "preferred_locales"), shipping=None,
                              tax_exempt=p.get("tax_exempt") or "none", test_clock=clock)
        self.add(customer)
        self.emit("customer.created", customer)
        if p.get("payment_method"):
            pm = self.attach_payment_method(p["payment_method"], customer["id"], param="payment_method")
            if isinstance(p.get("invoice_settings"), dict) and p["invoice_settings"].get("default_payment_method") == p["payment_method"]:
                p = {**p, "invoice_settings": {**p["invoice_settings"], "default_payment_method": pm["id"]}}
        if isinstance(p.get("invoice_settings"), dict):
            self._customer_settings(customer, p["invoice_settings"])
        return customer

    def _customer_settings(self, customer: dict, settings: dict) -> None:
        if "default_payment_method" in settings:
            pm_id = settings["default_payment_method"] or None
            if pm_id:
                pm = self.get("payment_method", pm_id, "invoice_settings[default_payment_method]")
                if pm["customer"] != customer["id"]:
                    raise state_error(f"The customer does not have a payment method with the ID {pm_id}. The payment method "
                                      "must be attached to the customer.", "invoice_settings[default_payment_method]")
            customer["invoice_settings"]["default_payment_method"] = pm_id
        for key in ("footer", "custom_fields"):
            if key in settings:
                customer["invoice_settings"][key] = settings[key] or None

    def update_customer(self, ident: str, p: dict) -> dict:
        check_params(p, set(self.CUSTOMER_FIELDS) - {"test_clock", "payment_method"} | {"default_source"})
        customer = self.get("customer", ident)
        before = self.render(customer)
        for key in ("email", "name", "description", "phone", "address", "shipping", "tax_exempt"):
            if key in p:
                customer[key] = p[key] or None
        customer["metadata"] = metadata(p, customer["metadata"])
        if isinstance(p.get("invoice_settings"), dict):
            self._customer_settings(customer, p["invoice_settings"])
        self.emit_updated("customer.updated", customer, before)
        return customer

    def delete_customer(self, ident: str) -> dict:
        customer = self.get("customer", ident)
        for sub in self.all("subscription"):
            if sub["customer"] == ident and sub["status"] not in ("canceled", "incomplete_expired"):
                self.cancel_subscription(sub["id"], {})
        self.hidden[ident]["deleted"] = True
        self.emit("customer.deleted", customer)
        return {"id": ident, "object": "customer", "deleted": True}

    # ---- products and prices ----------------------------------------------------------------------
    def create_product(self, p: dict) -> dict:
        check_params(p, ("id", "name", "active", "description", "metadata", "default_price_data", "images",
                         "marketing_features", "statement_descriptor", "unit_label", "url", "tax_code"))
        if not p.get("name"):
            raise missing("name")
        ident = p.get("id") or new_id("prod_", 14)
        if ident in self.objects and not self.hidden[ident].get("deleted"):
            raise StripeError(400, f"Product already exists.", code="resource_already_exists", param="id")
        now = self.now()
        product = {"id": ident, "object": "product", "active": as_bool(p, "active", True), "created": now,
                   "default_price": None, "description": p.get("description") or None, "images": as_list(p, "images"),
                   "livemode": False, "marketing_features": as_list(p, "marketing_features"), "metadata": metadata(p),
                   "name": p["name"], "package_dimensions": None, "shippable": None,
                   "statement_descriptor": p.get("statement_descriptor") or None, "tax_code": p.get("tax_code") or None,
                   "type": "service", "unit_label": p.get("unit_label") or None, "updated": now, "url": p.get("url") or None}
        self.add(product)
        self.emit("product.created", product)
        if isinstance(p.get("default_price_data"), dict):
            price = self.create_price({**p["default_price_data"], "product": ident})
            product["default_price"] = price["id"]
        return product

    def update_product(self, ident: str, p: dict) -> dict:
        check_params(p, ("name", "active", "description", "metadata", "default_price", "images", "marketing_features",
                         "statement_descriptor", "unit_label", "url", "tax_code"))
        product = self.get("product", ident)
        before = self.render(product)
        if "name" in p:
            if not p["name"]:
                raise invalid("name", "You must provide a name for the product.")
            product["name"] = p["name"]
        if "active" in p:
            product["active"] = as_bool(p, "active", product["active"])
        for key in ("description", "statement_descriptor", "unit_label", "url", "tax_code"):
            if key in p:
                product[key] = p[key] or None
        if "default_price" in p:
            if p["default_price"]:
                price = self.get("price", p["default_price"], "default_price")
                if price["product"] != ident:
                    raise state_error("The default price must belong to this product.", "default_price")
            product["default_price"] = p["default_price"] or None
        product["metadata"] = metadata(p, product["metadata"])
        product["updated"] = self.now()
        self.emit_updated("product.updated", product, before)
        return product

    def delete_product(self, ident: str) -> dict:
        product = self.get("product", ident)
        if any(price["product"] == ident for price in self.all("price")):
            raise state_error("This product cannot be deleted because it has one or more user-created prices.")
        self.hidden[ident]["deleted"] = True
        self.emit("product.deleted", product)
        return {"id": ident, "object": "product", "deleted": True}

    def create_price(self, p: dict) -> dict:
        check_params(p, ("currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "recurring", "active",
                         "lookup_key", "transfer_lookup_key", "nickname", "metadata", "billing_scheme", "tax_behavior",
                         "tiers", "tiers_mode"))
        if not p.get("currency"):
            raise missing("currency")
        currency = str(p["currency"]).lower()
        if currency not in CURRENCIES:
            raise invalid("currency", f"Invalid currency: {currency}.", "parameter_invalid_string_blank")
        if p.get("product"):
            product = self.get("product", p["product"], "product")
        elif isinstance(p.get("product_data"), dict):
            product = self.create_product({k: v for k, v in p["product_data"].items() if k in ("name", "metadata", "active", "id")})
        else:
            raise missing("product")
        scheme = p.get("billing_scheme") or "per_unit"
        tiers = None
        if scheme == "tiered":
            tiers = [{"flat_amount": as_int(t, "flat_amount"), "flat_amount_decimal": t.get("flat_amount"),
                      "unit_amount": as_int(t, "unit_amount"), "unit_amount_decimal": t.get("unit_amount"),
                      "up_to": None if t.get("up_to") in ("inf", None) else int(t["up_to"])} for t in as_list(p, "tiers")]
            if not tiers or p.get("tiers_mode") not in ("graduated", "volume"):
                raise missing("tiers" if not tiers else "tiers_mode")
            unit_amount = None
        else:
            unit_amount = as_int(p, "unit_amount", minimum=0)
            if unit_amount is None:
                raise missing("unit_amount")
        recurring = None
        if isinstance(p.get("recurring"), dict):
            r = p["recurring"]
            if r.get("interval") not in INTERVALS:
                raise invalid("recurring[interval]", "Invalid recurring[interval]: must be one of day, week, month, or year",
                              "parameter_invalid_string_blank") if r.get("interval") else missing("recurring[interval]")
            recurring = {"interval": r["interval"], "interval_count": as_int(r, "interval_count", 1, minimum=1),
                         "meter": None, "trial_period_days": as_int(r, "trial_period_days"),
                         "usage_type": r.get("usage_type") or "licensed"}
        lookup_key = p.get("lookup_key") or None
        if lookup_key and lookup_key in self._lookup_keys:
            if not as_bool(p, "transfer_lookup_key", False):
                raise StripeError(400, f"A price (`{self._lookup_keys[lookup_key]}`) already uses that lookup key.",
                                  param="lookup_key")
            self.objects[self._lookup_keys[lookup_key]]["lookup_key"] = None
        price = self._base("price_", "price", active=as_bool(p, "active", True), billing_scheme=scheme, currency=currency,
                           custom_unit_amount=None, lookup_key=lookup_key, metadata=metadata(p),
                           nickname=p.get("nickname") or None, product=product["id"], recurring=recurring,
                           tax_behavior=p.get("tax_behavior") or "unspecified", tiers_mode=p.get("tiers_mode") or None,
                           transform_quantity=None, type="recurring" if recurring else "one_time", unit_amount=unit_amount,
                           unit_amount_decimal=None if unit_amount is None else str(unit_amount))
        self.add(price, tiers=tiers)
        if lookup_key:
            self._lookup_keys[lookup_key] = price["id"]
        self.emit("price.created", price)
        return price

    def update_price(self, ident: str, p: dict) -> dict:
        check_params(p, ("active", "lookup_key", "transfer_lookup_key", "nickname", "metadata", "tax_behavior"))
        price = self.get("price", ident)
        before = self.render(price)
        if "active" in p:
            price["active"] = as_bool(p, "active", price["active"])
        if "nickname" in p:
            price["nickname"] = p["nickname"] or None
        if "lookup_key" in p:
            key = p["lookup_key"] or None
            holder = self._lookup_keys.get(key) if key else None
            if holder and holder != ident:
                if not as_bool(p, "transfer_lookup_key", False):
                    raise StripeError(400, f"A price (`{holder}`) already uses that lookup key.", param="lookup_key")
                self.objects[holder]["lookup_key"] = None
            if price["lookup_key"]:
                self._lookup_keys.pop(price["lookup_key"], None)
            price["lookup_key"] = key
            if key:
                self._lookup_keys[key] = ident
        price["metadata"] = metadata(p, price["metadata"])
        self.emit_updated("price.updated", price, before)
        return price

    def price_amount(self, price: dict, quantity: int) -> int:
        """What `quantity` units of `price` cost for one period (tiers per Stripe's graduated/volume rules)."""
        tiers = self.hidden[price["id"]].get("tiers")
        if not tiers:
            return (price["unit_amount"] or 0) * quantity
        if price["tiers_mode"] == "volume":
            tier = next((t for t in tiers if t["up_to"] is None or quantity <= t["up_to"]), tiers[-1])
            return (tier["unit_amount"] or 0) * quantity + (tier["flat_amount"] or 0)
        total, below = 0, 0
        for t in tiers:
            top = quantity if t["up_to"] is None else min(quantity, t["up_to"])
            if top > below:
                total += (t["unit_amount"] or 0) * (top - below) + (t["flat_amount"] or 0)
            below = top if t["up_to"] is not None else quantity
            if below >= quantity:
                break
        return total

    # ---- payment methods -------------------------------------------------------------------------------
    def create_payment_method(self, p: dict) -> dict:
        check_params(p, ("type", "card", "billing_details", "metadata", "customer", "payment_method", "allow_redisplay"))
        if (p.get("type") or "card") != "card":
            raise invalid("type", "Only card payment methods are emulated.", "payment_method_invalid_parameter")
        card = p.get("card")
        if not isinstance(card, dict):
            raise missing("card")
        if card.get("token"):
            number = cards.TOKENS.get(card["token"])
            if number is None:
                raise no_such("token", card["token"], "card[token]")
            exp_month, exp_year = 12, datetime.now(timezone.utc).year + 3
        else:
            number = str(card.get("number") or "").replace(" ", "")
            if not number:
                raise missing("card[number]")
            exp_month, exp_year = as_int(card, "exp_month"), as_int(card, "exp_year")
            if exp_month is None:
                raise missing("card[exp_month]")
            if exp_year is None:
                raise missing("card[exp_year]")
        return self._new_card(number, exp_month, exp_year, p.get("billing_details"), metadata(p))

    def _new_card(self, number: str, exp_month: int, exp_year: int, billing: Any = None, meta: dict | None = None,
                  setup: bool = False) -> dict:
        info = cards.describe(number)
        if info is None:
            raise StripeError(402, "Your card number is incorrect.", type="card_error", code="incorrect_number", param="number")
        if not 1 <= exp_month <= 12:
            raise StripeError(402, "Your card's expiration month is invalid.", type="card_error", code="invalid_expiry_month",
                              param="exp_month")
        if exp_year < 100:
            exp_year += 2000
        if (exp_year, exp_month) < (datetime.now(timezone.utc).year, datetime.now(timezone.utc).month):
            raise StripeError(402, "Your card's expiration year is invalid.", type="card_error", code="invalid_expiry_year",
                              param="exp_year")
        brand, funding, behaviour = info
        billing = billing if isinstance(billing, dict) else {}
        pm = self._base("pm_", "payment_method", allow_redisplay="unspecified",
                        billing_details={"address": billing.get("address") or None, "email": billing.get("email") or None,
                                         "name": billing.get("name") or None, "phone": billing.get("phone") or None},
                        card={"brand": brand, "checks": {"address_line1_check": None, "address_postal_code_check": None,
                                                         "cvc_check": "pass"},
                              "country": "US", "display_brand": brand, "exp_month": exp_month, "exp_year": exp_year,
                              "fingerprint": secrets.token_hex(8), "funding": funding, "generated_from": None,
                              "last4": number[-4:], "networks": {"available": [brand], "preferred": None},
                              "regulated_status": "unregulated", "three_d_secure_usage": {"supported": True}, "wallet": None},
                        customer=None, metadata=meta or {}, type="card")
        return self.add(pm, behaviour=behaviour, setup=setup)

    def payment_method(self, ident: str, param: str = "payment_method") -> dict:
        """A stored PaymentMethod, or a fresh one made from a test token (`pm_card_visa`), as Stripe does."""
        if ident in cards.TOKENS:
            return self._new_card(cards.TOKENS[ident], 12, datetime.now(timezone.utc).year + 3)
        return self.get("payment_method", ident, param)

    def attach_payment_method(self, ident: str, customer_id: str, param: str = "payment_method", setup: bool = False) -> dict:
        customer = self.get("customer", customer_id, "customer")
        pm = self.payment_method(ident, param)
        if pm["customer"] == customer["id"]:
            return pm
        if pm["customer"]:
            raise state_error("The payment method you provided has already been attached to a customer.", param)
        failure = cards.decline(self.hidden[pm["id"]]["behaviour"])
        if failure and self.hidden[pm["id"]]["behaviour"] != "charge_fail":
            code, message, decline_code = failure
            raise StripeError(402, message, type="card_error", code=code, decline_code=decline_code)
        pm["customer"] = customer["id"]
        if setup:
            self.hidden[pm["id"]]["setup"] = True
        self.emit("payment_method.attached", pm, scope=customer.get("test_clock"))
        return pm

    def detach_payment_method(self, ident: str) -> dict:
        pm = self.get("payment_method", ident)
        if not pm["customer"]:
            raise state_error("The payment method you provided is not attached to a customer so detachment is impossible.")
        customer = self.objects[pm["customer"]]
        scope = customer.get("test_clock")
        if customer["invoice_settings"]["default_payment_method"] == ident:
            before = self.render(customer)
            customer["invoice_settings"]["default_payment_method"] = None
            self.emit_updated("customer.updated", customer, before)
        for sub in self.all("subscription"):
            if sub["default_payment_method"] == ident:
                sub["default_payment_method"] = None
        pm["customer"] = None
        self.emit("payment_method.detached", pm, {"customer": customer["id"]}, scope=scope)
        return pm

    def charge_outcome(self, pm: dict, off_session: bool) -> tuple[str, str, str | None] | None:
        """None when a charge on `pm` succeeds, else (code, message, decline_code)."""
        behaviour = self.hidden[pm["id"]]["behaviour"]
        if behaviour == "auth_always" or (behaviour == "auth_on_setup" and off_session and not self.hidden[pm["id"]]["setup"]):
            return "authentication_required", "Your card was declined. This transaction requires authentication.", "authentication_required"
        return cards.decline(behaviour)

    # ---- subscriptions --------------------------------------------------------------------------------------
    SUB_CREATE = ("customer", "items", "trial_period_days", "trial_end", "default_payment_method", "payment_behavior",
                  "cancel_at_period_end", "cancel_at", "metadata", "description", "collection_method", "days_until_due",
                  "proration_behavior", "off_session", "currency", "trial_from_plan", "payment_settings",
                  "billing_cycle_anchor")
    SUB_UPDATE = ("items", "trial_end", "default_payment_method", "payment_behavior", "cancel_at_period_end", "cancel_at",
                  "metadata", "description", "collection_method", "days_until_due", "proration_behavior", "proration_date",
                  "off_session", "cancellation_details", "trial_from_plan", "payment_settings", "billing_cycle_anchor")

    def _items_in(self, p: dict) -> list[dict]:
        items = as_list(p, "items")
        if not items:
            raise missing("items")
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid(f"items[{n}]", "Invalid hash", "parameter_invalid_hash")
            out.append(item)
        return out

    def _recurring_price(self, ident: str, param: str) -> dict:
        price = self.get("price", ident, param)
        if not price["recurring"]:
            raise state_error(f"The price specified is set to `type=one_time` but this field only accepts prices with "
                              f"`type=recurring`.", param)
        if not price["active"]:
            raise state_error(f"The price specified is inactive. This field only accepts active prices.", param)
        return price

    def _same_interval(self, prices: list[dict]) -> None:
        if len({(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in prices}) > 1 or \
                len({p["currency"] for p in prices}) > 1:
            raise state_error("Currency and interval fields must match across all plans on this subscription. Found "
                              "mismatch in interval field.", "items")

    def create_subscription(self, p: dict) -> dict:
        check_params(p, self.SUB_CREATE)
        if not p.get("customer"):
            raise missing("customer")
        customer = self.get("customer", p["customer"], "customer")
        scope = customer.get("test_clock")
        t = self.now(scope)
        specs = []
        for n, item in enumerate(self._items_in(p)):
            if not item.get("price"):
                raise missing(f"items[{n}][price]")
            specs.append((self._recurring_price(item["price"], f"items[{n}][price]"), as_int(item, "quantity", 1, minimum=0),
                          metadata(item)))
        self._same_interval([s[0] for s in specs])
        behavior = p.get("payment_behavior") or "allow_incomplete"
        if behavior not in ("allow_incomplete", "error_if_incomplete", "default_incomplete", "pending_if_incomplete"):
            raise invalid("payment_behavior", f"Invalid payment_behavior: {behavior}", "parameter_invalid_string_blank")
        pm_id = p.get("default_payment_method") or None
        if pm_id:
            pm = self.get("payment_method", pm_id, "default_payment_method")
            if pm["customer"] != customer["id"]:
                raise state_error("The customer does not have a payment method with the ID " + pm_id +
                                  ". The payment method must be attached to the customer.", "default_payment_method")
        trial_end = None
        if p.get("trial_end") not in (None, "", "now"):
            trial_end = as_int(p, "trial_end")
            if trial_end <= t:
                raise invalid("trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future.",
                              "parameter_invalid_integer")
        elif as_int(p, "trial_period_days") is not None:
            days = as_int(p, "trial_period_days", minimum=0)
            trial_end = t + days * DAY if days else None
        elif as_bool(p, "trial_from_plan", False) and specs[0][0]["recurring"]["trial_period_days"]:
            trial_end = t + specs[0][0]["recurring"]["trial_period_days"] * DAY
        price0 = specs[0][0]
        interval, count = price0["recurring"]["interval"], price0["recurring"]["interval_count"]
        anchor = trial_end or t
        end = trial_end or add_interval(anchor, interval, count, 1)
        sub = self._base("sub_", "subscription", scope, application=None, application_fee_percent=None,
                         automatic_tax={"disabled_reason": None, "enabled": False, "liability": None},
                         billing_cycle_anchor=anchor, billing_mode={"type": "classic"}, cancel_at=None,
                         cancel_at_period_end=False, canceled_at=None,
                         cancellation_details={"comment": None, "feedback": None, "reason": None},
                         collection_method=p.get("collection_method") or "charge_automatically", currency=price0["currency"],
                         customer=customer["id"], days_until_due=as_int(p, "days_until_due"), default_payment_method=pm_id,
                         description=p.get("description") or None, discounts=[], ended_at=None, items=None,
                         latest_invoice=None, metadata=metadata(p), pending_setup_intent=None, pending_update=None,
                         start_date=t, status="incomplete", test_clock=scope, trial_end=trial_end,
                         trial_settings={"end_behavior": {"missing_payment_method": "create_invoice"}},
                         trial_start=t if trial_end else None)
        self.add(sub, anchor=anchor, k=-1 if trial_end else 0, interval=(interval, count), upcoming_for=None,
                 trial_will_end_sent=False, behavior=behavior)
        items = [self._new_item(sub, price, qty, meta, t, end) for price, qty, meta in specs]
        sub["items"] = list_object([i["id"] for i in items], f"/v1/subscription_items?subscription={sub['id']}")
        if as_bool(p, "cancel_at_period_end", False):
            sub["cancel_at_period_end"], sub["cancel_at"] = True, end
        elif p.get("cancel_at"):
            sub["cancel_at"] = as_int(p, "cancel_at")
        if trial_end:
            sub["status"] = "trialing"
            invoice = self._subscription_invoice(sub, "subscription_create", t, t, trial=True)
            self.emit("customer.subscription.created", sub)
            self.finalize_invoice(invoice["id"], {}, attempt=True)
            return sub
        invoice = self._subscription_invoice(sub, "subscription_create", t, t)
        if behavior == "error_if_incomplete" and invoice["amount_due"]:
            pm_id = self._payment_method_for(invoice)
            outcome = self.charge_outcome(self.objects[pm_id], off_session=True) if pm_id else None
            if pm_id is None or outcome:
                self._forget_subscription(sub, items, invoice)
            if pm_id is None:
                raise StripeError(400, "This customer has no attached payment source or default payment method. Please "
                                  "consider adding a default payment method.", code="resource_missing", param="default_payment_method")
            if outcome:
                code, message, decline_code = outcome
                raise StripeError(402, message, type="card_error", code=code, decline_code=decline_code)
        self.emit("customer.subscription.created", sub)
        self.finalize_invoice(invoice["id"], {}, attempt=behavior != "default_incomplete")
        return sub

    def _forget_subscription(self, sub: dict, items: list[dict], invoice: dict) -> None:
        for obj in (sub, *items, invoice):
            self.hidden[obj["id"]]["deleted"] = True

    def _new_item(self, sub: dict, price: dict, quantity: int, meta: dict, start: int, end: int) -> dict:
        item = self._base("si_", "subscription_item", sub["test_clock"], billing_thresholds=None, current_period_end=end,
                          current_period_start=start, discounts=[], metadata=meta, price=price["id"], quantity=quantity,
                          subscription=sub["id"], tax_rates=[])
        return self.add(item)

    def sub_items(self, sub: dict) -> list[dict]:
        return [self.objects[i] for i in sub["items"]["data"]]

    def period(self, sub: dict) -> tuple[int, int]:
        first = self.sub_items(sub)[0]
        return first["current_period_start"], first["current_period_end"]

    def update_subscription(self, ident: str, p: dict) -> dict:
        check_params(p, self.SUB_UPDATE)
        sub = self.get("subscription", ident)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise state_error("A canceled subscription can only update its cancellation_details and metadata.")
        scope, before = sub["test_clock"], self.render(sub)
        t = self.now(scope)
        if "default_payment_method" in p:
            pm_id = p["default_payment_method"] or None
            if pm_id and self.get("payment_method", pm_id, "default_payment_method")["customer"] != sub["customer"]:
                raise state_error("The customer does not have a payment method with the ID " + pm_id + ".", "default_payment_method")
            sub["default_payment_method"] = pm_id
        if "description" in p:
            sub["description"] = p["description"] or None
        sub["metadata"] = metadata(p, sub["metadata"])
        if isinstance(p.get("cancellation_details"), dict):
            sub["cancellation_details"].update({k: p["cancellation_details"].get(k) or None for k in ("comment", "feedback")})
        if "cancel_at_period_end" in p:
            flag = as_bool(p, "cancel_at_period_end", False)
            sub["cancel_at_period_end"] = flag
            sub["cancel_at"] = self.period(sub)[1] if flag else None
            sub["canceled_at"] = t if flag else None
            sub["cancellation_details"]["reason"] = "cancellation_requested" if flag else None
        if "cancel_at" in p:
            sub["cancel_at"] = as_int(p, "cancel_at")
            sub["cancel_at_period_end"] = bool(sub["cancel_at"]) and sub["cancel_at"] == self.period(sub)[1]
            sub["canceled_at"] = t if sub["cancel_at"] else None
        if p.get("trial_end") == "now" and sub["status"] == "trialing":
            self._end_trial_now(sub, t)
        elif p.get("trial_end") not in (None, "", "now"):
            new_end = as_int(p, "trial_end")
            if new_end <= t:
                raise invalid("trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future.",
                              "parameter_invalid_integer")
            if sub["status"] == "trialing":
                sub["trial_end"] = new_end
                self.hidden[ident].update(anchor=new_end, trial_will_end_sent=False)
                for item in self.sub_items(sub):
                    item["current_period_end"] = new_end
        if "items" in p:
            behavior = p.get("proration_behavior") or "create_prorations"
            if behavior not in ("create_prorations", "none", "always_invoice"):
                raise invalid("proration_behavior", f"Invalid proration_behavior: {behavior}", "parameter_invalid_string_blank")
            when = as_int(p, "proration_date", t)
            self._change_items(sub, self._items_in(p), behavior, when, t,
                               payment_behavior=p.get("payment_behavior") or "allow_incomplete")
        self.emit_updated("customer.subscription.updated", sub, before)
        return sub

    def _end_trial_now(self, sub: dict, t: int) -> None:
        h = self.hidden[sub["id"]]
        sub["trial_end"] = t
        h.update(anchor=t, k=-1)
        for item in self.sub_items(sub):
            item["current_period_end"] = t
        self.renew(sub, t)

    def plan_changes(self, sub: dict, changes: list[dict], when: int) -> tuple[list[dict], list[tuple], bool]:
        """What changing `sub`'s items as `changes` would do at `when`, without doing it:
        (proration lines, new item specs [(item id | None, price, quantity, metadata)], interval reset)."""
        items = {i["id"]: i for i in self.sub_items(sub)}
        specs: dict[str | None, tuple] = {i["id"]: (i["id"], self.objects[i["price"]], i["quantity"], i["metadata"]) for i in items.values()}
        new_specs: list[tuple] = []
        for n, change in enumerate(changes):
            if change.get("id"):
                if change["id"] not in items:
                    raise no_such("subscription_item", change["id"], f"items[{n}][id]")
                old = specs[change["id"]]
                if as_bool(change, "deleted", False):
                    specs[change["id"]] = None
                    continue
                price = self._recurring_price(change["price"], f"items[{n}][price]") if change.get("price") else old[1]
                specs[change["id"]] = (old[0], price, as_int(change, "quantity", old[2], minimum=0),
                                       metadata(change, old[3]))
            else:
                if not change.get("price"):
                    raise missing(f"items[{n}][price]")
                new_specs.append((None, self._recurring_price(change["price"], f"items[{n}][price]"),
                                  as_int(change, "quantity", 1, minimum=0), metadata(change)))
        result = [s for s in specs.values() if s is not None] + new_specs
        if not result:
            raise state_error("A subscription must have at least one active plan.", "items")
        self._same_interval([s[1] for s in result])
        start, end = self.period(sub)
        old_interval = self.hidden[sub["id"]]["interval"]
        new_interval = (result[0][1]["recurring"]["interval"], result[0][1]["recurring"]["interval_count"])
        reset = new_interval != old_interval and sub["status"] != "trialing"
        lines: list[dict] = []
        if sub["status"] in ("active", "past_due", "unpaid"):
            if not start <= when <= end:
                raise invalid("proration_date", "The proration date must be within the current period.",
                              "parameter_invalid_integer")
            share = (end - when) / max(1, end - start)
            for ident, item in items.items():
                new = specs[ident]
                old_price, old_qty = self.objects[item["price"]], item["quantity"]
                unchanged = new is not None and new[1]["id"] == old_price["id"] and new[2] == old_qty
                if unchanged and not reset:
                    continue
                amount = round(self.price_amount(old_price, old_qty) * share)
                if amount:
                    lines.append(self._proto(sub, item["id"], old_price, old_qty, -amount, (when, end),
                                             f"Unused time on {old_qty} × {self._product_name(old_price)} after {_date(when)}"))
                if new is not None and not reset:
                    amount = round(self.price_amount(new[1], new[2]) * share)
                    if amount:
                        lines.append(self._proto(sub, ident, new[1], new[2], amount, (when, end),
                                                 f"Remaining time on {new[2]} × {self._product_name(new[1])} after {_date(when)}"))
            if not reset:
                for spec in new_specs:
                    amount = round(self.price_amount(spec[1], spec[2]) * share)
                    if amount:
                        lines.append(self._proto(sub, None, spec[1], spec[2], amount, (when, end),
                                                 f"Remaining time on {spec[2]} × {self._product_name(spec[1])} after {_date(when)}"))
        return lines, result, reset

    def _product_name(self, price: dict) -> str:
        return self.objects[price["product"]]["name"]

    @staticmethod
    def _proto(sub: dict, item_id: str | None, price: dict, qty: int, amount: int, period: tuple[int, int], description: str,
               proration: bool = True) -> dict:
        return {"subscription": sub["id"], "subscription_item": item_id, "price": price["id"], "product": price["product"],
                "quantity": qty, "amount": amount, "currency": price["currency"], "period": {"start": period[0], "end": period[1]},
                "description": description, "proration": proration, "unit_amount": price["unit_amount"]}

    def _change_items(self, sub: dict, changes: list[dict], behavior: str, when: int, t: int, payment_behavior: str) -> None:
        lines, specs, reset = self.plan_changes(sub, changes, when)
        start, end = self.period(sub)
        if reset:
            interval = (specs[0][1]["recurring"]["interval"], specs[0][1]["recurring"]["interval_count"])
            start, end = t, add_interval(t, interval[0], interval[1], 1)
            self.hidden[sub["id"]].update(anchor=t, k=0, interval=interval, upcoming_for=None)
            sub["billing_cycle_anchor"] = t
        keep = []
        for ident, price, qty, meta in specs:
            if ident:
                item = self.objects[ident]
                item.update(price=price["id"], quantity=qty, metadata=meta, current_period_start=start, current_period_end=end)
                keep.append(ident)
            else:
                keep.append(self._new_item(sub, price, qty, meta, start, end)["id"])
        for ident in sub["items"]["data"]:
            if ident not in keep:
                self.hidden[ident]["deleted"] = True
        sub["items"]["data"], sub["items"]["total_count"] = keep, len(keep)
        if behavior == "none" and not reset:
            return
        for line in lines:
            self._store_invoice_item(line, sub["customer"])
        if reset:
            invoice = self._subscription_invoice(sub, "subscription_update", start, start)
            self.finalize_invoice(invoice["id"], {}, attempt=True)
        elif behavior == "always_invoice" and lines:
            invoice = self._subscription_invoice(sub, "subscription_update", when, when, cycle=False)
            self.finalize_invoice(invoice["id"], {}, attempt=True)

    def _store_invoice_item(self, proto: dict, customer: str, invoice: str | None = None) -> dict:
        scope = self.scope_of(customer)
        item = self._base("ii_", "invoiceitem", scope, amount=proto["amount"], currency=proto["currency"], customer=customer,
                          date=self.now(scope), description=proto["description"], discountable=not proto["proration"],
                          discounts=[], invoice=invoice, metadata={},
                          parent=({"type": "subscription_details", "subscription_details": {
                              "subscription": proto["subscription"], "subscription_item": proto["subscription_item"]}}
                              if proto.get("subscription") else None),
                          period=proto["period"],
                          pricing=({"type": "price_details", "price_details": {"price": proto["price"], "product": proto["product"]},
                                    "unit_amount_decimal": None if proto["unit_amount"] is None else str(proto["unit_amount"])} if proto.get("price") else None),
                          proration=proto["proration"], quantity=proto["quantity"], tax_rates=[], test_clock=scope)
        self.add(item)
        self.emit("invoiceitem.created", item)
        return item

    def create_invoice_item(self, p: dict) -> dict:
        check_params(p, ("customer", "amount", "currency", "description", "price", "pricing", "quantity", "invoice",
                         "subscription", "metadata", "period", "discountable"))
        if not p.get("customer"):
            raise missing("customer")
        customer = self.get("customer", p["customer"], "customer")
        qty = as_int(p, "quantity", 1, minimum=0)
        pricing = p.get("pricing") if isinstance(p.get("pricing"), dict) else {}
        price_id = p.get("price") or pricing.get("price")
        if price_id:
            price = self.get("price", price_id, "price")
            amount, currency = self.price_amount(price, qty), price["currency"]
        else:
            amount, currency = as_int(p, "amount"), (p.get("currency") or "").lower()
            if amount is None:
                raise missing("amount")
            if not currency:
                raise missing("currency")
            price = None
        if p.get("invoice"):
            invoice = self.get("invoice", p["invoice"], "invoice")
            if invoice["status"] != "draft":
                raise state_error("You can only add invoice items to draft invoices.", "invoice")
        t = self.now(customer.get("test_clock"))
        proto = {"subscription": p.get("subscription") or None, "subscription_item": None,
                 "price": price["id"] if price else None, "product": price["product"] if price else None,
                 "quantity": qty, "amount": amount, "currency": currency, "period": {"start": t, "end": t},
                 "description": p.get("description") or (self._product_name(price) if price else None), "proration": False,
                 "unit_amount": price["unit_amount"] if price else amount}
        item = self._store_invoice_item(proto, customer["id"], p.get("invoice") or None)
        item["metadata"] = metadata(p)
        if p.get("invoice"):
            self._add_lines(self.objects[p["invoice"]], [item])
        return item

    def delete_invoice_item(self, ident: str) -> dict:
        item = self.get("invoiceitem", ident)
        if item["invoice"] and self.objects[item["invoice"]]["status"] != "draft":
            raise state_error("You can only delete invoice items that are on a draft invoice or not yet invoiced.")
        if item["invoice"]:
            inv = self.objects[item["invoice"]]
            inv["lines"]["data"] = [l for l in inv["lines"]["data"]
                                    if (l["parent"].get("invoice_item_details") or {}).get("invoice_item") != ident]
            self._totals(inv)
        self.hidden[ident]["deleted"] = True
        self.emit("invoiceitem.deleted", item)
        return {"id": ident, "object": "invoiceitem", "deleted": True}

    def cancel_subscription(self, ident: str, p: dict) -> dict:
        check_params(p, ("invoice_now", "prorate", "cancellation_details"))
        sub = self.get("subscription", ident)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise state_error("This subscription has already been canceled.")
        scope = sub["test_clock"]
        self._end_subscription(sub, self.now(scope), "cancellation_requested",
                               p.get("cancellation_details") if isinstance(p.get("cancellation_details"), dict) else None)
        return sub

    def _end_subscription(self, sub: dict, t: int, reason: str, details: dict | None = None, expired: bool = False) -> None:
        before = self.render(sub)
        sub["status"] = "incomplete_expired" if expired else "canceled"
        sub["canceled_at"] = sub["canceled_at"] or t
        sub["ended_at"] = t
        sub["cancellation_details"]["reason"] = reason
        if details:
            sub["cancellation_details"].update({k: details.get(k) or None for k in ("comment", "feedback")})
        for inv in self.all("invoice"):
            if self._sub_of(inv) == sub["id"] and inv["status"] in ("draft", "open"):
                inv["next_payment_attempt"] = None
                inv["automatically_finalizes_at"] = None
                inv["auto_advance"] = False
                if expired and inv["status"] == "open":
                    self.void_invoice(inv["id"])
        if expired:
            self.emit_updated("customer.subscription.updated", sub, before)
        else:
            self.emit("customer.subscription.deleted", sub, {k: v for k, v in before.items() if self.render(sub).get(k) != v})

    # ---- invoices ------------------------------------------------------------------------------------------
    @staticmethod
    def _sub_of(invoice: dict) -> str | None:
        parent = invoice.get("parent") or {}
        return (parent.get("subscription_details") or {}).get("subscription")

    def _new_invoice(self, customer: dict, scope: str | None, t: int, *, reason: str, sub: dict | None, currency: str,
                     collection: str = "charge_automatically", auto_advance: bool = True, description: str | None = None,
                     meta: dict | None = None, preview: bool = False) -> dict:
        invoice = {"id": ("upcoming_" + new_id("in_")) if preview else new_id("in_"), "object": "invoice",
                   "account_country": "US", "account_name": self.account_name, "account_tax_ids": None,
                   "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0,
                   "application": None, "attempt_count": 0, "attempted": False, "auto_advance": auto_advance and not preview,
                   "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None},
                   "automatically_finalizes_at": None, "billing_reason": reason, "collection_method": collection,
                   "created": t, "currency": currency, "custom_fields": None, "customer": customer["id"],
                   "customer_address": customer["address"], "customer_email": customer["email"], "customer_name": customer["name"],
                   "customer_phone": customer["phone"], "customer_shipping": None, "customer_tax_exempt": customer["tax_exempt"],
                   "customer_tax_ids": [], "default_payment_method": None, "default_source": None, "default_tax_rates": [],
                   "description": description, "discounts": [], "due_date": None, "effective_at": None, "ending_balance": None,
                   "footer": None, "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None,
                   "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None, "lines": None,
                   "livemode": False, "metadata": meta or {}, "next_payment_attempt": None, "number": None, "on_behalf_of": None,
                   "parent": ({"type": "subscription_details", "quote_details": None,
                               "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]}}
                              if sub else None),
                   "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
                   "payments": None, "period_end": t, "period_start": t, "post_payment_credit_notes_amount": 0,
                   "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None, "shipping_cost": None,
                   "shipping_details": None, "starting_balance": 0, "statement_descriptor": None, "status": "draft",
                   "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None},
                   "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": scope, "total": 0, "total_discount_amounts": [],
                   "total_excluding_tax": 0, "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": None}
        invoice["lines"] = list_object([], f"/v1/invoices/{invoice['id']}/lines")
        invoice["payments"] = list_object([], "/v1/invoice_payments")
        return invoice

    def _line(self, invoice: dict, proto: dict, invoice_item: str | None = None) -> dict:
        sub_details = {"invoice_item": invoice_item, "proration": proto["proration"],
                       "proration_details": {"credited_items": None}, "subscription": proto.get("subscription"),
                       "subscription_item": proto.get("subscription_item")}
        parent = ({"type": "invoice_item_details", "invoice_item_details": {
                      "invoice_item": invoice_item, "proration": proto["proration"],
                      "proration_details": {"credited_items": None}, "subscription": proto.get("subscription")},
                   "subscription_item_details": None}
                  if invoice_item else
                  {"type": "subscription_item_details", "invoice_item_details": None, "subscription_item_details": sub_details})
        return {"id": new_id("il_"), "object": "line_item", "amount": proto["amount"], "currency": proto["currency"],
                "description": proto["description"], "discount_amounts": [], "discountable": not proto["proration"],
                "discounts": [], "invoice": invoice["id"], "livemode": False, "metadata": {}, "parent": parent,
                "period": dict(proto["period"]), "pretax_credit_amounts": [],
                "pricing": ({"type": "price_details", "price_details": {"price": proto["price"], "product": proto["product"]},
                             "unit_amount_decimal": None if proto["unit_amount"] is None else str(proto["unit_amount"])} if proto.get("price") else None),
                "quantity": proto["quantity"], "taxes": []}

    def _add_lines(self, invoice: dict, invoice_items: list[dict]) -> None:
        for ii in invoice_items:
            proto = {"amount": ii["amount"], "currency": ii["currency"], "description": ii["description"],
                     "proration": ii["proration"], "period": ii["period"], "quantity": ii["quantity"],
                     "subscription": ((ii["parent"] or {}).get("subscription_details") or {}).get("subscription"),
                     "price": (ii["pricing"] or {}).get("price_details", {}).get("price"),
                     "product": (ii["pricing"] or {}).get("price_details", {}).get("product"),
                     "unit_amount": (ii["pricing"] or {}).get("unit_amount_decimal")}
            ii["invoice"] = invoice["id"]
            invoice["lines"]["data"].append(self._line(invoice, proto, ii["id"]))
        self._totals(invoice)

    @staticmethod
    def _totals(invoice: dict) -> None:
        total = sum(line["amount"] for line in invoice["lines"]["data"])
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        invoice.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
                       amount_due=max(0, total), amount_remaining=max(0, total) - invoice["amount_paid"],
                       ending_balance=None if invoice["status"] == "draft" else 0)

    def cycle_protos(self, sub: dict, start: int, end: int, trial: bool = False, specs: list[tuple] | None = None) -> list[dict]:
        specs = specs if specs is not None else [(i["id"], self.objects[i["price"]], i["quantity"], i["metadata"])
                                                 for i in self.sub_items(sub)]
        out = []
        for ident, price, qty, _ in specs:
            name = self._product_name(price)
            out.append(self._proto(sub, ident, price, qty, 0 if trial else self.price_amount(price, qty), (start, end),
                                   f"Trial period for {name}" if trial else f"{qty} × {name} (at ${(price['unit_amount'] or 0) / 100:.2f} / {price['recurring']['interval']})",
                                   proration=False))
        return out

    def _subscription_invoice(self, sub: dict, reason: str, period_start: int, t: int, *, trial: bool = False,
                              cycle: bool = True) -> dict:
        """A draft invoice for `sub`: its items for the current period (unless `cycle` is false)
        and its pending invoice items."""
        customer = self.objects[sub["customer"]]
        scope = sub["test_clock"]
        invoice = self._new_invoice(customer, scope, t, reason=reason, sub=sub, currency=sub["currency"],
                                    collection=sub["collection_method"])
        invoice["period_start"], invoice["period_end"] = period_start, t
        self.add(invoice, auto_attempts=0)
        if cycle:
            start, end = self.period(sub)
            for proto in self.cycle_protos(sub, start, end, trial=trial):
                invoice["lines"]["data"].append(self._line(invoice, proto))
        self._add_lines(invoice, [ii for ii in self.pending_items(customer["id"]) if self._ii_sub(ii) in (sub["id"], None)])
        sub["latest_invoice"] = invoice["id"]
        self.emit("invoice.created", invoice)
        return invoice

    @staticmethod
    def _ii_sub(ii: dict) -> str | None:
        return ((ii.get("parent") or {}).get("subscription_details") or {}).get("subscription")

    def pending_items(self, customer_id: str) -> list[dict]:
        return [ii for ii in reversed(self.all("invoiceitem")) if ii["customer"] == customer_id and not ii["invoice"]]

    def create_invoice(self, p: dict) -> dict:
        check_params(p, ("customer", "auto_advance", "collection_method", "description", "metadata", "days_until_due",
                         "due_date", "default_payment_method", "pending_invoice_items_behavior", "subscription", "currency",
                         "footer"))
        if not p.get("customer"):
            raise missing("customer")
        customer = self.get("customer", p["customer"], "customer")
        scope = customer.get("test_clock")
        t = self.now(scope)
        collection = p.get("collection_method") or "charge_automatically"
        invoice = self._new_invoice(customer, scope, t, reason="manual", sub=None, currency=(p.get("currency") or "usd").lower(),
                                    collection=collection, auto_advance=as_bool(p, "auto_advance", False),
                                    description=p.get("description") or None, meta=metadata(p))
        if collection == "send_invoice":
            days = as_int(p, "days_until_due")
            invoice["due_date"] = as_int(p, "due_date") or (t + days * DAY if days is not None else None)
            if invoice["due_date"] is None:
                raise missing("days_until_due")
        if p.get("default_payment_method"):
            invoice["default_payment_method"] = self.get("payment_method", p["default_payment_method"], "default_payment_method")["id"]
        self.add(invoice, auto_attempts=0)
        if (p.get("pending_invoice_items_behavior") or "exclude") == "include":
            self._add_lines(invoice, self.pending_items(customer["id"]))
        if invoice["auto_advance"]:
            invoice["automatically_finalizes_at"] = t + 3600
        self.emit("invoice.created", invoice)
        return invoice

    def update_invoice(self, ident: str, p: dict) -> dict:
        check_params(p, ("auto_advance", "description", "metadata", "default_payment_method", "footer", "days_until_due",
                         "due_date", "collection_method"))
        invoice = self.get("invoice", ident)
        before = self.render(invoice)
        if "auto_advance" in p:
            invoice["auto_advance"] = as_bool(p, "auto_advance", invoice["auto_advance"])
        if "description" in p:
            if invoice["status"] != "draft":
                raise state_error("You can only update the description of a draft invoice.", "description")
            invoice["description"] = p["description"] or None
        if "default_payment_method" in p:
            invoice["default_payment_method"] = (self.get("payment_method", p["default_payment_method"], "default_payment_method")["id"]
                                                 if p["default_payment_method"] else None)
        invoice["metadata"] = metadata(p, invoice["metadata"])
        self.emit_updated("invoice.updated", invoice, before)
        return invoice

    def delete_invoice(self, ident: str) -> dict:
        invoice = self.get("invoice", ident)
        if invoice["status"] != "draft":
            raise state_error("You can only delete draft invoices.")
        for line in invoice["lines"]["data"]:
            ii = (line["parent"].get("invoice_item_details") or {}).get("invoice_item")
            if ii:
                self.objects[ii]["invoice"] = None
        self.hidden[ident]["deleted"] = True
        self.emit("invoice.deleted", invoice)
        return {"id": ident, "object": "invoice", "deleted": True}

    def finalize_invoice(self, ident: str, p: dict, attempt: bool | None = None) -> dict:
        """draft -> open: numbered, hosted page and PDF; a zero invoice is paid at once. Subscription
        invoices (attempt=True) are charged now; others an hour later when auto_advance is on."""
        check_params(p, ("auto_advance",))
        invoice = self.get("invoice", ident)
        if invoice["status"] != "draft":
            raise state_error(f"This invoice is already finalized, you can't re-finalize a non-draft invoice.")
        if "auto_advance" in p:
            invoice["auto_advance"] = as_bool(p, "auto_advance", invoice["auto_advance"])
        scope = invoice["test_clock"]
        t = self.now(scope)
        customer = self.objects[invoice["customer"]]
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        token = "test_" + secrets.token_urlsafe(24)
        invoice.update(status="open", effective_at=t, automatically_finalizes_at=None,
                       hosted_invoice_url=f"{self.base_url}/i/{token}", invoice_pdf=f"{self.base_url}/i/{token}/pdf",
                       ending_balance=0)
        self.hidden[ident]["token"] = token
        invoice["status_transitions"]["finalized_at"] = t
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = t + 30 * DAY
        self.emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice, t, None)
        elif invoice["collection_method"] == "charge_automatically" and invoice["auto_advance"]:
            if attempt is None:
                invoice["next_payment_attempt"] = t + 3600
            elif attempt:
                self.attempt_payment(invoice, off_session=True, automatic=True)
        return invoice

    def _payment_method_for(self, invoice: dict, override: str | None = None) -> str | None:
        if override:
            return override
        sub = self.objects.get(self._sub_of(invoice) or "")
        customer = self.objects[invoice["customer"]]
        for candidate in (invoice["default_payment_method"], sub and sub["default_payment_method"],
                          customer["invoice_settings"]["default_payment_method"]):
            if candidate and self.objects.get(candidate, {}).get("customer") == customer["id"]:
                return candidate
        return None

    def _payment_intent(self, invoice: dict) -> dict:
        pi_id = self.hidden[invoice["id"]].get("payment_intent")
        if pi_id:
            pi = self.objects[pi_id]
            pi["amount"] = invoice["amount_remaining"]
            return pi
        scope = invoice["test_clock"]
        pi = self._base("pi_", "payment_intent", scope, amount=invoice["amount_remaining"], amount_capturable=0,
                        amount_received=0, application=None, automatic_payment_methods=None, canceled_at=None,
                        cancellation_reason=None, capture_method="automatic", confirmation_method="automatic",
                        currency=invoice["currency"], customer=invoice["customer"],
                        description="Subscription " + ("creation" if invoice["billing_reason"] == "subscription_create" else "update"),
                        last_payment_error=None, latest_charge=None, metadata={}, next_action=None, payment_method=None,
                        payment_method_types=["card"], status="requires_payment_method", setup_future_usage=None)
        pi["client_secret"] = pi["id"] + "_secret_" + secrets.token_urlsafe(18)
        self.add(pi)
        self.hidden[invoice["id"]]["payment_intent"] = pi["id"]
        invoice["payments"]["data"].append({"id": new_id("inpay_"), "object": "invoice_payment", "amount_paid": None,
                                            "amount_requested": invoice["amount_remaining"], "created": self.now(scope),
                                            "currency": invoice["currency"], "invoice": invoice["id"], "is_default": True,
                                            "livemode": False,
                                            "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
                                            "status": "open", "status_transitions": {"canceled_at": None, "paid_at": None}})
        invoice["payments"]["total_count"] = len(invoice["payments"]["data"])
        return pi

    def attempt_payment(self, invoice: dict, *, off_session: bool, automatic: bool = False,
                        payment_method: str | None = None) -> tuple | None:
        """Charge an open invoice: None when paid, else (code, message, decline_code)."""
        scope = invoice["test_clock"]
        t = self.now(scope)
        pm_id = self._payment_method_for(invoice, payment_method)
        pi = self._payment_intent(invoice)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if automatic:
            self.hidden[invoice["id"]]["auto_attempts"] = self.hidden[invoice["id"]].get("auto_attempts", 0) + 1
        if pm_id is None:
            failure: tuple | None = ("payment_intent_payment_attempt_failed",
                                     "The customer has no default payment method.", None)
        else:
            failure = self.charge_outcome(self.objects[pm_id], off_session)
        pi["payment_method"] = pm_id
        if failure is None:
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None, next_action=None,
                      latest_charge=new_id("ch_"))
            self.emit("payment_intent.succeeded", pi, scope=scope)
            self._mark_paid(invoice, t, pm_id)
            return None
        code, message, decline_code = failure
        auth = code == "authentication_required"
        pi.update(status="requires_action" if auth else "requires_payment_method",
                  next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}} if auth else None,
                  last_payment_error={"code": code, "decline_code": decline_code, "message": message, "type": "card_error",
                                      "payment_method": self.render(self.objects[pm_id]) if pm_id else None})
        self.emit("payment_intent.payment_failed" if not auth else "payment_intent.requires_action", pi, scope=scope)
        customer = self.objects[invoice["customer"]]
        customer["delinquent"] = True
        sub = self.objects.get(self._sub_of(invoice) or "")
        before_sub = self.render(sub) if sub else None
        if automatic:
            if invoice["billing_reason"] == "subscription_create" or sub is None:
                invoice["next_payment_attempt"] = None
            else:
                n = self.hidden[invoice["id"]]["auto_attempts"]
                invoice["next_payment_attempt"] = t + self.retry_days[n - 1] * DAY if n <= len(self.retry_days) else None
        self.emit("invoice.payment_failed", invoice)
        if auth:
            self.emit("invoice.payment_action_required", invoice)
        if sub and automatic and sub["status"] in ("active", "trialing", "past_due") and invoice["billing_reason"] != "subscription_create":
            sub["status"] = "past_due"
            if invoice["next_payment_attempt"] is None:
                if self.dunning_final == "canceled":
                    self._end_subscription(sub, t, "payment_failed")
                    return failure
                sub["status"] = self.dunning_final
            self.emit_updated("customer.subscription.updated", sub, before_sub)
        return failure

    def _mark_paid(self, invoice: dict, t: int, pm_id: str | None) -> None:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None,
                       automatically_finalizes_at=None)
        invoice["status_transitions"]["paid_at"] = t
        for payment in invoice["payments"]["data"]:
            payment.update(status="paid", amount_paid=payment["amount_requested"])
            payment["status_transitions"]["paid_at"] = t
        invoice["attempted"] = True
        customer = self.objects[invoice["customer"]]
        customer["delinquent"] = any(i["status"] == "open" and i["attempt_count"] for i in self.all("invoice")
                                     if i["customer"] == customer["id"] and i["id"] != invoice["id"])
        self.emit("invoice.paid", invoice)
        self.emit("invoice.payment_succeeded", invoice)
        sub = self.objects.get(self._sub_of(invoice) or "")
        if sub and sub["status"] in ("incomplete", "past_due", "unpaid"):
            others = [i for i in self.all("invoice") if self._sub_of(i) == sub["id"] and i["status"] == "open" and i["attempt_count"]]
            if not others:
                before = self.render(sub)
                sub["status"] = "active"
                self.emit_updated("customer.subscription.updated", sub, before)

    def pay_invoice(self, ident: str, p: dict) -> dict:
        check_params(p, ("payment_method", "paid_out_of_band", "off_session", "forgive", "source", "mandate"))
        invoice = self.get("invoice", ident)
        if invoice["status"] == "draft":
            self.finalize_invoice(ident, {}, attempt=False)
        if invoice["status"] == "paid":
            raise state_error("Invoice is already paid")
        if invoice["status"] == "void":
            raise state_error("This invoice has been voided and can no longer be paid.")
        if as_bool(p, "paid_out_of_band", False):
            self._mark_paid(invoice, self.now(invoice["test_clock"]), None)
            return invoice
        pm_id = None
        if p.get("payment_method"):
            pm = self.payment_method(p["payment_method"])
            if not pm["customer"]:
                self.attach_payment_method(pm["id"], invoice["customer"])
            pm_id = pm["id"]
        failure = self.attempt_payment(invoice, off_session=as_bool(p, "off_session", False), payment_method=pm_id)
        if failure:
            code, message, decline_code = failure
            if code == "payment_intent_payment_attempt_failed":
                raise StripeError(400, "This customer has no attached payment source or default payment method. Please "
                                  "consider adding a default payment method.", param="payment_method")
            raise StripeError(402, message, type="card_error", code=code, decline_code=decline_code,
                              payment_intent=self.render(self.objects[self.hidden[ident]["payment_intent"]]))
        return invoice

    def void_invoice(self, ident: str) -> dict:
        invoice = self.get("invoice", ident)
        if invoice["status"] not in ("open", "uncollectible"):
            raise state_error("You can only pass in open or uncollectible invoices.")
        invoice.update(status="void", next_payment_attempt=None, amount_remaining=0)
        invoice["status_transitions"]["voided_at"] = self.now(invoice["test_clock"])
        self.emit("invoice.voided", invoice)
        return invoice

    def mark_uncollectible(self, ident: str) -> dict:
        invoice = self.get("invoice", ident)
        if invoice["status"] != "open":
            raise state_error("You can only mark open invoices as uncollectible.")
        invoice.update(status="uncollectible", next_payment_attempt=None)
        invoice["status_transitions"]["marked_uncollectible_at"] = self.now(invoice["test_clock"])
        self.emit("invoice.marked_uncollectible", invoice)
        return invoice

    # ---- previews --------------------------------------------------------------------------------------
    def preview_invoice(self, p: dict) -> dict:
        """`POST /v1/invoices/create_preview`: the next invoice of a subscription, or what changing
        it (`subscription_details[items]`, proration date and behaviour, cancel at period end) would bill."""
        check_params(p, ("customer", "subscription", "subscription_details", "preview_mode", "currency", "automatic_tax",
                         "invoice_items", "on_behalf_of", "schedule", "customer_details", "issuer", "discounts"))
        details = p.get("subscription_details") if isinstance(p.get("subscription_details"), dict) else {}
        sub = self.get("subscription", p["subscription"], "subscription") if p.get("subscription") else None
        if sub is None and p.get("customer"):
            customer = self.get("customer", p["customer"], "customer")
            live = [s for s in self.all("subscription") if s["customer"] == customer["id"] and s["status"] in LIVE]
            sub = live[0] if live and not details.get("items") else None
        if sub is None and not p.get("customer"):
            raise missing("customer")
        customer = self.objects[sub["customer"]] if sub else self.get("customer", p["customer"], "customer")
        scope = customer.get("test_clock")
        t = self.now(scope)
        if sub is None:
            changes = details.get("items") or []
            if not changes:
                raise StripeError(404, "No upcoming invoices for customer: " + customer["id"], code="invoice_upcoming_none")
            specs = [(None, self._recurring_price(c.get("price"), f"subscription_details[items][{n}][price]"),
                      as_int(c, "quantity", 1), {}) for n, c in enumerate(changes)]
            r = specs[0][1]["recurring"]
            fake = {"id": None, "metadata": {}}
            invoice = self._new_invoice(customer, scope, t, reason="subscription_create", sub=None, currency=specs[0][1]["currency"],
                                        preview=True)
            for proto in self.cycle_protos(fake, t, add_interval(t, r["interval"], r["interval_count"], 1), specs=specs):
                invoice["lines"]["data"].append(self._line(invoice, proto))
            self._totals(invoice)
            return invoice
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(404, "No upcoming invoices for customer: " + customer["id"], code="invoice_upcoming_none")
        start, end = self.period(sub)
        behavior = details.get("proration_behavior") or "create_prorations"
        when = as_int(details, "proration_date", t)
        cancel = as_bool(details, "cancel_at_period_end", sub["cancel_at_period_end"])
        lines, specs, reset = ([], [(i["id"], self.objects[i["price"]], i["quantity"], i["metadata"]) for i in self.sub_items(sub)], False)
        if details.get("items"):
            lines, specs, reset = self.plan_changes(sub, details["items"], when)
        if behavior == "none" and not reset:
            lines = []
        h = self.hidden[sub["id"]]
        invoice = self._new_invoice(customer, scope, end, reason="subscription_cycle", sub=sub, currency=sub["currency"], preview=True)
        pending = [ii for ii in self.pending_items(customer["id"]) if self._ii_sub(ii) in (sub["id"], None)]
        if reset or behavior == "always_invoice":
            invoice.update(created=t, billing_reason="subscription_update", period_start=t, period_end=t)
        if reset:
            interval = (specs[0][1]["recurring"]["interval"], specs[0][1]["recurring"]["interval_count"])
            next_start, next_end = t, add_interval(t, interval[0], interval[1], 1)
        else:
            interval = h["interval"]
            next_start, next_end = end, add_interval(h["anchor"], interval[0], interval[1], h["k"] + 2)
        self._add_preview_lines(invoice, pending)
        for proto in lines:
            invoice["lines"]["data"].append(self._line(invoice, proto))
        if reset or (behavior != "always_invoice" and not cancel):
            for proto in self.cycle_protos(sub, next_start, next_end, specs=specs):
                invoice["lines"]["data"].append(self._line(invoice, proto))
        if not invoice["lines"]["data"]:  # canceling at period end with nothing pending
            raise StripeError(404, "No upcoming invoices for customer: " + customer["id"], code="invoice_upcoming_none")
        if not reset and behavior != "always_invoice":
            invoice.update(period_start=start, period_end=end, created=end)
        invoice["next_payment_attempt"] = invoice["created"] if sub["collection_method"] == "charge_automatically" else None
        self._totals(invoice)
        return invoice

    def _add_preview_lines(self, invoice: dict, items: list[dict]) -> None:
        for ii in items:
            proto = {"amount": ii["amount"], "currency": ii["currency"], "description": ii["description"],
                     "proration": ii["proration"], "period": ii["period"], "quantity": ii["quantity"],
                     "subscription": self._ii_sub(ii), "price": (ii["pricing"] or {}).get("price_details", {}).get("price"),
                     "product": (ii["pricing"] or {}).get("price_details", {}).get("product"),
                     "unit_amount": (ii["pricing"] or {}).get("unit_amount_decimal")}
            invoice["lines"]["data"].append(self._line(invoice, proto, ii["id"]))

    # ---- time passing ---------------------------------------------------------------------------------
    def _due(self, scope: str | None, until: int) -> tuple[int, int, Callable[[], None]] | None:
        """The earliest thing due in `scope` at or before `until`: (time, priority, action)."""
        best: tuple[int, int, Callable[[], None]] | None = None

        def consider(when: int | None, priority: int, action: Callable[[], None]) -> None:
            nonlocal best
            if when is not None and when <= until and (best is None or (when, priority) < best[:2]):
                best = (when, priority, action)

        for sub in self.all("subscription"):
            if sub["test_clock"] != scope or sub["status"] in ("canceled", "incomplete_expired"):
                continue
            h = self.hidden[sub["id"]]
            start, end = self.period(sub)
            if sub["status"] == "incomplete":
                consider(sub["created"] + 23 * 3600, 0, lambda s=sub: self._expire(s))
                continue
            if sub["status"] == "trialing" and not h["trial_will_end_sent"] and sub["trial_end"] - 3 * DAY > sub["created"]:
                consider(sub["trial_end"] - 3 * DAY, 3, lambda s=sub: self._trial_will_end(s))
            if h["upcoming_for"] != end and not sub["cancel_at"] and sub["status"] != "unpaid":
                when = end - self.upcoming_days * DAY
                if when > start:
                    consider(when, 4, lambda s=sub, e=end: self._upcoming(s, e))
            if sub["cancel_at"] and sub["cancel_at"] <= end:
                consider(sub["cancel_at"], 1, lambda s=sub: self._end_subscription(s, s["cancel_at"], "cancellation_requested"))
            else:
                consider(end, 2, lambda s=sub: self.renew(s, self.period(s)[1]))
        for inv in self.all("invoice"):
            if inv["test_clock"] != scope:
                continue
            if inv["status"] == "draft" and inv["auto_advance"] and inv["automatically_finalizes_at"]:
                consider(inv["automatically_finalizes_at"], 5, lambda i=inv: self.finalize_invoice(i["id"], {}, attempt=True))
            elif inv["status"] == "open" and inv["auto_advance"] and inv["next_payment_attempt"]:
                consider(inv["next_payment_attempt"], 6,
                         lambda i=inv: self.attempt_payment(i, off_session=True, automatic=True))
        return best

    def run_due(self, scope: str | None, until: int) -> int:
        """Perform everything due in `scope` up to `until`, in time order; how many actions ran."""
        done = 0
        request, self.request = self.request, {"id": None, "idempotency_key": None}  # automatic: no request caused it
        try:
            while done < 10000:
                due = self._due(scope, until)
                if due is None:
                    break
                self._time_override[scope] = due[0]
                due[2]()
                done += 1
        finally:
            self._time_override.pop(scope, None)
            self.request = request
        return done

    def _expire(self, sub: dict) -> None:
        self._end_subscription(sub, self.now(sub["test_clock"]), "payment_failed", expired=True)

    def _trial_will_end(self, sub: dict) -> None:
        self.hidden[sub["id"]]["trial_will_end_sent"] = True
        self.emit("customer.subscription.trial_will_end", sub)

    def _upcoming(self, sub: dict, end: int) -> None:
        self.hidden[sub["id"]]["upcoming_for"] = end
        try:
            preview = self.preview_invoice({"subscription": sub["id"]})
        except StripeError:  # nothing to bill next
            return
        event = self._base("evt_", "event", sub["test_clock"], api_version="2026-10-28.endive", context=None,
                           data={"object": preview}, pending_webhooks=0, request={"id": None, "idempotency_key": None},
                           type="invoice.upcoming")
        self.add(event)
        self.on_event(event)

    def renew(self, sub: dict, t: int) -> None:
        """A period ends: the next one starts and is invoiced (a trial's end makes it active)."""
        h = self.hidden[sub["id"]]
        before = self.render(sub)
        interval, count = h["interval"]
        h["k"] += 1
        start, end = add_interval(h["anchor"], interval, count, h["k"]), add_interval(h["anchor"], interval, count, h["k"] + 1)
        for item in self.sub_items(sub):
            item["current_period_start"], item["current_period_end"] = start, end
        if sub["status"] == "trialing":
            sub["status"] = "active"
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = end
        previous_period_start = before["items"]["data"][0]["current_period_start"]
        reason = "subscription_cycle"
        self.emit_updated("customer.subscription.updated", sub, before)
        invoice = self._subscription_invoice(sub, reason, previous_period_start, t)
        if sub["status"] == "unpaid":
            invoice["auto_advance"] = False
        else:
            invoice["automatically_finalizes_at"] = t + 3600

    # ---- test clocks -------------------------------------------------------------------------------------
    def create_test_clock(self, p: dict) -> dict:
        check_params(p, ("frozen_time", "name"))
        frozen = as_int(p, "frozen_time")
        if frozen is None:
            raise missing("frozen_time")
        clock = self._base("clock_", "test_helpers.test_clock", deletes_after=int(self.clock.time()) + 30 * DAY,
                           frozen_time=frozen, name=p.get("name") or None, status="ready",
                           status_details={})
        self.add(clock)
        self.emit("test_helpers.test_clock.created", clock, scope=None)
        return clock

    def advance_test_clock(self, ident: str, p: dict) -> dict:
        """Moves the clock to `frozen_time`, doing what falls due on the way. Stripe does this
        asynchronously (status `advancing`, then `ready`); here it is done before answering, and
        the answer says `advancing` as Stripe's would; a retrieve then says `ready`."""
        check_params(p, ("frozen_time",))
        clock = self.get("test_helpers.test_clock", ident)
        target = as_int(p, "frozen_time")
        if target is None:
            raise missing("frozen_time")
        if target <= clock["frozen_time"]:
            raise invalid("frozen_time", "The test clock can only be advanced to a time after its current frozen_time.",
                          "parameter_invalid_integer")
        limit = self._advance_limit(ident, clock["frozen_time"])
        if limit is not None and target > limit:
            raise invalid("frozen_time", "Cannot advance the test clock more than two intervals of the shortest subscription "
                          f"interval on it at a time: advance to {limit} or earlier first.", "parameter_invalid_integer")
        clock["status"] = "advancing"
        self.emit("test_helpers.test_clock.advancing", clock, scope=None)
        answer = self.render(clock)
        answer["frozen_time"] = target
        self.run_due(ident, target)
        clock["frozen_time"] = target
        clock["status"] = "ready"
        self.emit("test_helpers.test_clock.ready", clock, scope=None)
        return answer

    def _advance_limit(self, ident: str, frozen: int) -> int | None:
        """Stripe lets a clock move at most two intervals of its shortest live subscription at once."""
        limits = [add_interval(frozen, *self.hidden[s["id"]]["interval"], 2) for s in self.all("subscription")
                  if s["test_clock"] == ident and s["status"] not in ("canceled", "incomplete_expired")]
        return min(limits) if limits else None

    def delete_test_clock(self, ident: str) -> dict:
        clock = self.get("test_helpers.test_clock", ident)
        for customer in self.all("customer"):
            if customer.get("test_clock") == ident:
                self.delete_customer(customer["id"])
        self.hidden[ident]["deleted"] = True
        self.emit("test_helpers.test_clock.deleted", clock, scope=None)
        return {"id": ident, "object": "test_helpers.test_clock", "deleted": True}

    # ---- setup intents --------------------------------------------------------------------------------------
    def create_setup_intent(self, p: dict) -> dict:
        """A SetupIntent saves a card for later (off-session) charges. Confirming it with a card:
        succeeded (the card attached, set up for off-session use), requires_action for cards that
        demand authentication on setup (3155, 3184: there is no 3-D Secure page to pass), or
        requires_payment_method with `last_setup_error` for a declining card."""
        check_params(p, ("customer", "payment_method", "usage", "confirm", "payment_method_types", "metadata", "description",
                         "automatic_payment_methods", "return_url", "single_use", "mandate_data", "on_behalf_of"))
        customer = self.get("customer", p["customer"], "customer") if p.get("customer") else None
        scope = customer.get("test_clock") if customer else None
        si = self._base("seti_", "setup_intent", scope, application=None, automatic_payment_methods=None, cancellation_reason=None,
                        customer=customer["id"] if customer else None, description=p.get("description") or None,
                        flow_directions=None, last_setup_error=None, latest_attempt=None, mandate=None, metadata=metadata(p),
                        next_action=None, on_behalf_of=None, payment_method=None, payment_method_types=["card"],
                        single_use_mandate=None, status="requires_payment_method", usage=p.get("usage") or "off_session")
        si["client_secret"] = si["id"] + "_secret_" + secrets.token_urlsafe(18)
        self.add(si)
        self.emit("setup_intent.created", si)
        if p.get("payment_method"):
            si["payment_method"] = self.payment_method(p["payment_method"])["id"]
            si["status"] = "requires_confirmation"
        if as_bool(p, "confirm", False):
            return self.confirm_setup_intent(si["id"], {})
        return si

    def confirm_setup_intent(self, ident: str, p: dict) -> dict:
        check_params(p, ("payment_method", "return_url", "mandate_data", "use_stripe_sdk"))
        si = self.get("setup_intent", ident)
        if si["status"] in ("succeeded", "canceled"):
            raise StripeError(400, f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
                              code="setup_intent_unexpected_state")
        if p.get("payment_method"):
            si["payment_method"] = self.payment_method(p["payment_method"])["id"]
        if not si["payment_method"]:
            raise StripeError(400, "You cannot confirm this SetupIntent because it's missing a payment method.",
                              code="setup_intent_unexpected_state", param="payment_method")
        pm = self.objects[si["payment_method"]]
        behaviour = self.hidden[pm["id"]]["behaviour"]
        failure = cards.decline(behaviour) if behaviour != "charge_fail" else None
        if failure:
            code, message, decline_code = failure
            si.update(status="requires_payment_method", last_setup_error={
                "code": code, "decline_code": decline_code, "message": message, "type": "card_error",
                "payment_method": self.render(pm)})
            self.emit("setup_intent.setup_failed", si)
            return si
        if behaviour in ("auth_on_setup", "auth_always"):
            si.update(status="requires_action", next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})
            self.emit("setup_intent.requires_action", si)
            return si
        if si["customer"]:
            self.attach_payment_method(pm["id"], si["customer"], setup=True)
        else:
            self.hidden[pm["id"]]["setup"] = True
        si.update(status="succeeded", last_setup_error=None, next_action=None)
        self.emit("setup_intent.succeeded", si)
        return si

    def cancel_setup_intent(self, ident: str, p: dict) -> dict:
        check_params(p, ("cancellation_reason",))
        si = self.get("setup_intent", ident)
        if si["status"] in ("succeeded", "canceled"):
            raise StripeError(400, f"You cannot cancel this SetupIntent because it has a status of {si['status']}.",
                              code="setup_intent_unexpected_state")
        si.update(status="canceled", cancellation_reason=p.get("cancellation_reason") or None)
        self.emit("setup_intent.canceled", si)
        return si
