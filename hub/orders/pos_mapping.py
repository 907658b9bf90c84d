"""A POS order drafted from a marketplace order, and whether the restaurant can take it.

Each marketplace maps its own order to a `PosDraft` (hub/providers/<name>/orders.py, reached
through its spec's `delivery.to_pos_draft`); money stays in integer minor units (cents). An order is
refused when the store is closed (`accepting_orders: false` in the integration config) or
when an item cannot be matched to the POS menu: it has no merchant SKU, or the config's
`menu_skus` list does not contain it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


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


def qualified_number(number: str, external_id: str) -> str:
    """The POS number of an order whose marketplace number the company already has: the
    same number (what the courier and the eater see, first) and the start of the
    marketplace's own order id, which differs where the short number does not (Uber Eats'
    display id is the id's last 5 characters)."""
    return f"{number}-{external_id[:8].upper()}"


@dataclass
class Refusal:
    code: str  # the provider's reason code
    explanation: str
    items: list[str] = field(default_factory=list)


# why the hub refuses an order; each marketplace has its own code for each (its spec's
# `delivery.refusal_codes`, hub/providers/<name>/orders.py)
REFUSALS = ("closed", "unknown_item")


def decide(codes: Mapping[str, str], config: dict[str, Any], draft: PosDraft) -> Refusal | None:
    """None to accept, or why not, in the provider's `codes` (REFUSALS -> its code)."""
    if config.get("accepting_orders") is False:
        return Refusal(codes["closed"], "The store is not taking orders right now")
    menu = config.get("menu_skus")
    unknown = [i["name"] or "?" for i in draft.items if not i["sku"] or (menu is not None and i["sku"] not in menu)]
    if unknown:
        return Refusal(codes["unknown_item"], f"Not on the POS menu: {', '.join(unknown)}", unknown)
    return None
