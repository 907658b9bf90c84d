"""The floor for webhook ingest: a bare Starlette endpoint that checks the Uber Eats HMAC and
stores the event, nothing else. Served by uvicorn (one worker) for bench/webhook_ingest.py:

    FLOOR_DATABASE_URL=postgresql://... FLOOR_SECRET=... FLOOR_MODE=single \
        .venv/bin/uvicorn ingest_floor:app --app-dir bench --port 8900

Modes (FLOOR_MODE):
- `single`: one `INSERT ... ON CONFLICT DO NOTHING` per request on an autocommit connection
  from a small pool (FLOOR_POOL_SIZE, default 8); 200 only after the commit returned.
- `group`: group commit. Requests queue their rows; FLOOR_WRITERS writer tasks (default 2),
  each with its own connection, take everything waiting (up to FLOOR_MAX_BATCH, default 128),
  insert it in one transaction and commit; each request answers 200 only after the commit of
  the batch that holds its row (503 if that transaction failed).
- `hmac`: HMAC check only, no database (what the HTTP stack and the load generator can do).

The table (`bench_floor_event`) is created by the benchmark: id, event_id (unique: dedupe as
the hub does), payload jsonb, received_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DSN = os.environ.get("FLOOR_DATABASE_URL", "")
SECRET = os.environ.get("FLOOR_SECRET", "").encode()
MODE = os.environ.get("FLOOR_MODE", "single")
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "8"))
WRITERS = int(os.environ.get("FLOOR_WRITERS", "2"))
MAX_BATCH = int(os.environ.get("FLOOR_MAX_BATCH", "128"))

INSERT_ONE = "INSERT INTO bench_floor_event (event_id, payload) VALUES (%s, %s::jsonb) ON CONFLICT (event_id) DO NOTHING"
INSERT_MANY = ("INSERT INTO bench_floor_event (event_id, payload) "
               "SELECT * FROM unnest(%s::text[], %s::jsonb[]) ON CONFLICT (event_id) DO NOTHING")


class Pool:
    """A very small async connection pool (psycopg_pool is not installed in the project venv)."""

    def __init__(self, dsn: str, size: int):
        self.dsn, self.size = dsn, size
        self._idle: asyncio.Queue[psycopg.AsyncConnection] = asyncio.Queue()
        self._all: list[psycopg.AsyncConnection] = []

    async def open(self) -> None:
        for _ in range(self.size):
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            self._all.append(conn)
            self._idle.put_nowait(conn)

    @contextlib.asynccontextmanager
    async def connection(self):
        conn = await self._idle.get()
        try:
            if conn.closed:
                self._all.remove(conn)
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                self._all.append(conn)
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()


class GroupCommitter:
    def __init__(self, pool: Pool, writers: int, max_batch: int):
        self.pool, self.max_batch = pool, max_batch
        self.queue: asyncio.Queue[tuple[str, str, asyncio.Future]] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._writer()) for _ in range(writers)]
        self.batches = self.rows = 0

    async def submit(self, event_id: str, payload: str) -> None:
        done = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((event_id, payload, done))
        await done  # raises if the batch's transaction failed

    async def _writer(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                async with self.pool.connection() as conn:
                    async with conn.transaction():  # BEGIN ... COMMIT: the commit happens on exit
                        await conn.execute(INSERT_MANY, ([b[0] for b in batch], [b[1] for b in batch]))
            except Exception as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.batches += 1
            self.rows += len(batch)
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


state: dict = {}


def _verified(body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    try:
        candidate = bytes.fromhex(signature)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, hmac.new(SECRET, body, hashlib.sha256).digest())


async def webhook(request: Request) -> Response:
    body = await request.body()
    if not _verified(body, request.headers.get("x-uber-signature")):
        return Response(status_code=401)
    if MODE == "hmac":
        return Response(status_code=200)
    try:
        event_id = str(json.loads(body)["event_id"])
    except (ValueError, KeyError, TypeError):
        return Response(status_code=400)
    payload = body.decode()
    try:
        if MODE == "group":
            await state["committer"].submit(event_id, payload)
        else:
            async with state["pool"].connection() as conn:
                await conn.execute(INSERT_ONE, (event_id, payload))  # autocommit: committed on return
    except psycopg.Error:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return Response(status_code=200)


async def health(request: Request) -> JSONResponse:
    committer = state.get("committer")
    extra = {"batches": committer.batches, "rows": committer.rows} if committer else {}
    return JSONResponse({"ok": True, "mode": MODE, **extra})


@contextlib.asynccontextmanager
async def lifespan(app):
    if MODE != "hmac":
        size = WRITERS if MODE == "group" else POOL_SIZE
        state["pool"] = pool = Pool(DSN, size)
        await pool.open()
        if MODE == "group":
            state["committer"] = GroupCommitter(pool, WRITERS, MAX_BATCH)
    try:
        yield
    finally:
        if "committer" in state:
            await state["committer"].close()
        if "pool" in state:
            await state["pool"].close()


app = Starlette(routes=[Route("/webhooks/ubereats/{endpoint_id:int}", webhook, methods=["POST"]), Route("/healthz", health)],
                lifespan=lifespan)
