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

import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers.connect import open_client
from hub.providers.protocols import AccountingClient, ProjectClient
from hub.schema import sync_cursor
from hub.sync import preferences
from hub.sync.pages import mark_deleted, split_page
from hub.sync.stream_spec import PageCounts, ReadScope, StreamSpec
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

    def counts_detail(self) -> dict[str, int]:
        """What the run did, as sync_log.details["counts"] keeps it (shown by the settings
        pages' sync history; sync_log's own columns count records processed and failed only)."""
        return {"created": self.counts.created, "updated": self.counts.updated, "deleted": self.counts.deleted,
                "conflicts": self.counts.conflicts}

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
    """The plain page writer (a stream without its own `upsert`): rows are matched on
    (integration, remote id), a remote delete goes through `pages.mark_deleted` (rows are
    never dropped)."""
    company_id, integration_id = scope.company_id, scope.integration_id
    now = datetime.now(timezone.utc)
    live, gone = split_page(stream, records)
    created = updated = 0
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
    return PageCounts(created, updated, mark_deleted(conn, stream, scope, gone))


def sync_stream(
    engine: Engine,
    keyring: Keyring,
    integration_id: int,
    stream: StreamSpec,
    *,
    run_id: str | None = None,
    client: AccountingClient | ProjectClient | None = None,
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
        pages = stream.read(client, stream, since, pull["done"], page_size, scope)
        premap = getattr(write_page, "premap", None)  # the writer's preparation of a page, done by the reader
        reader = _Prefetch(pages, (lambda page: premap(stream, page, scope)) if premap else None) if stream.prefetch else None
        try:
            for records in (reader or pages):
                with engine.begin() as conn:
                    counts = write_page(conn, stream, scope, records)
                    pull["done"] += len(records)
                    save_cursor(conn, integration_id, stream.name, {"since": since_text, "pull": pull})
                    sync.page(conn, processed=len(records))
                result.counts.add(counts)
                result.pages += 1
        finally:
            if reader is not None:
                reader.close()
        result.cursor_after = {"since": pull["started"]}
        with engine.begin() as conn:
            save_cursor(conn, integration_id, stream.name, result.cursor_after)
            sync.page(conn, details={"counts": result.counts_detail()})  # the history page shows them
    result.api = client.transport.stats()
    result.duration_s = time.monotonic() - started_clock
    return result


_END = object()


class _Prefetch:
    """Pages of an adapter read ahead in one background thread (which alone runs the adapter's
    generator, closing it too) while the caller writes the current page. At most `depth`
    pages wait in the queue (plus the one being read). A reader error is raised to the caller
    at the point the page it failed on would have come; `close()` (the writer stopped or
    failed) stops the reader and waits for it. The cursor advances only as the caller commits,
    so resuming is unchanged: a page read ahead but not written is read again next time.
    `prepare` (the page writer's `premap`: Python work, at most a read of a small reference
    table on its own connection, never a write) runs on each page in the reader thread too,
    overlapping the previous page's database work; the page writer must check in its own
    transaction that what `prepare` read still holds."""

    def __init__(self, pages: Iterator[list[dict[str, Any]]], prepare: Any = None, depth: int = 1):
        self._prepare = prepare
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pages,), name="sync-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, pages: Iterator[list[dict[str, Any]]]) -> None:
        try:
            for page in pages:
                if self._prepare is not None:
                    page = self._prepare(page)
                if not self._put((page, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put((None, exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing an abandoned read
                    pass

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            page, error = self._queue.get()
            if error is not None:
                self._thread.join()
                raise error
            if page is _END:
                self._thread.join()
                return
            yield page

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
