"""Assets that describe the hub itself: what is connected, and whether it can be used."""

import time

import dagster as dg

from hub import integrations as store
from hub import inventory
from hub.connection_check import check_connection
from pipelines.partitions import integrations_partitions
from resources import HubDatabase, ProviderClients, SecretStore


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
def connection_check(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore,
                     provider_clients: ProviderClients) -> dg.MaterializeResult:
    started = time.monotonic()
    result = check_connection(hub_db.get_engine(), secrets.keyring(), store.integration_id_from_partition(context.partition_key),
                              run_id=context.run.run_id, client_factory=provider_clients.client)
    return dg.MaterializeResult(
        metadata={
            "provider": result.spec.display_name,
            "integration_type": result.spec.category,
            "auth": result.spec.auth.kind,
            # field names only: values never reach Dagster metadata
            "credential_fields": dg.MetadataValue.text(", ".join(result.credential_fields) or "-"),
            "config_fields": dg.MetadataValue.text(", ".join(result.config_fields) or "-"),
            "live_check": dg.MetadataValue.json(result.live) if result.live else dg.MetadataValue.text("no API client for this provider yet"),
            "sync_log_id": dg.MetadataValue.int(result.sync_log_id),
            "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
        }
    )
