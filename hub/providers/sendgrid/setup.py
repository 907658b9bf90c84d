"""Is a SendGrid integration set up to send? Asked of SendGrid itself (it refuses mail from a
sender that is not verified, with a 403): `verified_sender` guards adding a route
(hub/notify/routes.py), `check_setup` is SendGrid's part of `hub notify check`
(hub/notify/readiness.py, through the spec's `messaging.check_setup`)."""

from __future__ import annotations

from typing import Any

from hub.errors import ValidationError
from hub.providers.sendgrid import templates as tpl
from hub.providers.errors import ConfigurationProblem
from hub.providers.sendgrid.client import SendGridClient


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



def check_setup(engine: Any, keyring: Any, item: Any, routes: list[Any], client: SendGridClient, report: Any,
                attempt: Any) -> None:
    """The from address is a verified sender; each email route's template exists (after a
    template sync)."""
    line = attempt("sender", verified_sender, client)
    if line:
        report.lines.append(line)
    synced = attempt("templates", tpl.sync, engine, keyring, item.id, client)
    if synced:
        report.lines.append(f"{synced.total} dynamic template(s) synced")
        with engine.connect() as conn:
            for route in routes:
                template_id = route.template.get("template_id")
                if not tpl.known(conn, item.id, template_id):
                    report.problems.append(f"route {route.id} ({route.name}): template {template_id} is not in SendGrid")
