"""The Dagster code location: assets, jobs, schedules, sensors and resources of the hub.

Loaded by workspace.yaml (`dagster dev` in the demo) and by the tests. Resources read
their settings from the environment (HUB_DATABASE_URL, HUB_SECRET_KEYS), so nothing
secret passes through Dagster config.
"""

import dagster as dg

from pipelines.assets.billing import (billing_events_job, billing_reconcile_job, billing_reconcile_schedule,
                                     stripe_billing_sensor, subscription_events, subscription_reconciliation)
from pipelines.assets.ai import AI_ASSETS, AI_JOBS, AI_SCHEDULES, AI_SENSORS
from pipelines.assets.inventory import connection_check, integration_inventory
from pipelines.assets.orders import pos_orders
from pipelines.assets.exports import EXPORT_ASSETS
from pipelines.assets.sync import RECONCILIATION_ASSETS, SYNC_ASSETS
from pipelines.quality_checks import QUALITY_CHECKS
from pipelines.jobs import connection_check_job, inventory_job, inventory_schedule, process_orders_job
from pipelines.schedules import SYNC_JOBS, SYNC_SCHEDULES
from resources import HubDatabase, ProviderClients, SecretStore
from sensors.integration_partitions import integration_partitions_sensor
from sensors.orders import new_orders_sensor
from sensors.sync_log_runs import sync_log_canceled_runs_sensor, sync_log_failed_runs_sensor, sync_log_sweeper_sensor

hub_db, secrets = HubDatabase(), SecretStore()
RESOURCES = {"hub_db": hub_db, "secrets": secrets, "provider_clients": ProviderClients(hub_db=hub_db, secrets=secrets)}

defs = dg.Definitions(
    assets=[integration_inventory, connection_check, pos_orders, *SYNC_ASSETS, *EXPORT_ASSETS, *RECONCILIATION_ASSETS,
            subscription_events, subscription_reconciliation, *AI_ASSETS],
    asset_checks=QUALITY_CHECKS,
    jobs=[inventory_job, connection_check_job, process_orders_job, *SYNC_JOBS.values(), billing_events_job, billing_reconcile_job,
          *AI_JOBS],
    schedules=[inventory_schedule, *SYNC_SCHEDULES, billing_reconcile_schedule, *AI_SCHEDULES],
    sensors=[
        integration_partitions_sensor,
        new_orders_sensor,
        sync_log_failed_runs_sensor,
        sync_log_canceled_runs_sensor,
        sync_log_sweeper_sensor,
        stripe_billing_sensor,
        *AI_SENSORS,
    ],
    resources=RESOURCES,
    # runs here are short database work: stepping in-process saves seconds per run
    executor=dg.in_process_executor,
)
