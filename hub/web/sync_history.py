"""What the sync history tab reads from `sync_log`: one page of an integration's runs, newest
first, and records and failures per day over the last 30 days.

Both stay fast on a table of millions of rows (bench/views.py measures them) because they
read only the integration's own slice of `ix_sync_log_history` (migration 0008):
- paging is a keyset on (started_at, id), never an OFFSET: the next page starts after the
  last row shown, whatever number of rows came before, and the order is total (id breaks a
  tie between rows started at the same instant), so no row is shown twice or skipped;
- the chart sums columns the index INCLUDEs, so it is an index-only scan of 30 days.

The caller has checked that the integration is the session company's (sync_log has no
company column: its integration is its company's). Errors are redacted again here, since
the page is the last line before a person reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.redact import redact
from hub.schema import SYNC_STATUSES, sync_log
from hub.web import times
from hub.web.record_trail import record_href

PAGE_SIZE = 25
CHART_DAYS = 30
ERRORS_SHOWN = 3
ERROR_CHARS = 300
STATUSES = SYNC_STATUSES
# only the first few errors leave the database (a row keeps up to 500)
_FIRST_ERRORS = sa.literal_column(f"'$[0 to {ERRORS_SHOWN - 1}]'::jsonpath")


class BadCursor(ValueError):
    """A page link that is not one this module made."""


def cursor_of(started_at: datetime, row_id: int) -> str:
    return f"{started_at.astimezone(timezone.utc).isoformat()}~{row_id}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    try:
        when, _, row_id = text.rpartition("~")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError("no timezone")
        return parsed, int(row_id)
    except ValueError:
        raise BadCursor(text) from None


@dataclass(frozen=True)
class HistoryRow:
    id: int
    action: str  # e.g. "import vendors"
    entity_type: str
    sync_type: str
    status: str
    processed: int
    failed: int
    counts: dict[str, int]  # created/updated/... when the run recorded them
    errors: list[dict[str, Any]]  # the first ERRORS_SHOWN, redacted
    error_count: int
    started: dict[str, str]  # relative, exact (company timezone), iso
    duration: str | None
    run_id: str | None


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    newer: str | None  # cursor for the page before (newer rows), None on the newest page
    older: str | None  # cursor for the page after (older rows), None on the last page


def _duration(started: datetime, completed: datetime | None) -> str | None:
    if completed is None:
        return None
    seconds = max(0.0, (completed - started).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _error(entry: Any, entity_type: str, direction: str) -> dict[str, Any]:
    """One error as the page shows it. An export's errors name the hub's own record (its id),
    which links to the record's trail; an import's name the provider's id, which does not."""
    entry = entry if isinstance(entry, dict) else {"message": str(entry)}
    message = redact(str(entry.get("message") or ""))
    if len(message) > ERROR_CHARS:
        message = message[: ERROR_CHARS - 1] + "…"
    href = record_href(entity_type, entry.get("record_id")) if direction == "outbound" else None
    return {"record_id": entry.get("record_id"), "code": entry.get("code"), "message": message, "href": href}


def history_page(conn: Connection, integration_id: int, tz_name: str, *, entity_type: str | None = None,
                 status: str | None = None, before: str | None = None, after: str | None = None,
                 size: int = PAGE_SIZE, now: datetime | None = None) -> HistoryPage:
    """One page of the integration's sync_log rows, newest first: the newest page, the page
    older than the `before` cursor, or the page newer than the `after` cursor. Raises
    BadCursor for a cursor this module did not make."""
    now = now or datetime.now(timezone.utc)
    key = sa.tuple_(sync_log.c.started_at, sync_log.c.id)
    query = sa.select(
        sync_log.c.id, sync_log.c.action, sync_log.c.entity_type, sync_log.c.sync_type, sync_log.c.direction, sync_log.c.status,
        sync_log.c.records_processed, sync_log.c.records_failed, sync_log.c.details["counts"].label("counts"),
        sa.func.jsonb_path_query_array(sync_log.c.errors, _FIRST_ERRORS).label("first_errors"),
        sa.func.jsonb_array_length(sync_log.c.errors).label("error_count"),
        sync_log.c.started_at, sync_log.c.completed_at, sync_log.c.dagster_run_id,
    ).where(sync_log.c.integration_id == integration_id)
    if entity_type:
        query = query.where(sync_log.c.entity_type == entity_type)
    if status:
        query = query.where(sync_log.c.status == status)
    backwards = after is not None and before is None
    if backwards:
        query = query.where(key > sa.tuple_(*parse_cursor(after))).order_by(sync_log.c.started_at, sync_log.c.id)
    else:
        if before is not None:
            query = query.where(key < sa.tuple_(*parse_cursor(before)))
        query = query.order_by(sync_log.c.started_at.desc(), sync_log.c.id.desc())
    found = conn.execute(query.limit(size + 1)).all()
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    rows = [HistoryRow(
        id=r.id, action=r.action.replace("_", " "), entity_type=r.entity_type, sync_type=r.sync_type, status=r.status,
        processed=r.records_processed, failed=r.records_failed,
        counts={k: v for k, v in (r.counts or {}).items() if isinstance(v, int)},
        errors=[_error(e, r.entity_type, r.direction) for e in (r.first_errors or [])], error_count=r.error_count,
        started={"relative": times.relative(r.started_at, now), "exact": times.exact(r.started_at, tz_name),
                 "iso": times.iso(r.started_at)},
        duration=_duration(r.started_at, r.completed_at), run_id=r.dagster_run_id,
    ) for r in found]
    if not rows:
        return HistoryPage([], None, None)
    first, last = found[0], found[-1]
    if backwards:
        newer = cursor_of(first.started_at, first.id) if more else None
        older = cursor_of(last.started_at, last.id)
    else:
        newer = cursor_of(first.started_at, first.id) if before is not None else None
        older = cursor_of(last.started_at, last.id) if more else None
    return HistoryPage(rows, newer, older)


def _zone(tz_name: str):
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def daily_totals(conn: Connection, integration_id: int, tz_name: str, days: int = CHART_DAYS,
                 today: date | None = None) -> dict[str, list]:
    """Records processed and failed per day (the company's days) over the last `days` days,
    today included, zeros for days without a run; data-quality checks are not syncs and are
    left out. {"days": ["2026-11-08", ...], "records": [...], "failed": [...]}"""
    zone = _zone(tz_name)
    today = today or datetime.now(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    day = sa.cast(sa.func.timezone(tz_name if zone is not timezone.utc else "UTC", sync_log.c.started_at), sa.Date)
    found = {r.day: (int(r.records), int(r.failed)) for r in conn.execute(
        sa.select(day.label("day"), sa.func.sum(sync_log.c.records_processed).label("records"),
                  sa.func.sum(sync_log.c.records_failed).label("failed"))
        .where(sync_log.c.integration_id == integration_id, sync_log.c.started_at >= since,
               sync_log.c.sync_type != "check")
        .group_by(day))}
    dates = [first + timedelta(days=n) for n in range(days)]
    return {"days": [d.isoformat() for d in dates], "records": [found.get(d, (0, 0))[0] for d in dates],
            "failed": [found.get(d, (0, 0))[1] for d in dates]}
