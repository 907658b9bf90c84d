"""Invoices, invoice items, payment attempts (PaymentIntents) and previews."""

from __future__ import annotations

import secrets

from emulators.stripe.store import DAY, LIVE, add_interval
from emulators.stripe.wire import (StripeError, as_bool, as_int, check_params, list_object, metadata, missing, new_id,
                                   state_error)


class Invoices:
    """Invoices, invoice items, charging and previews (a mixin of Billing)."""

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
                if not self.hidden[sub["id"]].get("creating"):
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
