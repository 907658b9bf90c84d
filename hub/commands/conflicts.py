"""`hub conflicts`: fields changed differently on both sides of a two-way sync, held for a
person to settle (the policy is in hub/sync/merge.py, the settling in hub/sync/conflicts.py).
A record with an open conflict is not exported until each of its conflicts is resolved.
Nothing secret is read: no key needed.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from hub import db
from hub.commands import typer_app
from hub.sync.conflicts import list_conflicts, resolve_conflict

app = typer_app("Sync conflicts: fields changed on both sides, waiting for a person to choose.")


def _show(value: Any, width: int = 28) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
def conflicts_list(
    integration: Optional[int] = typer.Option(None, "--integration", help="only this integration's conflicts"),
    all_: bool = typer.Option(False, "--all", help="resolved ones too"),
) -> None:
    """List open conflicts (with --all, resolved ones too)."""
    with db.engine().connect() as conn:
        rows = list_conflicts(conn, integration, include_resolved=all_)
    if not rows:
        typer.echo("no conflicts" if all_ else "no open conflicts")
        return
    typer.echo(f"{'id':>5}  {'integ.':>6}  {'record':<14} {'field':<13} {'local':<28} {'remote':<28} status")
    for r in rows:
        status = r.status if r.status == "open" else f"{r.status} ({r.resolution})"
        typer.echo(f"{r.id:>5}  {r.integration_id:>6}  {f'{r.entity_type} {r.local_id}':<14} {r.field:<13} "
                   f"{_show(r.local_value):<28} {_show(r.remote_value):<28} {status}")


@app.command("resolve")
def conflicts_resolve(
    conflict_id: int = typer.Argument(..., help="the conflict's id (see `hub conflicts list`)"),
    keep: str = typer.Option(..., "--keep", help="local: export the hub's value; remote: take the ledger's value"),
) -> None:
    """Settle one conflict: keep the local value (sent with the next export) or the remote one (written locally now)."""
    with db.engine().begin() as conn:
        row = resolve_conflict(conn, conflict_id, keep)
    what = "kept the local value; it goes out with the next export" if keep == "local" else "took the remote value"
    typer.echo(f"conflict {row.id} ({row.entity_type} {row.local_id} {row.field}): {what}")
