"""Partitions shared by assets, jobs and sensors.

One partition per active integration, key "<provider>-<id>" (hub.integrations.partition_key),
kept equal to the active integrations by sensors/integration_partitions.py:
- `integrations`: every active integration (hub-wide assets such as the connection check);
- `<provider>_integrations`: the active integrations of one syncing provider, so the
  QuickBooks assets show only QuickBooks accounts as partitions, and a run for one
  account never touches another provider's assets.
"""

import dagster as dg

from hub.providers.registry import syncing_providers

INTEGRATIONS_PARTITION = "integrations"
SYNC_PROVIDERS = syncing_providers()  # the providers whose specs declare pull streams

integrations_partitions = dg.DynamicPartitionsDefinition(name=INTEGRATIONS_PARTITION)

PROVIDER_PARTITIONS: dict[str, dg.DynamicPartitionsDefinition] = {
    provider: dg.DynamicPartitionsDefinition(name=f"{provider}_integrations") for provider in SYNC_PROVIDERS
}


def expected_partitions(active_keys: list[str]) -> dict[dg.DynamicPartitionsDefinition, list[str]]:
    """Every dynamic partition set with the keys it should hold, given the active integrations."""
    expected = {integrations_partitions: list(active_keys)}
    for provider, partitions in PROVIDER_PARTITIONS.items():
        expected[partitions] = [key for key in active_keys if key.rsplit("-", 1)[0] == provider]
    return expected
