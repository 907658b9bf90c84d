"""The menu SKUs of a marketplace integration, side by side: the POS menu the hub matches
orders against (the config's `menu_skus`; none set: any item with a SKU is taken) and the
SKUs the marketplace actually sends, read from its recent orders through its own mapping
(its spec's `delivery.to_pos_draft`), so a SKU that makes the hub refuse orders stands out.

The marketplace's side comes from the orders, not from a menu API: DoorDash's Marketplace API
has no item-level menu read (the partner pushes the menu), so the orders are what both
marketplaces have in common, and what they carried is exactly what the POS must know.
An admin adds a SKU the marketplace sends to the POS menu list, or takes one off
(`change_pos_menu`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers.spec import ProviderSpec
from hub.schema import external_order, integration

RECENT_ORDERS = 200


@dataclass(frozen=True)
class SkuSeen:
    sku: str | None  # None: an item the marketplace sent without a merchant SKU
    names: tuple[str, ...]
    orders: int  # how many of the recent orders carried it
    last_seen: datetime
    on_pos_menu: bool


@dataclass(frozen=True)
class MenuView:
    pos_menu: tuple[str, ...] | None  # None: no list, any SKU is taken
    seen: list[SkuSeen]
    orders_read: int


def _order_of(raw: Any) -> dict[str, Any] | None:
    """The marketplace's order inside a stored payload: the webhook's `order` (DoorDash sends
    it whole) or the one the order job read (kept as `order` beside the webhook)."""
    order = raw.get("order") if isinstance(raw, dict) else None
    return order if isinstance(order, dict) else None


def menu_view(conn: Connection, company_id: int, integration_id: int, spec: ProviderSpec,
              config: dict[str, Any], recent: int = RECENT_ORDERS) -> MenuView:
    listed = config.get("menu_skus")
    pos_menu = tuple(str(s) for s in listed) if isinstance(listed, list) else None
    rows = conn.execute(
        sa.select(external_order.c.raw_data, external_order.c.created_at)
        .where(external_order.c.integration_id == integration_id,
               external_order.c.integration_id.in_(sa.select(integration.c.id).where(integration.c.company_id == company_id)))
        .order_by(external_order.c.created_at.desc(), external_order.c.id.desc()).limit(recent)).all()
    found: dict[str | None, dict[str, Any]] = {}
    for raw, at in rows:
        order = _order_of(raw)
        if order is None or spec.delivery is None:
            continue
        try:
            items = spec.delivery.to_pos_draft(order).items
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a payload the mapping cannot read is the order job's to report
        for sku in {i.get("sku") or None for i in items}:
            entry = found.setdefault(sku, {"names": set(), "orders": 0, "last": at})
            entry["orders"] += 1
            entry["last"] = max(entry["last"], at)
        for item in items:
            found[item.get("sku") or None]["names"].add(str(item.get("name") or "?"))
    seen = [SkuSeen(sku, tuple(sorted(e["names"])), e["orders"], e["last"],
                    sku is not None and (pos_menu is None or sku in pos_menu))
            for sku, e in found.items()]
    seen.sort(key=lambda s: (s.on_pos_menu, s.sku or ""))  # what the POS does not know first
    return MenuView(pos_menu, seen, len(rows))


SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/ -]{0,63}$")


def change_pos_menu(conn: Connection, keyring: Keyring, integration_id: int, sku: str, add: bool) -> tuple[str, ...]:
    """Add a SKU to the POS menu list or take one off; the new list. Only a list that exists
    is changed: with none set every SKU is taken already, and starting one here would refuse
    every other item at once."""
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        raise ValidationError("A SKU is 1-64 letters, digits and . _ : / - or spaces, starting with a letter or digit.")
    item = store.get_integration(conn, keyring, integration_id)
    listed = item.config.get("menu_skus")
    if not isinstance(listed, list):
        raise ValidationError("No POS menu list is set: every SKU is taken already.")
    skus = [str(s) for s in listed]
    if add and sku not in skus:
        skus.append(sku)
    elif not add:
        if sku not in skus:
            raise ValidationError(f"{sku} is not on the POS menu.")
        skus.remove(sku)
    store.update_config(conn, keyring, integration_id, {"menu_skus": skus})
    return tuple(skus)
