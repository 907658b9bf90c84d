"""What a messaging provider's delivery-status report says, in the hub's words: the shape its
parser (its spec's `inbound.delivery_status`, hub/providers/<name>/inbound.py) returns and
hub/notify/status.py applies to the message it is about."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class StatusReport:
    status: str | None  # our status it stands for (status.RANK); None: history only
    event: str  # the provider's own word
    recipient: str | None
    provider_message_id: str | None
    hub_message_id: str | None  # the custom argument a send carries, when the provider echoes it
    detail: str | None
    at: dt.datetime | None
    # the provider's message id covers every recipient of one send (SendGrid), so the
    # recipient is needed to pick the message
    id_covers_recipients: bool = False
