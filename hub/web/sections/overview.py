"""The first tab of every integration: its status, last sync and last error, its
enable/disable switch (its connection and credentials have a tab of their own)."""

from __future__ import annotations

from datetime import datetime, timezone

from hub.web.integrations_view import card
from hub.web.sections import Section


def load(conn, context, row, spec, query) -> dict:
    now = datetime.now(timezone.utc)
    return {"card": card(row, spec, context.company.timezone, now)}


SECTION = Section(key="overview", label="Overview", template="sections/overview.html", load=load)
