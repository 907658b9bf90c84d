"""What /settings/records/<kind>/<id> shows: one synced record's trail, where it came from and
where it went. Its remote id and version in each integration (the row's provenance and the
`external_ref` id map), every write the hub made of it at a provider (the `sync_write`
ledger), the sync_log runs that touched it, the outbound events about it (`outbox_event`,
with their webhook deliveries) and its sync conflicts.

Which sync_log runs touched a record: sync_log counts records, it does not list them, so a
run is tied to a record by what is certain: its errors name the record; or it is the export
run of the record's entity and integration during which a write of the record was made
(an export holds a per-(integration, entity) lock for its whole run, hub/sync/export.py, so
at most one such run is open at a time); or it is the import run of that entity and
integration during which the record was last synced (its `synced_at`).

The kinds are declared once in `KINDS`; an unknown kind, a record that does not exist and a
record of another company all answer the same: None (the page says 404). Every query takes
the company; nothing encrypted is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection

from hub.redact import redact
from hub.schema import (
    customer,
    external_order,
    external_ref,
    integration,
    invoice,
    outbox_event,
    pos_order,
    sync_conflict,
    sync_log,
    sync_write,
    vendor,
    webhook_delivery,
    webhook_endpoint,
)

LIMIT = 100  # rows per list on the page: the newest


@dataclass(frozen=True)
class RecordKind:
    key: str  # the URL segment
    label: str  # what a person calls it
    table: sa.Table
    entity_type: str  # its name in external_ref, sync_write, sync_conflict and sync_log
    title: Callable[[Mapping[str, Any]], str]
    facts: tuple[tuple[str, str], ...]  # (column, label) shown at the top
    outbox_keys: tuple[str, ...]  # payload keys of outbox events that carry this record's id
    only: tuple[str, str] | None = None  # (column, value): the rows of its table that are of this kind

    def select(self, company_id: int, record_id: int) -> sa.Select:
        """The record, if it is the company's (and of this kind)."""
        if "company_id" in self.table.c:
            query = sa.select(self.table).where(self.table.c.id == record_id, self.table.c.company_id == company_id)
        else:
            query = (sa.select(self.table).join(integration, integration.c.id == self.table.c.integration_id)
                     .where(self.table.c.id == record_id, integration.c.company_id == company_id))
        return query.where(self.table.c[self.only[0]] == self.only[1]) if self.only else query


KINDS: dict[str, RecordKind] = {k.key: k for k in (
    RecordKind("vendor", "Vendor", vendor, "vendor", lambda r: r["display_name"],
               (("display_name", "Name"), ("legal_name", "Legal name"), ("email", "Email"), ("phone", "Phone"),
                ("is_active", "Active"), ("created_at", "In the hub since"), ("updated_at", "Changed here")), ()),
    RecordKind("invoice", "Invoice", invoice, "invoice", lambda r: f"Invoice {r['number']}",
               (("number", "Number"), ("kind", "Kind"), ("status", "Status"), ("issue_date", "Issued"), ("due_date", "Due"),
                ("total", "Total"), ("currency", "Currency"), ("created_at", "In the hub since"), ("updated_at", "Changed here")),
               ("invoice_id",), only=("kind", "payable")),
    # receivables (issue 15 item 6): the same table, their own entity type in the id map and ledgers
    RecordKind("sales_invoice", "Sales invoice", invoice, "sales_invoice", lambda r: f"Sales invoice {r['number']}",
               (("number", "Number"), ("status", "Status"), ("issue_date", "Issued"), ("due_date", "Due"),
                ("total", "Total"), ("currency", "Currency"), ("created_at", "In the hub since"), ("updated_at", "Changed here")),
               ("invoice_id",), only=("kind", "receivable")),
    RecordKind("customer", "Customer", customer, "customer", lambda r: r["display_name"],
               (("display_name", "Name"), ("legal_name", "Legal name"), ("email", "Email"), ("phone", "Phone"),
                ("is_active", "Active"), ("created_at", "In the hub since"), ("updated_at", "Changed here")), ()),
    RecordKind("order", "Order", external_order, "external_order", lambda r: f"Order {r['external_id']}",
               (("external_id", "Marketplace order"), ("status", "Status"), ("created_at", "Received"),
                ("synced_at", "Synced")), ("external_order_id",)),
)}


def record_href(kind: str, record_id: Any) -> str | None:
    """The address of a record's trail page, or None when there is none to show (a kind
    without a trail, an id that is not a hub id). The one place the address is spelled."""
    text = str(record_id) if record_id is not None else ""
    return f"/settings/records/{kind}/{text}" if kind in KINDS and text.isdigit() else None


@dataclass
class Trail:
    kind: RecordKind
    record: dict[str, Any]
    title: str
    facts: list[tuple[str, Any]]
    links: list[dict[str, Any]]  # per integration: remote id, version, synced at, error
    writes: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    history: list[dict[str, Any]]  # an order's status history


