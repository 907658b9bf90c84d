"""Procore's project linking tab: the Procore company's projects, listed live through the
hub's Procore client, each with the hub project linked to it; admins link one to an existing
hub project or import it as a new one, and unlink. The work is hub/sync/procore_link.py's
(the same as `hub procore link|import|unlink`); shown for specs listing "projects"."""

from __future__ import annotations

from functools import partial

import sqlalchemy as sa
from starlette.routing import Route

from hub.schema import project
from hub.sync.procore_link import import_project, link_project, remote_projects, unlink_project
from hub.web.sections import Section
from hub.web.sections.common import HOME, back, form_id, form_text
from hub.web.sections.live import keyring
from hub.web.sections.live_calls import page_client, say

NEW = "new"  # the link form's choice "import it as a new hub project"


def load(conn, context, row, spec, query) -> dict:
    local = conn.execute(sa.select(project.c.id, project.c.name, project.c.code, project.c.integration_id, project.c.remote_id)
                         .where(project.c.company_id == context.company_id).order_by(project.c.name, project.c.id)).all()
    remote, problem = [], None
    try:
        with page_client(conn.engine, row.id) as client:
            remote = remote_projects(conn.engine, keyring(), row.id, client=client)
    except Exception as exc:  # noqa: BLE001 - the page shows why Procore could not be read
        problem = say(exc)
    names = {p.id: p.name for p in local}
    return {"remote": remote, "problem": problem, "names": names,
            "unlinked": [p for p in local if p.remote_id is None],
            "linked_elsewhere": [p for p in local if p.remote_id is not None and p.integration_id != row.id]}


def link(pages, request, context, row, form):
    procore_id, choice = form_text(form, "procore_project_id", 20), form_text(form, "project_id", 20)
    engine = pages.engine
    try:
        if choice == NEW:
            with page_client(engine, row.id) as client:
                new_id = import_project(engine, keyring(), row.id, procore_id, client=client)
            pages.flash(request, f"Procore project {procore_id} imported as hub project {new_id} and linked.")
        else:
            project_id = form_id(form, "project_id")
            if project_id is None:
                pages.flash(request, "Choose the hub project to link it to (or import it as a new one).", "bad")
                return back(row.id, "projects")
            with page_client(engine, row.id) as client:
                made = link_project(engine, keyring(), row.id, project_id, procore_id, client=client)
            pages.flash(request, f"Linked to Procore project {procore_id}." if made else "It was already linked.")
    except Exception as exc:  # noqa: BLE001 - refused or failed: said on the page, nothing written
        pages.flash(request, f"Not linked: {say(exc)}", "bad")
    return back(row.id, "projects")


def unlink(pages, request, context, row, form):
    project_id = form_id(form, "project_id")
    try:
        if project_id is None:
            raise ValueError("no project chosen")
        was = unlink_project(pages.engine, keyring(), row.id, project_id)
        pages.flash(request, f"Unlinked from Procore project {was}; the project and its records stay in the hub.")
    except Exception as exc:  # noqa: BLE001
        pages.flash(request, f"Not unlinked: {say(exc)}", "bad")
    return back(row.id, "projects")


def routes(pages) -> list:
    base = HOME + "/{integration_id:int}/projects"
    return [Route(f"{base}/link", pages.integration_action(partial(link, pages)), methods=["POST"]),
            Route(f"{base}/unlink", pages.integration_action(partial(unlink, pages)), methods=["POST"])]


SECTION = Section(key="projects", label="Projects", template="sections/projects.html", load=load, routes=routes)
