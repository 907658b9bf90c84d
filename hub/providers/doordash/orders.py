"""A DoorDash Marketplace order as the hub's POS order, and DoorDash's own codes for the hub's
reasons (the order job's refusals, the kitchen's cancellations). Money comes as integer
minor units (cents)."""

from __future__ import annotations

from typing import Any

from hub.orders.pos_mapping import PosDraft

# why the hub refuses an order (hub/orders/pos_mapping.py) -> DoorDash's failure reason
REFUSAL_CODES = {"closed": "STORE_CLOSED", "unknown_item": "ITEM_OUT_OF_STOCK"}
# told when the kitchen marks an order ready (order_ready_for_pickup) or cancels it (cancellation)
PUSHED = ("ready", "cancelled")
# why the kitchen cancels (hub/orders/kitchen.py) -> DoorDash's cancel_reason
CANCEL_REASONS = {"out_of_items": "ITEM_OUT_OF_STOCK", "kitchen_closed": "STORE_CLOSED", "too_busy": "KITCHEN_BUSY",
                  "other": "OTHER"}


def to_pos_draft(order: dict[str, Any]) -> PosDraft:
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
