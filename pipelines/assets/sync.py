"""Sync assets, generated from the declarative streams in hub/sync/streams.py: one asset per
(provider, stream), keyed `<provider>/<stream>`, partitioned by integration.

The `integrations` partitions hold every active integration, of every provider; a partition
of another provider is answered with a no-op materialization that says so, rather than a
failure (per-provider partition sets are a possible refinement, see the issue notes).
"""

import dagster as dg

from hub import integrations as store
from hub.sync.engine import sync_stream
from hub.sync.streams import STREAMS, StreamSpec
from pipelines.partitions import integrations_partitions
from resources import HubDatabase, SecretStore


def build_sync_asset(stream: StreamSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=[stream.provider, stream.name],
        group_name=stream.provider,
        partitions_def=integrations_partitions,
        kinds={stream.provider, "postgres"},
        pool=f"{stream.provider}_api",
        description=stream.description,
        metadata={"table": stream.table.name, "entity": stream.remote_entity},
    )
    def _sync(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
        provider = context.partition_key.rsplit("-", 1)[0]
        if provider != stream.provider:
            return dg.MaterializeResult(metadata={"skipped": f"{context.partition_key} is a {provider} integration, not {stream.provider}"})
        result = sync_stream(
            hub_db.get_engine(), secrets.keyring(), store.integration_id_from_partition(context.partition_key), stream,
            run_id=context.run.run_id,
        )
        return dg.MaterializeResult(metadata=result.as_metadata())

    return _sync


SYNC_ASSETS = [build_sync_asset(stream) for stream in STREAMS]
