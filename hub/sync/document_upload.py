"""A document a person uploads on the settings page, checked before anything is stored or
sent, then shared to its Procore project by the existing share run (procore_documents.py).

The checks, each with a message saying what to do:
- a size limit (MAX_BYTES; an empty file is refused too);
- an allow-list of extensions, each with the content types a browser may declare for it
  (or none: application/octet-stream); the stored content type is the extension's own;
- for the formats with a signature (PDF, PNG, JPEG, the Office zip formats), the first bytes
  must be that signature, so a renamed file of another kind is refused;
- the name is cut to its last path part, without control characters, at most MAX_NAME long.

The project must be the company's and linked through this integration.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.schema import document, project, sync_write

MAX_BYTES = 10 * 1024 * 1024
MAX_NAME = 200
GENERIC_TYPES = ("", "application/octet-stream")
OFFICE_ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class FileKind:
    content_type: str  # what is stored and sent
    declared: tuple[str, ...]  # what a browser may say besides it
    signature: bytes | None = None


KINDS: dict[str, FileKind] = {
    ".pdf": FileKind("application/pdf", (), b"%PDF-"),
    ".png": FileKind("image/png", (), b"\x89PNG\r\n\x1a\n"),
    ".jpg": FileKind("image/jpeg", ("image/pjpeg",), b"\xff\xd8\xff"),
    ".jpeg": FileKind("image/jpeg", ("image/pjpeg",), b"\xff\xd8\xff"),
    ".txt": FileKind("text/plain", ()),
    ".csv": FileKind("text/csv", ("text/plain", "application/vnd.ms-excel")),
    ".docx": FileKind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("application/zip",), OFFICE_ZIP),
    ".xlsx": FileKind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("application/zip",), OFFICE_ZIP),
    ".dwg": FileKind("image/vnd.dwg", ("application/acad", "application/x-dwg", "image/x-dwg"), b"AC10"),
}
ACCEPT = ",".join(sorted(KINDS))  # the file input's accept attribute


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def safe_name(filename: str) -> str:
    name = re.split(r"[\\/]", filename or "")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    if not name:
        raise ValidationError("The file has no name. Rename it and upload it again.")
    stem, ext = os.path.splitext(name)
    return stem[: MAX_NAME - len(ext)] + ext


def check_file(filename: str, declared_type: str | None, content: bytes, max_bytes: int = MAX_BYTES,
               size: int | None = None) -> tuple[str, str]:
    """(the name to store, its content type), or ValidationError saying what is wrong. `size`:
    the whole file's size when `content` was read only up to just past the limit."""
    name = safe_name(filename)
    size = max(size or 0, len(content))
    if size > max_bytes:
        raise ValidationError(f"{name} is {_size(size)}; files can be at most {_size(max_bytes)}.")
    if not content:
        raise ValidationError(f"{name} is empty.")
    ext = os.path.splitext(name)[1].lower()
    kind = KINDS.get(ext)
    allowed = ", ".join(sorted(KINDS))
    if kind is None:
        raise ValidationError(f"{name}: {ext or 'files without an extension'} cannot be shared; allowed: {allowed}.")
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared not in (kind.content_type, *kind.declared, *GENERIC_TYPES):
        raise ValidationError(f"{name} says it is {declared}, which does not match {ext}; allowed: {allowed}.")
    if kind.signature is not None and not content.startswith(kind.signature):
        raise ValidationError(f"{name} is not a real {ext[1:].upper()} file (its content does not match its extension).")
    return name, kind.content_type


def linked_projects(conn: Connection, company_id: int, integration_id: int) -> list[sa.Row]:
    """(id, name, code, remote_id) of the company's projects linked through the integration."""
    return conn.execute(sa.select(project.c.id, project.c.name, project.c.code, project.c.remote_id)
                        .where(project.c.company_id == company_id, project.c.integration_id == integration_id,
                               project.c.remote_id.is_not(None))
                        .order_by(project.c.name, project.c.id)).all()


def add_document(conn: Connection, company_id: int, integration_id: int, project_id: int, filename: str,
                 declared_type: str | None, content: bytes, max_bytes: int = MAX_BYTES, size: int | None = None) -> int:
    """Store a checked file for a linked project, waiting to be shared; its document id."""
    name, content_type = check_file(filename, declared_type, content, max_bytes, size)
    if project_id not in {p.id for p in linked_projects(conn, company_id, integration_id)}:
        raise NotFoundError("Choose one of the linked projects; that one is not linked to this Procore company.")
    return conn.scalar(sa.insert(document).values(
        company_id=company_id, project_id=project_id, filename=name, content_type=content_type, size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(), content=content).returning(document.c.id))


def document_statuses(conn: Connection, company_id: int, integration_id: int, limit: int = 100) -> list[sa.Row]:
    """The documents of the integration's linked projects and those shared through it, newest
    first, each with its last upload attempt from the write ledger (status, error)."""
    last_write = (sa.select(sync_write.c.status, sync_write.c.error, sync_write.c.updated_at)
                  .where(sync_write.c.integration_id == integration_id, sync_write.c.entity_type == "document",
                         sync_write.c.local_id == document.c.id)
                  .order_by(sync_write.c.id.desc()).limit(1).lateral("last_write"))
    return conn.execute(
        sa.select(document.c.id, document.c.filename, document.c.content_type, document.c.size_bytes, document.c.remote_id,
                  document.c.synced_at, document.c.created_at, project.c.name.label("project_name"),
                  last_write.c.status.label("write_status"), last_write.c.error.label("write_error"))
        .select_from(document.join(project, project.c.id == document.c.project_id).outerjoin(last_write, sa.true()))
        .where(document.c.company_id == company_id,
               sa.or_(document.c.integration_id == integration_id,
                      sa.and_(project.c.integration_id == integration_id, document.c.remote_id.is_(None))))
        .order_by(document.c.created_at.desc(), document.c.id.desc()).limit(limit)).all()


def describe(row: sa.Row) -> tuple[str, str]:
    """(a short status, its tone) of a document_statuses row."""
    if row.remote_id is not None:
        return "Shared", "ok"
    if row.write_status == "failed":
        return "Refused by Procore", "bad"
    if row.write_status == "pending":
        return "Outcome unknown; checked on the next run", "busy"
    return "Waiting to be shared", "neutral"

