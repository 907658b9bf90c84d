"""A marketplace store's face to the world: whether it takes orders (read from and set at
the marketplace through its client) and the address the marketplace must send its webhooks
to. What the settings page's store tab shows and does.

Closing the store is told to the marketplace first (it stops offering the store); only when
the marketplace took it is the integration's `accepting_orders` set to match, so an order
that still arrives while closed is refused by the hub (hub/orders/pos_mapping.py `decide`)
and the two never disagree because of a refused call.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.notify.callbacks import inbound_endpoint_id, public_base, status_url
from hub.providers import registry
from hub.providers.protocols import StoreClient

MAX_REASON = 200


@dataclass(frozen=True)
class StoreState:
    open: bool
    detail: str | None  # why it is closed, in the marketplace's words


def delivery_integration(conn: Connection, keyring: Keyring, integration_id: int) -> store.Integration:
    """The integration, which must be a marketplace's (capability "delivery")."""
    item = store.get_integration(conn, keyring, integration_id)
    if "delivery" not in registry.get(item.provider).capabilities:
        raise ValidationError(f"integration {integration_id} is {item.provider}, not a delivery marketplace")
    return item


def webhook_url(conn: Connection, integration_id: int, provider: str, config: dict) -> tuple[str | None, str | None]:
    """(the URL to give the marketplace, or None; what is missing, or None). The path is the
    integration's inbound endpoint; the base HUB_PUBLIC_URL (or the config's public_url)."""
    endpoint_id = inbound_endpoint_id(conn, integration_id)
    base = public_base(config)
    if endpoint_id is None:
        return None, "no webhook address yet: create one below"
    if base is None:
        return None, (f"the hub's public address is not set (HUB_PUBLIC_URL); the path is "
                      f"/webhooks/{provider}/{endpoint_id}")
    return status_url(base, provider, endpoint_id), None


def read_store(client: StoreClient) -> StoreState:
    """The store's status at the marketplace (a live call through its client)."""
    if not isinstance(client, StoreClient):
        raise ValidationError("this marketplace's client cannot read or set its store status")
    found = client.store_status()
    return StoreState(bool(found["open"]), found.get("detail"))


def set_store(engine: Engine, keyring: Keyring, integration_id: int, client: StoreClient, is_open: bool,
              reason: str) -> None:
    """Open or close the store at the marketplace, then mirror it in `accepting_orders`."""
    reason = " ".join(reason.split())[:MAX_REASON]
    if not is_open and not reason:
        raise ValidationError("Say why the store closes (the marketplace keeps the reason).")
    if not isinstance(client, StoreClient):
        raise ValidationError("this marketplace's client cannot read or set its store status")
    with engine.connect() as conn:
        delivery_integration(conn, keyring, integration_id)
    client.set_store_open(is_open, reason or "Opened from the hub")
    with engine.begin() as conn:
        store.update_config(conn, keyring, integration_id, {"accepting_orders": is_open})
