"""Domain events of the Procore import: `task.assigned`, `schedule.changed` and `budget.alert`,
emitted by the RFI / submittal page writer (procore.py `write_page`) in the page's transaction.

How a change is found: before the page is upserted, `stored` reads the page's rows as they are
(one query); `data` holds the last remote record the hub saw. After the upsert, `announce`
compares each stored record with the incoming one:

- `task.assigned`: someone new has the record. An RFI has two roles, who has the ball in court
  (`ball_in_court` / `ball_in_courts`: who must act now) and its assignees (`assignee` /
  `assignees`); a submittal only the ball in court (a list in v1.1). People are compared by
  id: a person in a role who was not in it before is assigned (the ball in court first). One
  event per record, for the first such person; a role that only loses people emits nothing.
- `schedule.changed`: `due_date` changed (RFI, submittal), or an RFI's `schedule_impact`
  (`{status, value}`, value in days). `changes` holds before/after of each changed field.
- `budget.alert`: an RFI's `cost_impact` became a cost (status yes_known or yes_unknown) or
  its value changed while it is one. The payload carries before/after and the project's total
  known cost impact (yes_known values over its RFIs not deleted) after the page's writes.
  A cost impact going back to none / TBD is not an alert.

No events for a record seen for the first time (the first import of a project would announce
its whole history) nor for a record that arrives deleted (recycled). Every event is written
with the page's rows, so a page that rolls back announces nothing, a rerun after a killed page
announces its changes once, and a re-read of an unchanged record (overlapping windows, a
resumed pull) compares equal and announces nothing.
"""

from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.outbound.outbox import emit
from hub.schema import project
from hub.sync.stream_spec import StreamSpec

WATCHED = ("rfi", "submittal")  # stream.entity_type; daily logs announce nothing
COSTS = ("yes_known", "yes_unknown")  # cost impact statuses that are a cost
_ROLES = {"rfi": (("ball_in_court", ("ball_in_courts", "ball_in_court")), ("assignee", ("assignees", "assignee"))),
          "submittal": (("ball_in_court", ("ball_in_court", "ball_in_courts")),)}
_KEYS = ("ball_in_court", "ball_in_courts", "assignee", "assignees", "due_date", "schedule_impact", "cost_impact")
_AMOUNT = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
_KNOWN_COST = sa.text(
    "SELECT project_id, coalesce(sum(CASE WHEN (data->'cost_impact'->>'value') ~ :amount "
    "THEN (data->'cost_impact'->>'value')::numeric END), 0) FROM rfi "
    "WHERE project_id = ANY(:projects) AND status IS DISTINCT FROM 'deleted' "
    "AND data->'cost_impact'->>'status' = 'yes_known' GROUP BY project_id")


def stored(conn: Connection, stream: StreamSpec, integration_id: int, remote_ids: Iterable[str]) -> dict[str, sa.Row]:
    """{remote id: (id, remote_id, project_id, data, seen)} of the page's records already
    stored, `data` cut to the keys compared (`seen`: it holds a remote record at all); empty
    for streams that announce nothing."""
    if stream.entity_type not in WATCHED:
        return {}
    t = stream.table
    data = sa.func.jsonb_build_object(*(part for key in _KEYS for part in (key, t.c.data[key])))
    rows = conn.execute(sa.select(t.c.id, t.c.remote_id, t.c.project_id, data.label("data"), t.c.data.has_key("id").label("seen"))
                        .where(t.c.integration_id == integration_id, t.c.remote_id.in_(list(remote_ids)))).all()
    return {r.remote_id: r for r in rows}


