"""What a Twilio status callback says about an SMS the hub sent: its delivery status, read by
hub/notify/status.py through the spec's `inbound.delivery_status`."""

from __future__ import annotations

from typing import Any

from hub.notify.status_report import StatusReport

# Twilio's MessageStatus -> our message statuses
STATUS = {"accepted": "accepted", "queued": "accepted", "sending": "accepted", "sent": "sent", "delivered": "delivered",
          "read": "delivered", "undelivered": "undelivered", "failed": "failed"}


def delivery_status(payload: Any) -> StatusReport | None:
    """The report of one callback (matched by MessageSid), or None when it is not one."""
    if not isinstance(payload, dict) or not payload.get("MessageSid") or not payload.get("MessageStatus"):
        return None
    event = str(payload["MessageStatus"])
    detail = f"Twilio error {payload['ErrorCode']}" if payload.get("ErrorCode") else None
    return StatusReport(STATUS.get(event), event, payload.get("To"), str(payload["MessageSid"]), None, detail, None)
