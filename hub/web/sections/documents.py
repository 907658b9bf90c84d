"""Procore's document sharing tab: upload a file to a linked project, and the shared status
of each document. The file is checked (hub/sync/document_upload.py: size, type allow-list,
content signature) before anything is stored; a good one is stored for its project and
shared at once by the existing share run (hub/sync/procore_documents.py: write ledger,
look-up of unknown outcomes, sync_log), so the page and the scheduled share behave alike.

A body far over the limit is refused before it is read (413), so a huge upload costs no disk;
one just over the limit is read and refused with the same message as any other bad file."""

from __future__ import annotations

from functools import partial

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from hub.errors import HubError
from hub.redact import redact
from hub.sync import document_upload
from hub.sync.procore_documents import share_documents
from hub.web.sections import Section
from hub.web.sections.clock import company_clock
from hub.web.sections.common import HOME, back, form_id
from hub.web.sections.live import keyring
from hub.web.sections.live_calls import page_client, say

FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the other fields, beyond the file itself


def load(conn, context, row, spec, query) -> dict:
    rows = document_upload.document_statuses(conn, context.company_id, row.id)
    return {"projects": document_upload.linked_projects(conn, context.company_id, row.id),
            "documents": [(d, *document_upload.describe(d), redact(d.write_error) if d.write_error and d.remote_id is None else None)
                          for d in rows],
            "accept": document_upload.ACCEPT, "max_mb": document_upload.MAX_BYTES // (1024 * 1024),
            "allowed": ", ".join(sorted(document_upload.KINDS)), "at": company_clock(context.company.timezone)}


def upload(pages, request, context, row, form):
    file = form.get("file")
    project_id = form_id(form, "project_id")
    if not isinstance(file, UploadFile) or not file.filename:
        pages.flash(request, "Choose a file to upload.", "bad")
        return back(row.id, "documents")
    if project_id is None:
        pages.flash(request, "Choose the linked project to share it to.", "bad")
        return back(row.id, "documents")
    content = file.file.read(document_upload.MAX_BYTES + 1)  # one byte over says "too big" without reading more
    try:
        with pages.engine.begin() as conn:
            document_id = document_upload.add_document(conn, context.company_id, row.id, project_id, file.filename,
                                                       file.content_type, content, size=file.size)
    except HubError as exc:
        pages.flash(request, f"Not uploaded: {say(exc)}", "bad")
        return back(row.id, "documents")
    try:
        with page_client(pages.engine, row.id) as client:
            result = share_documents(pages.engine, keyring(), row.id, client=client)
    except Exception as exc:  # noqa: BLE001 - stored: the next share run sends it
        pages.flash(request, f"Saved, not shared yet: {say(exc)}. The next share run sends it.", "bad")
        return back(row.id, "documents")
    if document_id in result.uploaded or document_id in result.found_remote:
        pages.flash(request, "Uploaded and shared to Procore.")
    else:
        pages.flash(request, "Saved, but Procore did not take it; see its status below.", "bad")
    return back(row.id, "documents")


def limited(endpoint):
    """Refuse a body far larger than any allowed file before it is read."""

    async def guarded(request: Request):
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > document_upload.MAX_BYTES + FORM_OVERHEAD:
            raise HTTPException(413, f"The file is too large: files can be at most "
                                     f"{document_upload.MAX_BYTES // (1024 * 1024)} MB. Nothing was uploaded.")
        return await endpoint(request)

    guarded.csrf_protected = endpoint.csrf_protected
    return guarded


def routes(pages) -> list:
    return [Route(HOME + "/{integration_id:int}/documents/upload",
                  limited(pages.integration_action(partial(upload, pages))), methods=["POST"])]


SECTION = Section(key="documents", label="Documents", template="sections/documents.html", load=load, routes=routes)
