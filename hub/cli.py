"""`hub` command line (typer).

Every command that fails on purpose raises `HubError`; `hub.commands.HubGroup` turns it into one line
on stderr and exit code 1, with nothing written (each command runs in one transaction).
Secrets are never echoed: `integration show` masks credentials, and tracebacks never show
local variables.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer
import uvicorn

from hub import db, embedded_pg, migrate, settings
from hub import integrations as store
from hub.crypto import Keyring, generate_key, mask
from hub.commands import HubGroup
from hub.commands import typer_app as _typer
from hub.commands.accounting import mapping_app, sync_app
from hub.commands.billing import app as billing_app
from hub.commands.conflicts import app as conflicts_app
from hub.commands.notify import app as notify_app
from hub.commands.orders import app as orders_app
from hub.commands.webhooks import app as webhooks_app
from hub.commands.webhooks import inbound_alias_app
from hub.commands.projects import app as procore_app
from hub.commands.users import app as user_app
from hub.connection_check import check_connection
from hub.demo import (DEFAULT_PORT_BASE, DEFAULT_WEB_PORT, DemoPorts, check_all, connect_emulated, connect_outbound,
                      oauth_app_env, register_oauth_apps, seed)
from hub.demo_ai_external import configure_external
from hub.demo_billing import connect_billing
from hub.demo_sync import prepare
from hub.errors import HubError
from hub.providers import registry
from hub.orders.kitchen import demo_kitchen_pass
from hub.stored_secrets import rotate
from hub.web.limits import server_options


class HubCli(typer.Typer):
    """The `hub` command itself, the one entry point (the console script `hub.cli:app`, and
    `main`): a stdout closed by the reader (`hub integration list | head -1`) ends the command
    quietly, exit code 1, as Python's documentation recommends (signal module, "Note on
    SIGPIPE"): stdout is pointed at devnull so that the interpreter's last flush cannot fail
    again and print a traceback. Whatever the command wrote is flushed here, inside, so a
    tail still buffered fails where it is caught."""

    def __call__(self, *args, **kwargs):
        try:
            try:
                return super().__call__(*args, **kwargs)
            finally:
                sys.stdout.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)


app = HubCli(help="Integrations Hub: database, companies, integrations, keys.", cls=HubGroup, no_args_is_help=True,
             pretty_exceptions_show_locals=False)
db_app = _typer("Database: migrations and the embedded PostgreSQL server.")
company_app = _typer("Companies (tenants).")
integration_app = _typer("Integrations: connect, list, show, enable, disable.")
keys_app = _typer("Encryption keys for stored secrets (HUB_SECRET_KEYS).")
demo_app = _typer("Demo data.")
web_app = _typer("The hub web app: webhook receiver and settings pages.")
for sub, name in (
    (db_app, "db"), (company_app, "company"), (integration_app, "integration"), (keys_app, "keys"), (demo_app, "demo"),
    (web_app, "web"), (sync_app, "sync"), (mapping_app, "mapping"),
    (procore_app, "procore"), (conflicts_app, "conflicts"), (orders_app, "orders"),
    (webhooks_app, "webhooks"), (notify_app, "notify"), (user_app, "user"), (billing_app, "billing"),
):
    app.add_typer(sub, name=name)
# the old spelling of `hub webhooks inbound`, hidden, kept for one release
app.add_typer(inbound_alias_app, name="webhook", hidden=True)


def _read_json_arg(value: Optional[str], what: str) -> dict:
    """A JSON object from the argument itself, `-` (stdin) or `@path` (a file).

    Stdin and files keep credentials out of shell history and the process list.
    """
    if value is None:
        return {}
    if value == "-":
        value = sys.stdin.read()
    elif value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise HubError(f"{what}: no such file {path}")
        try:
            value = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise HubError(f"{what}: cannot read {path} as UTF-8 text ({type(exc).__name__})") from None
    return store.parse_json_object(value, what)


# ---- db ----------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="target revision")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    url = db.hub_url()
    typer.echo(f"database {db.safe_url(url)} is at revision {migrate.upgrade(url, revision)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="target revision, or 'base' for empty"),
    force: bool = typer.Option(False, "--force", help="downgrade even if rows or values would be lost"),
) -> None:
    """Revert migrations down to REVISION. Refuses, changing nothing, when that would drop rows
    or values (it says which), unless --force."""
    url = db.hub_url()
    done = migrate.downgrade_report(url, revision, force=force)
    for loss in done.lost:
        typer.echo(f"lost: {loss}")
    typer.echo(f"database {db.safe_url(url)} is at revision {done.revision or 'base (empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one the code knows."""
    url = db.hub_url()
    typer.echo(f"{db.safe_url(url)}: at {migrate.current(url) or 'base (empty)'}, newest {migrate.head()}")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL server (a no-op when it already runs)."""
    url = db.hub_url()
    typer.echo(f"embedded PostgreSQL ready in {embedded_pg.data_dir()}: {db.safe_url(url)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server cleanly."""
    typer.echo("embedded PostgreSQL stopped" if embedded_pg.stop() else "embedded PostgreSQL was not running")


