"""What a messaging provider says about one setting a route depends on: the Slack channel,
the SendGrid from address, the Twilio from number. Each asks the provider (the hub's copy of
a setting proves nothing about the account) and raises with the reason when sending would
fail.

They are their own module because two callers need them: `routes.add_route` refuses a route
that cannot work, and `checks.check_integration` (which lists the routes) reports every
problem of an integration at once.
"""

from __future__ import annotations

from hub.errors import ValidationError
from hub.providers.errors import ConfigurationProblem
from hub.providers.sendgrid.client import SendGridClient
from hub.providers.slack.client import SlackClient
from hub.providers.twilio.client import TwilioClient

__all__ = ["resolve_channel", "verified_sender", "from_number"]


def resolve_channel(client: SlackClient, channel: str) -> tuple[str, str]:
    """(channel id, name) of `channel` (an id, ``#name`` or ``name``), if the bot can post there."""
    wanted = channel.strip().lstrip("#")
    if not wanted:
        raise ValidationError("no Slack channel given (and the integration has no default_channel)")
    found = next((c for c in client.channels(include_private=True, exclude_archived=False) if wanted in (c["id"], c["name"])), None)
    if found is None:
        raise ValidationError(f"Slack channel {channel} not found (a private channel is visible only with the bot in it)")
    if found.get("is_archived"):
        raise ValidationError(f"Slack channel #{found['name']} is archived")
    if not found.get("is_member"):
        raise ValidationError(f"the bot is not a member of #{found['name']}: invite it (/invite @<bot>) and try again")
    return str(found["id"]), str(found["name"])


def verified_sender(client: SendGridClient) -> str:
    """A line about the from address; raises when SendGrid would refuse mail from it."""
    summary = client.check()
    address = summary.get("from_email")
    if not address:
        raise ValidationError("the SendGrid integration has no from_email")
    if not summary.get("from_verified"):
        why = summary.get("from_status") or "not verified"
        raise ConfigurationProblem("sendgrid", f"from address {address} is not a verified sender ({why}); verify it in SendGrid "
                                               "(Settings > Sender Authentication) or authenticate its domain")
    return f"from {address}: verified sender"


def from_number(client: TwilioClient) -> str:
    """A line about the from number; raises when it is not the account's SMS-capable number."""
    summary = client.check()
    if not summary.get("from_number"):
        if getattr(client, "messaging_service_sid", None):
            return f"sends through Messaging Service {client.messaging_service_sid}"
        raise ValidationError("the Twilio integration has neither from_number nor messaging_service_sid")
    return f"from {summary['from_number']}: one of the account's {summary['phone_numbers']} number(s), SMS-capable"
