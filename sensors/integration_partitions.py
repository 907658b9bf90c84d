"""Keep the dynamic partitions (`integrations` and each `<provider>_integrations`) equal to
the set of active integrations."""

import dagster as dg

from hub import integrations as store
from pipelines.partitions import expected_partitions
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
    requests, changes = [], []
    for partitions, keys in expected_partitions(active).items():
        to_add, to_delete = partition_changes(keys, context.instance.get_dynamic_partitions(partitions.name))
        if to_add:
            requests.append(partitions.build_add_request(to_add))
        if to_delete:
            requests.append(partitions.build_delete_request(to_delete))
        if to_add or to_delete:
            changes.append(f"{partitions.name}: +{to_add} -{to_delete}")
    if not requests:
        return dg.SkipReason(f"{len(active)} active integration(s), partitions up to date")
    context.log.info("partitions: " + "; ".join(changes))
    return dg.SensorResult(dynamic_partitions_requests=requests)
