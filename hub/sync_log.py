"""Recording syncs in `sync_log`, and the integration's status that follows from them.

Use `record_sync` around any sync:

    with record_sync(engine, integration_id=7, sync_type="incremental", action="import_vendors",
                     direction="inbound", entity_type="vendor", run_id=context.run_id) as sync:
        for page in pages:
            with engine.begin() as conn:
                upsert(conn, page)
                sync.page(conn, processed=len(page))        # progress commits with the page
            for bad in rejected: sync.record_error(bad.id, "6240", "Duplicate Name Exists Error")

The row is inserted as `started` in its own transaction (so it is visible while the sync
runs) and closed `completed` or, if the block raises, `failed` with the error message.
A process that dies never reaches the close; `close_runs_failed` (called by the Dagster
run-status sensor) closes those rows so none stays `started` forever.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.schema import integration, sync_log

MAX_ERRORS_KEPT = 500  # per row; the count stays exact beyond it
MAX_MESSAGE_CHARS = 1000


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


@dataclass
class SyncRecorder:
    """Handle on one open `sync_log` row."""

    engine: Engine
    id: int
    integration_id: int
    processed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    _flushed_errors: int = 0

    def add(self, count: int = 1) -> None:
        """Count records processed (kept in memory until the next `page` or the close)."""
        self.processed += count

    def record_error(self, record_id: Any, code: str | None, message: str) -> None:
        """One record failed; the sync goes on. Code and message come from the provider."""
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"record_id": None if record_id is None else str(record_id), "code": code, "message": _clip(message)})

    def page(self, conn: Connection, processed: int = 0) -> None:
        """Write progress inside the caller's transaction, so it commits with the page."""
        self.processed += processed
        conn.execute(self._progress_update())

    def _progress_update(self) -> sa.Update:
        new_errors = self.errors[self._flushed_errors :]
        self._flushed_errors = len(self.errors)
        return (
            sa.update(sync_log)
            .where(sync_log.c.id == self.id)
            .values(
                records_processed=self.processed,
                records_failed=self.failed,
                errors=sync_log.c.errors.op("||")(sa.cast(new_errors, sync_log.c.errors.type)),
            )
        )


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
            )
            .returning(sync_log.c.id)
        )
        conn.execute(
            sa.update(integration).where(integration.c.id == integration_id).values(status="syncing", updated_at=sa.func.now())
        )
    return SyncRecorder(engine=engine, id=row_id, integration_id=integration_id)


def close_sync(recorder: SyncRecorder, error: BaseException | None = None) -> None:
    """Close the row `completed`, or `failed` when `error` is given; update the integration."""
    failed = error is not None
    if failed:
        recorder.errors.append({"record_id": None, "code": type(error).__name__, "message": _clip(str(error) or repr(error))})
    with recorder.engine.begin() as conn:
        conn.execute(recorder._progress_update())
        conn.execute(
            sa.update(sync_log)
            .where(sync_log.c.id == recorder.id)
            .values(status="failed" if failed else "completed", completed_at=sa.func.now())
        )
        if failed:
            message = _clip(f"{type(error).__name__}: {error}")
        elif recorder.failed:
            message = f"{recorder.failed} record(s) failed in the last sync; see sync_log {recorder.id}"
        else:
            message = None
        conn.execute(
            sa.update(integration)
            .where(integration.c.id == recorder.integration_id)
            .values(
                status="error" if failed else "connected",
                error_message=message,
                updated_at=sa.func.now(),
                # "last sync" means the last one that finished; a failure shows in status instead
                **({} if failed else {"last_sync_at": sa.func.now()}),
            )
        )


@contextmanager
def record_sync(engine: Engine, **kwargs: Any) -> Iterator[SyncRecorder]:
    """Open a `sync_log` row, yield its recorder, close it by how the block ends."""
    recorder = open_sync(engine, **kwargs)
    try:
        yield recorder
    except BaseException as exc:
        close_sync(recorder, exc)
        raise
    close_sync(recorder)


def close_runs_failed(engine: Engine, run_id: str, reason: str) -> int:
    """Mark every row a Dagster run left `started` as `failed`; return how many.

    Idempotent: rows already closed are left as they are, so a sensor may call it twice.
    """
    error = [{"record_id": None, "code": "run_failed", "message": _clip(reason)}]
    with engine.begin() as conn:
        closed = conn.execute(
            sa.update(sync_log)
            .where(sync_log.c.dagster_run_id == run_id, sync_log.c.status == "started")
            .values(
                status="failed",
                completed_at=sa.func.now(),
                errors=sync_log.c.errors.op("||")(sa.cast(error, sync_log.c.errors.type)),
            )
            .returning(sync_log.c.integration_id)
        ).scalars().all()
        if closed:
            conn.execute(
                sa.update(integration)
                .where(integration.c.id.in_(set(closed)))
                .values(status="error", error_message=_clip(f"sync run {run_id} ended: {reason}"), updated_at=sa.func.now())
            )
    return len(closed)
