"""Is a Slack integration set up to post? Asked of Slack itself (a channel may have been
archived, the bot removed): `resolve_channel` guards adding a route (hub/notify/routes.py),
`check_setup` is Slack's part of `hub notify check` (hub/notify/readiness.py, through the spec's
`messaging.check_setup`)."""

from __future__ import annotations

from typing import Any

from hub.errors import ValidationError
from hub.providers.slack.client import SlackClient


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



def check_setup(engine: Any, keyring: Any, item: Any, routes: list[Any], client: SlackClient, report: Any,
                attempt: Any) -> None:
    """The bot token works (auth.test); each route's channel exists, is not archived, and has
    the bot in it (chat.postMessage would answer ``not_in_channel``)."""
    who = attempt("bot token", client.check)
    if who:
        report.lines.append(f"workspace {who.get('team')} ({who.get('team_id')}), bot {who.get('bot_user')}")
        for route in routes:
            found = attempt(f"route {route.id} ({route.name})", resolve_channel, client, route.target or "")
            if found:
                report.lines.append(f"route {route.id}: #{found[1]} ({found[0]}) exists, bot is a member")
