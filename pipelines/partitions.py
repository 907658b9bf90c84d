"""Partitions shared by assets, jobs and sensors."""

import dagster as dg

INTEGRATIONS_PARTITION = "integrations"

# One partition per active integration, key "<provider>-<id>" (hub.integrations.partition_key).
# Kept equal to the active integrations by sensors/integration_partitions.py.
integrations_partitions = dg.DynamicPartitionsDefinition(name=INTEGRATIONS_PARTITION)
