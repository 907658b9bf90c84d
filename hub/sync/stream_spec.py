"""The types of a declarative pull stream: what it is, where it lands, how its records map
to local rows and how its pages are read. Each provider declares its streams in its own
folder (hub/providers/<name>/streams.py); the engine (engine.py) and the Dagster assets are
generated from them, so a new stream is a declaration and a mapping function, not new sync
code. This module holds only types, so every part of hub.sync can import it without a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

import sqlalchemy as sa

Row = dict[str, Any]
Pages = Iterator[list[dict[str, Any]]]


@dataclass
class PageCounts:
    """What one page did to the local tables."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0  # fields left for a person to settle (sync_conflict rows)

    def add(self, other: "PageCounts") -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.conflicts += other.conflicts


@dataclass(frozen=True)
class ReadScope:
    """What an adapter or a custom upsert may need beyond the records: the database (e.g. the
    linked Procore projects to read) and whose records these are."""

    engine: Any  # sqlalchemy Engine
    integration_id: int
    company_id: int
    conflict_policy: str = "field_ownership"  # from the integration's sync preferences


@dataclass(frozen=True)
class StreamSpec:
    provider: str
    name: str  # asset key: <provider>/<name>
    entity_type: str  # sync_log.entity_type
    table: sa.Table
    remote_entity: str  # the provider's name for it (QuickBooks entity, Xero resource)
    to_row: Callable[[dict[str, Any]], Row]  # remote record -> local columns (without provenance)
    remote_id: Callable[[dict[str, Any]], str]
    remote_version: Callable[[dict[str, Any]], str | None]
    is_deleted: Callable[[dict[str, Any]], bool]
    deleted_values: Row  # what a remote delete sets locally (rows are never dropped)
    read_filter: str | None = None  # provider-side filter for the stream (e.g. Xero suppliers)
    description: str = ""
    # a page writer other than the engine's plain upsert (lines, merges); same signature as
    # engine.upsert_page: (conn, stream, scope, records) -> PageCounts
    upsert: Callable[..., PageCounts] | None = None
    # streams of the same provider whose rows this one refers to (read first: asset deps)
    after: tuple[str, ...] = ()
    # the provider's paging adapter, shared by its streams: how a stream is read fully or
    # incrementally, resuming after `done` records:
    # (client, stream, since, done, page_size, scope) -> pages of records
    read: Callable[[Any, StreamSpec, datetime | None, int, int | None, ReadScope], Pages] = field(kw_only=True)
    # the adapter reads only the API (no database state the page writer changes), so the
    # engine may read the next page while it writes the current one
    prefetch: bool = field(default=False, kw_only=True)
    # the column values every local row of the stream has, when streams share a table (an
    # invoice's kind: bills and sales invoices): deletes and reconciliation touch only these
    # rows, and remote ids are unique within them (invoice: (integration_id, kind, remote_id))
    rows_where: Row = field(default_factory=dict, kw_only=True)

    def own_rows(self) -> list[sa.ColumnElement]:
        """SQL conditions selecting the stream's rows of its table (`rows_where`)."""
        return [self.table.c[name] == value for name, value in self.rows_where.items()]

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.name}"
