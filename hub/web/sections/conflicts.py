"""Conflicts tab: fields changed differently in the hub and in the ledger since the last
sync (hub/sync/merge.py records them; a record with an open conflict is not exported), each
with its base, local and remote value and the two ways to settle it, as
`hub conflicts resolve` does (hub/sync/conflicts.py): keep the hub's value (exported with
the next run) or take the ledger's (written here now). The last settled ones are listed
below the open ones.

A conflict is looked up with the company and the integration before anything is settled:
another company's conflict id answers 404 like one that does not exist."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.errors import HubError
from hub.schema import invoice, sync_conflict, vendor
from hub.sync.conflicts import resolve_conflict
from hub.web import times
from hub.web.accounting_forms import ResolveForm, check
from hub.web.record_trail import record_href
from hub.web.sections import Section
from hub.web.sections.common import HOME, done

KEY = "conflicts"
OPEN_LIMIT = 200
RESOLVED_LIMIT = 20
VALUE_CHARS = 160
RESOLUTIONS = {"kept_local": "kept the hub's value", "took_remote": "took the ledger's value",
               "converged": "both sides came to agree"}


def _show(value: Any) -> dict[str, str]:
    """A field value as the page shows it: short text, and the whole of it when it is long."""
    if value is None or value == "":
        return {"short": "(empty)", "full": ""}
    text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str, ensure_ascii=False)
    flat = " ".join(text.split())
    return {"short": flat if len(flat) <= VALUE_CHARS else flat[: VALUE_CHARS - 1] + "…",
            "full": text if len(flat) > VALUE_CHARS else ""}


def _record_label() -> sa.ColumnElement:
    """What a person calls the record: a vendor's name, a bill's number."""
    return sa.case(
        (sync_conflict.c.entity_type == "vendor",
         sa.select(vendor.c.display_name).where(vendor.c.id == sync_conflict.c.local_id).scalar_subquery()),
        (sync_conflict.c.entity_type == "invoice",
         sa.select(invoice.c.number).where(invoice.c.id == sync_conflict.c.local_id).scalar_subquery()),
        else_=None,
    )


def conflicts(conn: Connection, company_id: int, integration_id: int, tz_name: str, *, open_: bool) -> list[dict]:
    query = (sa.select(sync_conflict, _record_label().label("record"))
             .where(sync_conflict.c.company_id == company_id, sync_conflict.c.integration_id == integration_id,
                    sync_conflict.c.status == "open" if open_ else sync_conflict.c.status != "open"))
    query = (query.order_by(sync_conflict.c.created_at, sync_conflict.c.id).limit(OPEN_LIMIT) if open_ else
             query.order_by(sync_conflict.c.resolved_at.desc().nulls_last(), sync_conflict.c.id.desc()).limit(RESOLVED_LIMIT))
    rows = []
    for r in conn.execute(query):
        when = r.created_at if open_ else (r.resolved_at or r.created_at)
        rows.append({
            "id": r.id, "entity_type": r.entity_type, "record": r.record or f"{r.entity_type} {r.local_id}", "field": r.field,
            "href": record_href(r.entity_type, r.local_id),
            "base": _show(r.base_value), "local": _show(r.local_value), "remote": _show(r.remote_value),
            "resolution": RESOLUTIONS.get(r.resolution or "", r.resolution or r.status),
            "when": {"relative": times.relative(when), "exact": times.exact(when, tz_name), "iso": times.iso(when)},
        })
    return rows


def load(conn, context, row, spec, query) -> dict:
    tz = context.company.timezone
    return {"open": conflicts(conn, context.company_id, row.id, tz, open_=True),
            "resolved": conflicts(conn, context.company_id, row.id, tz, open_=False)}


def resolve_action(pages, request: Request, context, row, data: FormData) -> Response:
    form, problem = check(ResolveForm, {k: v for k, v in data.items() if isinstance(v, str)})
    if form is None:
        return done(pages, request, row.id, KEY, f"Nothing changed. {problem}", "bad")
    try:
        with pages.engine.begin() as conn:
            owned = conn.scalar(sa.select(sync_conflict.c.id).where(
                sync_conflict.c.id == form.conflict_id, sync_conflict.c.company_id == context.company_id,
                sync_conflict.c.integration_id == row.id))
            if owned is None:
                raise HTTPException(404, "No such conflict.")
            settled = resolve_conflict(conn, form.conflict_id, form.keep)
    except HubError as exc:
        return done(pages, request, row.id, KEY, f"Nothing changed: {exc}.", "bad")
    side = "kept the hub's value; it goes out with the next export" if form.keep == "local" else "took the ledger's value"
    return done(pages, request, row.id, KEY, f"{settled.entity_type.capitalize()} {settled.field.replace('_', ' ')}: {side}.")


def routes(pages) -> list[Route]:
    return [Route(HOME + "/{integration_id:int}/" + KEY + "/resolve", pages.integration_action(partial(resolve_action, pages)),
                  methods=["POST"])]


SECTION = Section(key=KEY, label="Conflicts", template="sections/conflicts.html", load=load, routes=routes)
