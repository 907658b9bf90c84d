"""The "Export preview" tab of an accounting integration (providers with the "accounting"
capability list it in their spec's `pages`): what the next export would do, record by record,
computed by the export's own plan in a dry run (hub/sync/export_preview.py) that writes
nothing. Counts per action at the top, then the records, paged, each linked to its trail
(/settings/records/<kind>/<id>). Viewers see it too: it changes nothing.

It reads the provider (GETs and queries) on every load; a provider that cannot be reached
or refuses the credentials shows why (redacted), never an error page. Calls are not
retried for long here: a person is waiting.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException

from hub.crypto import Keyring
from hub.errors import HubError
from hub.providers.transport import RetrySettings
from hub.redact import describe_error
from hub.sync.export import ACTIONS, Change, Decision
from hub.sync.export_preview import LIMIT, Preview, preview_export
from hub.web.record_trail import record_href
from hub.web.sections import Section

PAGE_SIZE = 50
RETRY = RetrySettings(max_attempts=2, base_delay_s=0.2, max_delay_s=1.0, max_retry_after_s=5.0, timeout_s=10.0)
LABELS = {"create": "Create", "update": "Update", "link": "Link", "hold": "Hold back", "skip": "Nothing to send"}
HOLDS = {"conflict": "open conflict", "mapping": "account mapping", "check": "failing quality check", "vendor": "vendor",
         "status": "status", "lines": "no lines", "duplicate": "already used", "refused": "refused look-up",
         "customer": "customer", "coding": "account suggested", "possible_duplicate": "possible duplicate"}
ENTITIES = {"vendor": "Vendor", "invoice": "Invoice", "customer": "Customer", "sales_invoice": "Sales invoice"}


def _text(value: Any) -> str:
    """A field value as a person reads it in the table."""
    if value is None or value == "" or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{v}" for v in value.values() if v not in (None, "")) or "—"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _change(change: Change) -> dict[str, str]:
    return {"field": change.field.replace("_", " "), "old": _text(change.old), "new": _text(change.new)}


def _row(decision: Decision) -> dict[str, Any]:
    return {"entity": ENTITIES.get(decision.entity_type, decision.entity_type), "local_id": decision.local_id,
            "label": decision.label, "action": decision.action, "action_label": LABELS[decision.action],
            "hold": HOLDS.get(decision.hold or "", decision.hold), "reason": decision.reason, "remote_id": decision.remote_id,
            "changes": [_change(c) for c in decision.changes],
            "href": record_href(decision.entity_type, decision.local_id)}


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPException(400, f"'{name}' must be a whole number from 1, not '{raw[:20]}'.")
    return int(raw)


def load(conn, context, row, spec, query) -> dict:
    action = query.get("action") or "all"
    if action != "all" and action not in ACTIONS:
        raise HTTPException(400, f"There is no action '{action[:20]}' to filter on; use one of {', '.join(ACTIONS)}.")
    page = _int(query, "page", 1)
    try:
        preview: Preview | None = preview_export(conn.engine, Keyring.from_env(), row.id, retry=RETRY)
        error = None
    except HubError as exc:
        preview, error = None, describe_error(exc)
    if preview is None:
        return {"error": error, "action": action}
    shown = [d for d in preview.decisions if action == "all" or d.action == action]
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    if page > pages:
        raise HTTPException(404, f"There is no page {page}: the preview has {pages}.")
    return {
        "error": None, "action": action, "page": page, "pages": pages, "total": len(shown),
        "counts": [(a, LABELS[a], n) for a, n in preview.counts.items() if a != "skip" or n],
        "rows": [_row(d) for d in shown[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]],
        "skipped": [(ENTITIES.get(e, e), why) for e, why in preview.skipped.items()],
        "failing_checks": preview.failing_checks,
        "undecided": [(ENTITIES.get(e, e), n) for e, n in preview.undecided.items()], "limit": LIMIT,
        "base": f"/settings/integrations/{row.id}/export-preview",
    }


SECTION = Section(key="export-preview", label="Export preview", template="sections/export_preview.html", load=load)
