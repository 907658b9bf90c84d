"""What a SendGrid event webhook says about a message the hub sent (shared/reference/
providers.md 5.2): its delivery status, read by hub/notify/status.py through the spec's
`inbound.delivery_status`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.notify.status_report import StatusReport

# SendGrid's delivery events -> our message statuses (engagement events keep None: history only)
STATUS = {"processed": "processed", "deferred": "deferred", "delivered": "delivered", "bounce": "bounced", "dropped": "dropped"}


def delivery_status(payload: Any) -> StatusReport | None:
    """The report of one event, or None when it is not one. `sg_message_id` starts with the
    send's X-Message-Id, shared by every recipient of the send."""
    if not isinstance(payload, dict) or not payload.get("event"):
        return None
    event = str(payload["event"])
    detail = None
    if event == "bounce":
        kind = payload.get("type") or "bounce"
        detail = f"{kind}: {payload.get('status') or ''} {payload.get('reason') or ''}".strip()
    elif event in ("dropped", "deferred"):
        detail = str(payload.get("reason") or payload.get("response") or "") or None
    sg_id = str(payload.get("sg_message_id") or "")
    at = payload.get("timestamp")
    return StatusReport(STATUS.get(event), event, str(payload.get("email") or "").lower() or None,
                        sg_id.split(".", 1)[0] or None,
                        str(payload["hub_message_id"]) if payload.get("hub_message_id") else None, detail and detail[:500],
                        dt.datetime.fromtimestamp(at, dt.timezone.utc) if isinstance(at, (int, float)) else None,
                        id_covers_recipients=True)