@db_app.command("url")
def db_url(
    dagster: bool = typer.Option(False, "--dagster", help="the Dagster storage URL instead"),
    show_password: bool = typer.Option(False, "--show-password", help="print the password (for scripts that export it)"),
) -> None:
    """Print the hub database URL (starting the embedded server if needed)."""
    url = db.hub_url()
    full = db.dagster_url(url) if dagster else url.render_as_string(hide_password=False)
    typer.echo(full if show_password else db.safe_url(full))


# ---- companies ---------------------------------------------------------------------------
@company_app.command("create")
def company_create(name: str, timezone: str = typer.Option("UTC", help="IANA timezone for schedules")) -> None:
    """Create a company."""
    with db.engine().begin() as conn:
        company_id = store.create_company(conn, name, timezone)
    typer.echo(f"company {company_id} '{name}' created ({timezone})")


@company_app.command("list")
def company_list() -> None:
    """List companies."""
    with db.engine().connect() as conn:
        rows = store.list_companies(conn)
    for row in rows:
        typer.echo(f"{row.id:>4}  {row.name:<30} {row.timezone}")
    if not rows:
        typer.echo("no companies yet: hub company create NAME")


# ---- integrations ------------------------------------------------------------------------
@integration_app.command("add")
def integration_add(
    company: str = typer.Option(..., help="company id or name"),
    provider: str = typer.Option(..., help=f"one of: {', '.join(registry.names())}"),
    name: Optional[str] = typer.Option(None, help="display name (default: the provider's)"),
    config: Optional[str] = typer.Option(None, help="JSON object, '-' for stdin or @file"),
    credentials: Optional[str] = typer.Option(None, help="JSON object, '-' for stdin or @file"),
    enable: bool = typer.Option(False, "--enable", help="active at once, without waiting for a passing `hub integration check`"),
) -> None:
    """Add an integration; credentials are encrypted before they are stored. It stays inactive
    (no syncs, no partition) until `hub integration check ID` passes, or `enable` (or --enable)."""
    registry.get(provider)  # unknown provider fails before anything is read
    config_value = _read_json_arg(config, "--config")
    credentials_value = _read_json_arg(credentials, "--credentials")
    keyring = Keyring.from_env()
    with db.engine().begin() as conn:
        company_row = store.find_company(conn, company)
        new_id = store.add_integration(
            conn, keyring, company_id=company_row.id, provider=provider, name=name,
            config=config_value, credentials=credentials_value, active=enable,
        )
    state = "active" if enable else f"inactive until `hub integration check {new_id}` passes or `hub integration enable {new_id}`"
    typer.echo(f"integration {new_id} ({provider}) added to '{company_row.name}'; partition "
               f"{store.partition_key(provider, new_id)}, {state}")


@integration_app.command("list")
def integration_list(company: Optional[str] = typer.Option(None, help="company id or name")) -> None:
    """List integrations (no key needed: nothing secret is read). The company's name comes last,
    since names may hold spaces: `awk '{print $4}'` is always the active column."""
    with db.engine().connect() as conn:
        company_id = store.find_company(conn, company).id if company else None
        rows = store.list_integrations(conn, company_id)
        names = {c.id: c.name for c in store.list_companies(conn)}
    typer.echo(f"{'id':>4}  {'provider':<11} {'type':<19} {'active':<6} {'status':<12} {'last sync':<25} company")
    for r in rows:
        last = r.last_sync_at.isoformat(timespec="seconds") if r.last_sync_at else "never"
        typer.echo(f"{r.id:>4}  {r.provider:<11} {r.integration_type:<19} {'yes' if r.is_active else 'no':<6} {r.status:<12} "
                   f"{last:<25} {names[r.company_id]}")


