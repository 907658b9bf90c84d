"""Checkout Sessions (subscription mode) and Billing Portal configurations and sessions: the API
objects, and what a buyer does on their hosted pages (emulators/stripe/hosted.py renders them).

Checkout: `url` opens the hosted page; paying there (a test card number) creates the customer
(unless the session named one), attaches the card (set up for off-session use, so a 3155 card
renews without authentication) as the subscription's default payment method, creates the
subscription (trial from `subscription_data`), completes the session, fires
`checkout.session.completed` and redirects to `success_url` with `{CHECKOUT_SESSION_ID}`
replaced. A card that would be declined leaves the session open and nothing created.
Sessions expire 24 hours after creation (`expires_at`), or by `.../expire`.

Portal: without a `configuration` the default one is used (made on first use: card update,
invoice history, cancel at period end, switching among every active recurring price;
proration `none`, Stripe's default). Updating the card there sets it as the customer's and their
subscriptions' default payment method and retries the customer's open invoices that already
failed, so a past_due subscription becomes active when the new card pays (our choice: Stripe
retries on its schedule or when the hosted invoice page is used).
"""

from __future__ import annotations

import secrets
from typing import Any

from emulators.stripe import cards
from emulators.stripe.billing import DAY, Billing
from emulators.stripe.wire import StripeError, as_bool, as_int, as_list, check_params, metadata, missing, new_id, state_error

CHECKOUT_PARAMS = ("mode", "line_items", "customer", "customer_email", "success_url", "cancel_url", "client_reference_id",
                   "metadata", "subscription_data", "allow_promotion_codes", "billing_address_collection",
                   "payment_method_types", "customer_update", "expires_at", "ui_mode", "locale", "payment_method_collection",
                   "consent_collection", "automatic_tax", "tax_id_collection", "custom_text", "customer_creation",
                   "submit_type", "discounts", "phone_number_collection", "saved_payment_method_options")
PORTAL_CONFIG_PARAMS = ("business_profile", "default_return_url", "features", "metadata", "login_page", "name", "active")


