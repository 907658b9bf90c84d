"""`hub webhooks`: webhook endpoints both ways. `inbound` makes the endpoint a provider calls
(one per integration), rotates the secret of a custom source's endpoint and lists what an
endpoint received; `dead-letters` lists the verified deliveries the receiver refused (kept
whole, hub/inbound/dead_letters.py) and replays one; every other command is about outbound
endpoints (where the hub sends a company's events): their delivery log, replay, and the worker.

A signing secret the hub makes is printed once when it is made: by `add` and
`rotate-secret` (outbound), by `inbound` when it creates a custom source's endpoint and by
`inbound rotate-secret`, for the operator to hand to the other side. `show` masks it,
`list` and `deliveries` never read it. Endpoint URLs are shown with credentials in their
userinfo or query replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

try:  # optional: a faster event loop for the delivery worker when installed
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

from hub import db
from hub import integrations as store
from hub.commands import HubGroup, typer_app
from hub.crypto import Keyring
from hub.errors import HubError, ValidationError
from hub.inbound import dead_letters
from hub.inbound.provider_endpoints import load_inbound, open_inbound, rotate_inbound_secret
from hub.inbound.received import recent_events
from hub.notify import worker  # notification routes share the delivery queue
from hub.outbound import endpoints as ep
from hub.outbound.dispatcher import Dispatcher
from hub.outbound.outbox import EVENT_TYPES, emit
from hub.outbound.signing import DEFAULT_GRACE_S
from hub.outbound.ssrf import ALLOW_VAR, AddressPolicy
from hub.providers import registry

app = typer_app("Webhooks: the inbound endpoint a provider calls (inbound), and outbound endpoints that receive the "
                "company's events, deliveries, replay, the dispatcher.")
inbound_alias_app = typer_app("Old spelling of `hub webhooks inbound`.")


UTC = dt.timezone.utc
_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _json_option(value: Optional[str], what: str) -> Optional[dict]:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise HubError(f"{what}: cannot read {value[1:]} ({type(exc).__name__})") from None
    return store.parse_json_object(value, what)


def _when(value: Optional[str], what: str) -> Optional[dt.datetime]:
    """ISO 8601 (no zone: UTC), or a duration ago: 30m, 2h, 3d."""
    if value is None:
        return None
    match = _RELATIVE.fullmatch(value.strip())
    if match:
        return dt.datetime.now(UTC) - dt.timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{what}: {value!r} is neither an ISO 8601 time nor a duration like 30m, 2h, 3d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _events(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _time(value: Optional[dt.datetime]) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


# ---- inbound: the endpoint a provider (or a company's own system) calls ------------------------
inbound_app = typer.Typer(
    help="The inbound endpoint of an integration: create/show it (`--integration ID`), rotate the secret the hub made "
         "for a custom source, list what it received.",
    cls=HubGroup, invoke_without_command=True, no_args_is_help=False, pretty_exceptions_show_locals=False)
app.add_typer(inbound_app, name="inbound")
inbound_alias_app.add_typer(inbound_app, name="inbound")


@inbound_app.callback()
def inbound(
    ctx: typer.Context,
    integration_id: Optional[int] = typer.Option(None, "--integration", help="integration id"),
    header_name: Optional[str] = typer.Option(None, help="for DoorDash/Procore: the header carrying the static credential"),
) -> None:
    """Create (or show) the integration's inbound endpoint; prints the path to give the provider.

    For a custom source (Standard Webhooks) it also prints, once, the signing secret the hub made."""
    if ctx.invoked_subcommand is not None:
        if integration_id is not None or header_name is not None:
            raise ValidationError(f"options go after the subcommand: hub webhooks inbound {ctx.invoked_subcommand} --integration ID")
        return
    if integration_id is None:
        raise ValidationError("which integration? hub webhooks inbound --integration ID")
    keyring = Keyring.from_env()
    with db.engine().begin() as conn:
        endpoint_id, secret = open_inbound(conn, keyring, integration_id, header_name)
        endpoint = load_inbound(conn, keyring, endpoint_id)
    typer.echo(f"inbound endpoint {endpoint.id} ({endpoint.scheme}): POST <hub web app>{endpoint.path}")
    if secret is not None:
        typer.echo(f"signing secret (shown only now): {secret}")
        typer.echo("sign each delivery with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)")
    elif registry.get(endpoint.provider).inbound.generate_secret is not None:
        typer.echo(f"its signing secret was shown when it was made; a new one: hub webhooks inbound rotate-secret --integration {integration_id}")


@inbound_app.command("rotate-secret")
def inbound_rotate_secret(
    integration_id: int = typer.Option(..., "--integration", help="integration id (a custom source)"),
    grace: float = typer.Option(DEFAULT_GRACE_S, help="seconds the old secret stays accepted too (0: refused from now on)"),
) -> None:
    """New signing secret of a custom source's endpoint, printed once; the old one stays accepted during the grace period.

    The sender can switch at its own pace meanwhile, or sign with both secrets."""
    keyring = Keyring.from_env()
    with db.engine().begin() as conn:
        secret, until = rotate_inbound_secret(conn, keyring, integration_id, grace)
    typer.echo(f"integration {integration_id}: new signing secret (shown only now): {secret}")
    if until:
        typer.echo(f"the old secret is accepted too until {_time(dt.datetime.fromtimestamp(until, UTC))}")
    else:
        typer.echo("the old secret is refused from now on")
    typer.echo("(a running web app takes the change within 10 s: it caches endpoints that long)")


@inbound_app.command("events")
def inbound_events(
    integration_id: int = typer.Option(..., "--integration", help="integration id"),
    limit: int = typer.Option(20, help="how many, newest first (1..1000)"),
    event_type: Optional[str] = typer.Option(None, "--type", help="only events of this type"),
    payload: bool = typer.Option(False, "--payload", help="also print each payload (capped at 500 characters)"),
) -> None:
    """The events an integration's inbound endpoint received and stored, newest first."""
    with db.engine().connect() as conn:
        rows = recent_events(conn, integration_id, limit, event_type)
    if not rows:
        typer.echo(f"integration {integration_id}: no events received")
        return
    typer.echo(f"{'id':>7}  {'received':<20} {'type':<28} {'processed':<9} event id")
    for r in rows:
        typer.echo(f"{r.id:>7}  {_time(r.received_at):<20} {r.event_type[:28]:<28} {'yes' if r.processed_at else 'no':<9} {r.event_id}")
        if payload:
            text = json.dumps(r.payload, separators=(",", ":"), ensure_ascii=False)
            typer.echo(f"         {text[:500]}{'…' if len(text) > 500 else ''}")


