"""Delivery tracking of a messaging integration: its recent messages, one row per
recipient, from the notifier's ledger (hub/notify/message_ledger.py, written before each
provider call) with the status the provider reported back since (hub/notify/status.py
applies SendGrid's event webhook and Twilio's status callbacks): delivered, bounced,
dropped, undelivered, failed, or still on the way. Read only: a resend is a decision a
person makes after checking (`hub notify resend`), not a click here.

Shown for the providers whose spec lists "deliveries" in `pages`; nothing here depends on
which provider it is (the ledger is the same for all)."""

from __future__ import annotations

from datetime import datetime, timezone

from hub.notify import message_ledger
from hub.notify.status import RANK
from hub.redact import redact
from hub.web import times
from hub.web.sections import Section

KEY = "deliveries"
LIMIT = 100
FAILED = ("bounced", "dropped", "undelivered", "failed", "refused")
ON_THE_WAY = ("sending", "accepted", "processed", "deferred", "sent")
DETAIL_CHARS = 300


def tone(status: str) -> str:
    if status == "delivered":
        return "ok"
    if status in FAILED:
        return "bad"
    if status in ON_THE_WAY:
        return "busy"
    return "neutral"


def load(conn, context, row, spec, query) -> dict:
    wanted = query.get("status", "")
    status = wanted if wanted in RANK else None
    tz, now = context.company.timezone, datetime.now(timezone.utc)
    found = message_ledger.list_messages(conn, company_id=context.company_id, integration_id=row.id, status=status, limit=LIMIT)
    shown = []
    for m in found:
        detail = redact(m.detail)[:DETAIL_CHARS] if m.detail else None
        shown.append({"id": m.id, "recipient": m.recipient, "route": m.route_name, "event_type": m.event_type,
                      "status": m.status, "tone": tone(m.status), "detail": detail, "attempt": m.attempt,
                      "when": {"relative": times.relative(m.updated_at, now), "exact": times.exact(m.updated_at, tz),
                               "iso": times.iso(m.updated_at)},
                      "history": [{"event": str(h.get("event") or ""), "at": str(h.get("at") or ""),
                                   "detail": redact(str(h["detail"]))[:DETAIL_CHARS] if h.get("detail") else None}
                                  # in the order they happened (they are applied in the order they arrive)
                                  for h in sorted((h for h in m.history if isinstance(h, dict)), key=lambda h: str(h.get("at")))]})
    counts = message_ledger.status_counts(conn, company_id=context.company_id, integration_id=row.id)
    totals = [{"status": s, "count": n, "tone": tone(s)} for s, n in sorted(counts.items(), key=lambda i: (-RANK.get(i[0], 0), i[0]))]
    return {"messages": shown, "totals": totals, "status": status, "limit": LIMIT}


SECTION = Section(key=KEY, label="Deliveries", template="sections/deliveries.html", load=load)