@integration_app.command("show")
def integration_show(integration_id: int) -> None:
    """Show one integration; credentials are masked."""
    keyring = Keyring.from_env()
    with db.engine().connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
        company_name = store.find_company(conn, item.company_id).name
    typer.echo(f"integration {item.id}: {item.name}")
    for label, value in (
        ("company", f"{company_name} ({item.company_id})"),
        ("provider", f"{item.provider} ({item.integration_type})"),
        ("partition", item.partition_key),
        ("active", "yes" if item.is_active else "no"),
        ("status", item.status),
        ("last sync", item.last_sync_at or "never"),
        ("error", item.error_message or "-"),
    ):
        typer.echo(f"  {label:<12} {value}")
    public = set(registry.get(item.provider).public_config)
    typer.echo("  config")
    for key, value in sorted(item.config.items()):
        typer.echo(f"    {key}: {value if key in public else mask(value)}")
    typer.echo("  credentials")
    for key, value in sorted(item.credentials.masked().items()):
        typer.echo(f"    {key}: {value}")


def _set_active(integration_id: int, active: bool) -> None:
    with db.engine().begin() as conn:
        store.set_active(conn, integration_id, active)
    typer.echo(f"integration {integration_id} {'enabled' if active else 'disabled'}")


@integration_app.command("enable")
def integration_enable(integration_id: int) -> None:
    """Enable an integration (its partition is added by the Dagster sensor)."""
    _set_active(integration_id, True)


@integration_app.command("disable")
def integration_disable(integration_id: int) -> None:
    """Disable an integration (its partition is removed by the Dagster sensor)."""
    _set_active(integration_id, False)


@integration_app.command("check")
def integration_check(integration_id: int) -> None:
    """Check the integration: stored fields, then a live call to the provider (refreshing
    tokens); recorded in sync_log, and the integration's status follows (connected / error)."""
    result = check_connection(db.engine(), Keyring.from_env(), integration_id)
    typer.echo(f"integration {integration_id}: connected ({result.spec.display_name})"
               + ("; now active" if result.activated else ""))
    for key, value in result.live.items():
        typer.echo(f"  {key:<22} {value}")
    if not result.live:
        typer.echo("  (no API client for this provider yet: stored fields checked only)")


WORKER_HEALTHCHECK_S = 60  # seconds a worker may take to answer uvicorn's ping (start included)


@web_app.command("run")
def web_run(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="port"),
    public_url: Optional[str] = typer.Option(None, help="the URL providers call, if behind a proxy (Twilio signs it)"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
    limit_concurrency: int = typer.Option(1000, min=1, help="open connections and requests per worker before new ones get 503"),
) -> None:
    """Serve the hub web app (webhook receiver, settings pages) with uvicorn."""
    if public_url:
        os.environ["HUB_PUBLIC_URL"] = public_url
    typer.echo(f"hub web app on http://{host}:{port} (settings at /settings/integrations; webhooks at /webhooks/<provider>/<endpoint id>)")
    # uvicorn's own limits: idle kept-alive connections closed after 5 s, and past
    # --limit-concurrency open connections and requests new ones get 503; header caps and the
    # head timeout (431, 408) are the protocol's (hub/web/limits.py), body stalls the app's
    # with --workers, uvicorn's parent kills a worker that does not answer its ping within
    # timeout_worker_healthcheck (default 5 s), counting from the worker's start: on a busy host
    # importing the app takes longer, so every new worker was killed and replaced, over and over
    # (seen in the drills, tests/drills: one of two workers per host never served)
    uvicorn.run("hub.web.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info",
                access_log=False, timeout_worker_healthcheck=WORKER_HEALTHCHECK_S, **server_options(limit_concurrency))


@app.command("providers")
def providers() -> None:
    """List the providers the hub can connect, with their required fields."""
    for spec in sorted(registry.providers().values(), key=lambda s: (s.category, s.name)):
        needs = ", ".join(spec.required_credentials) or "-"
        typer.echo(f"{spec.name:<11} {spec.category:<19} credentials: {needs}; config: {', '.join(spec.required_config) or '-'}")


# ---- keys --------------------------------------------------------------------------------
@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new key. Prepend it to HUB_SECRET_KEYS, then run `hub keys rotate`."""
    typer.echo(generate_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key of HUB_SECRET_KEYS."""
    keyring = Keyring.from_env()
    report = rotate(db.engine(), keyring)
    typer.echo(f"{report}; all now under key {keyring.primary_kid}")


