"""An Uber Eats order as the hub's POS order, and Uber Eats' own codes for the hub's reasons
(the order job's refusals, the kitchen's cancellations). Money comes as integer minor units
(cents), in `{"amount": ...}` objects or bare."""

from __future__ import annotations

from typing import Any

from hub.orders.pos_mapping import PosDraft

# why the hub refuses an order (hub/orders/pos_mapping.py) -> Uber Eats' deny reason
REFUSAL_CODES = {"closed": "STORE_CLOSED", "unknown_item": "MISSING_ITEM"}
# Uber Eats' Order API has no ready signal (Uber's courier app handles it): only a cancel is pushed
PUSHED = ("cancelled",)
# why the kitchen cancels (hub/orders/kitchen.py) -> Uber Eats' POS cancel reason
CANCEL_REASONS = {"out_of_items": "OUT_OF_ITEMS", "kitchen_closed": "KITCHEN_CLOSED", "too_busy": "RESTAURANT_TOO_BUSY",
                  "other": "OTHER"}


def _amount(money: Any) -> int:
    return int((money or {}).get("amount") or 0) if isinstance(money, dict) else int(money or 0)


def to_pos_draft(order: dict[str, Any]) -> PosDraft:
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
