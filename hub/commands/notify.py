"""`hub notify`: notification routes (Slack, email, SMS), their messages and delivery
status, SendGrid templates, set-up checks, a test event, and the worker.

Nothing here prints a credential: routes show channels and recipients, checks show what the
provider answered (team, sender address, phone number), errors are the providers' codes.
A route is also an outbound endpoint, so ``hub webhooks deliveries / replay / enable /
disable`` work on it by the same id.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Optional

import typer

from hub import db
from hub import integrations as store
from hub.commands import typer_app
from hub.commands.webhooks import dispatch as webhooks_dispatch
from hub.crypto import Keyring
from hub.errors import HubError, ValidationError
from hub.notify.readiness import check_integration
from hub.notify.message_ledger import list_messages
from hub.notify.message_ledger import resend as reopen_message
from hub.notify.routes import add_route as create_route
from hub.notify.routes import list_routes, remove_route
from hub.notify.status import apply_pending
from hub.outbound.outbox import EVENT_TYPES, emit
from hub.providers.sendgrid.templates import list_templates
from hub.providers.sendgrid.templates import sync as sync_templates
from hub.providers import registry

app = typer_app("Notifications: route events to Slack channels, email (SendGrid) and SMS (Twilio); delivery status.")
templates_app = typer_app("SendGrid dynamic templates: sync from SendGrid, list.")
app.add_typer(templates_app, name="templates")

UTC = dt.timezone.utc


def _json(value: Optional[str], what: str):
    """JSON from the argument or from @file."""
    if value is None:
        return None
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise HubError(f"{what}: cannot read {value[1:]} ({type(exc).__name__})") from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _time(value: Optional[dt.datetime]) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


@app.command("add-route")
def add_route(
    company: str = typer.Option(..., help="company id or name"),
    events: str = typer.Option(..., help=f"comma-separated event types, or *; known: {', '.join(EVENT_TYPES)}"),
    kind: str = typer.Option(..., help="slack, email (SendGrid) or sms (Twilio)"),
    to: Optional[str] = typer.Option(None, help="slack: the channel (#name or id; default: the integration's default_channel); "
                                                "email / sms: comma-separated addresses / E.164 numbers"),
    template: Optional[str] = typer.Option(None, help="email: the SendGrid dynamic template id (d-...); slack / sms: the "
                                                      "message text with {{field}} placeholders (e.g. 'Order {{order_id}} is {{status}}')"),
    title: Optional[str] = typer.Option(None, help="slack: the message header (default: the event type)"),
    blocks: Optional[str] = typer.Option(None, help="slack: a Block Kit blocks array with {{field}} placeholders (JSON or @file)"),
    integration: Optional[int] = typer.Option(None, help="integration id (default: the company's only one of that provider)"),
    name: Optional[str] = typer.Option(None, help="route name, unique in the company (default: from kind and target)"),
    check: bool = typer.Option(True, "--check/--no-check", help="ask the provider first: channel, template, sender, number"),
) -> None:
    """Route events to a Slack channel, email recipients or SMS recipients."""
    spec: dict = {}
    if kind == "email":
        if template:
            spec["template_id"] = template.strip()
    elif kind == "slack":
        spec.update({k: v for k, v in (("text", template), ("title", title)) if v})
        parsed = _json(blocks, "--blocks")
        if parsed is not None:
            spec["blocks"] = parsed
    elif kind == "sms" and template:
        spec["body"] = template
    if kind != "slack" and (title or blocks):
        raise ValidationError("--title and --blocks are for Slack routes")
    keyring = Keyring.from_env()
    engine = db.engine()
    with engine.connect() as conn:
        company_row = store.find_company(conn, company)
    route, warnings = create_route(engine, keyring, company_id=company_row.id, kind=kind,
                                   events=[e for e in events.split(",") if e.strip()], to=to, template=spec,
                                   integration_id=integration, name=name, check=check)
    typer.echo(f"route {route.id} '{route.name}' added for '{company_row.name}': {route.kind} to {route.destination}, "
               f"events {', '.join(route.events)}")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command("list")
def list_(company: Optional[str] = typer.Option(None, help="company id or name")) -> None:
    """List notification routes."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        routes = list_routes(conn, company_id)
    if not routes:
        typer.echo("no notification routes: hub notify add-route ...")
        return
    typer.echo(f"{'id':>4}  {'company':>7}  {'name':<24} {'kind':<5} {'active':<6} {'events':<34} to / template")
    for r in routes:
        active = "yes" if r.is_active else "no"
        typer.echo(f"{r.id:>4}  {r.company_id:>7}  {r.name[:24]:<24} {r.kind:<5} {active:<6} {','.join(r.events)[:34]:<34} "
                   f"{r.destination} | {r.describe_template()}")
        if not r.is_active and r.disabled_reason:
            typer.echo(f"      disabled: {r.disabled_reason}")


@app.command("remove")
def remove(route_id: int = typer.Argument(..., help="route id")) -> None:
    """Delete a route with its delivery log (keep the log: `hub webhooks disable <id>`)."""
    with db.engine().begin() as conn:
        route = remove_route(conn, route_id)
    typer.echo(f"route {route.id} '{route.name}' removed")


