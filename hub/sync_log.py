"""Recording syncs in `sync_log`, and the integration's status that follows from them.

Use `record_sync` around any sync:

    with record_sync(engine, integration_id=7, sync_type="incremental", action="import_vendors",
                     direction="inbound", entity_type="vendor", run_id=context.run.run_id) as sync:
        for page in pages:
            with engine.begin() as conn:
                upsert(conn, page)
                for bad in rejected(page):
                    sync.record_error(bad.id, "6240", "Duplicate Name Exists Error")
                sync.page(conn, processed=len(page))    # progress commits with the page

The row is inserted as `started` in its own transaction (so it is visible while the sync
runs) and closed `completed` or, if the block raises, `failed` with a redacted message.

Counts and errors reach the row as increments inside the page's own transaction, so a page
that rolls back takes its counts and errors with it: the row always describes what was
committed. Whatever was counted outside a page is written at the close.

A process that dies never reaches the close. `close_runs_failed` (the run-status sensors)
and `close_orphaned` (the sweeper sensor) close those rows, so none stays `started`.
Closing is guarded on `status = 'started'`: whoever closes first wins, later closes are
no-ops.

While `record_sync`'s block runs, a thread touches the row's `heartbeat_at` every
HEARTBEAT_EVERY seconds (cleared at the close). Only a live process does that, so a row whose
heartbeat is older than a few intervals belongs to a process that died: a run started from
the command line (`dagster asset materialize`) and killed, which no Dagster daemon watches,
is found by its heartbeat within minutes instead of staying `started` until the 6 h run
limit. A process alive but unable to reach the database for that long cannot close its row
either; its late close is then a no-op, the row stays `failed`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.redact import describe_error, redact
from hub.schema import integration, sync_log

MAX_ERRORS_KEPT = 500  # per row; the failed count stays exact beyond it
MAX_MESSAGE_CHARS = 1000
HEARTBEAT_EVERY = 15.0  # seconds between touches of a running sync's heartbeat_at
HEARTBEAT_STALE_AFTER = timedelta(minutes=2)  # eight missed touches: the process is gone

log = logging.getLogger("hub.sync_log")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _append_errors(errors: list[dict[str, Any]]) -> sa.ColumnElement:
    """`errors || new`, keeping at most MAX_ERRORS_KEPT entries."""
    combined = sync_log.c.errors.op("||")(sa.cast(errors, sync_log.c.errors.type))
    return sa.case(
        (sa.func.jsonb_array_length(sync_log.c.errors) >= MAX_ERRORS_KEPT, sync_log.c.errors),
        else_=combined,
    )


@dataclass
class SyncRecorder:
    """Handle on one open `sync_log` row."""

    engine: Engine
    id: int
    integration_id: int
    processed: int = 0  # committed totals, known after close
    failed: int = 0
    status: str = "started"
    _pending_processed: int = 0
    _pending_errors: list[dict[str, Any]] = field(default_factory=list)
    _pending_failed: int = 0

    def add(self, count: int = 1) -> None:
        """Count records processed; written with the next `page` or at the close."""
        self._pending_processed += count

    def record_error(self, record_id: Any, code: str | None, message: str) -> None:
        """One record failed and the sync goes on. Code and message come from the provider."""
        self._pending_failed += 1
        if len(self._pending_errors) < MAX_ERRORS_KEPT:
            self._pending_errors.append(
                {"record_id": None if record_id is None else str(record_id), "code": code, "message": _clip(redact(message))}
            )

    def page(self, conn: Connection, processed: int = 0, details: dict[str, Any] | None = None) -> None:
        """Write pending counts and errors (and `details` merged into the row's details)
        inside the caller's transaction."""
        self._pending_processed += processed
        extra = {"details": sync_log.c.details.op("||")(sa.cast(details, sync_log.c.details.type))} if details else {}
        conn.execute(self._flush_statement(**extra))

    def _flush_statement(self, **extra: Any) -> sa.Update:
        statement = (
            sa.update(sync_log)
            .where(sync_log.c.id == self.id, sync_log.c.status == "started")
            .values(
                records_processed=sync_log.c.records_processed + self._pending_processed,
                records_failed=sync_log.c.records_failed + self._pending_failed,
                errors=_append_errors(self._pending_errors),
                **extra,
            )
        )
        self._pending_processed, self._pending_failed, self._pending_errors = 0, 0, []
        return statement


def open_sync(
    engine: Engine,
    *,
    integration_id: int,
    sync_type: str,
    action: str,
    direction: str,
    entity_type: str,
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> SyncRecorder:
    with engine.begin() as conn:
        row_id = conn.scalar(
            sa.insert(sync_log)
            .values(
                integration_id=integration_id,
                sync_type=sync_type,
                action=action,
                direction=direction,
                entity_type=entity_type,
                dagster_run_id=run_id,
                details=details or {},
                heartbeat_at=sa.func.now(),
            )
            .returning(sync_log.c.id)
        )
        conn.execute(
            sa.update(integration)
            .where(integration.c.id == integration_id, integration.c.is_active)  # a disabled one stays disconnected
            .values(status="syncing", updated_at=sa.func.now())
        )
    return SyncRecorder(engine=engine, id=row_id, integration_id=integration_id)


def close_sync(recorder: SyncRecorder, error: BaseException | None = None) -> bool:
    """Close the row `completed`, or `failed` when `error` is given, and update the
    integration. False when the row had already been closed (by a sensor): then nothing
    changes."""
    failed = error is not None
    if failed:
        recorder._pending_errors.append({"record_id": None, "code": type(error).__name__, "message": describe_error(error)})
    with recorder.engine.begin() as conn:
        row = conn.execute(
            recorder._flush_statement(status="failed" if failed else "completed", completed_at=sa.func.now(),
                                      heartbeat_at=None).returning(
                sync_log.c.records_processed, sync_log.c.records_failed
            )
        ).first()
        if row is None:
            return False
        recorder.processed, recorder.failed = row
        recorder.status = "failed" if failed else "completed"
        if failed:
            message = describe_error(error)
        elif recorder.failed:
            message = f"{recorder.failed} record(s) failed in the last sync; see sync_log {recorder.id}"
        else:
            message = None
        values: dict[str, Any] = {"error_message": message, "updated_at": sa.func.now()}
        if not failed:
            values["last_sync_at"] = sa.func.now()  # "last sync" is the last one that finished
        values["status"] = sa.case((integration.c.is_active, "error" if failed else "connected"), else_=integration.c.status)
        conn.execute(_latest_sync_only(sa.update(integration), recorder.id).values(**values))
    return True


def _latest_sync_only(statement: sa.Update, log_id: int) -> sa.Update:
    """Limit an integration update to the case where `log_id` is its newest sync, so an
    old sync closing late never overwrites the outcome of a newer one. Data-quality check
    rows (hub/quality/expectations.py, sync_type "check") do not count as syncs."""
    newest = (
        sa.select(sa.func.max(sync_log.c.id))
        .where(sync_log.c.integration_id == integration.c.id, sync_log.c.sync_type != "check")  # checks leave status alone
        .scalar_subquery()
    )
    owner = sa.select(sync_log.c.integration_id).where(sync_log.c.id == log_id).scalar_subquery()
    return statement.where(integration.c.id == owner, newest == log_id)


class _Heartbeat(threading.Thread):
    """Touches one open row's `heartbeat_at` every HEARTBEAT_EVERY seconds until stopped."""

    def __init__(self, engine: Engine, log_id: int):
        super().__init__(name=f"sync-log-heartbeat-{log_id}", daemon=True)
        self.engine, self.log_id, self.stopped = engine, log_id, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            try:
                with self.engine.begin() as conn:
                    touched = conn.execute(
                        sa.update(sync_log).where(sync_log.c.id == self.log_id, sync_log.c.status == "started")
                        .values(heartbeat_at=sa.func.now())
                    ).rowcount
            except sa.exc.SQLAlchemyError as exc:  # the sync itself will meet the same trouble
                log.warning("sync_log %s: heartbeat not written (%s)", self.log_id, type(exc).__name__)
                continue
            if not touched:  # closed (by us, or by a sensor): nothing left to keep alive
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join()


@contextmanager
def record_sync(engine: Engine, **kwargs: Any) -> Iterator[SyncRecorder]:
    """Open a `sync_log` row, keep its heartbeat while the block runs, yield its recorder,
    close it by how the block ends."""
    recorder = open_sync(engine, **kwargs)
    heartbeat = _Heartbeat(engine, recorder.id)
    heartbeat.start()
    try:
        yield recorder
    except BaseException as exc:
        heartbeat.stop()
        close_sync(recorder, exc)
        raise
    heartbeat.stop()
    close_sync(recorder)


def _close_failed(conn: Connection, where: Iterable[sa.ColumnElement], reason: str) -> list[int]:
    reason = _clip(redact(reason))
    error = [{"record_id": None, "code": "run_failed", "message": reason}]
    closed = conn.execute(
        sa.update(sync_log)
        .where(sync_log.c.status == "started", *where)
        .values(status="failed", completed_at=sa.func.now(), heartbeat_at=None,
                errors=sync_log.c.errors.op("||")(sa.cast(error, sync_log.c.errors.type)))
        .returning(sync_log.c.id)
    ).scalars().all()
    for log_id in closed:
        conn.execute(
            _latest_sync_only(sa.update(integration), log_id).values(
                status=sa.case((integration.c.is_active, "error"), else_=integration.c.status),
                error_message=reason,
                updated_at=sa.func.now(),
            )
        )
    return list(closed)


def close_runs_failed(engine: Engine, run_id: str, reason: str) -> int:
    """Mark every row a Dagster run left `started` as `failed`; return how many.

    Idempotent: rows already closed are left as they are, so a sensor may call it twice.
    """
    with engine.begin() as conn:
        return len(_close_failed(conn, [sync_log.c.dagster_run_id == run_id], f"sync run {run_id} ended: {reason}"))


def open_run_ids(engine: Engine) -> list[str]:
    """Dagster run ids that still have `started` rows (for the sweeper to check)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(sync_log.c.dagster_run_id).where(sync_log.c.status == "started", sync_log.c.dagster_run_id.is_not(None)).distinct()
            ).scalars()
        )


@dataclass
class Orphans:
    closed: int = 0  # rows closed
    dead_runs: set[str] = field(default_factory=set)  # Dagster runs whose process stopped its heartbeats


def close_orphaned(engine: Engine, ended_runs: dict[str, str], stale_after: timedelta,
                   heartbeat_stale_after: timedelta | None = None) -> Orphans:
    """Close rows of runs that ended without closing them (`ended_runs`: run id -> how it
    ended); rows whose heartbeat stopped more than `heartbeat_stale_after` ago (default
    HEARTBEAT_STALE_AFTER: their process died), whatever their run; and rows without a run id
    or heartbeat that have been `started` longer than `stale_after` (rows from before
    heartbeats)."""
    heartbeat_stale_after = HEARTBEAT_STALE_AFTER if heartbeat_stale_after is None else heartbeat_stale_after
    found = Orphans()
    with engine.begin() as conn:
        for run_id, how in ended_runs.items():
            found.closed += len(_close_failed(conn, [sync_log.c.dagster_run_id == run_id],
                                              f"sync run {run_id} {how} without closing its sync log"))
        silent = conn.execute(
            sa.select(sync_log.c.id, sync_log.c.dagster_run_id)
            .where(sync_log.c.status == "started", sync_log.c.heartbeat_at < sa.func.now() - heartbeat_stale_after)
        ).all()
        for log_id, run_id in silent:
            if _close_failed(conn, [sync_log.c.id == log_id],
                             f"sync stopped: no heartbeat for over {heartbeat_stale_after}, its process died"):
                found.closed += 1
                if run_id is not None:
                    found.dead_runs.add(run_id)
        found.closed += len(
            _close_failed(
                conn,
                [sync_log.c.dagster_run_id.is_(None), sync_log.c.heartbeat_at.is_(None),
                 sync_log.c.started_at < sa.func.now() - stale_after],
                f"sync abandoned: still started after {stale_after}",
            )
        )
    return found
