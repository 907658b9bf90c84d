"""Linking local projects to Procore projects.

A link is the project row's provenance: `integration_id` + `remote_id` (the Procore project
id) + `linked_at`. The pull streams (procore.py) read exactly the linked projects, and
documents are shared to them (procore_documents.py). `unique (integration_id, remote_id)`
keeps it one local project per Procore project per integration; a project has one
provenance, so it is linked to at most one integration at a time.

Every check that needs only the database runs before Procore is called, so a refused link
costs no API call; the Procore project is then looked up (an unknown id is refused) and
the link is written with a guard on the row, so two concurrent links cannot both win.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import RecordNotFound
from hub.providers.protocols import ProjectClient
from hub.schema import project


@dataclass(frozen=True)
class RemoteProject:
    procore_id: int
    name: str
    number: str | None
    active: bool
    linked_project_id: int | None  # the local project linked to it through this integration


@contextmanager
def procore_client(engine: Engine, keyring: Keyring, integration_id: int,
                   client: ProjectClient | None = None) -> Iterator[ProjectClient]:
    """The given client, or one opened (and closed) for the block."""
    if client is not None:
        yield client
        return
    opened = open_client(engine, keyring, integration_id)
    try:
        yield opened
    finally:
        opened.transport.close()


def procore_integration(conn: Connection, keyring: Keyring, integration_id: int) -> store.Integration:
    """The integration, which must be a project provider's (Procore: capability "project")."""
    item = store.get_integration(conn, keyring, integration_id)
    if "project" not in registry.get(item.provider).capabilities:
        raise ValidationError(f"integration {integration_id} is {item.provider}, not procore")
    return item


def _procore_id(value: int | str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{value}' is not a Procore project id (a number)") from None
    if number <= 0:
        raise ValidationError(f"'{value}' is not a Procore project id (a positive number)")
    return number


def _local_project(conn: Connection, company_id: int, project_id: int) -> sa.Row:
    row = conn.execute(sa.select(project).where(project.c.id == project_id)).first()
    if row is None or row.company_id != company_id:
        raise NotFoundError(f"no project {project_id} in company {company_id}")
    return row


def _linked_to(conn: Connection, integration_id: int, procore_id: int) -> int | None:
    return conn.scalar(sa.select(project.c.id).where(project.c.integration_id == integration_id,
                                                     project.c.remote_id == str(procore_id)))


def _refuse_taken(conn: Connection, integration_id: int, procore_id: int) -> None:
    taken = _linked_to(conn, integration_id, procore_id)
    if taken is not None:
        raise ValidationError(f"Procore project {procore_id} is already linked to project {taken}; unlink it first")


def _remote_project(client: ProjectClient, procore_id: int) -> dict[str, Any]:
    try:
        found = client.project(procore_id)
    except RecordNotFound:
        found = None
    company = (found or {}).get("company") or {}
    if found is None or (company.get("id") is not None and str(company["id"]) != str(client.company_id)):
        raise NotFoundError(f"no Procore project {procore_id} in Procore company {client.company_id}")
    return found


def _provenance(integration_id: int, remote: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {"integration_id": integration_id, "remote_id": str(remote["id"]), "remote_version": remote.get("updated_at"),
            "synced_at": now, "linked_at": now}


def _write_guarded(conn: Connection, integration_id: int, procore_id: int, statement: sa.Executable) -> Any:
    """Run an insert/update that takes `procore_id`; a concurrent link of it is refused clearly."""
    try:
        with conn.begin_nested():
            return conn.execute(statement)
    except IntegrityError as exc:
        if "uq_project_integration_id_remote_id" in str(exc.orig):
            _refuse_taken(conn, integration_id, procore_id)
        raise


# ---- the operations -------------------------------------------------------------------
def remote_projects(engine: Engine, keyring: Keyring, integration_id: int, client: ProjectClient | None = None) -> list[RemoteProject]:
    """The Procore company's projects, each with the local project linked to it (if any)."""
    with engine.connect() as conn:
        procore_integration(conn, keyring, integration_id)
    with procore_client(engine, keyring, integration_id, client) as api:
        remote = [p for page in api.projects() for p in page]
    with engine.connect() as conn:
        links = dict(conn.execute(sa.select(project.c.remote_id, project.c.id)
                                  .where(project.c.integration_id == integration_id, project.c.remote_id.is_not(None))).all())
    return [RemoteProject(int(p["id"]), p.get("display_name") or p.get("name") or "", p.get("project_number"),
                          p.get("active", True) is not False, links.get(str(p["id"])))
            for p in sorted(remote, key=lambda p: int(p["id"]))]


def link_project(engine: Engine, keyring: Keyring, integration_id: int, project_id: int, procore_project_id: int | str,
                 client: ProjectClient | None = None) -> bool:
    """Link local `project_id` to a Procore project. Returns False when that exact link
    already existed (linking twice is harmless), True when it was made."""
    procore_id = _procore_id(procore_project_id)
    with engine.connect() as conn:
        item = procore_integration(conn, keyring, integration_id)
        local = _local_project(conn, item.company_id, project_id)
        if local.integration_id == integration_id and local.remote_id == str(procore_id):
            return False
        if local.remote_id is not None:
            raise ValidationError(f"project {project_id} is already linked to {local.remote_id} through integration "
                                  f"{local.integration_id}; unlink it first")
        _refuse_taken(conn, integration_id, procore_id)
    with procore_client(engine, keyring, integration_id, client) as api:
        remote = _remote_project(api, procore_id)
    with engine.begin() as conn:
        statement = (sa.update(project).where(project.c.id == project_id, project.c.remote_id.is_(None))
                     .values(**_provenance(integration_id, remote)))
        if _write_guarded(conn, integration_id, procore_id, statement).rowcount == 0:
            raise ValidationError(f"project {project_id} was linked meanwhile; check it and retry")
    return True


def import_project(engine: Engine, keyring: Keyring, integration_id: int, procore_project_id: int | str,
                   client: ProjectClient | None = None) -> int:
    """Create a local project from a Procore project, linked to it; returns its id."""
    procore_id = _procore_id(procore_project_id)
    with engine.connect() as conn:
        item = procore_integration(conn, keyring, integration_id)
        _refuse_taken(conn, integration_id, procore_id)
    with procore_client(engine, keyring, integration_id, client) as api:
        remote = _remote_project(api, procore_id)
    values = {"company_id": item.company_id, "name": remote.get("name") or remote.get("display_name") or f"Procore {procore_id}",
              "code": remote.get("project_number"), "status": "active" if remote.get("active", True) is not False else "inactive",
              **_provenance(integration_id, remote)}
    with engine.begin() as conn:
        return _write_guarded(conn, integration_id, procore_id, sa.insert(project).values(values).returning(project.c.id)).scalar_one()


def unlink_project(engine: Engine, keyring: Keyring, integration_id: int, project_id: int) -> str:
    """Remove the link (the project and what was imported into it stay); returns the Procore
    project id it was linked to. A later link reads that project in full again."""
    with engine.begin() as conn:
        item = procore_integration(conn, keyring, integration_id)
        local = _local_project(conn, item.company_id, project_id)
        if local.integration_id != integration_id or local.remote_id is None:
            raise ValidationError(f"project {project_id} is not linked through integration {integration_id}")
        conn.execute(sa.update(project).where(project.c.id == project_id)
                     .values(integration_id=None, remote_id=None, remote_version=None, synced_at=None, linked_at=None))
    return local.remote_id
