"""`hub procore ...`: link local projects to Procore projects and share documents to them.

The pull of RFIs, submittals and daily logs runs as Dagster assets (`procore/rfis`, ...);
these commands are the parts a person does by hand. `HubGroup` (hub/commands) turns a
`HubError` into one `Error:` line and exit code 1.
"""

from __future__ import annotations

import typer

from hub import db
from hub.commands import typer_app
from hub.crypto import Keyring
from hub.sync.procore_documents import share_documents as share
from hub.sync.procore_link import import_project, link_project, remote_projects, unlink_project

app = typer_app("Procore: link projects, import them, share documents.")


@app.command("projects")
def projects(integration_id: int) -> None:
    """List the Procore company's projects and the local project linked to each."""
    rows = remote_projects(db.engine(), Keyring.from_env(), integration_id)
    typer.echo(f"{'procore id':>12}  {'number':<10} {'active':<6} {'linked to':<10} name")
    for p in rows:
        linked = f"project {p.linked_project_id}" if p.linked_project_id else "-"
        typer.echo(f"{p.procore_id:>12}  {p.number or '-':<10} {'yes' if p.active else 'no':<6} {linked:<10} {p.name}")
    if not rows:
        typer.echo("the Procore company has no projects")


@app.command("link")
def link(integration_id: int, local_project_id: int, procore_project_id: int) -> None:
    """Link a local project to a Procore project (its RFIs, submittals and logs are then imported)."""
    made = link_project(db.engine(), Keyring.from_env(), integration_id, local_project_id, procore_project_id)
    state = "linked" if made else "was already linked"
    typer.echo(f"project {local_project_id} {state} to Procore project {procore_project_id} (integration {integration_id})")


@app.command("import")
def import_(integration_id: int, procore_project_id: int) -> None:
    """Create a local project from a Procore project, linked to it."""
    new_id = import_project(db.engine(), Keyring.from_env(), integration_id, procore_project_id)
    typer.echo(f"project {new_id} created from Procore project {procore_project_id} and linked (integration {integration_id})")


@app.command("unlink")
def unlink(integration_id: int, local_project_id: int) -> None:
    """Remove a project's link; the project and what was imported into it stay."""
    was = unlink_project(db.engine(), Keyring.from_env(), integration_id, local_project_id)
    typer.echo(f"project {local_project_id} unlinked from Procore project {was}")


@app.command("share-documents")
def share_documents(integration_id: int) -> None:
    """Upload the linked projects' documents not shared yet; failures are listed in sync_log."""
    result = share(db.engine(), Keyring.from_env(), integration_id)
    typer.echo(f"{len(result.uploaded)} uploaded, {len(result.found_remote)} found already on Procore, "
               f"{len(result.failed)} failed (sync_log {result.sync_log_id})")
    if result.failed:
        raise typer.Exit(code=1)
