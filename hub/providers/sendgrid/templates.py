"""SendGrid dynamic templates pulled into the hub (`provider_template`).

Why a local copy: an email route names a template by id (``d-...``); with the provider's
list in the hub, `hub notify templates list` shows what can be used (name, subject) without
a SendGrid login, and `add-route` refuses an id SendGrid does not have (a typo would
otherwise fail every send). A sync replaces the integration's list: new templates are
added, changed ones updated, templates deleted at SendGrid removed (a route still naming
one shows up in `hub notify check`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers.sendgrid.client import SendGridClient
from hub.providers.connect import open_client
from hub.schema import provider_template

__all__ = ["SyncResult", "sync", "list_templates", "known"]


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    removed: int
    total: int


def sync(engine: Engine, keyring: Keyring, integration_id: int, client: SendGridClient | None = None) -> SyncResult:
    """Pull the integration's dynamic templates from SendGrid; one transaction."""
    with engine.connect() as conn:
        item = store.get_integration(conn, keyring, integration_id)
    if item.provider != "sendgrid":
        raise ValidationError(f"integration {integration_id} is {item.provider}; templates are synced from SendGrid")
    own = client is None
    client = client or open_client(engine, keyring, integration_id)
    try:
        remote = [t for t in client.templates() if t.get("id")]
    finally:
        if own:
            client.transport.close()
    t = provider_template
    with engine.begin() as conn:
        before = {r.template_id: r for r in conn.execute(sa.select(t).where(t.c.integration_id == integration_id))}
        added = updated = 0
        for item_ in remote:
            values = {"name": str(item_.get("name") or item_["id"]), "generation": item_.get("generation"),
                      "subject": item_.get("subject"), "active_version_id": item_.get("active_version_id"),
                      "remote_updated_at": item_.get("updated_at")}
            old = before.get(item_["id"])
            if old is None:
                added += 1
            elif any(getattr(old, k) != v for k, v in values.items()):
                updated += 1
            conn.execute(
                insert(t).values(integration_id=integration_id, template_id=item_["id"], **values)
                .on_conflict_do_update(index_elements=[t.c.integration_id, t.c.template_id],
                                       set_={**values, "synced_at": sa.func.now()})
            )
        gone = set(before) - {i["id"] for i in remote}
        if gone:
            conn.execute(sa.delete(t).where(t.c.integration_id == integration_id, t.c.template_id.in_(gone)))
    return SyncResult(added, updated, len(gone), len(remote))


def list_templates(conn: Connection, integration_id: int) -> list[sa.Row]:
    t = provider_template
    return list(conn.execute(sa.select(t).where(t.c.integration_id == integration_id).order_by(t.c.name, t.c.template_id)))


def known(conn: Connection, integration_id: int, template_id: str) -> sa.Row | None:
    t = provider_template
    return conn.execute(sa.select(t).where(t.c.integration_id == integration_id, t.c.template_id == template_id)).first()
