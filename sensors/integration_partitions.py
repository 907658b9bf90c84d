"""Keep the `integrations` dynamic partitions equal to the set of active integrations."""

import dagster as dg

from hub import integrations as store
from pipelines.partitions import INTEGRATIONS_PARTITION, integrations_partitions
from resources import HubDatabase


def partition_changes(active: list[str], existing: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to delete) so that the partitions become exactly `active`."""
    active_set, existing_set = set(active), set(existing)
    return sorted(active_set - existing_set), sorted(existing_set - active_set)


@dg.sensor(
    name="integration_partitions_sensor",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition when an integration is connected or enabled, removes it when disabled.",
)
def integration_partitions_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    with hub_db.get_engine().connect() as conn:
        active = store.active_partition_keys(conn)
    to_add, to_delete = partition_changes(active, context.instance.get_dynamic_partitions(INTEGRATIONS_PARTITION))
    if not to_add and not to_delete:
        return dg.SkipReason(f"{len(active)} active integration(s), partitions up to date")
    requests = []
    if to_add:
        requests.append(integrations_partitions.build_add_request(to_add))
    if to_delete:
        requests.append(integrations_partitions.build_delete_request(to_delete))
    context.log.info(f"partitions: adding {to_add}, removing {to_delete}")
    return dg.SensorResult(dynamic_partitions_requests=requests)
