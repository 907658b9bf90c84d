"""SendGrid dynamic templates: the list the hub keeps (provider_template, what an email
route may name), when each was synced and which routes use it, and the "Sync templates"
button, which pulls the list from SendGrid through hub/providers/sendgrid/templates.py
(`hub notify templates sync` does the same): new ones added, changed ones updated, deleted
ones removed. A sync that fails changes nothing (it writes in one transaction after the
whole list was read).

Shown for the providers whose spec lists "templates" in `pages`."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.routing import Route

from hub.notify import routes as notify_routes
from hub.providers.sendgrid import templates as tpl
from hub.web import times
from hub.web.sections import Section
from hub.web.sections.common import back
from hub.web.sections.live import ask, keyring

KEY = "templates"


def load(conn, context, row, spec, query) -> dict:
    now, tz = datetime.now(timezone.utc), context.company.timezone
    used: dict[str, list[str]] = {}
    for route in notify_routes.list_routes(conn, context.company_id):
        if route.integration_id == row.id and route.template.get("template_id"):
            used.setdefault(route.template["template_id"], []).append(route.name)
    shown = [{"id": t.template_id, "name": t.name, "subject": t.subject, "generation": t.generation,
              "used_by": used.get(t.template_id, []),
              "synced": {"relative": times.relative(t.synced_at, now), "exact": times.exact(t.synced_at, tz),
                         "iso": times.iso(t.synced_at)}}
             for t in tpl.list_templates(conn, row.id)]
    missing = sorted(set(used) - {t["id"] for t in shown})
    return {"templates": shown, "missing": missing}


def routes(pages) -> list:
    def sync(request, context, row, form):
        live = ask(pages.engine, row.id, lambda client: tpl.sync(pages.engine, keyring(), row.id, client))
        result = live.value
        if result is None:  # the provider refused or failed, or no client: the list is unchanged
            pages.flash(request, f"Templates not synced: {live.error}", "bad")
        else:
            pages.flash(request, f"{result.total} dynamic template(s) at SendGrid: {result.added} new, {result.updated} changed, "
                                 f"{result.removed} removed.")
        return back(row.id, KEY)

    return [Route("/settings/integrations/{integration_id:int}/" + KEY + "/sync", pages.integration_action(sync),
                  methods=["POST"])]


SECTION = Section(key=KEY, label="Templates", template="sections/templates.html", load=load, routes=routes)
