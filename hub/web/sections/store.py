"""A marketplace's store tab (specs listing "store"; capability "delivery"): the webhook URL
to give the marketplace (HUB_PUBLIC_URL + the integration's inbound endpoint; an admin
creates the endpoint when there is none), and the store's open/closed status read live from
the marketplace through its client, which admins change (hub/orders/storefront.py)."""

from __future__ import annotations

from functools import partial

import sqlalchemy as sa
from starlette.routing import Route

from hub import integrations as store
from hub.inbound.provider_endpoints import create_inbound
from hub.orders.storefront import read_store, set_store, webhook_url
from hub.schema import webhook_endpoint
from hub.web.sections import Section
from hub.web.sections.common import HOME, back, form_text
from hub.web.sections.live import keyring
from hub.web.sections.live_calls import page_client, say


def load(conn, context, row, spec, query) -> dict:
    config = store.get_integration(conn, keyring(), row.id).config
    url, missing = webhook_url(conn, row.id, row.provider, config)
    header = conn.scalar(sa.select(webhook_endpoint.c.payload_options["header_name"].astext).where(
        webhook_endpoint.c.integration_id == row.id, webhook_endpoint.c.direction == "inbound"))
    state, problem = None, None
    try:
        with page_client(conn.engine, row.id) as client:
            state = read_store(client)
    except Exception as exc:  # noqa: BLE001 - the page says why the marketplace could not be read
        problem = say(exc)
    return {"url": url, "missing": missing, "header": header, "state": state, "problem": problem,
            "accepting": config.get("accepting_orders") is not False,
            "secret_label": next((f.label for f in spec.credentials if spec.inbound and f.name == spec.inbound.secret_field), None)
            if spec else None}


def change(pages, is_open: bool, request, context, row, form):
    try:
        with page_client(pages.engine, row.id) as client:
            set_store(pages.engine, keyring(), row.id, client, is_open, form_text(form, "reason", 200))
        pages.flash(request, "The store is open for orders again." if is_open else "The store is closed to new orders.")
    except Exception as exc:  # noqa: BLE001 - refused: nothing changed in the hub either
        pages.flash(request, f"Not changed: {say(exc)}", "bad")
    return back(row.id, "store")


def make_webhook(pages, request, context, row, form):
    try:
        with pages.engine.begin() as conn:
            create_inbound(conn, keyring(), row.id)
        pages.flash(request, "Webhook address created: give it to the marketplace.")
    except Exception as exc:  # noqa: BLE001
        pages.flash(request, f"No webhook address: {say(exc)}", "bad")
    return back(row.id, "store")


def routes(pages) -> list:
    base = HOME + "/{integration_id:int}/store"
    return [Route(f"{base}/open", pages.integration_action(partial(change, pages, True)), methods=["POST"]),
            Route(f"{base}/close", pages.integration_action(partial(change, pages, False)), methods=["POST"]),
            Route(f"{base}/webhook", pages.integration_action(partial(make_webhook, pages)), methods=["POST"])]


SECTION = Section(key="store", label="Store", template="sections/store.html", load=load, routes=routes)