def load_trail(conn: Connection, company_id: int, kind_key: str, record_id: int) -> Trail | None:
    """The trail of one record of the company; None for an unknown kind or a record that is
    not the company's (or does not exist)."""
    kind = KINDS.get(kind_key)
    if kind is None:
        return None
    found = conn.execute(kind.select(company_id, record_id)).mappings().first()
    if found is None:
        return None
    record = dict(found)
    ours = sa.select(integration.c.id).where(integration.c.company_id == company_id).scalar_subquery()
    own_ids = list(conn.scalars(sa.select(integration.c.id).where(integration.c.company_id == company_id)))
    links = _links(conn, kind, record, own_ids)
    writes = [dict(r) for r in conn.execute(
        sa.select(sync_write.c.id, sync_write.c.integration_id, integration.c.name.label("integration"), sync_write.c.operation,
                  sync_write.c.status, sync_write.c.remote_id, sync_write.c.remote_version, sync_write.c.attempts,
                  sync_write.c.error, sync_write.c.created_at, sync_write.c.updated_at)
        .join(integration, integration.c.id == sync_write.c.integration_id)
        .where(sync_write.c.integration_id.in_(own_ids), sync_write.c.entity_type == kind.entity_type,
               sync_write.c.local_id == record_id)
        .order_by(sync_write.c.id.desc()).limit(LIMIT)).mappings()]
    for write in writes:
        write["error"] = redact(write["error"]) if write["error"] else None
    facts = [(label, record.get(col)) for col, label in kind.facts]
    if kind.key == "order":
        facts.append(("POS order", order_pos(conn, company_id, record.get("order_id")) or "none (refused, or not answered yet)"))
    return Trail(
        kind=kind, record=record, title=kind.title(record), facts=facts,
        links=links, writes=writes, runs=_runs(conn, kind, record, own_ids, writes, links),
        events=_events(conn, kind, record, company_id), history=list(record.get("status_history") or [])[-LIMIT:],
        conflicts=[dict(r) for r in conn.execute(
            sa.select(sync_conflict.c.id, integration.c.name.label("integration"), sync_conflict.c.field, sync_conflict.c.base_value,
                      sync_conflict.c.local_value, sync_conflict.c.remote_value, sync_conflict.c.status,
                      sync_conflict.c.resolution, sync_conflict.c.created_at, sync_conflict.c.resolved_at)
            .join(integration, integration.c.id == sync_conflict.c.integration_id)
            .where(sync_conflict.c.company_id == company_id, sync_conflict.c.integration_id.in_(ours),
                   sync_conflict.c.entity_type == kind.entity_type, sync_conflict.c.local_id == record_id)
            .order_by(sync_conflict.c.id.desc()).limit(LIMIT)).mappings()],
    )


def _links(conn: Connection, kind: RecordKind, record: dict[str, Any], own_ids: list[int]) -> list[dict[str, Any]]:
    """Per integration of the company that knows the record: its remote id and version, from
    the row's provenance (the ledger it belongs to) and the id map (every ledger it was
    written to or matched in)."""
    names = dict(conn.execute(sa.select(integration.c.id, integration.c.name).where(integration.c.id.in_(own_ids))).all())
    providers = dict(conn.execute(sa.select(integration.c.id, integration.c.provider).where(integration.c.id.in_(own_ids))).all())
    out: dict[int, dict[str, Any]] = {}
    home = record.get("integration_id")
    if home in names:
        out[home] = {"integration_id": home, "integration": names[home], "provider": providers[home], "home": True,
                     "remote_id": record.get("remote_id") or record.get("external_id"),
                     "remote_version": record.get("remote_version"), "synced_at": record.get("synced_at"),
                     "error": redact(record["sync_error"]) if record.get("sync_error") else None}
    for ref in conn.execute(sa.select(external_ref).where(
            external_ref.c.integration_id.in_(own_ids), external_ref.c.entity_type == kind.entity_type,
            external_ref.c.local_id == record["id"])).mappings():
        link = out.setdefault(ref["integration_id"], {"integration_id": ref["integration_id"], "integration": names[ref["integration_id"]],
                                                      "provider": providers[ref["integration_id"]], "home": False, "error": None})
        link.update(remote_id=ref["remote_id"], remote_version=ref["remote_version"], synced_at=ref["synced_at"])
    return sorted(out.values(), key=lambda link: link["integration_id"])


