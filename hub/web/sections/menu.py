"""A marketplace's menu tab (specs listing "menu"): the POS menu the hub matches orders
against and the SKUs the marketplace sends (hub/orders/menu_skus.py), so an item the POS
does not know, which makes the hub refuse its orders, stands out. Read only."""

from __future__ import annotations

from hub import integrations as store
from hub.orders.menu_skus import menu_view
from hub.web.sections import Section
from hub.web.sections.clock import company_clock
from hub.web.sections.live_calls import keyring


def load(conn, context, row, spec, query) -> dict:
    config = store.get_integration(conn, keyring(), row.id).config
    return {"menu": menu_view(conn, context.company_id, row.id, spec, config), "at": company_clock(context.company.timezone)}


SECTION = Section(key="menu", label="Menu SKUs", template="sections/menu.html", load=load)
