"""Inbound webhook endpoints: where a provider calls us, and the secret it proves itself with.

An inbound endpoint belongs to one integration. Its secret is copied, encrypted, from the
integration's credentials (which field: the spec's `inbound.secret_field`), so the
receiver reads one small row per endpoint and never the whole credential set. The URL a
provider is given is `/webhooks/<provider>/<endpoint id>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.providers import registry
from hub import integrations as store
from hub.crypto import Keyring, mask
from hub.errors import NotFoundError, ValidationError
from hub.inbound.verify import DEFAULT_STATIC_HEADER
from hub.schema import integration, webhook_endpoint
from hub.stored_secrets import assert_keyring_covers, purpose

SECRET_PURPOSE = purpose(webhook_endpoint, "secret")


@dataclass(frozen=True)
class InboundEndpoint:
    id: int
    integration_id: int
    company_id: int
    provider: str
    scheme: str
    secret: str = field(repr=False)
    header_name: str | None = None
    is_active: bool = True

    def __repr__(self) -> str:
        return f"InboundEndpoint(id={self.id}, provider={self.provider}, scheme={self.scheme}, secret={mask(self.secret)})"

    @property
    def path(self) -> str:
        return f"/webhooks/{self.provider}/{self.id}"


def create_inbound(conn: Connection, keyring: Keyring, integration_id: int, header_name: str | None = None) -> int:
    """The integration's inbound endpoint id, created on first use (idempotent)."""
    existing = conn.scalar(
        sa.select(webhook_endpoint.c.id).where(webhook_endpoint.c.integration_id == integration_id, webhook_endpoint.c.direction == "inbound")
    )
    if existing is not None:
        return existing
    item = store.get_integration(conn, keyring, integration_id)
    spec = registry.get(item.provider)
    if spec.inbound is None:
        raise ValidationError(f"{spec.display_name} sends no webhooks the hub receives")
    secret = item.credentials.get(spec.inbound.secret_field)
    if not secret:
        raise ValidationError(f"{spec.display_name} needs credential field {spec.inbound.secret_field} to receive webhooks")
    assert_keyring_covers(conn, keyring)
    options = {"scheme": spec.inbound.scheme}
    if spec.inbound.static_header:  # no signature: a static credential in a header
        options["header_name"] = header_name or DEFAULT_STATIC_HEADER
    return conn.scalar(
        sa.insert(webhook_endpoint)
        .values(
            company_id=item.company_id,
            integration_id=item.id,
            direction="inbound",
            name=f"{item.name} inbound #{item.id}",
            secret=keyring.encrypt(secret, SECRET_PURPOSE),
            payload_options=options,
        )
        .returning(webhook_endpoint.c.id)
    )


def load_inbound(conn: Connection, keyring: Keyring, endpoint_id: int) -> InboundEndpoint:
    row = conn.execute(
        sa.select(webhook_endpoint, integration.c.provider, integration.c.is_active.label("integration_active"))
        .join(integration, integration.c.id == webhook_endpoint.c.integration_id)
        .where(webhook_endpoint.c.id == endpoint_id, webhook_endpoint.c.direction == "inbound")
    ).mappings().first()
    if row is None:
        raise NotFoundError(f"no inbound webhook endpoint {endpoint_id}")
    options = row["payload_options"] or {}
    return InboundEndpoint(
        id=row["id"],
        integration_id=row["integration_id"],
        company_id=row["company_id"],
        provider=row["provider"],
        scheme=options.get("scheme") or _scheme(row["provider"]),
        secret=keyring.decrypt(row["secret"], SECRET_PURPOSE),
        header_name=options.get("header_name"),
        is_active=bool(row["is_active"] and row["integration_active"]),
    )


def _scheme(provider: str) -> str | None:
    """The provider's verification scheme, for an endpoint stored without one."""
    inbound = registry.get(provider).inbound
    return inbound.scheme if inbound else None
