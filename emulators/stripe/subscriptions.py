"""Subscriptions and their items: create (trials, payment behaviours), update (quantity, price
swap with proration, cancel at period end, resume), cancel."""

from __future__ import annotations

from emulators.stripe.store import DAY, add_interval, date_label
from emulators.stripe.wire import (StripeError, as_bool, as_int, as_list, check_params, invalid, list_object,
                                   metadata, missing, no_such, state_error)


class Subscriptions:
    """Subscriptions and items (a mixin of Billing)."""

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
            self.finalize_invoice(invoice["id"], {}, attempt=True)
            self.emit("customer.subscription.created", sub)
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
        # charged before `customer.subscription.created`, which shows the settled status (active when the
        # first charge succeeded), as Stripe's does for a synchronous payment
        self.hidden[sub["id"]]["creating"] = True
        try:
            self.finalize_invoice(invoice["id"], {}, attempt=behavior != "default_incomplete")
        finally:
            del self.hidden[sub["id"]]["creating"]
        self.emit("customer.subscription.created", sub)
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
                                             f"Unused time on {old_qty} × {self._product_name(old_price)} after {date_label(when)}"))
                if new is not None and not reset:
                    amount = round(self.price_amount(new[1], new[2]) * share)
                    if amount:
                        lines.append(self._proto(sub, ident, new[1], new[2], amount, (when, end),
                                                 f"Remaining time on {new[2]} × {self._product_name(new[1])} after {date_label(when)}"))
            if not reset:
                for spec in new_specs:
                    amount = round(self.price_amount(spec[1], spec[2]) * share)
                    if amount:
                        lines.append(self._proto(sub, None, spec[1], spec[2], amount, (when, end),
                                                 f"Remaining time on {spec[2]} × {self._product_name(spec[1])} after {date_label(when)}"))
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