def _runs(conn: Connection, kind: RecordKind, record: dict[str, Any], own_ids: list[int], writes: list[dict[str, Any]],
          links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sync_log runs that touched the record, each with why (see the module docstring)."""
    columns = (sync_log.c.id, sync_log.c.integration_id, integration.c.name.label("integration"), sync_log.c.action,
               sync_log.c.direction, sync_log.c.status, sync_log.c.records_processed, sync_log.c.records_failed,
               sync_log.c.started_at, sync_log.c.completed_at, sync_log.c.dagster_run_id)
    base = sa.select(*columns).join(integration, integration.c.id == sync_log.c.integration_id).where(
        sync_log.c.integration_id.in_(own_ids), sync_log.c.entity_type == kind.entity_type)
    found: dict[int, dict[str, Any]] = {}

    def note(rows, why: Callable[[Mapping[str, Any]], str]) -> None:
        for row in rows.mappings():
            found.setdefault(row["id"], {**row, "why": []})["why"].append(why(row))

    named = sync_log.c.errors.contains([{"record_id": str(record["id"])}])
    errors = sa.func.jsonb_path_query_first(sync_log.c.errors, sa.literal_column("'$[*] ? (@.record_id == $id).message'"),
                                            sa.func.jsonb_build_object("id", str(record["id"])))
    note(conn.execute(base.add_columns(errors.label("message")).where(named).order_by(sync_log.c.id.desc()).limit(LIMIT)),
         lambda r: f"named it in its errors: {redact(str(r['message']))}" if r["message"] is not None else "named it in its errors")
    within = lambda at: sa.and_(sync_log.c.started_at <= at, sa.func.coalesce(sync_log.c.completed_at, sa.func.now()) >= at)  # noqa: E731
    for write in writes:
        note(conn.execute(base.where(sync_log.c.integration_id == write["integration_id"], sync_log.c.direction == "outbound",
                                     sync_log.c.sync_type != "check",
                                     sa.or_(within(write["created_at"]), within(write["updated_at"])))
                          .order_by(sync_log.c.id.desc()).limit(3)),
             lambda r, w=write: f"sent its {w['operation']} ({w['status']})")
    for link in links:
        if link.get("synced_at") is not None:
            note(conn.execute(base.where(sync_log.c.integration_id == link["integration_id"], sync_log.c.direction == "inbound",
                                         within(link["synced_at"])).order_by(sync_log.c.id.desc()).limit(1)),
                 lambda r: "imported it (its last sync)")
    return sorted(found.values(), key=lambda run: run["started_at"], reverse=True)[:LIMIT]


def _events(conn: Connection, kind: RecordKind, record: dict[str, Any], company_id: int) -> list[dict[str, Any]]:
    """The outbox events that carry this record's id (an order's also those of the POS order
    it became), each with its deliveries per endpoint: latest status and attempts."""
    if not kind.outbox_keys:
        return []
    matches = [outbox_event.c.payload[key].astext == str(record["id"]) for key in kind.outbox_keys]
    if kind.key == "order" and record.get("order_id") is not None:
        matches.append(outbox_event.c.payload["pos_order_id"].astext == str(record["order_id"]))
    events = [dict(r) for r in conn.execute(
        sa.select(outbox_event.c.id, outbox_event.c.event_type, outbox_event.c.payload, outbox_event.c.created_at,
                  outbox_event.c.dispatched_at)
        .where(outbox_event.c.company_id == company_id, sa.or_(*matches))
        .order_by(outbox_event.c.id.desc()).limit(LIMIT)).mappings()]
    if not events:
        return []
    attempts = sa.func.count().over(partition_by=(webhook_delivery.c.outbox_event_id, webhook_delivery.c.endpoint_id))
    latest = (sa.select(webhook_delivery.c.outbox_event_id, webhook_endpoint.c.name.label("endpoint"), attempts.label("attempts"),
                        webhook_delivery.c.status, webhook_delivery.c.response_code)
              .join(webhook_endpoint, webhook_endpoint.c.id == webhook_delivery.c.endpoint_id)
              .where(webhook_delivery.c.outbox_event_id.in_([e["id"] for e in events]), webhook_endpoint.c.company_id == company_id)
              .ext(distinct_on(webhook_delivery.c.outbox_event_id, webhook_delivery.c.endpoint_id))
              .order_by(webhook_delivery.c.outbox_event_id, webhook_delivery.c.endpoint_id, webhook_delivery.c.attempt.desc()))
    by_event: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(latest).mappings():  # the latest attempt per (event, endpoint)
        by_event.setdefault(row["outbox_event_id"], []).append({k: row[k] for k in ("endpoint", "attempts", "status", "response_code")})
    for event in events:
        event["deliveries"] = sorted(by_event.get(event["id"], []), key=lambda d: d["endpoint"])
        event["summary"] = _summary(event["payload"])
    return events


def _summary(payload: Mapping[str, Any]) -> str:
    """An event's gist: its status change if it has one, else its top-level keys."""
    if "status" in payload:
        before = payload.get("previous_status")
        return f"{before} → {payload['status']}" if before else str(payload["status"])
    return ", ".join(sorted(str(k) for k in payload)[:6])


def order_pos(conn: Connection, company_id: int, order_id: int | None) -> str | None:
    """The POS order number an order became (None when it was refused or not yet answered)."""
    if order_id is None:
        return None
    return conn.scalar(sa.select(pos_order.c.order_number).where(pos_order.c.id == order_id, pos_order.c.company_id == company_id))
