"""Customers, payment methods (the test cards) and setup intents."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from emulators.stripe import cards
from emulators.stripe.wire import (StripeError, as_bool, as_int, as_list, check_params, invalid, metadata, missing,
                                   no_such, state_error)


class Customers:
    """Customers, their payment methods and setup intents (a mixin of Billing)."""

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