# ---- dead letters: verified inbound webhooks refused because no retry could fix them ---------
dead_app = typer.Typer(
    help="Verified inbound webhooks the receiver refused with a 4xx (not JSON, too deep, not the provider's event, "
         "unusable ids): kept whole. List them (`--integration`, `--limit`), replay one after a fix.",
    cls=HubGroup, invoke_without_command=True, no_args_is_help=False, pretty_exceptions_show_locals=False)
app.add_typer(dead_app, name="dead-letters")


@dead_app.callback()
def dead_letter_list(
    ctx: typer.Context,
    integration_id: Optional[int] = typer.Option(None, "--integration", help="only this integration's"),
    limit: int = typer.Option(20, help="how many, newest first (1..1000)"),
    body: bool = typer.Option(False, "--body", help="also print each body (as text, capped at 500 characters)"),
) -> None:
    """Dead letters, newest first: when, which integration, why, and whether a replay stored them."""
    if ctx.invoked_subcommand is not None:
        return
    with db.engine().connect() as conn:
        rows = dead_letters.recent(conn, integration_id, limit)
    if not rows:
        typer.echo("no dead letters" + (f" for integration {integration_id}" if integration_id is not None else ""))
        return
    typer.echo(f"{'id':>6}  {'received':<20} {'integration':>11}  {'provider':<10} {'reason':<19} {'bytes':>7} {'tries':>5}  {'replayed':<20} detail")
    for r in rows:
        typer.echo(f"{r.id:>6}  {_time(r.received_at):<20} {r.integration_id:>11}  {r.provider:<10} {r.reason:<19} {len(r.body):>7} {r.attempts:>5}  "
                   f"{_time(r.replayed_at):<20} {r.detail}" + (f" [replay: {r.replay_result}]" if r.replay_result else ""))
        if body:
            text = r.body.decode("utf-8", errors="replace")
            typer.echo(f"        {text[:500]!r}{'…' if len(text) > 500 else ''}")


