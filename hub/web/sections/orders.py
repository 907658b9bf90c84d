"""A marketplace's orders tab (specs listing "orders"): its recent orders, newest first and
paged (`?page=`), each linking to its status timeline (`?order=<id>`), read by
hub/orders/order_log.py scoped to the company. Read only: the kitchen and the order job move
orders, not this page."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from hub.orders.order_log import order_timeline, page_number, recent_orders
from hub.web.sections import Section
from hub.web.sections.clock import company_clock


def load(conn, context, row, spec, query) -> dict:
    if "order" in query:
        text = str(query["order"])
        order_id = int(text) if text.isdigit() and len(text) < 19 else 0
        timeline = order_timeline(conn, context.company_id, row.id, order_id) if order_id else None
        if timeline is None:
            raise HTTPException(404, "This integration has no such order.")
        return {"timeline": timeline, "page": None, "at": company_clock(context.company.timezone)}
    return {"timeline": None, "page": recent_orders(conn, context.company_id, row.id, page_number(query.get("page", 1))),
            "at": company_clock(context.company.timezone)}


SECTION = Section(key="orders", label="Orders", template="sections/orders.html", load=load)
