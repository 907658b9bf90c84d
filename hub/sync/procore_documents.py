"""Sharing local documents to their linked Procore project (Create Project File).

Which: `document` rows of projects linked through the integration that have content and no
`remote_id` yet. A shared document gets the integration, the Procore file id and version
and `synced_at`, so a rerun does not upload it again.

Idempotency: each upload goes through the hub's write ledger (hub/sync/write_ledger.py, entity
"document", operation "upload"; the payload is the project, file name and content hash):
`write_ledger.begin` commits a `pending` row before the POST, `write_ledger.succeed` closes it in the
transaction that records the document as shared, `write_ledger.fail` when Procore refused it.
A `pending` row for the same payload found at the start of an upload means an earlier try
ended without knowing the outcome (timeout, dropped connection, 5xx, crash between POST
and commit): it is resumed (`write_ledger.resume`, one more attempt on the same row) and the
project's file list is searched first for the same name with the same sha256 (the emulator
shows it) or, failing that field, the same size, not yet claimed by another document; a
match is adopted instead of uploading again. (Procore takes no idempotency key, so the
look-up is the only protection; the row's request key is never sent.) A pending row for
older content is not resumed: the current content is what gets shared (`write_ledger.begin`
settles that row as superseded). A transient failure is not retried in the same run, because
the upload may still be landing; it is recorded and the next run looks it up first. A
refusal (4xx) is recorded per file with Procore's status and message, the ledger row
`failed`, and the next run tries again.

One run per integration at a time (a PostgreSQL advisory lock), so two runs cannot upload
the same document side by side. Each file is its own transaction, with its `sync_log`
progress, so a crash loses nothing already shared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.crypto import Keyring
from hub.errors import HubError
from hub.providers.errors import ProviderError, RecordProblem, TransientProblem
from hub.providers.protocols import ProjectClient
from hub.schema import document, project
from hub.sync import write_ledger
from hub.sync.procore_link import procore_client, procore_integration
from hub.sync_log import SyncRecorder, record_sync

ENTITY = "document"


@dataclass
class ShareResult:
    uploaded: list[int] = field(default_factory=list)  # document ids
    found_remote: list[int] = field(default_factory=list)  # unknown outcomes found already uploaded
    failed: list[int] = field(default_factory=list)
    sync_log_id: int | None = None


def _pending_ids(conn: Connection, integration_id: int) -> list[int]:
    return list(conn.execute(
        sa.select(document.c.id).join(project, project.c.id == document.c.project_id)
        .where(project.c.integration_id == integration_id, project.c.remote_id.is_not(None),
               document.c.remote_id.is_(None), document.c.content.is_not(None))
        .order_by(document.c.id)
    ).scalars())


def _error_code(exc: ProviderError) -> str:
    return exc.code or (str(exc.status) if exc.status else exc.kind)


class _Sharer:
    """One run: the client, the sync_log recorder, and file lists fetched for lookups."""

    def __init__(self, engine: Engine, integration_id: int, client: ProjectClient, sync: SyncRecorder, result: ShareResult):
        self.engine, self.integration_id, self.client, self.sync, self.result = engine, integration_id, client, sync, result
        self._listings: dict[str, list[dict[str, Any]]] = {}

    def share(self, document_id: int) -> None:
        with self.engine.connect() as conn:
            doc = conn.execute(
                sa.select(document.c.id, document.c.filename, document.c.content_type, document.c.content,
                          project.c.remote_id.label("procore_project"))
                .join(project, project.c.id == document.c.project_id)
                .where(document.c.id == document_id, document.c.remote_id.is_(None),
                       project.c.integration_id == self.integration_id)
            ).first()
        if doc is None:  # shared or unlinked since the list was made
            return
        content = bytes(doc.content)
        digest = hashlib.sha256(content).hexdigest()
        write, outcome_unknown = self._claim(doc, digest)
        remote = self._find_uploaded(doc, digest, len(content)) if outcome_unknown else None
        if remote is not None:
            self.result.found_remote.append(doc.id)
        else:
            try:
                remote = self.client.upload_file(doc.procore_project, doc.filename, content, doc.content_type)
            except TransientProblem as exc:  # outcome unknown: the ledger row stays pending
                self._fail(doc.id, None, exc, " (outcome unknown; the next run looks it up before uploading)")
                return
            except RecordProblem as exc:
                self._fail(doc.id, write, exc, "")
                return
            self.result.uploaded.append(doc.id)
        self._done(doc.id, write, remote, digest, len(content))

    def _claim(self, doc: sa.Row, digest: str) -> tuple[write_ledger.Write, bool]:
        """The ledger row of this upload, committed as pending before the POST, and whether an
        earlier try of the same upload (same project, name and content) never learned its outcome."""
        payload = {"project": doc.procore_project, "filename": doc.filename, "sha256": digest}
        with self.engine.connect() as conn:
            earlier = write_ledger.pending(conn, self.integration_id, ENTITY, doc.id, "upload")
        if earlier is not None and earlier.payload_hash == write_ledger.payload_hash(payload):
            return write_ledger.resume(self.engine, earlier), True
        return write_ledger.begin(self.engine, self.integration_id, ENTITY, doc.id, "upload", payload), False

    def _find_uploaded(self, doc: sa.Row, digest: str, size: int) -> dict[str, Any] | None:
        if doc.procore_project not in self._listings:
            self._listings[doc.procore_project] = [f for page in self.client.files(doc.procore_project) for f in page]
        matches = [f for f in self._listings[doc.procore_project]
                   if f.get("name") == doc.filename and not f.get("is_deleted")
                   and (f["sha256"] == digest if f.get("sha256") else f.get("size") == size)]
        if not matches:
            return None
        with self.engine.connect() as conn:
            claimed = set(conn.execute(sa.select(document.c.remote_id).where(
                document.c.integration_id == self.integration_id,
                document.c.remote_id.in_([str(f["id"]) for f in matches]))).scalars())
        return next((f for f in sorted(matches, key=lambda f: f["id"]) if str(f["id"]) not in claimed), None)

    def _done(self, document_id: int, write: write_ledger.Write, remote: dict[str, Any], digest: str, size: int) -> None:
        remote_id, version = str(remote["id"]), remote.get("updated_at")
        with self.engine.begin() as conn:
            conn.execute(sa.update(document).where(document.c.id == document_id).values(
                integration_id=self.integration_id, remote_id=remote_id, remote_version=version,
                synced_at=datetime.now(timezone.utc), sha256=digest, size_bytes=size))
            write_ledger.succeed(conn, write, remote_id, version)
            self.sync.page(conn, processed=1)

    def _fail(self, document_id: int, write: write_ledger.Write | None, exc: ProviderError, note: str) -> None:
        """Record the failure; `write` (refused: it did not happen) is closed as failed, None
        leaves the ledger row pending (the outcome is unknown)."""
        self.result.failed.append(document_id)
        self.sync.record_error(document_id, _error_code(exc), exc.message + note)
        with self.engine.begin() as conn:
            if write is not None:
                write_ledger.fail(conn, write, exc.message)
            self.sync.page(conn)


def share_documents(engine: Engine, keyring: Keyring, integration_id: int, run_id: str | None = None,
                    client: ProjectClient | None = None) -> ShareResult:
    """Upload the unshared documents of the integration's linked projects (module docstring)."""
    with engine.connect() as conn:
        procore_integration(conn, keyring, integration_id)
    result = ShareResult()
    with engine.connect() as lock_conn:
        lock = sa.func.hashtextextended(f"procore-share-documents:{integration_id}", 0)
        locked = lock_conn.scalar(sa.select(sa.func.pg_try_advisory_lock(lock)))
        lock_conn.commit()  # a session lock: it outlives the transaction, which must not stay open
        if not locked:
            raise HubError(f"documents of integration {integration_id} are being shared by another run; try again later")
        try:
            with engine.connect() as conn:
                pending = _pending_ids(conn, integration_id)
            with record_sync(engine, integration_id=integration_id, sync_type="push", action="share_documents",
                             direction="outbound", entity_type="document", run_id=run_id,
                             details={"documents": len(pending)}) as sync:
                result.sync_log_id = sync.id
                if pending:
                    with procore_client(engine, keyring, integration_id, client) as api:
                        sharer = _Sharer(engine, integration_id, api, sync, result)
                        for document_id in pending:
                            sharer.share(document_id)
        finally:
            lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(lock)))
            lock_conn.commit()
    return result