@dead_app.command("replay")
def dead_letter_replay(dead_letter_id: int = typer.Argument(..., help="dead letter id")) -> None:
    """Read a dead letter again with today's code and store its events (deduplicated as usual);
    says why if it is still refused (then nothing is stored). Exits 1 when still refused."""
    with db.engine().begin() as conn:
        done = dead_letters.replay(conn, dead_letter_id)
    if done.refused is not None:
        typer.echo(f"dead letter {dead_letter_id} still refused: {done.refused}")
        raise typer.Exit(code=1)
    typer.echo(f"dead letter {dead_letter_id}: {done.stored} event(s) stored, {done.duplicates} already stored")


@app.command("add")
def add(
    company: str = typer.Option(..., help="company id or name"),
    name: str = typer.Option(..., help="a name unique within the company"),
    url: str = typer.Option(..., help="http(s) URL that receives the POSTs"),
    events: str = typer.Option(..., help=f"comma-separated event types, or * for all; known: {', '.join(EVENT_TYPES)}"),
    retry_policy: Optional[str] = typer.Option(None, help='JSON overrides, e.g. {"schedule": [5, 300], "timeout": 10} (or @file)'),
    payload: Optional[str] = typer.Option(None, help='JSON payload options, e.g. {"mode": "thin"} or {"fields": ["order_id"]}'),
) -> None:
    """Add an endpoint; prints its signing secret once (store it at the receiver)."""
    keyring = Keyring.from_env()
    with db.engine().begin() as conn:
        company_row = store.find_company(conn, company)
        endpoint_id, secret = ep.add_endpoint(
            conn, keyring, company_id=company_row.id, name=name, url=url, events=_events(events),
            retry_policy=_json_option(retry_policy, "--retry-policy"), payload_options=_json_option(payload, "--payload"),
        )
    typer.echo(f"endpoint {endpoint_id} '{name}' added for '{company_row.name}', events {events}")
    typer.echo(f"signing secret (shown only now): {secret}")


@app.command("update")
def update(
    endpoint_id: int = typer.Argument(..., help="endpoint id"),
    url: Optional[str] = typer.Option(None, help="new URL"),
    events: Optional[str] = typer.Option(None, help="new comma-separated event types"),
    retry_policy: Optional[str] = typer.Option(None, help="new retry policy overrides (JSON, replaces the old ones)"),
    payload: Optional[str] = typer.Option(None, help="new payload options (JSON)"),
) -> None:
    """Change an endpoint's URL, events, retry policy or payload options."""
    with db.engine().begin() as conn:
        endpoint = ep.update_endpoint(
            conn, endpoint_id, url=url, events=_events(events) if events is not None else None,
            retry_policy=_json_option(retry_policy, "--retry-policy"), payload_options=_json_option(payload, "--payload"),
        )
    typer.echo(f"endpoint {endpoint.id} '{endpoint.name}' updated")


