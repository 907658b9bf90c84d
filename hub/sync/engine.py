"""The pull sync engine: one stream of one integration, page by page.

Each page is one transaction: its rows are upserted, the stream's cursor records how far
the pull got, and the `sync_log` row's counts grow, all committed together. So a crash
loses at most the page in flight, and a rerun resumes after the last committed page
(full reads) or repeats the incremental read (idempotent upserts), ending with exactly the
remote record set and no duplicates.

Cursor (`sync_cursor.value`), per (integration, stream):
- between pulls: `{"since": "<ISO time the last completed pull started>"}`;
- during a pull: the same plus `"pull": {"started": ..., "done": <records committed>}`.
The next `since` is when the completed pull *started*, so a record edited while the pull
ran is read again next time rather than missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.schema import sync_cursor
from hub.sync import preferences
from hub.sync.adapters import ADAPTERS
from hub.sync.streams import PageCounts, ReadScope, StreamSpec
from hub.sync_log import record_sync


@dataclass
class PullResult:
    counts: PageCounts = field(default_factory=PageCounts)
    pages: int = 0
    mode: str = "full"
    cursor_before: dict[str, Any] = field(default_factory=dict)
    cursor_after: dict[str, Any] = field(default_factory=dict)
    resumed_after: int = 0
    sync_log_id: int | None = None
    duration_s: float = 0.0
    api: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "created": self.counts.created, "updated": self.counts.updated, "deleted": self.counts.deleted,
            "conflicts": self.counts.conflicts, "pages": self.pages,
            "mode": self.mode, "resumed_after_records": self.resumed_after,
            "cursor_before": self.cursor_before.get("since") or "none", "cursor_after": self.cursor_after.get("since") or "none",
            "duration_s": round(self.duration_s, 3), "sync_log_id": self.sync_log_id, **self.api,
        }


def load_cursor(conn: Connection, integration_id: int, stream: str) -> dict[str, Any]:
    value = conn.scalar(
        sa.select(sync_cursor.c.value).where(sync_cursor.c.integration_id == integration_id, sync_cursor.c.stream == stream)
    )
    return dict(value or {})


def save_cursor(conn: Connection, integration_id: int, stream: str, value: dict[str, Any]) -> None:
    statement = insert(sync_cursor).values(integration_id=integration_id, stream=stream, value=value)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["integration_id", "stream"], set_={"value": statement.excluded.value, "updated_at": sa.func.now()}
        )
    )


def upsert_page(conn: Connection, stream: StreamSpec, scope: ReadScope, records: list[dict[str, Any]]) -> PageCounts:
    """Upsert one page; rows are matched on (integration, remote id), a remote delete marks
    the row as `stream.deleted_values` says (rows are never dropped)."""
    company_id, integration_id = scope.company_id, scope.integration_id
    now = datetime.now(timezone.utc)
    live: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    for record in records:  # the last occurrence of a record in a page wins
        remote_id = stream.remote_id(record)
        if stream.is_deleted(record):
            gone.add(remote_id)
            live.pop(remote_id, None)
        else:
            live[remote_id] = record
            gone.discard(remote_id)
    created = updated = deleted = 0
    if live:
        rows = [
            {**stream.to_row(r), "company_id": company_id, "integration_id": integration_id, "remote_id": rid,
             "remote_version": stream.remote_version(r), "synced_at": now}
            for rid, r in live.items()
        ]
        statement = insert(stream.table).values(rows)
        changing = [c for c in rows[0] if c not in ("company_id", "integration_id", "remote_id")]
        if "updated_at" in stream.table.c:
            changing.append("updated_at")
        set_ = {c: (sa.func.now() if c == "updated_at" else statement.excluded[c]) for c in changing}
        inserted = conn.execute(
            statement.on_conflict_do_update(index_elements=["integration_id", "remote_id"], set_=set_)
            .returning(sa.literal_column("xmax = 0"))
        ).scalars().all()
        created = sum(1 for flag in inserted if flag)
        updated = len(inserted) - created
    if gone:
        deleted = conn.execute(
            sa.update(stream.table)
            .where(stream.table.c.integration_id == integration_id, stream.table.c.remote_id.in_(gone))
            .values(**stream.deleted_values, synced_at=now)
        ).rowcount
    return PageCounts(created, updated, deleted)


def sync_stream(
    engine: Engine,
    keyring: Keyring,
    integration_id: int,
    stream: StreamSpec,
    *,
    run_id: str | None = None,
    client: Any = None,
    page_size: int | None = None,
    full: bool = False,
) -> PullResult:
    """Pull one stream of one integration into its table; see the module docstring."""
    started_clock = time.monotonic()
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
        cursor = load_cursor(conn, integration_id, stream.name)
    if item.provider != stream.provider:
        raise ValidationError(f"integration {integration_id} is {item.provider}, not {stream.provider}")
    own_client = client is None
    if own_client:
        from hub.providers.connect import open_client

        client = open_client(engine, keyring, integration_id)
    try:
        return _pull(engine, item, cursor, stream, client, run_id, page_size, full, started_clock)
    finally:
        if own_client:
            client.transport.close()


def _pull(engine, item, cursor, stream, client, run_id, page_size, full, started_clock) -> PullResult:
    integration_id = item.id
    pull = cursor.get("pull") or {"started": datetime.now(timezone.utc).isoformat(), "done": 0}
    since_text = None if full else cursor.get("since")
    since = datetime.fromisoformat(since_text) if since_text else None
    result = PullResult(mode="incremental" if since else "full", cursor_before=dict(cursor), resumed_after=pull["done"])
    with record_sync(
        engine, integration_id=integration_id, sync_type=result.mode, action=f"import_{stream.name}", direction="inbound",
        entity_type=stream.entity_type, run_id=run_id, details={"stream": stream.key, "cursor_before": cursor},
    ) as sync:
        result.sync_log_id = sync.id
        scope = ReadScope(engine, integration_id, item.company_id,
                          conflict_policy=preferences.from_config(item.provider, item.config).conflict_policy)
        write_page = stream.upsert or upsert_page
        for records in ADAPTERS[stream.provider](client, stream, since, pull["done"], page_size, scope):
            with engine.begin() as conn:
                counts = write_page(conn, stream, scope, records)
                pull["done"] += len(records)
                save_cursor(conn, integration_id, stream.name, {"since": since_text, "pull": pull})
                sync.page(conn, processed=len(records))
            result.counts.add(counts)
            result.pages += 1
        result.cursor_after = {"since": pull["started"]}
        with engine.begin() as conn:
            save_cursor(conn, integration_id, stream.name, result.cursor_after)
    result.api = client.transport.stats()
    result.duration_s = time.monotonic() - started_clock
    return result
