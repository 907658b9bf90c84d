"""Notification routes: which of a company's events go to a Slack channel, to email
(SendGrid dynamic template) or to SMS (Twilio), and how the message looks.

The model, and why: a route **is** an outbound `webhook_endpoint` row (company-wide,
``direction = 'outbound'``, its ``integration_id`` naming the messaging integration), so
everything the dispatcher does for webhooks it does for notifications without a copy:
fan-out from the outbox, leased claims, the retry schedule, the delivery log (``hub
webhooks deliveries``), replay, enable/disable and auto-disable. Its ``url`` names the
channel by scheme, which picks the sender (hub/outbound/senders.py):

| kind | url | target / recipients | template |
|---|---|---|---|
| slack | ``slack://<integration>/<channel id>`` | the channel (resolved to its id) | ``text``, ``title``, ``blocks`` (Block Kit) with ``{{placeholders}}`` |
| email | ``sendgrid://<integration>/<template id>`` | up to 25 addresses, one email each | ``template_id`` (dynamic; the event is its data) |
| sms | ``twilio://<integration>`` | up to 10 E.164 numbers, one SMS each | ``body`` with ``{{placeholders}}`` |

The 1:1 `notification_route` row holds the kind, target, recipients and template (the
endpoint's ``payload_options`` keep their webhook meaning, and ``{"mode": "thin"}`` or
``fields`` shape what a template can see). Each route is also subscribed to
``webhook.test``, so ``hub notify test`` reaches it.

Retry policies differ from webhooks': Slack routes send one message at a time (the
channel's order, and Slack's ~1/s per channel), every route honours a 429's Retry-After up
to 100 times the scheduled wait (`retry_after_max_factor`), and waits start shorter
(a notification an hour late is mostly useless).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.notify import render
from hub.outbound.endpoints import validate_events
from hub.outbound.policy import DeliveryPolicy
from hub.providers.connect import open_client
from hub.providers.protocols import MessagingClient
from hub.providers.sendgrid import templates as tpl
from hub.providers.sendgrid.setup import verified_sender
from hub.providers.slack.setup import resolve_channel
from hub.providers.twilio.setup import from_number
from hub.schema import integration, notification_route, webhook_endpoint
from hub.inbound.provider_endpoints import create_inbound

__all__ = ["KINDS", "Route", "add_route", "list_routes", "get_route", "remove_route", "find_integration", "TEST_EVENT",
           "kind_of", "company_route", "set_template"]

KINDS = {"slack": "slack", "email": "sendgrid", "sms": "twilio"}  # kind -> provider (= URL scheme)
TEST_EVENT = "webhook.test"
MAX_RECIPIENTS = {"email": 25, "sms": 10}
POLICIES: dict[str, dict[str, Any]] = {
    "slack": {"schedule": [1, 5, 30, 120, 600, 1800, 3600], "retry_after_max_factor": 100, "concurrency": 1, "timeout": 10},
    "email": {"schedule": [5, 30, 300, 1800, 7200], "retry_after_max_factor": 100, "concurrency": 4, "timeout": 15},
    "sms": {"schedule": [5, 30, 300, 1800, 7200], "retry_after_max_factor": 100, "concurrency": 4, "timeout": 15},
}
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class Route:
    id: int  # the webhook_endpoint id
    company_id: int
    name: str
    kind: str
    integration_id: int
    provider: str
    events: tuple[str, ...]
    is_active: bool
    disabled_reason: str | None
    target: str | None
    target_name: str | None
    recipients: tuple[str, ...]
    template: dict[str, Any]
    consecutive_failures: int = 0

    @property
    def destination(self) -> str:
        """Where it goes, for people."""
        if self.kind == "slack":
            return f"#{self.target_name} ({self.target})" if self.target_name else str(self.target)
        return ", ".join(self.recipients)

    def describe_template(self) -> str:
        if self.kind == "email":
            return f"SendGrid template {self.template.get('template_id')}"
        parts = [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {len(v)} block(s)" for k, v in self.template.items()]
        return "; ".join(parts) or "default formatting"


def _select():
    e, r = webhook_endpoint, notification_route
    return (
        sa.select(e.c.id, e.c.company_id, e.c.name, r.c.kind, r.c.integration_id, integration.c.provider, e.c.events,
                  e.c.is_active, e.c.disabled_reason, r.c.target, r.c.target_name, r.c.recipients, r.c.template,
                  e.c.consecutive_failures)
        .join(r, r.c.endpoint_id == e.c.id)
        .join(integration, integration.c.id == r.c.integration_id)
    )


def _route(row: Any) -> Route:
    m = dict(row._mapping)
    return Route(**{**m, "events": tuple(m["events"] or ()), "recipients": tuple(m["recipients"] or ()),
                    "template": dict(m["template"] or {})})


def list_routes(conn: Connection, company_id: int | None = None) -> list[Route]:
    query = _select().order_by(webhook_endpoint.c.id)
    if company_id is not None:
        query = query.where(webhook_endpoint.c.company_id == company_id)
    return [_route(row) for row in conn.execute(query)]


def get_route(conn: Connection, route_id: int) -> Route:
    row = conn.execute(_select().where(webhook_endpoint.c.id == route_id)).first()
    if row is None:
        raise NotFoundError(f"no notification route {route_id}")
    return _route(row)


def remove_route(conn: Connection, route_id: int) -> Route:
    """Delete a route with its delivery log and messages (to keep the log, disable it:
    `hub webhooks disable <id>`)."""
    route = get_route(conn, route_id)
    conn.execute(sa.delete(webhook_endpoint).where(webhook_endpoint.c.id == route_id))
    return route


def kind_of(provider: str) -> str | None:
    """The route kind a messaging provider sends (None for any other provider)."""
    return next((kind for kind, name in KINDS.items() if name == provider), None)


def company_route(conn: Connection, company_id: int, integration_id: int, route_id: int) -> Route:
    """A route of this company through this integration; NotFoundError for any other id (another
    company's route and no route look the same)."""
    row = conn.execute(_select().where(webhook_endpoint.c.id == route_id, webhook_endpoint.c.company_id == company_id,
                                       notification_route.c.integration_id == integration_id)).first()
    if row is None:
        raise NotFoundError(f"no notification route {route_id}")
    return _route(row)


def set_template(conn: Connection, company_id: int, integration_id: int, route_id: int, template: dict[str, Any]) -> Route:
    """Replace how a route's messages look (Slack text/title/blocks, SMS body), validated as
    `add_route` validates it; an empty template means the default formatting. An email route's
    template is its SendGrid template, part of its address: add a route for another one."""
    route = company_route(conn, company_id, integration_id, route_id)
    if route.kind == "email":
        raise ValidationError("an email route's template is its SendGrid template; add a route for another template")
    checked = render.check_template(route.kind, template)
    conn.execute(sa.update(notification_route).where(notification_route.c.endpoint_id == route_id).values(template=checked))
    return get_route(conn, route_id)


def find_integration(conn: Connection, company_id: int, provider: str, integration_id: int | None = None) -> int:
    """The company's `provider` integration: the one named, else its only active one."""
    rows = [r for r in store.list_integrations(conn, company_id) if r.provider == provider]
    if integration_id is not None:
        match = next((r for r in rows if r.id == integration_id), None)
        if match is None:
            raise ValidationError(f"integration {integration_id} is not a {provider} integration of company {company_id}")
        return match.id
    active = [r for r in rows if r.is_active]
    if not active:
        raise ValidationError(f"company {company_id} has no active {provider} integration: add one with `hub integration add`")
    if len(active) > 1:
        raise ValidationError(f"company {company_id} has {len(active)} {provider} integrations "
                              f"({', '.join(str(r.id) for r in active)}): pick one with --integration")
    return active[0].id


def parse_recipients(kind: str, to: str | Sequence[str] | None) -> list[str]:
    """Email addresses (lower-cased) or E.164 phone numbers, deduplicated, in order."""
    items = [p.strip() for p in (re.split(r"[,;\s]+", to) if isinstance(to, str) else list(to or ())) if p and p.strip()]
    out: list[str] = []
    for item in items:
        if kind == "email":
            if not _EMAIL.fullmatch(item):
                raise ValidationError(f"{item!r} is not an email address")
            item = item.lower()
        elif not _E164.fullmatch(item):
            raise ValidationError(f"{item!r} is not a phone number in E.164 form (+15551234567)")
        if item not in out:
            out.append(item)
    if not out:
        raise ValidationError(f"an {kind} route needs at least one recipient (--to)")
    if len(out) > MAX_RECIPIENTS[kind]:
        raise ValidationError(f"an {kind} route takes at most {MAX_RECIPIENTS[kind]} recipients; add another route for more")
    return out


def add_route(
    engine: Engine,
    keyring: Keyring,
    *,
    company_id: int,
    kind: str,
    events: Sequence[str],
    to: str | Sequence[str] | None = None,
    template: dict[str, Any] | None = None,
    integration_id: int | None = None,
    name: str | None = None,
    check: bool = True,
    client: MessagingClient | None = None,
) -> tuple[Route, list[str]]:
    """Create a route; returns it and warnings (e.g. delivery status cannot come back).

    With `check` (the default) the provider is asked first, and a route that cannot work is
    refused with the reason: a Slack channel that does not exist or lacks the bot, a
    SendGrid template that does not exist or a from address that is not a verified sender,
    a Twilio from number that is not the account's. `client`: a provider client to reuse
    (its caller closes it); by default one is opened and closed here."""
    if kind not in KINDS:
        raise ValidationError(f"unknown route kind {kind!r}; known: {', '.join(KINDS)}")
    provider = KINDS[kind]
    subscribed = validate_events(list(events))
    if "*" not in subscribed and TEST_EVENT not in subscribed:
        subscribed.append(TEST_EVENT)
    template = render.check_template(kind, template or {})
    with engine.connect() as conn:
        store.find_company(conn, company_id)
        integration_id = find_integration(conn, company_id, provider, integration_id)
        item = store.get_integration(conn, keyring, integration_id)
    target = target_name = None
    recipients: list[str] = []
    if kind == "slack":
        target = ((to if isinstance(to, str) else ",".join(to or ())) or str(item.config.get("default_channel") or "")).strip()
        if not target or "," in target:
            raise ValidationError("a Slack route goes to one channel: --to '#channel' (or set the integration's default_channel)")
    else:
        recipients = parse_recipients(kind, to)
    warnings: list[str] = []
    if check:
        own = client is None
        client = client or open_client(engine, keyring, integration_id)
        try:
            if kind == "slack":
                target, target_name = resolve_channel(client, target)
            elif kind == "email":
                verified_sender(client)
                tpl.sync(engine, keyring, integration_id, client)
                with engine.connect() as conn:
                    if tpl.known(conn, integration_id, template["template_id"]) is None:
                        raise ValidationError(f"SendGrid has no dynamic template {template['template_id']} "
                                              "(see `hub notify templates list`)")
            else:
                from_number(client)
        finally:
            if own:
                client.transport.close()
    elif kind == "slack" and re.fullmatch(r"[CG][A-Z0-9]{6,}", target) is None:
        target_name = target.lstrip("#")  # unchecked: Slack takes a name too
    if kind == "slack":
        url = f"slack://{integration_id}/{quote(str(target), safe='')}"
    elif kind == "email":
        url = f"sendgrid://{integration_id}/{template['template_id']}"
    else:
        url = f"twilio://{integration_id}"
    destination = f"#{target_name}" if target_name else (target if kind == "slack" else recipients[0] + (
        f" +{len(recipients) - 1}" if len(recipients) > 1 else ""))
    base_name = (name or f"{kind} {destination}").strip()
    if not base_name or not base_name.isprintable():
        raise ValidationError("route name must be non-blank printable text")
    with engine.begin() as conn:
        endpoint_id = _insert_endpoint(conn, company_id, integration_id, base_name, url, subscribed, kind, exact=name is not None)
        conn.execute(sa.insert(notification_route).values(
            endpoint_id=endpoint_id, integration_id=integration_id, kind=kind, target=target, target_name=target_name,
            recipients=recipients, template=template))
        if kind != "slack":
            try:
                with conn.begin_nested():
                    create_inbound(conn, keyring, integration_id)
            except ValidationError as exc:
                warnings.append(f"delivery status will not come back: {exc}")
        route = get_route(conn, endpoint_id)
    return route, warnings


def _insert_endpoint(conn: Connection, company_id: int, integration_id: int, name: str, url: str, events: list[str],
                     kind: str, *, exact: bool) -> int:
    """The route's webhook_endpoint; a generated name gets a number if it is taken."""
    for n in range(1, 100):
        candidate = name if n == 1 else f"{name} ({n})"
        try:
            with conn.begin_nested():
                return conn.scalar(
                    sa.insert(webhook_endpoint).values(
                        company_id=company_id, integration_id=integration_id, direction="outbound", name=candidate, url=url,
                        events=events, retry_policy=DeliveryPolicy.from_json(POLICIES[kind]).overrides(),
                        payload_options={"mode": "full"},
                    ).returning(webhook_endpoint.c.id)
                )
        except IntegrityError:
            if exact:
                raise ValidationError(f"company {company_id} already has an endpoint or route named '{name}'") from None
    raise ValidationError(f"company {company_id} has too many routes named '{name}'; give one with --name")