@app.command("list")
def list_(company: Optional[str] = typer.Option(None, help="company id or name")) -> None:
    """List outbound endpoints (no key needed: nothing secret is read)."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        rows = ep.list_endpoints(conn, company_id)
    if not rows:
        typer.echo("no outbound endpoints: hub webhooks add ...")
        return
    typer.echo(f"{'id':>4}  {'company':>7}  {'name':<20} {'active':<6} {'fails':>5}  {'events':<30} url")
    for e in rows:
        typer.echo(f"{e.id:>4}  {e.company_id:>7}  {e.name:<20} {'yes' if e.is_active else 'no':<6} {e.consecutive_failures:>5}  "
                   f"{','.join(e.events):<30} {e.display_url}")


@app.command("show")
def show(endpoint_id: int = typer.Argument(..., help="endpoint id")) -> None:
    """Show one endpoint; the secret is masked."""
    keyring = Keyring.from_env()
    with db.engine().connect() as conn:
        e = ep.get_endpoint(conn, endpoint_id, keyring)
    secrets = e.secrets
    rotating = "-"
    if secrets is not None and secrets.previous and secrets.previous_until:
        rotating = f"previous secret also signs until {_time(dt.datetime.fromtimestamp(secrets.previous_until, UTC))}"
    policy = e.policy
    for label, value in (
        ("endpoint", f"{e.id}: {e.name} (company {e.company_id})"),
        ("url", e.display_url),
        ("events", ", ".join(e.events)),
        ("active", "yes" if e.is_active else f"no ({e.disabled_reason})"),
        ("secret", secrets.masked() if secrets else "-"),
        ("rotation", rotating),
        ("schedule", "now, " + ", ".join(f"{s:g} s" for s in policy.schedule) + f" (±{policy.jitter:.0%} jitter)"),
        ("timeout", f"{policy.timeout:g} s, {policy.concurrency} concurrent"),
        ("auto-disable", (f"after {policy.disable_after_seconds:g} s of failures and " if policy.disable_after_seconds is not None else "after ")
         + f"{policy.disable_after_failures} failed attempts in a row; 410 at once"),
        ("payload", e.payload.describe()),
        ("failures", f"{e.consecutive_failures} in a row"),
        ("last success", _time(e.last_triggered_at)),
    ):
        typer.echo(f"  {label:<13} {value}")


@app.command("rotate-secret")
def rotate_secret(
    endpoint_id: int = typer.Argument(..., help="endpoint id"),
    grace: float = typer.Option(DEFAULT_GRACE_S, help="seconds the old secret keeps signing too (0: stop now)"),
) -> None:
    """New signing secret, printed once; the old one also signs during the grace period."""
    keyring = Keyring.from_env()
    with db.engine().begin() as conn:
        secret, until = ep.rotate_secret(conn, keyring, endpoint_id, grace)
    typer.echo(f"endpoint {endpoint_id}: new signing secret (shown only now): {secret}")
    if until:
        typer.echo(f"deliveries carry both signatures until {_time(dt.datetime.fromtimestamp(until, UTC))}")


@app.command("enable")
def enable(endpoint_id: int = typer.Argument(..., help="endpoint id")) -> None:
    """Enable an endpoint (clears its failure streak). Replay what it missed with `replay`."""
    with db.engine().begin() as conn:
        ep.set_active(conn, endpoint_id, True)
    typer.echo(f"endpoint {endpoint_id} enabled")


@app.command("disable")
def disable(
    endpoint_id: int = typer.Argument(..., help="endpoint id"),
    reason: Optional[str] = typer.Option(None, help="why (shown in `show`)"),
) -> None:
    """Disable an endpoint; its pending attempts are closed as failed (replayable)."""
    with db.engine().begin() as conn:
        closed = ep.set_active(conn, endpoint_id, False, reason)
    typer.echo(f"endpoint {endpoint_id} disabled; {closed} pending attempt(s) closed")


@app.command("deliveries")
def deliveries(
    endpoint: Optional[int] = typer.Option(None, "--endpoint", help="endpoint id"),
    company: Optional[str] = typer.Option(None, help="company id or name"),
    status: Optional[str] = typer.Option(None, help="pending, succeeded or failed"),
    limit: int = typer.Option(20, help="how many, newest first"),
    body: bool = typer.Option(False, "--body", help="also print the (capped) response body"),
) -> None:
    """Recent delivery attempts, newest first."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        rows = ep.list_deliveries(conn, endpoint_id=endpoint, company_id=company_id, status=status, limit=limit)
    if not rows:
        typer.echo("no deliveries")
        return
    typer.echo(f"{'id':>6}  {'endpoint':<16} {'event':>6} {'type':<22} {'try':>3}  {'status':<9} {'code':>4} {'ms':>6}  {'at (due if pending)':<20} detail")
    for r in rows:
        detail = r.error or ""
        typer.echo(f"{r.id:>6}  {r.endpoint_name[:16]:<16} {r.outbox_event_id:>6} {r.event_type[:22]:<22} {r.attempt:>3}  {r.status:<9} "
                   f"{r.response_code or '-':>4} {r.duration_ms if r.duration_ms is not None else '-':>6}  {_time(r.next_attempt_at):<20} {detail}")
        if body and r.response_body:
            typer.echo(f"        body: {r.response_body[:500]}")


@app.command("replay")
def replay(
    endpoint: int = typer.Option(..., "--endpoint", help="endpoint id"),
    since: str = typer.Option(..., help="events emitted from (ISO 8601, or 30m / 2h / 3d ago)"),
    until: Optional[str] = typer.Option(None, help="... up to (default: now)"),
    missing: bool = typer.Option(False, "--missing", help="also events it never got (emitted while disabled)"),
) -> None:
    """Send again the failed deliveries of one endpoint in a time window (same webhook-id)."""
    start = _when(since, "--since")
    end = _when(until, "--until")
    with db.engine().begin() as conn:
        count = ep.replay(conn, endpoint, start, end, include_missing=missing)
    typer.echo(f"endpoint {endpoint}: {count} deliver{'y' if count == 1 else 'ies'} scheduled again")