# ---- demo --------------------------------------------------------------------------------
# where this demo's emulators and web app run (scripts/demo.sh exports both): two demos side by side
_PORT_BASE = typer.Option(DEFAULT_PORT_BASE, "--port-base", envvar=settings.DEMO_PORT_BASE_VAR, min=1,
                          help="first emulator port, as given to `python -m emulators run --port-base`")
_WEB_PORT = typer.Option(DEFAULT_WEB_PORT, "--web-port", envvar=settings.WEB_PORT_VAR, min=1,
                         help="port of the hub web app (`hub web run --port`)")


@demo_app.command("seed")
def demo_seed(port_base: int = _PORT_BASE) -> None:
    """Create the demo companies and integrations (idempotent), pointed at the emulators from
    --port-base on (integrations already there follow them)."""
    for line in seed(db.engine(), Keyring.from_env(), DemoPorts(base=port_base)):
        typer.echo(line)


@demo_app.command("connect")
def demo_connect(web_port: int = _WEB_PORT, port_base: int = _PORT_BASE) -> None:
    """Give the demo integrations fresh OAuth grants from the running emulators, send the
    marketplaces' webhooks to the hub web app on --web-port, check every connection (a
    passing check makes a new integration active), and register the web app's OAuth callback
    at the emulators (the settings pages' Connect buttons)."""
    engine, keyring = db.engine(), Keyring.from_env()
    for line in connect_emulated(engine, keyring, DemoPorts(web=web_port).hub_web_url):
        typer.echo(line)
    for line in check_all(engine, keyring):
        typer.echo(line)
    for line in register_oauth_apps(DemoPorts(base=port_base, web=web_port)):
        typer.echo(line)


@demo_app.command("oauth-env")
def demo_oauth_env(port_base: int = _PORT_BASE) -> None:
    """Print `export HUB_OAUTH_...=...` lines: the demo web app's OAuth apps at the emulators
    (scripts/demo.sh evaluates them before starting the web app)."""
    for name, value in oauth_app_env(DemoPorts(base=port_base)).items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@demo_app.command("outbound")
def demo_outbound(port_base: int = _PORT_BASE) -> None:
    """Outbound webhook endpoints for the demo companies, to the bundled customer sink (the
    last emulator: port base + 8)."""
    for line in connect_outbound(db.engine(), Keyring.from_env(), DemoPorts(base=port_base).sink_url):
        typer.echo(line)


@demo_app.command("billing")
def demo_billing(web_port: int = _WEB_PORT, port_base: int = _PORT_BASE) -> None:
    """Platform billing on the bundled Stripe emulator: the operator's Stripe integration, the
    hub's receiver registered for its webhooks, the plans synced, a subscription per demo
    company (run after `hub demo connect`)."""
    ports = DemoPorts(base=port_base, web=web_port)
    for line in connect_billing(db.engine(), Keyring.from_env(), ports.emulator_url("emulators.stripe"), ports.hub_web_url):
        typer.echo(line)


@demo_app.command("ai-external")
def demo_ai_external(port_base: int = _PORT_BASE) -> None:
    """The AI assist's external model for the demo companies: the bundled OpenAI-compatible
    emulator (port base + 10), demo prices and a small monthly budget."""
    url = DemoPorts(base=port_base).emulator_url("emulators.openai_chat")
    for line in configure_external(db.engine(), Keyring.from_env(), url):
        typer.echo(line)


@demo_app.command("sync-data")
def demo_sync_data() -> None:
    """Prepare the sync demo against the running emulators: chart imported and mapped, hub
    vendors and bills to export, a vendor edited on both sides, a linked Procore project."""
    for line in prepare(db.engine(), Keyring.from_env()):
        typer.echo(line)


@demo_app.command("ai")
def demo_ai() -> None:
    """Prepare the AI assist demo (run after sync-data): the bookkeeper's category mappings and
    vendor-match review, the models trained once, hub bills and vendors with open suggestions."""
    from hub.demo_ai import prepare as prepare_ai  # scikit-learn: loaded by this command only

    for line in prepare_ai(db.engine(), Keyring.from_env()):
        typer.echo(line)


@demo_app.command("kitchen")
def demo_kitchen(interval: float = typer.Option(5.0, help="seconds between passes")) -> None:
    """Simulate the kitchen: POS orders go in progress, ready (DoorDash is told) and completed as they age."""
    engine = db.engine()
    try:
        while True:
            for change in demo_kitchen_pass(engine):
                typer.echo(f"POS order {change.pos_order_id}: {change.before} -> {change.after}"
                           + (f" (marketplace will be told: {change.push})" if change.push else ""))
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
