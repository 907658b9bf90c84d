"""Is a Twilio integration set up to send SMS? Asked of Twilio itself (a number may have been
released; a from number that is not the account's fails every send with 21606):
`from_number` guards adding a route (hub/notify/routes.py), `check_setup` is Twilio's part of
`hub notify check` (hub/notify/readiness.py, through the spec's `messaging.check_setup`)."""

from __future__ import annotations

from typing import Any

from hub.errors import ValidationError
from hub.providers.twilio.client import TwilioClient


def from_number(client: TwilioClient) -> str:
    """A line about the from number; raises when it is not the account's SMS-capable number."""
    summary = client.check()
    if not summary.get("from_number"):
        if getattr(client, "messaging_service_sid", None):
            return f"sends through Messaging Service {client.messaging_service_sid}"
        raise ValidationError("the Twilio integration has neither from_number nor messaging_service_sid")
    return f"from {summary['from_number']}: one of the account's {summary['phone_numbers']} number(s), SMS-capable"


def check_setup(engine: Any, keyring: Any, item: Any, routes: list[Any], client: TwilioClient, report: Any,
                attempt: Any) -> None:
    """The from number is one of the account's numbers and can send SMS."""
    line = attempt("phone number", from_number, client)
    if line:
        report.lines.append(line)
