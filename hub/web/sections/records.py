"""Procore's records tab: RFIs, submittals and daily logs, each pull stream switched on or
off (the sync preferences of hub/sync/preferences.py, as `hub sync set --stream` sets them)
with its last sync from sync_log and the records it holds. The streams are the spec's, so
the tab shows whatever pull streams the provider declares."""

from __future__ import annotations

from functools import partial

from starlette.routing import Route

from hub import integrations as store
from hub.providers import registry
from hub.sync import preferences
from hub.sync.stream_status import stream_statuses
from hub.web.sections import Section
from hub.web.sections.clock import company_clock
from hub.web.sections.common import HOME, back, form_text
from hub.web.sections.live import keyring
from hub.web.sections.live_calls import say

LABELS = {"rfis": "RFIs", "submittals": "Submittals", "daily_logs": "Daily logs"}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def load(conn, context, row, spec, query) -> dict:
    config = store.get_integration(conn, keyring(), row.id).config
    return {"streams": stream_statuses(conn, row.id, spec, config) if spec else [], "label": label,
            "at": company_clock(context.company.timezone)}


def toggle(pages, request, context, row, form):
    name, wanted = form_text(form, "stream", 64), form_text(form, "enabled", 8)
    spec = registry.providers().get(row.provider)
    spec_streams = {s.name for s in spec.streams} if spec else set()
    if name not in spec_streams or wanted not in ("on", "off"):
        pages.flash(request, "Choose one of the listed streams and on or off.", "bad")
        return back(row.id, "records")
    try:
        with pages.engine.begin() as conn:
            preferences.update(conn, keyring(), row.id, stream=name, enabled=wanted == "on")
        pages.flash(request, f"{label(name)} sync turned {wanted}.")
    except Exception as exc:  # noqa: BLE001
        pages.flash(request, f"Not changed: {say(exc)}", "bad")
    return back(row.id, "records")


def routes(pages) -> list:
    return [Route(HOME + "/{integration_id:int}/records/toggle", pages.integration_action(partial(toggle, pages)),
                  methods=["POST"])]


SECTION = Section(key="records", label="RFIs, submittals, logs", template="sections/records.html", load=load, routes=routes)