def announce(conn: Connection, stream: StreamSpec, company_id: int, before: dict[str, sa.Row],
             rows: dict[str, dict[str, Any]], deleted: set[str]) -> int:
    """Emit the events of the page's changes (module docstring); how many. `rows` are the
    page's upserted rows by remote id (with the incoming record in `data`), `deleted` the
    remote ids that arrived recycled."""
    if not before:
        return 0
    entity = stream.entity_type
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (type, record fields, event fields)
    for rid, old in before.items():
        row = rows.get(rid)
        if row is None or rid in deleted or not old.seen:
            continue
        was, now = old.data, row["data"]
        record = {"entity": entity, "id": old.id, "remote_id": rid, "number": row.get("number"),
                  ("subject" if entity == "rfi" else "title"): row.get("subject" if entity == "rfi" else "title"),
                  "project_id": row["project_id"], "url": now.get("link")}
        assigned = _assigned(entity, was, now)
        if assigned is not None:
            found.append(("task.assigned", record, assigned))
        changes = {}
        if _day(was.get("due_date")) != _day(now.get("due_date")):
            changes["due_date"] = {"before": _day(was.get("due_date")), "after": _day(now.get("due_date"))}
        if entity == "rfi" and _impact(was.get("schedule_impact")) != _impact(now.get("schedule_impact")):
            changes["schedule_impact"] = {"before": _impact(was.get("schedule_impact")), "after": _impact(now.get("schedule_impact"))}
        if changes:
            found.append(("schedule.changed", record, {"changes": changes}))
        cost_before, cost_after = _impact(was.get("cost_impact")), _impact(now.get("cost_impact"))
        if entity == "rfi" and cost_after["status"] in COSTS and cost_after != cost_before:
            found.append(("budget.alert", record, {"cost_impact": {"before": cost_before, "after": cost_after}}))
    if not found:
        return 0
    project_ids = sorted({record["project_id"] for _, record, _ in found})
    projects = {p.id: {"id": p.id, "name": p.name, "remote_id": p.remote_id} for p in conn.execute(
        sa.select(project.c.id, project.c.name, project.c.remote_id).where(project.c.id.in_(project_ids)))}
    totals: dict[int, float] = {}
    if any(kind == "budget.alert" for kind, _, _ in found):
        totals = {p: round(float(total), 2) for p, total in conn.execute(
            _KNOWN_COST, {"amount": _AMOUNT, "projects": [r["project_id"] for k, r, _ in found if k == "budget.alert"]})}
    for kind, record, extra in found:
        fields = {k: v for k, v in record.items() if k != "project_id"}
        payload = {**fields, "project": projects.get(record["project_id"]), **extra}
        if kind == "budget.alert":
            payload["project_known_cost_impact"] = totals.get(record["project_id"], 0.0)
        emit(conn, company_id, kind, payload)
    return len(found)


def _people(record: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The people under the first of `keys` the record has (an object or a list of them)."""
    for key in keys:
        value = record.get(key)
        if value:
            items = value if isinstance(value, list) else [value]
            return [{"id": p.get("id"), "name": p.get("name"), "login": p.get("login")}
                    for p in items if isinstance(p, dict) and p.get("id") is not None]
    return []


def _assigned(entity: str, was: dict[str, Any], now: dict[str, Any]) -> dict[str, Any] | None:
    """`{"role", "assignee", "previous_assignee"}` for the first person new in a role, or None."""
    for role, keys in _ROLES[entity]:
        old, new = _people(was, keys), _people(now, keys)
        known = {str(p["id"]) for p in old}
        added = [p for p in new if str(p["id"]) not in known]
        if added:
            return {"role": role, "assignee": added[0], "previous_assignee": old[0] if old else None}
    return None


def _day(value: Any) -> str | None:
    return str(value)[:10] if value else None


def _impact(value: Any) -> dict[str, Any]:
    """A cost / schedule impact as `{"status", "value"}` (value a number or None), comparable."""
    if not isinstance(value, dict):
        return {"status": None, "value": None}
    amount = value.get("value")
    try:
        amount = None if amount in (None, "") or isinstance(amount, bool) else float(amount)
    except (TypeError, ValueError):
        amount = None
    status = value.get("status")
    return {"status": str(status).lower() if status else None, "value": amount}
