"""Integration inventory: what each company has connected, by category and status.

This is what the `hub/integration_inventory` asset materializes and what the settings
overview will show: counts per (company, integration_type, status), plus the most
recent sync and the number of syncs that failed in the last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.schema import company, integration, sync_log


@dataclass(frozen=True)
class InventoryRow:
    company: str
    integration_type: str
    status: str
    active: int
    inactive: int
    last_sync_at: datetime | None
    failed_syncs_24h: int


def company_inventory(conn: Connection) -> list[InventoryRow]:
    failed_24h = (
        sa.select(sa.func.count())
        .where(
            sync_log.c.integration_id == integration.c.id,
            sync_log.c.status == "failed",
            sync_log.c.started_at > sa.func.now() - sa.text("interval '1 day'"),
        )
        .correlate(integration)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(
            company.c.name,
            integration.c.integration_type,
            integration.c.status,
            sa.func.count().filter(integration.c.is_active),
            sa.func.count().filter(sa.not_(integration.c.is_active)),
            sa.func.max(integration.c.last_sync_at),
            sa.func.coalesce(sa.func.sum(failed_24h), 0),
        )
        .select_from(company.join(integration))
        .group_by(company.c.name, integration.c.integration_type, integration.c.status)
        .order_by(company.c.name, integration.c.integration_type, integration.c.status)
    )
    return [InventoryRow(name, kind, status, int(active), int(inactive), last, int(failed)) for name, kind, status, active, inactive, last, failed in rows]


def summary(rows: list[InventoryRow]) -> dict[str, int]:
    """Totals for the asset's metadata: integrations, active ones, companies, categories."""
    return {
        "companies": len({r.company for r in rows}),
        "integrations": sum(r.active + r.inactive for r in rows),
        "active": sum(r.active for r in rows),
        "in_error": sum(r.active + r.inactive for r in rows if r.status == "error"),
        "categories": len({r.integration_type for r in rows}),
        "failed_syncs_24h": sum(r.failed_syncs_24h for r in rows),
    }


def to_markdown(rows: list[InventoryRow]) -> str:
    lines = ["| company | category | status | active | inactive | last sync | failed syncs (24h) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        last = r.last_sync_at.isoformat(timespec="seconds") if r.last_sync_at else "never"
        lines.append(f"| {r.company} | {r.integration_type} | {r.status} | {r.active} | {r.inactive} | {last} | {r.failed_syncs_24h} |")
    return "\n".join(lines)
