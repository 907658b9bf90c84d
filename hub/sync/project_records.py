"""Procore pull streams (`procore/rfis`, `procore/submittals`, `procore/daily_logs`): how
they are read (the "procore" adapter of the sync engine) and written (their page writer).
The streams and their record mappings are declared in hub/providers/procore/streams.py,
which passes the client's page sizes to `read_linked`.

What is read: only the projects linked to the integration (`project.integration_id`,
`remote_id`; see procore_link.py), in local project id order. Per project:
- RFIs and submittals: the active list, then the recycle bin, each in id order.
  Incrementally both are filtered with `filters[updated_at]=<since>...<now>` (ISO 8601
  UTC joined with `...`, providers.md 3.2); recycling a record touches its `updated_at`
  in the emulator. A recycled record is stored with status "deleted" (its raw record,
  with `deleted_at`, stays in `data`); rows are never dropped. A record taken back out of
  the bin is active again and its next read restores its status.
- Daily logs: each typed list (manpower, notes, weather) by `start_date`/`end_date`,
  since Procore has no updated-at filter for them and, without dates, sends only today's.
  A full read covers the last FULL_LOG_DAYS days (not the project's whole history; within
  the 13-week range some clients report as the maximum); an incremental read re-reads
  from LOG_LOOKBACK_DAYS before `since` up to tomorrow (logs are written, and corrected,
  for recent days; the day after today covers projects in time zones ahead of UTC).
  Procore has no recycle bin for logs, so a log deleted remotely stays here (a gap).

A project linked after the last completed pull started (`linked_at > since`) is read in
full even in an incremental pull: its older records were never read.

Each record is tagged with the local project id, the log type and where it was read under
`_hub_*` keys; the page writer puts those in columns (and the cursor) and keeps the rest, as
Procore sent it, in `data`.

Resume. The engine says how many records an interrupted pull committed (`done`), but a
count is no safe offset here: between two attempts a record may move to the recycle bin
or a project may be linked, and every later position shifts. So the reads have a fixed
order (linked projects by local id; per project the reads of `_reads`; pages in id order)
and the page writer stores, in the same transaction as the page, the position of the page
(project, read, page number, page size) in the cursor row `<stream>:position`. A resumed
pull skips the projects and reads before that position and starts again *at* the last
committed page (so records that shifted back by up to a page are still read), keeping the
page size it had. Every page of a resumed pull drops the records this pull already wrote
at their current version (`synced_at` at or after the pull's start, same
`remote_version`). So nothing is skipped (unless more than a page of records left one list
between two attempts), and nothing is written or counted twice unless it changed remotely
in between. A project linked meanwhile before the position is left to
the next pull, which reads it in full (`linked_at > since`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.providers.protocols import ProjectClient
from hub.schema import project, sync_cursor
from hub.sync import procore_events
from hub.sync.stream_spec import PageCounts, Pages, ReadScope, StreamSpec

PROJECT, LOG_TYPE, RECYCLED, POSITION = "_hub_project_id", "_hub_log_type", "_hub_recycled", "_hub_position"
LOG_TYPES = ("manpower_logs", "notes_logs", "weather_logs")
FULL_LOG_DAYS = 90
LOG_LOOKBACK_DAYS = 7


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


# ---- page writer ----------------------------------------------------------------------
def write_page(conn: Connection, stream: StreamSpec, scope: ReadScope, records: list[dict[str, Any]]) -> PageCounts:
    """Upsert a page of one project-child stream on (integration, remote id).

    Unlike the engine's plain upsert, a record first seen in the recycle bin is inserted too
    (marked as the stream's `deleted_values` say), so the local set mirrors the remote one.
    RFI and submittal changes a person should hear about (reassigned, due date moved, a cost
    impact) are announced to the outbox in the page's transaction (procore_events.py)."""
    now = datetime.now(timezone.utc)
    rows: dict[str, dict[str, Any]] = {}
    deleted: set[str] = set()
    for r in records:  # the last occurrence of a record in a page wins
        rid = stream.remote_id(r)
        row = {**stream.to_row(r), "company_id": scope.company_id, "integration_id": scope.integration_id,
               "project_id": r[PROJECT], "remote_id": rid, "remote_version": stream.remote_version(r),
               "remote_updated_at": _moment(r.get("updated_at")), "synced_at": now,
               "data": {k: v for k, v in r.items() if not k.startswith("_hub_")}}
        if stream.is_deleted(r):
            row.update(stream.deleted_values)
            deleted.add(rid)
        else:
            deleted.discard(rid)
        rows[rid] = row
    if not rows:
        return PageCounts()
    before = procore_events.stored(conn, stream, scope.integration_id, rows)
    statement = insert(stream.table).values(list(rows.values()))
    keep = {"company_id", "integration_id", "remote_id"}
    changes = {c: statement.excluded[c] for c in next(iter(rows.values())) if c not in keep}
    written = conn.execute(
        statement.on_conflict_do_update(index_elements=["integration_id", "remote_id"], set_=changes)
        .returning(stream.table.c.remote_id, sa.literal_column("xmax = 0"))
    ).all()
    procore_events.announce(conn, stream, scope.company_id, before, rows, deleted)
    _save_position(conn, scope.integration_id, stream.name, records[-1][POSITION])
    counts = PageCounts()
    for rid, inserted in written:
        if rid in deleted:
            counts.deleted += 1
        elif inserted:
            counts.created += 1
        else:
            counts.updated += 1
    return counts


# ---- the adapter ----------------------------------------------------------------------
@dataclass(frozen=True)
class Position:
    """Where a page came from: local project, which of its reads (`_reads` order), page."""

    project: int
    read: int
    page: int
    per_page: int


def linked_projects(conn: Connection, integration_id: int) -> list[sa.Row]:
    """(id, remote_id, linked_at) of the integration's linked projects, by local id."""
    return conn.execute(
        sa.select(project.c.id, project.c.remote_id, project.c.linked_at)
        .where(project.c.integration_id == integration_id, project.c.remote_id.is_not(None))
        .order_by(project.c.id)
    ).all()


def read_linked(client: ProjectClient, stream: StreamSpec, since: datetime | None, done: int, page_size: int | None,
                scope: ReadScope, *, per_page: int, max_per_page: int) -> Pages:
    """The "procore" adapter: pages of `stream` over the linked projects (module docstring), of
    `per_page` records unless the caller asks for another size (at most `max_per_page`)."""
    now = datetime.now(timezone.utc)
    with scope.engine.connect() as conn:
        projects = linked_projects(conn, scope.integration_id)
        started, resume = _resume_point(conn, scope.integration_id, stream.name) if done else (None, None)
    per_page = resume.per_page if resume else min(page_size or per_page, max_per_page)
    for local_id, procore_id, linked_at in projects:
        if resume and local_id < resume.project:
            continue
        project_since = since if since is not None and linked_at is not None and linked_at <= since else None
        for read_no, (read, tags) in enumerate(_reads(client, stream.remote_entity, int(procore_id), project_since, now, per_page)):
            first = 1
            if resume and local_id == resume.project:
                if read_no < resume.read:
                    continue
                first = resume.page if read_no == resume.read else 1
            for page_no, page in enumerate(read(first), start=first):
                where = asdict(Position(local_id, read_no, page_no, per_page))
                tagged = [{**record, PROJECT: local_id, POSITION: where, **tags} for record in page]
                if started is not None:
                    with scope.engine.connect() as conn:
                        tagged = _not_written_since(conn, stream, scope.integration_id, tagged, started)
                if tagged:
                    yield tagged


def _reads(client: ProjectClient, entity: str, procore_id: int, since: datetime | None, now: datetime,
           per_page: int) -> list[tuple[Callable[[int], Pages], dict[str, Any]]]:
    """The list reads one project needs for `entity`, in a fixed order: (pages from a given
    start page, tags for their records)."""
    if entity in ("rfis", "submittals"):
        read = client.rfis if entity == "rfis" else client.submittals
        return [(partial(_changed_pages, read, procore_id, since, now, per_page, recycled), {RECYCLED: True} if recycled else {})
                for recycled in (False, True)]
    if entity != "daily_logs":
        raise ValueError(f"no Procore read for {entity!r}")
    today = now.date()
    start = today - timedelta(days=FULL_LOG_DAYS) if since is None else since.date() - timedelta(days=LOG_LOOKBACK_DAYS)
    end = today + timedelta(days=1)
    return [(partial(_log_pages, client, procore_id, log_type, start, end, per_page), {LOG_TYPE: log_type}) for log_type in LOG_TYPES]


def _changed_pages(read: Callable[..., Pages], procore_id: int, since: datetime | None, now: datetime, per_page: int,
                   recycled: bool, first: int) -> Pages:
    return read(procore_id, since, now, recycled=recycled, per_page=per_page, start_page=first)


def _log_pages(client: ProjectClient, procore_id: int, log_type: str, start: date, end: date, per_page: int, first: int) -> Pages:
    return client.daily_logs(procore_id, log_type, start, end, per_page, start_page=first)


def _resume_point(conn: Connection, integration_id: int, stream_name: str) -> tuple[datetime | None, Position | None]:
    """When the interrupted pull started (the engine keeps it in the stream's cursor) and the
    position of its last committed page (the page writer keeps it beside)."""
    cursors = dict(conn.execute(sa.select(sync_cursor.c.stream, sync_cursor.c.value).where(
        sync_cursor.c.integration_id == integration_id, sync_cursor.c.stream.in_([stream_name, position_key(stream_name)]))).all())
    started = ((cursors.get(stream_name) or {}).get("pull") or {}).get("started")
    position = cursors.get(position_key(stream_name))
    return (datetime.fromisoformat(started) if started else None), (Position(**position) if position else None)


def position_key(stream_name: str) -> str:
    return f"{stream_name}:position"


def _save_position(conn: Connection, integration_id: int, stream_name: str, position: dict[str, Any]) -> None:
    statement = insert(sync_cursor).values(integration_id=integration_id, stream=position_key(stream_name), value=position)
    conn.execute(statement.on_conflict_do_update(index_elements=["integration_id", "stream"],
                                                 set_={"value": statement.excluded.value, "updated_at": sa.func.now()}))


def _not_written_since(conn: Connection, stream: StreamSpec, integration_id: int, records: list[dict[str, Any]],
                       started: datetime) -> list[dict[str, Any]]:
    """`records` minus those this pull already wrote at their current version."""
    table = stream.table
    written = set(conn.execute(
        sa.select(table.c.remote_id, table.c.remote_version).where(
            table.c.integration_id == integration_id, table.c.synced_at >= started,
            table.c.remote_id.in_([stream.remote_id(r) for r in records]))
    ).all())
    return [r for r in records if (stream.remote_id(r), stream.remote_version(r)) not in written]
