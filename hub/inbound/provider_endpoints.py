"""Inbound webhook endpoints: where a provider calls us, and the secret it proves itself with.

An inbound endpoint belongs to one integration. Its secret is copied, encrypted, from the
integration's credentials (which field: the spec's `inbound.secret_field`), so the
receiver reads one small row per endpoint and never the whole credential set. The URL a
provider is given is `/webhooks/<provider>/<endpoint id>`.

A sender of the company's own (the `custom` source) does not come with a secret: the hub
makes one (the spec's `inbound.generate_secret`) when the endpoint is created, and
`open_inbound` returns it that one time for the caller to show. Such an endpoint keeps
its secrets as the outbound endpoints do (`SigningSecrets`: current, previous,
previous_until), so `rotate_inbound_secret` can keep the old secret accepted during a
grace period while the sender switches; after it, only the new one verifies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.providers import registry
from hub import integrations as store
from hub.crypto import Keyring, mask
from hub.errors import NotFoundError, ValidationError
from hub.inbound.verify import DEFAULT_STATIC_HEADER
from hub.outbound.signing import DEFAULT_GRACE_S, SigningSecrets
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
    # a rotated secret still accepted until `previous_until` (unix seconds): generated secrets only
    previous_secret: str | None = field(default=None, repr=False)
    previous_until: float | None = None

    def __repr__(self) -> str:
        return (f"InboundEndpoint(id={self.id}, provider={self.provider}, scheme={self.scheme}, secret={mask(self.secret)}, "
                f"rotating={self.previous_secret is not None})")

    def accepted_secrets(self, now: float | None = None) -> str | tuple[str, ...]:
        """What `hub.inbound.verify.verify` checks a delivery against right now: the secret,
        or during a rotation's grace period the new and the old one."""
        now = time.time() if now is None else now
        if self.previous_secret and self.previous_until is not None and now < self.previous_until:
            return (self.secret, self.previous_secret)
        return self.secret

    @property
    def path(self) -> str:
        return f"/webhooks/{self.provider}/{self.id}"


def create_inbound(conn: Connection, keyring: Keyring, integration_id: int, header_name: str | None = None) -> int:
    """The integration's inbound endpoint id, created on first use (idempotent)."""
    return open_inbound(conn, keyring, integration_id, header_name)[0]


def open_inbound(conn: Connection, keyring: Keyring, integration_id: int,
                 header_name: str | None = None) -> tuple[int, str | None]:
    """(the integration's inbound endpoint id, created on first use; the secret the hub made
    for it when it was created just now, to show this once, else None)."""
    existing = conn.scalar(
        sa.select(webhook_endpoint.c.id).where(webhook_endpoint.c.integration_id == integration_id, webhook_endpoint.c.direction == "inbound")
    )
    if existing is not None:
        return existing, None
    item = store.get_integration(conn, keyring, integration_id)
    spec = registry.get(item.provider)
    if spec.inbound is None:
        raise ValidationError(f"{spec.display_name} sends no webhooks the hub receives")
    made = None
    if spec.inbound.generate_secret is not None:  # a sender of the company's own: the hub makes the secret
        made = spec.inbound.generate_secret()
        stored = SigningSecrets(made).to_stored()
    else:
        stored = item.credentials.get(spec.inbound.secret_field)
        if not stored:
            raise ValidationError(f"{spec.display_name} needs credential field {spec.inbound.secret_field} to receive webhooks")
    assert_keyring_covers(conn, keyring)
    options = {"scheme": spec.inbound.scheme}
    if spec.inbound.static_header:  # no signature: a static credential in a header
        options["header_name"] = header_name or DEFAULT_STATIC_HEADER
    endpoint_id = conn.scalar(
        sa.insert(webhook_endpoint)
        .values(
            company_id=item.company_id,
            integration_id=item.id,
            direction="inbound",
            name=f"{item.name} inbound #{item.id}",
            secret=keyring.encrypt(stored, SECRET_PURPOSE),
            payload_options=options,
        )
        .returning(webhook_endpoint.c.id)
    )
    return endpoint_id, made


