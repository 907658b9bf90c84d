"""Sync assets, generated from the streams the provider specs declare (hub/providers/<name>/streams.py): one asset per
(provider, stream), keyed `<provider>/<stream>`, partitioned by that provider's
integrations (`<provider>_integrations`), so each connected account syncs on its own and
one failing account leaves the others' partitions green.

An asset honours the integration's sync preferences (`hub sync set`): a stream switched off,
or set to export only, materializes as a no-op that says so.
"""

import dagster as dg

from hub import integrations as store
from hub.sync import preferences
from hub.sync.engine import sync_stream
from hub.providers import registry
from hub.sync.reconcile import reconcile_stream
from hub.sync.stream_spec import StreamSpec
from pipelines.partitions import PROVIDER_PARTITIONS
from resources import HubDatabase, ProviderClients, SecretStore


def skipped_by_preferences(engine, keyring, integration_id: int, stream: str, direction: str) -> str | None:
    """Why the integration's preferences skip this stream's `direction`, or None to run it."""
    with engine.connect() as conn:
        prefs = preferences.read(conn, keyring, integration_id)
    if prefs.runs(stream, direction):
        return None
    pref = prefs.streams.get(stream)
    if pref is None or not pref.enabled:
        return f"the {stream} stream is switched off for this integration (hub sync set {integration_id} --stream {stream} --enable)"
    return f"the {stream} stream is set to {pref.direction} only for this integration"


def build_sync_asset(stream: StreamSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=[stream.provider, stream.name],
        group_name=stream.provider,
        partitions_def=PROVIDER_PARTITIONS[stream.provider],
        deps=[dg.AssetKey([stream.provider, name]) for name in stream.after],
        kinds={stream.provider, "postgres"},
        pool=f"{stream.provider}_api",
        description=stream.description,
        metadata={"table": stream.table.name, "entity": stream.remote_entity},
    )
    def _sync(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore,
              provider_clients: ProviderClients) -> dg.MaterializeResult:
        engine, keyring = hub_db.get_engine(), secrets.keyring()
        integration_id = store.integration_id_from_partition(context.partition_key)
        if reason := skipped_by_preferences(engine, keyring, integration_id, stream.name, "import"):
            context.log.info(reason)
            return dg.MaterializeResult(metadata={"skipped": reason})
        with provider_clients.open(integration_id) as client:
            result = sync_stream(engine, keyring, integration_id, stream, run_id=context.run.run_id, client=client)
        return dg.MaterializeResult(metadata=result.as_metadata())

    return _sync


SYNC_ASSETS = [build_sync_asset(stream) for stream in registry.streams()]


def build_reconciliation_asset(provider: str) -> dg.AssetsDefinition:
    streams = registry.streams(provider)

    @dg.asset(
        key=[provider, "reconciliation"],
        group_name=provider,
        partitions_def=PROVIDER_PARTITIONS[provider],
        kinds={provider, "postgres"},
        pool=f"{provider}_api",
        # no deps on the import assets: a blocking data-quality check on them must not stop
        # reconciliation, and rows imported while it runs are left alone (reconcile.py)
        description=f"Compares remote and local id sets of every {provider} stream and marks rows whose remote "
                    "record is gone as deleted (hub/sync/reconcile.py); refuses when the remote looks wrongly empty.",
    )
    def _reconcile(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore,
                   provider_clients: ProviderClients) -> dg.MaterializeResult:
        engine, keyring = hub_db.get_engine(), secrets.keyring()
        integration_id = store.integration_id_from_partition(context.partition_key)
        metadata: dict = {}
        with provider_clients.open(integration_id) as client:
            for stream in streams:
                if reason := skipped_by_preferences(engine, keyring, integration_id, stream.name, "import"):
                    metadata[f"{stream.name}_skipped"] = reason
                    continue
                result = reconcile_stream(engine, keyring, integration_id, stream, client=client, run_id=context.run.run_id)
                context.log.info(f"{stream.key}: {result.remote} remote, {result.local} local, "
                                 f"{result.marked_deleted} marked deleted, {result.missing_locally} missing locally")
                metadata.update(result.as_metadata())
            metadata.update(client.transport.stats())
        return dg.MaterializeResult(metadata=metadata)

    return _reconcile


RECONCILIATION_ASSETS = [build_reconciliation_asset(provider) for provider in registry.reconciling_providers()]
