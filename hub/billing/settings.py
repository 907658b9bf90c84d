"""Whether the hub bills its companies, and with which Stripe account.

Billing is on when `billing_settings` has its one row: the operator's Stripe integration (an
ordinary `stripe` integration, added with `hub integration add`, holding the secret API key
and the webhook signing secret, with `base_url` in its config when it is not
api.stripe.com) and the dunning grace in days. With no row, a self-hosted hub bills no one
and nothing is enforced (hub/billing/entitlements.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
import stripe
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers import registry
from hub.providers.stripe.client import make_client
from hub.schema import billing_settings

DEFAULT_GRACE_DAYS = 14


@dataclass(frozen=True)
class BillingSettings:
    stripe_integration_id: int
    grace_days: int


def current(conn: Connection) -> BillingSettings | None:
    row = conn.execute(sa.select(billing_settings.c.stripe_integration_id, billing_settings.c.grace_days)).first()
    return BillingSettings(row.stripe_integration_id, row.grace_days) if row else None


def enable(conn: Connection, keyring: Keyring, integration_id: int, grace_days: int = DEFAULT_GRACE_DAYS) -> BillingSettings:
    """Bill through this Stripe integration (it must be one, with an API key)."""
    item = store.get_integration(conn, keyring, integration_id)
    if "billing" not in registry.get(item.provider).capabilities:
        raise ValidationError(f"integration {integration_id} is {item.provider}: the hub bills through Stripe")
    if not item.credentials.get("api_key"):
        raise ValidationError(f"Stripe integration {integration_id} has no api_key")
    if grace_days < 0:
        raise ValidationError("the grace period cannot be negative")
    conn.execute(insert(billing_settings).values(id=1, stripe_integration_id=integration_id, grace_days=grace_days)
                 .on_conflict_do_update(index_elements=[billing_settings.c.id],
                                        set_={"stripe_integration_id": integration_id, "grace_days": grace_days,
                                              "updated_at": sa.func.now()}))
    return BillingSettings(integration_id, grace_days)


def disable(conn: Connection) -> None:
    conn.execute(sa.delete(billing_settings))


def client(conn: Connection, keyring: Keyring) -> stripe.StripeClient:
    """The operator's Stripe client; a clear error when billing is off."""
    settings = current(conn)
    if settings is None:
        raise ValidationError("billing is off: run `hub billing enable --integration ID` with the operator's Stripe integration")
    item = store.get_integration(conn, keyring, settings.stripe_integration_id)
    return make_client(item.credentials["api_key"], item.config.get("base_url"))