def follow_credential(conn: Connection, keyring: Keyring, integration_id: int) -> bool:
    """Copy the integration's current secret credential onto its inbound endpoint, after the
    credential was changed (an admin typed a new webhook key): the endpoint keeps its own
    copy, so without this the receiver would go on verifying with the old secret. Nothing
    to do for an integration without an endpoint, or whose secret the hub makes. Returns
    whether the endpoint's secret changed."""
    row = conn.execute(
        sa.select(webhook_endpoint.c.id, webhook_endpoint.c.secret)
        .where(webhook_endpoint.c.integration_id == integration_id, webhook_endpoint.c.direction == "inbound")
        .with_for_update()).first()
    if row is None:
        return False
    item = store.get_integration(conn, keyring, integration_id)
    inbound = registry.get(item.provider).inbound
    if inbound is None or inbound.secret_field is None or inbound.generate_secret is not None:
        return False
    current = item.credentials.get(inbound.secret_field)
    if not current or current == keyring.decrypt(row.secret, SECRET_PURPOSE):
        return False
    assert_keyring_covers(conn, keyring)
    conn.execute(sa.update(webhook_endpoint).where(webhook_endpoint.c.id == row.id).values(
        secret=keyring.encrypt(current, SECRET_PURPOSE), secret_rotated_at=sa.func.now(), previous_secret_until=None))
    return True


def rotate_inbound_secret(conn: Connection, keyring: Keyring, integration_id: int,
                          grace_s: float = DEFAULT_GRACE_S) -> tuple[str, float | None]:
    """A new secret for the integration's inbound endpoint, for the providers whose secret the
    hub makes; the old one stays accepted until the returned time (unix seconds; None when
    `grace_s` is 0: refused from now on). A rotation during another's grace period ends
    that one: only the secret being replaced stays accepted. Returns the new secret: show
    it once."""
    row = conn.execute(
        sa.select(webhook_endpoint.c.id, webhook_endpoint.c.secret, integration.c.provider)
        .join(integration, integration.c.id == webhook_endpoint.c.integration_id)
        .where(webhook_endpoint.c.integration_id == integration_id, webhook_endpoint.c.direction == "inbound")
        .with_for_update(of=webhook_endpoint)
    ).first()
    if row is None:
        raise NotFoundError(f"integration {integration_id} has no inbound endpoint yet: hub webhooks inbound --integration {integration_id}")
    spec = registry.get(row.provider)
    if spec.inbound is None or spec.inbound.generate_secret is None:
        field_name = spec.inbound.secret_field if spec.inbound else None
        raise ValidationError(f"{spec.display_name} signs with a secret of its own (credential {field_name}), "
                              "not one the hub makes: change it at the provider and in the integration's credentials")
    current = SigningSecrets.from_stored(keyring.decrypt(row.secret, SECRET_PURPOSE))
    try:
        rotated = current.rotated(grace_s, new_secret=spec.inbound.generate_secret())
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    assert_keyring_covers(conn, keyring)
    until = datetime.fromtimestamp(rotated.previous_until, timezone.utc) if rotated.previous_until else None
    conn.execute(sa.update(webhook_endpoint).where(webhook_endpoint.c.id == row.id).values(
        secret=keyring.encrypt(rotated.to_stored(), SECRET_PURPOSE),
        # plain times for display, as the outbound endpoints keep them (the secrets are only in `secret`)
        secret_rotated_at=sa.func.now(), previous_secret_until=until))
    return rotated.current, rotated.previous_until


def load_inbound(conn: Connection, keyring: Keyring, endpoint_id: int) -> InboundEndpoint:
    row = conn.execute(
        sa.select(webhook_endpoint, integration.c.provider, integration.c.is_active.label("integration_active"))
        .join(integration, integration.c.id == webhook_endpoint.c.integration_id)
        .where(webhook_endpoint.c.id == endpoint_id, webhook_endpoint.c.direction == "inbound")
    ).mappings().first()
    if row is None:
        raise NotFoundError(f"no inbound webhook endpoint {endpoint_id}")
    options = row["payload_options"] or {}
    stored = keyring.decrypt(row["secret"], SECRET_PURPOSE)
    # a provider's credential is stored as the string; a secret the hub made, with its rotation
    secrets = SigningSecrets.from_stored(stored)
    return InboundEndpoint(
        id=row["id"],
        integration_id=row["integration_id"],
        company_id=row["company_id"],
        provider=row["provider"],
        scheme=options.get("scheme") or _scheme(row["provider"]),
        secret=secrets.current,
        header_name=options.get("header_name"),
        is_active=bool(row["is_active"] and row["integration_active"]),
        previous_secret=secrets.previous,
        previous_until=secrets.previous_until,
    )


def _scheme(provider: str) -> str | None:
    """The provider's verification scheme, for an endpoint stored without one."""
    inbound = registry.get(provider).inbound
    return inbound.scheme if inbound else None
