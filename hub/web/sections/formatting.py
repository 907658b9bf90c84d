"""How a messaging integration's notifications look: every event type rendered from a
sample (hub/notify/samples.py) by the notifier's own renderer (render.preview, the
functions the sender calls), with the default formatting or one route's template; an
admin edits a route's template, previews the draft (a GET: nothing is stored) and saves
it (validated as `hub notify add-route` validates it).

Slack messages are shown as Block Kit drawn in HTML (hub/web/blockkit.py: escaped text,
a fixed set of tags) and as the JSON that is posted; an SMS as its text and segment count.
Shown for the providers whose spec lists "formatting" in `pages` (Slack, Twilio); the
route kind, and with it the renderer and the template's fields, comes from the spec's name
through the notifier's table (`routes.kind_of`), never from a provider name here."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.routing import Route

from hub.errors import HubError, NotFoundError, ValidationError
from hub.notify import render
from hub.notify import routes as notify_routes
from hub.notify.samples import sample_context
from hub.outbound.outbox import EVENT_TYPES
from hub.web.blockkit import blocks_html, pretty_json
from hub.web.sections import Section
from hub.web.sections.common import back, number, text
from hub.web.sections.live import problem

KEY = "formatting"
MAX_FIELD = 3000
PLACEHOLDERS = ("event.summary", "event.description", "event.type", "event.id", "event.timestamp", "status",
                "previous_status", "number", "project.name", "assignee.name")


def _template(kind: str, values: dict[str, str]) -> dict[str, str]:
    """The template fields a person edits (render.TEMPLATE_FIELDS), blank ones left out:
    a blank field means the default for it."""
    return {name: values[name] for name in render.TEMPLATE_FIELDS[kind] if values.get(name, "").strip()}


def _previews(kind: str, template: dict[str, Any], company_id: int) -> list[dict[str, Any]]:
    shown = []
    for event_type, meaning in EVENT_TYPES.items():
        message = render.preview(kind, template, sample_context(event_type, company_id))
        shown.append({"type": event_type, "meaning": meaning, "text": message.text, "segments": message.segments, "routed": True,
                      "html": blocks_html(message.blocks) if message.blocks is not None else None,
                      "json": pretty_json({"text": message.text, "blocks": message.blocks}) if message.blocks is not None
                      else (pretty_json(message.data) if message.data is not None else None)})
    return shown


def load(conn, context, row, spec, query) -> dict:
    kind = notify_routes.kind_of(row.provider)
    if kind is None or kind not in render.TEMPLATE_FIELDS:
        return {"kind": None}
    mine = [r for r in notify_routes.list_routes(conn, context.company_id) if r.integration_id == row.id]
    editable = [r for r in mine if r.kind != "email"]
    chosen = None
    if query.get("route", "").isdigit():
        chosen = next((r for r in editable if r.id == int(query["route"])), None)
    template: dict[str, Any] = dict(chosen.template) if chosen else {}
    fields = list(render.TEMPLATE_FIELDS[kind])
    draft_error = None
    form_values = {f: str(template.get(f, "")) for f in fields}  # what the edit form shows
    if chosen is not None and query.get("draft") == "1":  # previewing an edit: nothing is stored
        form_values = {f: query.get(f, "")[:MAX_FIELD] for f in fields}
        draft = _template(kind, form_values)
        try:
            template = render.check_template(kind, {**{k: v for k, v in template.items() if k not in fields}, **draft})
        except ValidationError as exc:
            draft_error = str(exc)
    previews = _previews(kind, template, context.company_id)
    if chosen is not None:  # which of the previews this route really sends
        for shown in previews:
            shown["routed"] = "*" in chosen.events or shown["type"] in chosen.events
    return {"kind": kind, "routes": editable, "chosen": chosen, "fields": fields, "template": template, "form": form_values,
            "draft": query.get("draft") == "1", "draft_error": draft_error, "placeholders": PLACEHOLDERS,
            "previews": previews}


def routes(pages) -> list:
    def save(request, context, row, form):
        route_id = number(form, "route_id")
        kind = notify_routes.kind_of(row.provider)
        if kind is None or kind not in render.TEMPLATE_FIELDS:
            pages.flash(request, "This integration has no message templates.", "bad")
            return back(row.id, KEY)
        values = {f: text(form, f, MAX_FIELD) for f in render.TEMPLATE_FIELDS[kind]}
        draft = _template(kind, values)
        if form.get("do") == "preview":  # shown by the GET, nothing stored
            return back(row.id, KEY, "?" + urlencode({"route": route_id, "draft": 1, **values}))
        with pages.engine.begin() as conn:
            try:
                route = notify_routes.company_route(conn, context.company_id, row.id, route_id)
                kept = {k: v for k, v in route.template.items() if k not in render.TEMPLATE_FIELDS[kind]}  # Slack blocks
                route = notify_routes.set_template(conn, context.company_id, row.id, route_id, {**kept, **draft})
            except NotFoundError:
                pages.flash(request, "That route no longer exists.", "bad")
                return back(row.id, KEY)
            except HubError as exc:
                pages.flash(request, f"Template not saved: {problem(exc)}", "bad")
                return back(row.id, KEY, f"?route={route_id}")
        pages.flash(request, f"Template of {route.name} saved." if draft else f"{route.name} uses the default formatting again.")
        return back(row.id, KEY, f"?route={route_id}")

    return [Route("/settings/integrations/{integration_id:int}/" + KEY + "/template", pages.integration_action(save),
                  methods=["POST"])]


SECTION = Section(key=KEY, label="Message formatting", template="sections/formatting.html", load=load, routes=routes)
