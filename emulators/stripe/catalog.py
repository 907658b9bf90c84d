"""Products and prices (recurring, lookup keys, tiers)."""

from __future__ import annotations

from emulators.stripe.store import INTERVALS, CURRENCIES
from emulators.stripe.wire import (StripeError, as_bool, as_int, as_list, check_params, invalid, metadata, missing,
                                   new_id, state_error)


class Catalog:
    """Products and prices (a mixin of Billing)."""

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
