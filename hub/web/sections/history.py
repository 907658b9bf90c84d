"""Sync history tab: the integration's sync_log, newest first, a page at a time (keyset
paging: hub/web/sync_history.py), filtered by stream and status, each row with its records
created / updated / failed, its first errors (redacted), its duration and the link to its
Dagster run; above it, records and failures per day over 30 days, drawn by uPlot
(static/sync-chart.js reads the numbers from the chart's data-chart attribute: the CSP allows
no inline script) and given as a table too, for screen readers and without JavaScript."""

from __future__ import annotations

from urllib.parse import urlencode

from hub.providers import registry
from hub.sync import sync_now
from hub.web import sync_history
from hub.web.sections import Section

KEY = "history"


def stream_choices(provider: str) -> list[tuple[str, str]]:
    """(sync_log.entity_type, label) of the provider's streams, for the stream filter."""
    seen: dict[str, str] = {}
    for stream in registry.streams():
        if stream.provider == provider:
            seen.setdefault(stream.entity_type, stream.name)
    return sorted(seen.items(), key=lambda item: item[1])


def load(conn, context, row, spec, query) -> dict:
    streams = stream_choices(row.provider)
    entity = query.get("stream") or None
    status = query.get("status") or None
    problems = []
    if entity is not None and entity not in dict(streams):
        problems.append(f"There is no stream '{entity[:40]}' here; showing every stream.")
        entity = None
    if status is not None and status not in sync_history.STATUSES:
        problems.append(f"There is no status '{status[:40]}'; showing every status.")
        status = None
    filters = {k: v for k, v in (("stream", entity), ("status", status)) if v}
    try:
        page = sync_history.history_page(conn, row.id, context.company.timezone, entity_type=entity, status=status,
                                         before=query.get("before"), after=query.get("after"))
    except sync_history.BadCursor:
        problems.append("That page link is not valid; showing the newest entries.")
        page = sync_history.history_page(conn, row.id, context.company.timezone, entity_type=entity, status=status)
    chart = sync_history.daily_totals(conn, row.id, context.company.timezone)
    return {
        "page": page, "streams": streams, "statuses": sync_history.STATUSES, "stream": entity, "status": status,
        "problems": problems, "chart": chart, "chart_total": sum(chart["records"]), "chart_failed": sum(chart["failed"]),
        "newer_url": f"?{urlencode({**filters, 'after': page.newer})}" if page.newer else None,
        "older_url": f"?{urlencode({**filters, 'before': page.older})}" if page.older else None,
        "newest_url": f"?{urlencode(filters)}" if filters else "?",
        "filtered": bool(filters), "dagster_url": sync_now.dagster_url().rstrip("/"),
    }


SECTION = Section(key=KEY, label="Sync history", template="sections/history.html", load=load)
