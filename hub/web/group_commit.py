"""Group commit for the webhook receiver: the rows of many concurrent requests go into one
transaction, and each request is acknowledged only after the commit that holds its rows.

Why: one INSERT-and-COMMIT per request spends most of its time in round trips and in the
commit's flush; batching lets one flush serve dozens of webhooks (bench/README.md has the
figures). A few writer tasks, each with its own asyncio psycopg connection, share one queue
in the server's event loop: while one batch is being flushed, the next one is already
forming and going out on another connection. Writers live in the event loop, not in a
thread, so handing a result back costs no thread switch (a thread waiting for the GIL
behind a busy event loop added milliseconds to every webhook). What is stored, and how
duplicates are refused, is `hub.inbound.ingest`: one statement per batch on an autocommit
connection, so the batch is one round trip and its own transaction, and the statement
returns only after the commit (the acknowledgements are sent after that).

Failure handling: a lost connection (or a timeout) fails the whole batch (every request
answers 503 and the providers retry; the writer reconnects for its next batch). An error about
the data (hub.inbound.ingest.refused_data: an index row too large counts, though psycopg files it
as an OperationalError) or any other database error retries the batch's requests one by one, so
one bad request cannot fail the others; the receiver keeps the one refused as a dead letter. An
unexpected exception fails its batch's requests, never the writer (a dead writer task once left
the receiver answering 503 to everything after it).

Stalls: the writers' connections carry a `statement_timeout` and `lock_timeout`, so a batch
blocked behind a lock (a migration, a long transaction holding `inbound_event`) fails after
`statement_timeout` seconds like a lost connection (503, the providers retry) instead of
holding every request for the length of the stall; the receiver also stops waiting after its
own deadline. A request that stopped waiting is dropped from the next batch.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg

from hub.inbound.events import InboundEventData
from hub.inbound.ingest import Delivery, IngestResult, refused_data, store_batch_async

log = logging.getLogger("hub.web.group_commit")


@dataclass
class _Item:
    delivery: Delivery
    future: asyncio.Future


class GroupCommitter:
    def __init__(self, conninfo: str, max_batch: int = 128, writers: int = 2, statement_timeout: float = 5.0):
        self.conninfo, self.max_batch, self.writers = conninfo, max_batch, writers
        millis = max(1, int(statement_timeout * 1000))
        self._options = f"-c statement_timeout={millis} -c lock_timeout={millis}"
        self._queue: asyncio.Queue[_Item] | None = None
        self._tasks: list[asyncio.Task] = []
        self.batches = 0

    async def submit(self, integration_id: int, provider: str, events: list[InboundEventData]) -> IngestResult:
        if self._queue is None:  # started in the loop that serves requests
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._writer(n), name=f"webhook-group-commit-{n}") for n in range(self.writers)]
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(Delivery(integration_id, provider, events), future))
        return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _writer(self, number: int) -> None:
        conn: psycopg.AsyncConnection | None = None
        assert self._queue is not None
        batch: list[_Item] = []
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self.max_batch and not self._queue.empty():  # whatever else waits joins this commit
                    batch.append(self._queue.get_nowait())
                batch = [item for item in batch if not item.future.done()]  # its request stopped waiting
                if not batch:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect()
                    _settle(batch, await self._commit(conn, batch))
                except psycopg.Error as exc:
                    conn = await _drop(conn)
                    if isinstance(exc, psycopg.OperationalError) and not refused_data(exc):
                        _settle(batch, [exc] * len(batch))  # the database, not the data: all retry
                        continue
                    for item in batch:  # find the bad one: each alone
                        try:
                            if conn is None:
                                conn = await self._connect()
                            _settle([item], await self._commit(conn, [item]))
                        except psycopg.Error as exc:
                            conn = await _drop(conn)
                            _settle([item], [exc])
                except Exception as exc:  # a bug of ours must not stop the writer: its requests get it
                    log.exception("webhook writer %d: unexpected error storing a batch", number)
                    conn = await _drop(conn)
                    _settle(batch, [exc] * len(batch))
        finally:  # cancelled (close()): a batch in flight answers 503, the connection goes too
            _settle(batch, [psycopg.OperationalError("webhook writer stopped")] * len(batch))
            await _drop(conn)

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, options=self._options)

    async def _commit(self, conn: psycopg.AsyncConnection, batch: list[_Item]) -> list[IngestResult]:
        # one statement on an autocommit connection: committed when it returns
        results = await store_batch_async(conn, [item.delivery for item in batch])
        self.batches += 1
        return results


def _settle(batch: list[_Item], outcomes: list) -> None:
    for item, outcome in zip(batch, outcomes):
        if item.future.done():  # the request went away
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)


async def _drop(conn: psycopg.AsyncConnection | None) -> None:
    if conn is not None:
        try:
            await conn.close()
        except psycopg.Error:
            pass
    return None


def conninfo_from_url(url) -> str:
    """A libpq URL psycopg accepts, from a SQLAlchemy URL (driver name dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
