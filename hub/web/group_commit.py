"""Group commit for the webhook receiver: the rows of many concurrent requests go into one
transaction, and each request is acknowledged only after the commit that holds its rows.

Why: one INSERT-and-COMMIT per request spends most of its time in round trips and in the
commit's flush; batching lets one flush serve dozens of webhooks (bench/README.md has the
figures). The writer is one thread with its own psycopg 3 connection; requests hand it their
events through a queue and await a future. What is stored, and how duplicates are
refused, is `hub.webhooks.ingest.store_batch`.

Failure handling: a lost connection fails the whole batch (every request answers 503 and the
providers retry; the next batch reconnects). Any other database error retries the batch's
requests one by one, so one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import psycopg

from hub.orders.events import InboundEventData
from hub.webhooks.ingest import Delivery, IngestResult, store_batch

log = logging.getLogger("hub.web.group_commit")

@dataclass
class _Item:
    integration_id: int
    provider: str
    events: list[InboundEventData]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class GroupCommitter:
    def __init__(self, conninfo: str, max_batch: int = 128):
        self.conninfo, self.max_batch = conninfo, max_batch
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self.batches = 0

    async def submit(self, integration_id: int, provider: str, events: list[InboundEventData]) -> IngestResult:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Item(integration_id, provider, events, loop, future))
        return await future

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="webhook-group-commit", daemon=True)
                    self._thread.start()

    # ---- writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:  # whatever else is already waiting joins this commit
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=False)
        return self._conn

    def _write(self, batch: list[_Item]) -> None:
        try:
            results = self._commit(batch)
        except psycopg.OperationalError as exc:
            self._drop_connection()
            for item in batch:
                _resolve(item, exc)
            return
        except psycopg.Error:
            self._drop_connection()
            for item in batch:  # find the bad one: each alone
                try:
                    _resolve(item, self._commit([item])[0])
                except psycopg.Error as exc:
                    self._drop_connection()
                    _resolve(item, exc)
            return
        for item, result in zip(batch, results):
            _resolve(item, result)

    def _commit(self, batch: list[_Item]) -> list[IngestResult]:
        conn = self._connection()
        with conn.transaction():
            results = store_batch(conn, [Delivery(item.integration_id, item.provider, item.events) for item in batch])
        self.batches += 1
        return results

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


def _resolve(item: _Item, outcome: Any) -> None:
    def settle() -> None:
        if item.future.done():
            return
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)

    item.loop.call_soon_threadsafe(settle)


def conninfo_from_url(url) -> str:
    """A libpq URL psycopg accepts, from a SQLAlchemy URL (driver name dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)