class Sessions:
    def __init__(self, billing: Billing):
        self.b = billing
        self.tokens: dict[str, str] = {}  # portal URL token -> portal session id

    # ---- checkout --------------------------------------------------------------------------------------
    def create_checkout(self, p: dict) -> dict:
        check_params(p, CHECKOUT_PARAMS)
        b = self.b
        mode = p.get("mode")
        if not mode:
            raise missing("mode")
        if mode != "subscription":
            raise state_error("Only mode=subscription is emulated.", "mode")
        if not p.get("success_url"):
            raise missing("success_url")
        items = as_list(p, "line_items")
        if not items:
            raise state_error("You must provide at least one recurring price in `subscription` mode when using prices.",
                              "line_items")
        if p.get("customer") and p.get("customer_email"):
            raise state_error("You may only specify one of these parameters: customer, customer_email.", "customer_email")
        customer = b.get("customer", p["customer"], "customer") if p.get("customer") else None
        prices = []
        for n, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("price"):
                raise missing(f"line_items[{n}][price]")
            prices.append((b._recurring_price(item["price"], f"line_items[{n}][price]"), as_int(item, "quantity", 1, minimum=1)))
        b._same_interval([pr for pr, _ in prices])
        data = p.get("subscription_data") if isinstance(p.get("subscription_data"), dict) else {}
        scope = customer.get("test_clock") if customer else None
        t = b.now(scope)
        total = sum(b.price_amount(pr, q) for pr, q in prices)
        session = b._base("cs_test_", "checkout.session", scope, after_expiration=None,
                          allow_promotion_codes=as_bool(p, "allow_promotion_codes", None), amount_subtotal=total,
                          amount_total=total, billing_address_collection=p.get("billing_address_collection") or None,
                          cancel_url=p.get("cancel_url") or None, client_reference_id=p.get("client_reference_id") or None,
                          currency=prices[0][0]["currency"], customer=customer["id"] if customer else None,
                          customer_creation=None if customer else "always", customer_details=None,
                          customer_email=p.get("customer_email") or None, expires_at=as_int(p, "expires_at", t + DAY),
                          invoice=None, locale=p.get("locale") or None, metadata=metadata(p), mode=mode,
                          payment_intent=None, payment_method_collection=p.get("payment_method_collection") or "always",
                          payment_method_types=["card"], payment_status="unpaid", setup_intent=None, status="open",
                          submit_type=None, subscription=None, success_url=p["success_url"],
                          total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, ui_mode="hosted",
                          url=None)
        session["id"] = new_id("cs_test_", 58)
        session["url"] = f"{b.base_url}/c/pay/{session['id']}"
        b.add(session, prices=[(pr["id"], q) for pr, q in prices], trial_days=as_int(data, "trial_period_days"),
              trial_end=as_int(data, "trial_end"), sub_metadata=metadata(data), sub_description=data.get("description"))
        return session

    def checkout(self, ident: str) -> dict:
        session = self.b.get("checkout.session", ident)
        if session["status"] == "open" and self.b.now(self.b.scope_of(session)) >= session["expires_at"]:
            self.b.expire_checkout_session(session)  # a test clock's session between advances
        return session

    def line_items(self, ident: str) -> list[dict]:
        session = self.b.get("checkout.session", ident)
        out = []
        for price_id, qty in self.b.hidden[ident]["prices"]:
            price = self.b.objects[price_id]
            amount = self.b.price_amount(price, qty)
            out.append({"id": new_id("li_"), "object": "item", "amount_discount": 0, "amount_subtotal": amount,
                        "amount_tax": 0, "amount_total": amount, "currency": price["currency"],
                        "description": self.b._product_name(price), "price": self.b.render(price), "quantity": qty})
        return out

    def expire_checkout(self, ident: str) -> dict:
        session = self.b.get("checkout.session", ident)
        if session["status"] != "open":
            raise state_error(f"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has "
                              f"a status of \"{session['status']}\".")
        self.b.expire_checkout_session(session)
        return session

    def complete_checkout(self, ident: str, card: dict[str, Any]) -> str:
        """The buyer pays on the hosted page: the URL to send the browser to. Raises StripeError
        (a card error, a missing field) with the session left open."""
        b = self.b
        session = self.checkout(ident)
        if session["status"] != "open":
            raise state_error("This Checkout Session is no longer active.")
        h = b.hidden[ident]
        email = (card.get("email") or session["customer_email"] or "").strip()
        if not session["customer"] and not email:
            raise missing("email")
        number = (card.get("number") or "").replace(" ", "")
        if not number:
            raise missing("card number")
        exp_month, exp_year = _expiry(card.get("expiry") or "")
        pm = b._new_card(number, exp_month, exp_year, {"name": card.get("name") or None, "email": email or None}, setup=True)
        trial = bool(h["trial_days"] or h["trial_end"])
        behaviour = b.hidden[pm["id"]]["behaviour"]
        # a declining card is refused when it is checked; one that only fails charges (0341) is refused
        # when the first invoice charges it, and accepted when a trial defers that charge
        failure = cards.decline(behaviour) if behaviour != "charge_fail" or not trial else None
        if failure:
            b.hidden[pm["id"]]["deleted"] = True
            code, message, decline_code = failure
            raise StripeError(402, message, type="card_error", code=code, decline_code=decline_code)
        customer = (b.objects[session["customer"]] if session["customer"] else
                    b.create_customer({"email": email, "name": card.get("name") or ""}))
        b.attach_payment_method(pm["id"], customer["id"], setup=True)
        params: dict[str, Any] = {"customer": customer["id"], "items": [{"price": pid, "quantity": str(q)} for pid, q in h["prices"]],
                                  "default_payment_method": pm["id"], "metadata": h["sub_metadata"]}
        if h["trial_end"]:
            params["trial_end"] = str(h["trial_end"])
        elif h["trial_days"]:
            params["trial_period_days"] = str(h["trial_days"])
        if h["sub_description"]:
            params["description"] = h["sub_description"]
        sub = b.create_subscription(params)
        invoice = b.objects[sub["latest_invoice"]]
        session.update(status="complete", customer=customer["id"], subscription=sub["id"], invoice=invoice["id"],
                       payment_status="paid" if invoice["amount_due"] else "no_payment_required", url=None,
                       customer_details={"address": None, "email": customer["email"], "name": customer["name"], "phone": None,
                                         "tax_exempt": "none", "tax_ids": []})
        b.emit("checkout.session.completed", session)
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])

    # ---- billing portal -----------------------------------------------------------------------------------
    def create_portal_configuration(self, p: dict, default: bool = False) -> dict:
        check_params(p, PORTAL_CONFIG_PARAMS)
        b = self.b
        f = p.get("features") if isinstance(p.get("features"), dict) else {}

        def feature(name: str) -> dict:
            return f.get(name) if isinstance(f.get(name), dict) else {}

        update, cancel = feature("subscription_update"), feature("subscription_cancel")
        products = [{"adjustable_quantity": None, "prices": as_list(prod, "prices"), "product": prod.get("product")}
                    for prod in as_list(update, "products") if isinstance(prod, dict)]
        for prod in products:
            b.get("product", prod["product"], "features[subscription_update][products][][product]")
            for price_id in prod["prices"]:
                b.get("price", price_id, "features[subscription_update][products][][prices]")
        profile = p.get("business_profile") if isinstance(p.get("business_profile"), dict) else {}
        t = b.now()
        config = b._base("bpc_", "billing_portal.configuration", active=True, application=None,
                         business_profile={"headline": profile.get("headline") or None,
                                           "privacy_policy_url": profile.get("privacy_policy_url") or None,
                                           "terms_of_service_url": profile.get("terms_of_service_url") or None},
                         default_return_url=p.get("default_return_url") or None,
                         features={"customer_update": {"allowed_updates": as_list(feature("customer_update"), "allowed_updates"),
                                                       "enabled": as_bool(feature("customer_update"), "enabled", False)},
                                   "invoice_history": {"enabled": as_bool(feature("invoice_history"), "enabled", default)},
                                   "payment_method_update": {"enabled": as_bool(feature("payment_method_update"), "enabled", default)},
                                   "subscription_cancel": {"cancellation_reason": {"enabled": False, "options": []},
                                                           "enabled": as_bool(cancel, "enabled", default),
                                                           "mode": cancel.get("mode") or "at_period_end",
                                                           "proration_behavior": cancel.get("proration_behavior") or "none"},
                                   "subscription_update": {"billing_cycle_anchor": None,
                                                           "default_allowed_updates": as_list(update, "default_allowed_updates")
                                                           or (["price"] if default else []),
                                                           "enabled": as_bool(update, "enabled", default), "products": products,
                                                           "proration_behavior": update.get("proration_behavior") or "none"}},
                         is_default=default, login_page={"enabled": False, "url": None}, metadata=metadata(p),
                         name=p.get("name") or None, updated=t)
        return b.add(config)

    def default_configuration(self) -> dict:
        for config in self.b.all("billing_portal.configuration"):
            if config["is_default"]:
                return config
        return self.create_portal_configuration({}, default=True)

    def update_portal_configuration(self, ident: str, p: dict) -> dict:
        check_params(p, PORTAL_CONFIG_PARAMS)
        config = self.b.get("billing_portal.configuration", ident)
        if "active" in p:
            config["active"] = as_bool(p, "active", True)
        if "default_return_url" in p:
            config["default_return_url"] = p["default_return_url"] or None
        if isinstance(p.get("features"), dict):
            fresh = self.create_portal_configuration({"features": p["features"]})
            self.b.hidden[fresh["id"]]["deleted"] = True
            for name, value in p["features"].items():
                if name in config["features"]:
                    config["features"][name] = fresh["features"][name]
        config["metadata"] = metadata(p, config["metadata"])
        config["updated"] = self.b.now()
        return config

    def create_portal_session(self, p: dict) -> dict:
        check_params(p, ("customer", "return_url", "configuration", "locale", "on_behalf_of", "flow_data"))
        b = self.b
        if not p.get("customer"):
            raise missing("customer")
        customer = b.get("customer", p["customer"], "customer")
        config = (b.get("billing_portal.configuration", p["configuration"], "configuration") if p.get("configuration")
                  else self.default_configuration())
        return_url = p.get("return_url") or config["default_return_url"]
        if not return_url:
            raise missing("return_url")
        token = secrets.token_urlsafe(24)
        session = b._base("bps_", "billing_portal.session", customer.get("test_clock"), configuration=config["id"],
                          customer=customer["id"], flow=None, locale=p.get("locale") or None, on_behalf_of=None,
                          return_url=return_url, url=f"{b.base_url}/p/session/{token}")
        b.add(session, token=token)
        self.tokens[token] = session["id"]
        return session

    def portal(self, token: str) -> dict | None:
        ident = self.tokens.get(token)
        return self.b.objects.get(ident) if ident else None

    def portal_prices(self, config: dict) -> list[dict]:
        """The prices a customer may switch to in the portal."""
        update = config["features"]["subscription_update"]
        if not update["enabled"]:
            return []
        if update["products"]:
            ids = [pid for prod in update["products"] for pid in prod["prices"]]
            return [self.b.objects[i] for i in ids if self.b.objects[i]["active"]]
        return [p for p in reversed(self.b.all("price")) if p["active"] and p["recurring"]
                and self.b.objects[p["product"]]["active"]]

    def card_from_form(self, card: dict[str, Any]) -> dict:
        """A PaymentMethod from a hosted page's card form (`number`, `expiry`, `name`)."""
        number = (card.get("number") or "").replace(" ", "")
        if not number:
            raise missing("number")
        exp_month, exp_year = _expiry(card.get("expiry") or "")
        return self.b._new_card(number, exp_month, exp_year, {"name": card.get("name") or None}, setup=True)

    def portal_update_card(self, session: dict, card: dict[str, Any]) -> None:
        b = self.b
        pm = self.card_from_form(card)
        b.attach_payment_method(pm["id"], session["customer"], setup=True)
        customer = b.objects[session["customer"]]
        b.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": pm["id"]}})
        for sub in b.all("subscription"):
            if sub["customer"] == customer["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
                b.update_subscription(sub["id"], {"default_payment_method": pm["id"]})
        for invoice in reversed(b.all("invoice")):
            if invoice["customer"] == customer["id"] and invoice["status"] == "open" and invoice["attempt_count"]:
                b.attempt_payment(invoice, off_session=False, payment_method=pm["id"])

    def portal_cancel(self, session: dict, sub_id: str) -> None:
        sub = self._own(session, sub_id)
        config = self.b.objects[session["configuration"]]
        cancel = config["features"]["subscription_cancel"]
        if not cancel["enabled"]:
            raise state_error("Cancelling is not enabled in this portal.")
        if cancel["mode"] == "immediately":
            self.b.cancel_subscription(sub["id"], {})
        else:
            self.b.update_subscription(sub["id"], {"cancel_at_period_end": "true"})

    def portal_renew(self, session: dict, sub_id: str) -> None:
        self.b.update_subscription(self._own(session, sub_id)["id"], {"cancel_at_period_end": "false"})

    def portal_switch(self, session: dict, sub_id: str, price_id: str) -> None:
        sub = self._own(session, sub_id)
        config = self.b.objects[session["configuration"]]
        if price_id not in {p["id"] for p in self.portal_prices(config)}:
            raise state_error("That plan is not offered in this portal.", "price")
        item = self.b.sub_items(sub)[0]
        self.b.update_subscription(sub["id"], {"items": [{"id": item["id"], "price": price_id}],
                                               "proration_behavior": config["features"]["subscription_update"]["proration_behavior"]})

    def _own(self, session: dict, sub_id: str) -> dict:
        sub = self.b.get("subscription", sub_id, "subscription")
        if sub["customer"] != session["customer"]:
            raise state_error("No such subscription for this customer.", "subscription")
        return sub


def _expiry(text: str) -> tuple[int, int]:
    """`MM / YY`, `MM/YYYY` or `MMYY` -> (month, year); missing -> a StripeError."""
    digits = "".join(c if c.isdigit() else " " for c in text).split()
    if len(digits) == 1 and len(digits[0]) in (4, 6):
        digits = [digits[0][:2], digits[0][2:]]
    if len(digits) != 2:
        raise StripeError(402, "Your card's expiration date is incomplete.", type="card_error", code="invalid_expiry_year",
                          param="exp_year")
    month, year = int(digits[0]), int(digits[1])
    return month, year + 2000 if year < 100 else year
