"""How each pull stream of an integration stands, for its settings page: whether it runs
(the sync preferences, hub/sync/preferences.py), its last sync from `sync_log` (the engine
records each pull as action `import_<stream>`), and how many records it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.providers.spec import ProviderSpec
from hub.schema import sync_log
from hub.sync import preferences
from hub.sync.pages import not_deleted


@dataclass(frozen=True)
class StreamStatus:
    name: str
    description: str
    enabled: bool
    records: int
    last: sa.Row | None  # the latest sync_log row of its pull (status, started/completed, counts, errors)


def stream_statuses(conn: Connection, integration_id: int, spec: ProviderSpec, config: Mapping[str, Any]) -> list[StreamStatus]:
    prefs = preferences.from_config(spec.name, config)
    found = []
    for stream in spec.streams:
        last = conn.execute(
            sa.select(sync_log.c.id, sync_log.c.status, sync_log.c.started_at, sync_log.c.completed_at,
                      sync_log.c.records_processed, sync_log.c.records_failed, sync_log.c.errors)
            .where(sync_log.c.integration_id == integration_id, sync_log.c.action == f"import_{stream.name}")
            .order_by(sync_log.c.started_at.desc(), sync_log.c.id.desc()).limit(1)).first()
        count = conn.scalar(sa.select(sa.func.count()).select_from(stream.table).where(
            stream.table.c.integration_id == integration_id, not_deleted(stream))) or 0
        pref = prefs.streams.get(stream.name)
        found.append(StreamStatus(stream.name, stream.description, bool(pref and pref.enabled), count, last))
    return found