@app.command("log")
def log(
    route: Optional[int] = typer.Option(None, help="route id"),
    company: Optional[str] = typer.Option(None, help="company id or name"),
    status: Optional[str] = typer.Option(None, help="e.g. delivered, bounced, undelivered, unknown, not_sent"),
    limit: int = typer.Option(20, help="how many, newest first"),
) -> None:
    """Recent messages, one per recipient: what the provider last reported."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        rows = list_messages(conn, endpoint_id=route, company_id=company_id, status=status, limit=limit)
    if not rows:
        typer.echo("no notification messages")
        return
    typer.echo(f"{'id':>6}  {'route':<18} {'event':>6} {'type':<22} {'recipient':<28} {'try':>3}  {'status':<11} {'updated':<20} detail")
    for r in rows:
        typer.echo(f"{r.id:>6}  {r.route_name[:18]:<18} {r.outbox_event_id:>6} {r.event_type[:22]:<22} {r.recipient[:28]:<28} "
                   f"{r.attempt if r.attempt is not None else '-':>3}  {r.status:<11} {_time(r.updated_at):<20} {r.detail or ''}")


@app.command("resend")
def resend(
    route: int = typer.Option(..., help="route id"),
    event: int = typer.Option(..., help="outbox event id"),
) -> None:
    """Send again to recipients whose outcome is unknown (after checking they did not get it)."""
    with db.engine().begin() as conn:
        count, delivery_id = reopen_message(conn, route, event)
    scheduled = f"attempt {delivery_id} scheduled" if delivery_id else "an attempt is already pending"
    typer.echo(f"route {route}, event {event}: {count} recipient(s) will be sent again; {scheduled}")


@app.command("check")
def check(
    integration: Optional[int] = typer.Option(None, help="integration id"),
    company: Optional[str] = typer.Option(None, help="company id or name: check all its Slack, SendGrid and Twilio integrations"),
) -> None:
    """Ask the providers: Slack channels exist with the bot in them, the SendGrid sender is
    verified and templates exist, the Twilio number is the account's. Exit 1 on a problem."""
    if (integration is None) == (company is None):
        raise ValidationError("give --integration or --company")
    keyring = Keyring.from_env()
    engine = db.engine()
    with engine.connect() as conn:
        if integration is not None:
            ids = [integration]
        else:
            company_id = store.find_company(conn, company).id
            ids = [r.id for r in store.list_integrations(conn, company_id) if r.provider in registry.with_capability("messaging")]
    if not ids:
        raise ValidationError("no Slack, SendGrid or Twilio integration to check")
    problems = 0
    for integration_id in ids:
        report = check_integration(engine, keyring, integration_id)
        typer.echo(f"{report.provider} integration {report.integration_id} ({report.name}): {'ok' if report.ok else 'PROBLEMS'}")
        for line in report.lines:
            typer.echo(f"  ok       {line}")
        for line in report.warnings:
            typer.echo(f"  warning  {line}")
        for line in report.problems:
            typer.echo(f"  problem  {line}")
        problems += len(report.problems)
    if problems:
        raise HubError(f"{problems} problem(s) found; messages to these integrations will fail until they are fixed")


@app.command("test")
def test(
    company: str = typer.Option(..., help="company id or name"),
    event_type: str = typer.Option("webhook.test", "--type", help="event type (every route also subscribes to webhook.test)"),
    data: Optional[str] = typer.Option(None, help="JSON object payload (default: a small test payload)"),
) -> None:
    """Emit a test event into the outbox; the worker sends it to every subscribed route."""
    payload = _json(data, "--data")
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError("--data must be a JSON object")
    payload = payload or {"message": "Test notification from the Integrations Hub", "sent_at": dt.datetime.now(UTC).isoformat(timespec="seconds")}
    with db.engine().begin() as conn:
        company_row = store.find_company(conn, company)
        event_id = emit(conn, company_row.id, event_type, payload)
        routes = [r for r in list_routes(conn, company_row.id) if r.is_active and (event_type in r.events or "*" in r.events)]
    typer.echo(f"event {event_id} ({event_type}) emitted for '{company_row.name}'; "
               f"{len(routes)} route(s) subscribed: {', '.join(str(r.id) for r in routes) or '-'}")
    typer.echo(f"follow it with: hub notify log --company {company_row.id}")


@templates_app.command("sync")
def templates_sync(integration: int = typer.Option(..., help="SendGrid integration id")) -> None:
    """Pull the dynamic templates from SendGrid."""
    result = sync_templates(db.engine(), Keyring.from_env(), integration)
    typer.echo(f"{result.total} template(s): {result.added} new, {result.updated} changed, {result.removed} removed")


@templates_app.command("list")
def templates_list(integration: int = typer.Option(..., help="SendGrid integration id")) -> None:
    """List the synced templates (run `sync` first)."""
    with db.engine().connect() as conn:
        rows = list_templates(conn, integration)
    if not rows:
        typer.echo(f"no templates synced for integration {integration}: hub notify templates sync --integration {integration}")
        return
    typer.echo(f"{'template id':<36} {'name':<28} {'subject':<40} synced")
    for t in rows:
        typer.echo(f"{t.template_id:<36} {t.name[:28]:<28} {(t.subject or '')[:40]:<40} {_time(t.synced_at)}")


@app.command("track")
def track(follow: bool = typer.Option(False, "--follow", help="keep applying, every second, until Ctrl-C")) -> None:
    """Apply stored SendGrid / Twilio delivery reports to the messages (the worker does this too)."""
    engine = db.engine()
    while True:
        report = apply_pending(engine)
        if report.applied or report.recorded or report.unmatched or not follow:
            typer.echo(f"{report.applied} status change(s), {report.recorded} recorded only, {report.waiting} waiting for "
                       f"their send, {report.unmatched} unmatched")
        if not follow:
            return
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            return


# the one delivery worker, also reachable from here: it sends notification routes too
app.command("dispatch", help="Run the delivery worker (same as `hub webhooks dispatch`): webhooks, notifications, "
                             "delivery status tracking, until Ctrl-C.")(webhooks_dispatch)


if __name__ == "__main__":  # `python -m hub.commands.notify ...` until it is registered in hub/cli.py
    app()
