"""Is a messaging integration set up to send, and to report delivery back?

Each check asks the provider, because the hub's copy of a setting proves nothing about the
account: a Slack channel may have been archived, a SendGrid sender never verified, a Twilio
number released. Each provider's questions live in its folder (hub/providers/<name>/setup.py,
its spec's `messaging.check_setup`; they also guard `add-route`, refusing a route that cannot
work, with the reason); here they serve `hub notify check` (report every problem at once):

* Slack: the bot token works (auth.test); each route's channel exists, is not archived, and
  has the bot in it (chat.postMessage would answer ``not_in_channel``).
* SendGrid: the from address is a *verified* sender (SendGrid refuses mail from anyone else
  with a 403); each email route's template exists (after a template sync); the event webhook
  can be received (the integration has its verification key, so it has an inbound endpoint).
* Twilio: the from number is one of the account's numbers and can send SMS (else 21606 on
  every send); status callbacks have a public URL to go to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError
from hub.notify import callbacks
from hub.notify.routes import list_routes
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import ProviderError
from hub.providers.protocols import MessagingClient
from hub.redact import describe_error

__all__ = ["CheckReport", "check_integration"]


@dataclass
class CheckReport:
    integration_id: int
    provider: str
    name: str
    lines: list[str] = field(default_factory=list)  # what was found
    warnings: list[str] = field(default_factory=list)  # works, but something is missing (delivery status)
    problems: list[str] = field(default_factory=list)  # sending will fail

    @property
    def ok(self) -> bool:
        return not self.problems


def check_integration(engine: Engine, keyring: Keyring, integration_id: int, *, public_url: str | None = None,
                      client: MessagingClient | None = None) -> CheckReport:
    """Every check for one integration and its routes; problems are collected, not raised."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
        routes = [r for r in list_routes(conn, item.company_id) if r.integration_id == integration_id]
        inbound = callbacks.inbound_endpoint_id(conn, integration_id)
    report = CheckReport(integration_id, item.provider, item.name)
    spec = registry.get(item.provider)
    if spec.messaging is None:
        messaging = ", ".join(registry.with_capability("messaging"))
        report.problems.append(f"{item.provider} is not a messaging integration ({messaging})")
        return report
    if not item.is_active:
        report.problems.append("the integration is disabled")
    own = client is None
    try:
        client = client or open_client(engine, keyring, integration_id)
    except (HubError, KeyError) as exc:
        report.problems.append(f"cannot build a client: {describe_error(exc)}")
        return report
    try:
        _provider_checks(engine, keyring, item, routes, client, report)
    finally:
        if own:
            client.transport.close()
    base = callbacks.public_base(item.config, public_url)
    if spec.messaging.status_hint is not None:
        url = callbacks.status_url(base, item.provider, inbound)
        if inbound is None:
            report.warnings.append(f"no inbound endpoint: delivery status cannot come back (needs credential "
                                   f"{spec.inbound.secret_field}; then run `hub webhooks inbound --integration {item.id}`)")
        elif url is None:
            report.warnings.append(f"no public URL (config public_url or {callbacks.PUBLIC_URL_VAR}): delivery status cannot "
                                   f"come back to /webhooks/{item.provider}/{inbound}")
        else:
            report.lines.append(spec.messaging.status_hint.format(url=url))
    report.lines.append(f"{len(routes)} route(s)")
    return report


def _provider_checks(engine, keyring, item, routes, client, report: CheckReport) -> None:
    def attempt(what: str, fn, *args) -> Any:
        try:
            return fn(*args)
        except (ProviderError, HubError) as exc:
            report.problems.append(f"{what}: {exc}")
        except Exception as exc:  # an unexpected answer: say so, do not stop the other checks
            report.problems.append(f"{what}: {describe_error(exc)}")
        return None

    registry.get(item.provider).messaging.check_setup(engine, keyring, item, routes, client, report, attempt)
