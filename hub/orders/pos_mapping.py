"""From a marketplace order to a POS order, and whether the restaurant can take it.

Money stays in integer minor units (cents) as both marketplaces send it. An order is
refused when the store is closed (`accepting_orders: false` in the integration config) or
when an item cannot be matched to the POS menu: it has no merchant SKU, or the config's
`menu_skus` list does not contain it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PosDraft:
    order_number: str
    items: list[dict[str, Any]]
    customer: dict[str, Any]
    subtotal_cents: int = 0
    tax_cents: int = 0
    tip_cents: int = 0
    fees_cents: int = 0
    total_cents: int = 0
    currency: str = "USD"


@dataclass
class Refusal:
    code: str  # the provider's reason code
    explanation: str
    items: list[str] = field(default_factory=list)


def _amount(money: Any) -> int:
    return int((money or {}).get("amount") or 0) if isinstance(money, dict) else int(money or 0)


def from_ubereats(order: dict[str, Any]) -> PosDraft:
    charges = (order.get("payment") or {}).get("charges") or {}
    items = []
    for item in (order.get("cart") or {}).get("items", []):
        price = item.get("price") or {}
        modifiers = [
            {"name": sel.get("title"), "quantity": sel.get("quantity", 1), "price_cents": _amount((sel.get("price") or {}).get("total_price"))}
            for group in item.get("selected_modifier_groups") or [] for sel in group.get("selected_items") or []
        ]
        items.append({
            "name": item.get("title"), "sku": item.get("external_data") or None, "quantity": item.get("quantity", 1),
            "unit_price_cents": _amount(price.get("unit_price")), "total_cents": _amount(price.get("total_price")),
            "modifiers": modifiers, "notes": item.get("special_instructions") or "",
        })
    eater = order.get("eater") or {}
    total = charges.get("total") or {}
    return PosDraft(
        order_number=f"UE-{order.get('display_id') or str(order.get('id', ''))[-5:]}",
        items=items,
        customer={"name": " ".join(filter(None, [eater.get("first_name"), eater.get("last_name")])), "phone": eater.get("phone")},
        subtotal_cents=_amount(charges.get("sub_total")),
        tax_cents=_amount(charges.get("tax")),
        fees_cents=_amount(charges.get("total_fee")),
        total_cents=_amount(total),
        currency=(total.get("currency_code") if isinstance(total, dict) else None) or "USD",
    )


def from_doordash(order: dict[str, Any]) -> PosDraft:
    items = []
    for category in order.get("categories") or []:
        for item in category.get("items") or []:
            modifiers = [
                {"name": option.get("name"), "quantity": option.get("quantity", 1), "price_cents": int(option.get("price") or 0)}
                for extra in item.get("extras") or [] for option in extra.get("options") or []
            ]
            items.append({
                "name": item.get("name"), "sku": item.get("merchant_supplied_id") or None, "quantity": item.get("quantity", 1),
                "unit_price_cents": int(item.get("price") or 0), "total_cents": int(item.get("price") or 0) * int(item.get("quantity") or 1),
                "modifiers": modifiers, "notes": item.get("special_instructions") or "",
            })
    consumer = order.get("consumer") or {}
    subtotal, tax = int(order.get("subtotal") or 0), int(order.get("tax") or 0)
    tip, fee = int(order.get("tip_amount") or 0), int(order.get("delivery_fee") or 0)
    return PosDraft(
        order_number=f"DD-{str(order.get('id', ''))[-8:]}",
        items=items,
        customer={"name": " ".join(filter(None, [consumer.get("first_name"), consumer.get("last_name")])), "phone": consumer.get("phone")},
        subtotal_cents=subtotal, tax_cents=tax, tip_cents=tip, fees_cents=fee, total_cents=subtotal + tax + tip + fee,
    )


MAPPERS = {"ubereats": from_ubereats, "doordash": from_doordash}

# the provider's code for each reason the hub refuses an order
REFUSAL_CODES = {
    "ubereats": {"closed": "STORE_CLOSED", "unknown_item": "MISSING_ITEM"},
    "doordash": {"closed": "STORE_CLOSED", "unknown_item": "ITEM_OUT_OF_STOCK"},
}


def decide(provider: str, config: dict[str, Any], draft: PosDraft) -> Refusal | None:
    """None to accept, or why not."""
    codes = REFUSAL_CODES[provider]
    if config.get("accepting_orders") is False:
        return Refusal(codes["closed"], "The store is not taking orders right now")
    menu = config.get("menu_skus")
    unknown = [i["name"] or "?" for i in draft.items if not i["sku"] or (menu is not None and i["sku"] not in menu)]
    if unknown:
        return Refusal(codes["unknown_item"], f"Not on the POS menu: {', '.join(unknown)}", unknown)
    return None
