"""How each provider pages a stream, fully or incrementally, resuming after `done` records.

Full reads page in an order that edits during the pull cannot shuffle (QuickBooks by Id,
Xero in creation order), so a pull that died after `done` records resumes at that offset
without skipping anything. Incremental reads use each provider's own mechanism:
- QuickBooks: CDC while the last sync is under 30 days old; CDC returns at most 1000
  objects, so when 1000 come back the window restarts at the newest change seen (an
  overlap of one instant, harmless because upserts are idempotent); else a full query;
- Xero: `If-Modified-Since` on the same paged read (accounts are one unpaged list).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from hub.providers.quickbooks import MAX_PAGE as QBO_PAGE, QuickBooksClient
from hub.providers.xero import XeroClient
from hub.sync.procore import read_linked as procore
from hub.sync.streams import ReadScope, StreamSpec

Pages = Iterator[list[dict[str, Any]]]
CDC_LIMIT = 1000
CDC_WINDOW = timedelta(days=29)  # the provider allows 30; keep a day of margin


def _qbo_time(record: dict[str, Any]) -> datetime | None:
    value = (record.get("MetaData") or {}).get("LastUpdatedTime")
    return datetime.fromisoformat(value) if value else None


def quickbooks(client: QuickBooksClient, stream: StreamSpec, since: datetime | None, done: int, page_size: int | None, scope: ReadScope) -> Pages:
    if since is not None and datetime.now(timezone.utc) - since < CDC_WINDOW:
        window = since
        while True:
            found, _ = client.cdc([stream.remote_entity], window)
            records = found.get(stream.remote_entity, [])
            if records:
                yield records
            if len(records) < CDC_LIMIT:
                return
            newest = max((t for t in map(_qbo_time, records) if t), default=None)
            if newest is None or newest <= window:
                raise RuntimeError("QuickBooks CDC returned 1000 changes at one instant; cannot narrow the window")
            window = newest
    size = min(page_size or QBO_PAGE, QBO_PAGE)
    yield from client.iter_query(stream.remote_entity, where=stream.read_filter, page_size=size, start_position=done + 1)


def xero(client: XeroClient, stream: StreamSpec, since: datetime | None, done: int, page_size: int | None, scope: ReadScope) -> Pages:
    if stream.remote_entity == "Accounts":  # the chart of accounts is one list
        records = client.accounts(modified_since=since)
        if records:
            yield records
        return
    size = page_size or 100
    params = {"includeArchived": "true", **({"where": stream.read_filter} if stream.read_filter else {})}
    yield from client.iter_pages(stream.remote_entity, params=params, modified_since=since, page_size=size, start_page=done // size + 1)


ADAPTERS: dict[str, Callable[..., Pages]] = {"quickbooks": quickbooks, "xero": xero, "procore": procore}  # procore: hub/sync/procore.py
