"""`hub sync ...` (sync preferences, running a sync by hand) and `hub mapping ...` (the
account mapping used by invoice export). The web views will call the same functions."""

from __future__ import annotations

from typing import Optional

import typer

from hub import db
from hub.commands import typer_app
from hub.crypto import Keyring
from hub.errors import HubError
from hub.sync import account_mapping, preferences, sync_now
from hub.sync.dagster_api import DagsterApi

sync_app = typer_app("Sync preferences of an integration (streams, directions, hour, conflict policy); sync now.")
mapping_app = typer_app("Account mapping: the hub's expense categories -> accounts of an integration's chart.")


def _show_preferences(prefs: preferences.SyncPreferences) -> None:
    typer.echo(f"nightly sync hour: {prefs.hour:02d}:00 (company local time)")
    typer.echo(f"conflict policy:   {prefs.conflict_policy}")
    typer.echo("streams:")
    for name, pref in prefs.streams.items():
        typer.echo(f"  {name:<12} {'on ' if pref.enabled else 'off'}  {pref.direction}")


@sync_app.command("show")
def sync_show(integration_id: int = typer.Argument(..., help="integration id")) -> None:
    """Show an integration's sync preferences (defaults included)."""
    with db.engine().connect() as conn:
        _show_preferences(preferences.read(conn, Keyring.from_env(), integration_id))


@sync_app.command("set")
def sync_set(
    integration_id: int = typer.Argument(..., help="integration id"),
    hour: Optional[int] = typer.Option(None, help="local hour (0-23) of the nightly sync"),
    conflict_policy: Optional[str] = typer.Option(None, help=f"one of {', '.join(preferences.CONFLICT_POLICIES)}"),
    stream: Optional[str] = typer.Option(None, help="the stream the next options apply to, e.g. vendors"),
    enable: Optional[bool] = typer.Option(None, "--enable/--disable", help="run the stream or not"),
    direction: Optional[str] = typer.Option(None, help="import, export or both (where the stream allows it)"),
) -> None:
    """Change sync preferences; the next run honours them."""
    with db.engine().begin() as conn:
        prefs = preferences.update(conn, Keyring.from_env(), integration_id, hour=hour, conflict_policy=conflict_policy,
                                   stream=stream, enabled=enable, direction=direction)
    _show_preferences(prefs)


@sync_app.command("now")
def sync_now_command(
    integration_id: int = typer.Argument(..., help="integration id"),
    wait: bool = typer.Option(False, "--wait", help="follow the run to its end; exit 1 unless it succeeds"),
) -> None:
    """Launch the integration's sync job on Dagster (HUB_DAGSTER_URL) now; the run shows in the UI."""
    with DagsterApi(sync_now.dagster_url()) as api:
        run_id = sync_now.launch(api, db.engine(), integration_id)
        typer.echo(f"launched run {run_id}")
        typer.echo(api.run_url(run_id))
        if not wait:
            return
        status = sync_now.follow(api, run_id, lambda event: typer.echo(sync_now.progress_line(event)))
    if status != "SUCCESS":
        raise HubError(f"sync run {run_id} ended {status}: {api.run_url(run_id)}")
    typer.echo(f"run {run_id} succeeded")


@mapping_app.command("list")
def mapping_list(integration_id: int = typer.Argument(..., help="accounting integration id")) -> None:
    """Mapped categories, and the categories in use that still lack a mapping."""
    with db.engine().connect() as conn:
        rows = account_mapping.list_mappings(conn, integration_id)
        missing = account_mapping.unmapped_categories(conn, integration_id)
    for row in rows:
        flag = "" if row.is_active else "   (account inactive: invoices using it are blocked)"
        typer.echo(f"{row.local_category:<24} -> {row.code or '-':<8} {row.name}{flag}")
    if not rows:
        typer.echo("no mappings yet")
    for category, lines in missing:
        typer.echo(f"{category:<24} -> UNMAPPED ({lines} invoice line(s) blocked)")


@mapping_app.command("set")
def mapping_set(
    integration_id: int = typer.Argument(..., help="accounting integration id"),
    category: str = typer.Argument(..., help="the hub's category, as on invoice lines"),
    account: str = typer.Argument(..., help="account code, remote id or exact name"),
) -> None:
    """Map CATEGORY to ACCOUNT (replaces an earlier mapping)."""
    with db.engine().begin() as conn:
        done = account_mapping.set_mapping(conn, integration_id, category, account)
    typer.echo(f"{done['category']} -> {done['code'] or '-'} {done['account']}")


@mapping_app.command("remove")
def mapping_remove(
    integration_id: int = typer.Argument(..., help="accounting integration id"),
    category: str = typer.Argument(..., help="the mapped category"),
) -> None:
    """Remove CATEGORY's mapping (its invoice lines block export until mapped again)."""
    with db.engine().begin() as conn:
        account_mapping.remove_mapping(conn, integration_id, category)
    typer.echo(f"{category} is no longer mapped")


@mapping_app.command("accounts")
def mapping_accounts(
    integration_id: int = typer.Argument(..., help="accounting integration id"),
    search: Optional[str] = typer.Option(None, help="part of a name, or a code prefix"),
) -> None:
    """The chart of accounts imported from the integration."""
    with db.engine().connect() as conn:
        rows = account_mapping.list_accounts(conn, integration_id, search)
    for row in rows:
        typer.echo(f"{row.code or '-':<8} {row.name:<40} {row.account_type:<20} {'' if row.is_active else 'inactive'}")
    if not rows:
        typer.echo("no accounts imported yet" if not search else f"no account matches '{search}'")
