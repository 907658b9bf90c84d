"""Assets that describe the hub itself: what is connected, and whether it can be used."""

import time

import dagster as dg

from hub import catalog, inventory
from hub import integrations as store
from hub.providers.connect import CLIENTS, open_client
from hub.sync_log import record_sync
from pipelines.partitions import integrations_partitions
from resources import HubDatabase, SecretStore


@dg.asset(
    key=["hub", "integration_inventory"],
    group_name="hub",
    kinds={"postgres"},
    description="Integrations per company, by category and status, with last sync and recent failures.",
)
def integration_inventory(context: dg.AssetExecutionContext, hub_db: HubDatabase) -> dg.MaterializeResult:
    with hub_db.get_engine().connect() as conn:
        rows = inventory.company_inventory(conn)
    totals = inventory.summary(rows)
    context.log.info(f"inventory: {totals}")
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in totals.items()},
            "inventory": dg.MetadataValue.md(inventory.to_markdown(rows)),
        }
    )


@dg.asset(
    key=["hub", "connection_check"],
    group_name="hub",
    kinds={"postgres"},
    partitions_def=integrations_partitions,
    description=(
        "Per integration: decrypts its stored config and credentials, checks them against the "
        "provider's required fields and, for providers with an API client, calls the provider's "
        "connection check (refreshing OAuth tokens). Recorded in sync_log; fails the partition "
        "with the provider's reason."
    ),
)
def connection_check(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
    integration_id = store.integration_id_from_partition(context.partition_key)
    engine = hub_db.get_engine()
    keyring = secrets.keyring()
    started = time.monotonic()
    live: dict = {}
    with record_sync(
        engine,
        integration_id=integration_id,
        sync_type="check",
        action="verify_connection",
        direction="inbound",
        entity_type="integration",
        run_id=context.run.run_id,
    ) as sync:
        with engine.connect() as conn:
            item = store.get_integration(conn, keyring, integration_id)
        spec = catalog.validate(item.provider, item.config, item.credentials)
        if item.provider in CLIENTS:
            client = open_client(engine, keyring, integration_id)
            try:
                live = {**client.check(), **client.transport.stats()}
            finally:
                client.transport.close()
        sync.add(1)
    return dg.MaterializeResult(
        metadata={
            "provider": spec.display_name,
            "integration_type": spec.integration_type,
            "auth": spec.auth,
            # field names only: values never reach Dagster metadata
            "credential_fields": dg.MetadataValue.text(", ".join(sorted(item.credentials)) or "-"),
            "config_fields": dg.MetadataValue.text(", ".join(sorted(item.config)) or "-"),
            "live_check": dg.MetadataValue.json(live) if live else dg.MetadataValue.text("no API client for this provider yet"),
            "sync_log_id": dg.MetadataValue.int(sync.id),
            "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
        }
    )
