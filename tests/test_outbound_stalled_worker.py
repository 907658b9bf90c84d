"""A dispatcher that goes silent inside a transaction (cut off the network between BEGIN and
COMMIT) must not keep its row locks: the server ends its session after half the lease.
Drill 5 (tests/drills) found what happens otherwise: an event locked by the silent worker's
fan-out that no other worker could take, for as long as the server's TCP keepalive (hours)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa

from hub.crypto import Keyring
from hub.outbound import emit
from hub.outbound.dispatcher import Dispatcher
from tests.conftest import run_async
from tests.test_outbound_support import company, dsn

TAKE = sa.text("SELECT id FROM outbox_event FOR UPDATE SKIP LOCKED")  # what another worker's fan-out can take


def _others_can_take(engine) -> list[int]:
    with engine.begin() as conn:
        return list(conn.scalars(TAKE))


def test_the_server_ends_a_dispatcher_transaction_left_open_past_half_the_lease(clean_db, secret_keys):
    acme = company(clean_db)
    with clean_db.begin() as conn:
        event_id = emit(conn, acme, "task.assigned", {"task_id": "t-1"})
    dispatcher = Dispatcher(dsn(clean_db), Keyring(secret_keys), lease_seconds=4.0)

    async def scenario() -> tuple[str, list[int], list[int], bool]:
        conn = await dispatcher._connect()
        setting = (await (await conn.execute("SHOW idle_in_transaction_session_timeout")).fetchone())[0]
        async with conn.transaction():
            await conn.execute(TAKE.text)
            await asyncio.sleep(0.5)
            while_open = await asyncio.to_thread(_others_can_take, clean_db)
            await asyncio.sleep(2.5)  # silent past 2 s, half the lease: the server ends the session
            after = await asyncio.to_thread(_others_can_take, clean_db)
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                await conn.execute("SELECT 1")
        return setting, while_open, after, conn.closed

    setting, while_open, after, closed = run_async(scenario())
    assert setting == "2s"
    assert while_open == [] and after == [event_id]  # locked while the worker held it, free once the server ended it
    assert closed  # the dispatcher's `_fresh` opens a new connection
