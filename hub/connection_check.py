"""Checking one integration's connection: its stored config and credentials against the
provider's required fields, then, for providers with an API client, a live call (refreshing
OAuth tokens). One place for the `hub/connection_check` asset and `hub integration check`, so
both record the check in `sync_log` and move `integration.status` (connected, or error with the
provider's reason) the same way.

A passing check is also what establishes a new integration's connection: one never active
before becomes active (`integrations.activate_if_new`); a failing one leaves it inactive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.spec import ProviderSpec
from hub.sync_log import record_sync


@dataclass
class CheckResult:
    spec: ProviderSpec
    credential_fields: list[str]
    config_fields: list[str]
    live: dict[str, Any] = field(default_factory=dict)  # the provider's answer and call stats; empty without a client
    sync_log_id: int | None = None
    activated: bool = False  # this check established the connection: the integration became active


def check_connection(engine: Engine, keyring: Keyring, integration_id: int, *, run_id: str | None = None,
                     client_factory: Callable[[int], Any] | None = None) -> CheckResult:
    """Check the integration; raises (after recording the failure) when it cannot be used.

    `client_factory(integration_id)` opens the client (default: open_client); the Dagster asset
    passes its provider-clients resource, so a failure to open is recorded like any other."""
    # sync_type "connection", not "check": data-quality check rows ("check") leave the status alone
    with record_sync(engine, integration_id=integration_id, sync_type="connection", action="verify_connection",
                     direction="inbound", entity_type="integration", run_id=run_id) as sync:
        with engine.connect() as conn:
            item = store.get_integration(conn, keyring, integration_id)
        spec = registry.validate(item.provider, item.config, item.credentials)
        live: dict[str, Any] = {}
        if spec.client is not None:
            client = client_factory(integration_id) if client_factory else open_client(engine, keyring, integration_id)
            try:
                live = {**getattr(client, spec.client.check)(), **client.transport.stats()}
            finally:
                client.transport.close()
        sync.add(1)
    with engine.begin() as conn:
        activated = store.activate_if_new(conn, integration_id)
    return CheckResult(spec, sorted(item.credentials), sorted(item.config), live, sync.id, activated)