@app.command("emit")
def emit_event(
    company: str = typer.Option(..., help="company id or name"),
    event_type: str = typer.Option("webhook.test", "--type", help=f"one of: {', '.join(EVENT_TYPES)}"),
    data: Optional[str] = typer.Option(None, help="JSON object payload (default: a small test payload)"),
) -> None:
    """Emit one event into the outbox (to test endpoints end to end)."""
    payload = _json_option(data, "--data") or {"message": "test event from hub webhooks emit", "sent_at": dt.datetime.now(UTC).isoformat()}
    with db.engine().begin() as conn:
        company_row = store.find_company(conn, company)
        event_id = emit(conn, company_row.id, event_type, payload)
    typer.echo(f"event {event_id} ({event_type}) emitted for '{company_row.name}'")


@app.command("dispatch")
def dispatch(
    lease: float = typer.Option(150.0, help="seconds a claimed delivery stays leased (a killed worker's deliveries are retried after it)"),
    poll: float = typer.Option(0.5, help="seconds between polls when no notification arrives"),
    max_in_flight: int = typer.Option(2000, help="deliveries held by this worker at most"),
    progress_every: float = typer.Option(10.0, help="seconds between progress lines (0: none)"),
    public_url: Optional[str] = typer.Option(None, help="the hub's public URL for Twilio status callbacks (default: HUB_PUBLIC_URL)"),
    heartbeat_file: Optional[Path] = typer.Option(None, envvar="HUB_DISPATCH_HEARTBEAT", help="a file touched at every progress tick (a liveness probe checks its age; deploy/README.md)"),
) -> None:
    """Run the delivery worker until Ctrl-C (several may run side by side): outbound webhooks,
    notification routes (Slack, SendGrid, Twilio) and their delivery status tracking."""
    keyring = Keyring.from_env()
    url = db.hub_url()
    engine = db.engine(url)
    allow = AddressPolicy.from_env()
    if lease < 10:
        typer.echo(f"warning: a lease of {lease:g} s is shorter than most timeouts; deliveries may be sent twice", err=True)
    dispatcher = Dispatcher(url.set(drivername="postgresql").render_as_string(hide_password=False), keyring,
                            senders=worker.senders(engine, keyring, address_policy=allow, public_url=public_url),
                            address_policy=allow, lease_seconds=lease, poll_interval=poll, max_in_flight=max_in_flight)
    tracker = worker.StatusTracker(engine)
    typer.echo(f"dispatching webhooks and notifications from {db.safe_url(url)}; {ALLOW_VAR}: {allow}; Ctrl-C to stop", err=True)

    def report(snap: dict) -> None:
        if heartbeat_file is not None:  # the event loop is alive: the progress tick ran
            heartbeat_file.touch()
        if progress_every <= 0:
            return
        lag = f"lag p50 {snap['lag_p50_s']:.3f} s p99 {snap['lag_p99_s']:.3f} s" if snap["lag_p99_s"] is not None else "lag -"
        typer.echo(f"{dt.datetime.now().strftime('%H:%M:%S')} events {snap['events']}  sent {snap['sent_ok']}  failed {snap['failed']}  "
                   f"retries {snap['retries']}  exhausted {snap['exhausted']}  disabled {snap['disabled']}  in flight {snap['in_flight']}  {lag}")
        sys.stdout.flush()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        hits = 0

        def on_signal() -> None:
            nonlocal hits
            hits += 1
            if hits == 1:
                typer.echo("stopping: finishing deliveries in flight (Ctrl-C again to quit now)", err=True)
                dispatcher.stop()
            elif task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        ticks = progress_every > 0 or heartbeat_file is not None
        await worker.run(dispatcher, tracker, progress=report if ticks else None, progress_every=progress_every or 10.0)

    try:
        if uvloop is None:  # pragma: no cover - uvloop is optional
            asyncio.run(main())
        else:
            uvloop.run(main())
    except asyncio.CancelledError:
        typer.echo("stopped at once; leased deliveries will be retried after their lease", err=True)
        raise typer.Exit(code=130)
    s = dispatcher.stats.snapshot()
    typer.echo(f"stopped: {s['sent_ok']} sent, {s['failed']} failed, {s['released']} released unsent, "
               f"{tracker.applied} status change(s) applied", err=True)


if __name__ == "__main__":  # `python -m hub.commands.webhooks ...` until it is registered in hub/cli.py
    app()
