"""A marketplace's menu tab (specs listing "menu"): the POS menu the hub matches orders
against and the SKUs the marketplace sends (hub/orders/menu_skus.py), so an item the POS
does not know, which makes the hub refuse its orders, stands out; admins add a SKU to the POS
menu list or take one off."""

from __future__ import annotations

from functools import partial

from starlette.routing import Route

from hub import integrations as store
from hub.orders.menu_skus import change_pos_menu, menu_view
from hub.web.sections import Section
from hub.web.sections.clock import company_clock
from hub.web.sections.common import HOME, back, form_text
from hub.web.sections.live import keyring
from hub.web.sections.live_calls import say


def load(conn, context, row, spec, query) -> dict:
    config = store.get_integration(conn, keyring(), row.id).config
    return {"menu": menu_view(conn, context.company_id, row.id, spec, config), "at": company_clock(context.company.timezone)}


def change(pages, add: bool, request, context, row, form):
    sku = form_text(form, "sku", 100)
    try:
        with pages.engine.begin() as conn:
            change_pos_menu(conn, keyring(), row.id, sku, add)
        pages.flash(request, f"{sku} {'added to' if add else 'taken off'} the POS menu.")
    except Exception as exc:  # noqa: BLE001 - refused: the list stays as it was
        pages.flash(request, f"Not changed: {say(exc)}", "bad")
    return back(row.id, "menu")


def routes(pages) -> list:
    base = HOME + "/{integration_id:int}/menu"
    return [Route(f"{base}/add", pages.integration_action(partial(change, pages, True)), methods=["POST"]),
            Route(f"{base}/remove", pages.integration_action(partial(change, pages, False)), methods=["POST"])]


SECTION = Section(key="menu", label="Menu SKUs", template="sections/menu.html", load=load, routes=routes)
