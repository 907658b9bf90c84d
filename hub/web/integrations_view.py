"""What /settings/integrations shows: the company's integrations, grouped by the view
plan's categories, and the providers it has not connected yet, both from the provider
specs (hub/providers/registry.py). Reads only the summary columns: no encrypted column is
selected, so no secret can reach the page from here. Every query takes the company."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.integrations import SUMMARY_COLUMNS
from hub.providers import registry
from hub.providers.spec import ProviderSpec
from hub.redact import redact
from hub.schema import integration
from hub.web import times

# the view plan's order (DESIGN section 6), plus Delivery for the order marketplaces
CATEGORIES = (
    ("accounting", "Accounting"),
    ("project_management", "Project Management"),
    ("communication", "Communication"),
    ("payment", "Payments"),
    ("productivity", "Productivity"),
    ("delivery", "Delivery"),
)
# integration.status -> what the card says, and its tone (a CSS class)
STATUS = {
    "connected": ("Connected", "ok"),
    "pending": ("Not checked yet", "neutral"),
    "syncing": ("Syncing", "busy"),
    "error": ("Needs attention", "bad"),
    "disconnected": ("Disconnected", "neutral"),
}
ERROR_CHARS = 300


@dataclass(frozen=True)
class Card:
    id: int
    name: str
    provider: str
    display_name: str
    is_active: bool
    status_label: str
    tone: str
    last_sync: dict | None  # {"relative", "exact", "iso"}
    error: str | None  # redacted, capped
    syncs: bool = False  # the provider has a sync job ("Sync now" quick action)


@dataclass
class Category:
    key: str
    label: str
    cards: list[Card] = field(default_factory=list)
    available: list[ProviderSpec] = field(default_factory=list)  # providers not connected yet


def company_integration(conn: Connection, company_id: int, integration_id: int) -> sa.Row | None:
    """The integration if it belongs to the company; None otherwise (the page answers 404,
    whether the id is another company's or nobody's)."""
    return conn.execute(
        sa.select(*SUMMARY_COLUMNS).where(integration.c.id == integration_id, integration.c.company_id == company_id)
    ).first()


def card(row: sa.Row, spec: ProviderSpec | None, tz_name: str, now: datetime) -> Card:
    label, tone = STATUS.get(row.status, (row.status, "neutral"))
    if not row.is_active:
        label, tone = "Disabled", "off"
    last = None
    if row.last_sync_at:
        last = {"relative": times.relative(row.last_sync_at, now), "exact": times.exact(row.last_sync_at, tz_name),
                "iso": times.iso(row.last_sync_at)}
    error = None
    if row.error_message:
        # stored through describe_error already; redacted again, since the page is the last line
        error = redact(row.error_message)
        error = error if len(error) <= ERROR_CHARS else error[: ERROR_CHARS - 1] + "…"
    return Card(row.id, row.name, row.provider, spec.display_name if spec else row.provider, row.is_active,
                label, tone, last, error, syncs=bool(spec and spec.syncs))


def integrations_hub(conn: Connection, company_id: int, tz_name: str = "UTC", now: datetime | None = None) -> list[Category]:
    """The categories in the view plan's order, each with its cards and the providers still
    to connect; a category with neither is left out."""
    now = now or datetime.now(timezone.utc)
    specs = registry.providers()
    groups = {key: Category(key, label) for key, label in CATEGORIES}
    rows = conn.execute(
        sa.select(*SUMMARY_COLUMNS).where(integration.c.company_id == company_id).order_by(integration.c.name, integration.c.id)
    )
    connected = set()
    for row in rows:
        spec = specs.get(row.provider)
        key = row.integration_type
        groups.setdefault(key, Category(key, key.replace("_", " ").title()))
        groups[key].cards.append(card(row, spec, tz_name, now))
        connected.add(row.provider)
    for spec in sorted(specs.values(), key=lambda s: s.display_name.lower()):
        if spec.name not in connected:
            groups.setdefault(spec.category, Category(spec.category, spec.category.replace("_", " ").title()))
            groups[spec.category].available.append(spec)
    return [group for group in groups.values() if group.cards or group.available]
