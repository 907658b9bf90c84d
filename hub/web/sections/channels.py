"""Slack's channel mapping and notification routing: which events go to which channel.

The routing table is the notifier's own (hub/notify/routes.py: a route is an outbound
webhook endpoint with a `slack://` address), so a route added here is delivered by the
dispatcher like any other, and `hub notify list` shows it. The channels offered are the
workspace's, read live (conversations.list through the integration's client), and adding a
route goes through `add_route`, which asks Slack again that the channel exists, is not
archived and has the bot in it: a route that cannot work is refused with the reason and
nothing is stored. "Send test message" posts the sample test event to one channel now
(hub/notify/test_message.py) and shows the outcome.

Shown for the providers whose spec lists "channels" in `pages`; the route kind comes from
the spec's name through the notifier's own table (`routes.kind_of`)."""

from __future__ import annotations

from starlette.routing import Route

from hub.errors import NotFoundError
from hub.notify import routes as notify_routes
from hub.notify.test_message import post_test
from hub.outbound.outbox import EVENT_TYPES
from hub.web.sections import Section
from hub.web.sections.common import back, number, text
from hub.web.sections.live import ask, keyring

KEY = "channels"


def _channels(client) -> list[dict]:
    return sorted(client.channels(include_private=True, exclude_archived=True), key=lambda c: str(c.get("name") or ""))


def load(conn, context, row, spec, query) -> dict:
    mine = [r for r in notify_routes.list_routes(conn, context.company_id) if r.integration_id == row.id]
    live = ask(conn.engine, row.id, _channels)
    return {"routes": mine, "channels": live.value or [], "channels_error": live.error,
            # every route gets webhook.test anyway (`hub notify test` reaches it): not a choice
            "event_types": [(key, meaning) for key, meaning in EVENT_TYPES.items() if key != notify_routes.TEST_EVENT]}


def routes(pages) -> list:
    base = "/settings/integrations/{integration_id:int}/" + KEY

    def add(request, context, row, form):
        events = [e for e in form.getlist("event") if isinstance(e, str)]
        channel = text(form, "channel", 200)
        kind = notify_routes.kind_of(row.provider)
        if kind is None:
            pages.flash(request, "This integration does not send notifications.", "bad")
        elif not events or any(e not in EVENT_TYPES for e in events):
            pages.flash(request, "Choose at least one event type.", "bad")
        elif not channel:
            pages.flash(request, "Choose a channel.", "bad")
        else:
            # add_route asks Slack about the channel through this client (one attempt) before it stores anything
            live = ask(pages.engine, row.id, lambda client: notify_routes.add_route(
                pages.engine, keyring(), company_id=context.company_id, kind=kind, events=events, to=channel,
                integration_id=row.id, client=client))
            if live.value is None:  # refused by the checks or the provider: nothing stored
                pages.flash(request, f"Route not added: {live.error}", "bad")
            else:
                route, _warnings = live.value
                pages.flash(request, f"Route added: {', '.join(events)} → {route.destination}.")
        return back(row.id, KEY)

    def remove(request, context, row, form):
        route_id = number(form, "route_id")
        with pages.engine.begin() as conn:
            try:
                route = notify_routes.company_route(conn, context.company_id, row.id, route_id)
            except NotFoundError:
                pages.flash(request, "That route no longer exists.", "bad")
                return back(row.id, KEY)
            notify_routes.remove_route(conn, route.id)
        pages.flash(request, f"Route removed: {route.name}.")
        return back(row.id, KEY)

    def test(request, context, row, form):
        channel = text(form, "channel", 200)
        if not channel:
            pages.flash(request, "Choose a channel for the test message.", "bad")
            return back(row.id, KEY)
        result = post_test(pages.engine, keyring(), row.id, context.company_id, channel)
        pages.flash(request, f"Test message {result.text}." if result.ok else f"Test message failed: {result.text}",
                    "ok" if result.ok else "bad")
        return back(row.id, KEY)

    return [
        Route(base + "/route", pages.integration_action(add), methods=["POST"]),
        Route(base + "/remove", pages.integration_action(remove), methods=["POST"]),
        Route(base + "/test", pages.integration_action(test), methods=["POST"]),
    ]


SECTION = Section(key=KEY, label="Channels and routing", template="sections/channels.html", load=load, routes=routes)
