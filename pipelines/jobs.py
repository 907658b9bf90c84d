"""Jobs and schedules of the hub's own assets."""

import dagster as dg

from pipelines.assets.inventory import connection_check, integration_inventory
from pipelines.assets.orders import pos_orders

inventory_job = dg.define_asset_job("inventory_job", selection=[integration_inventory])

connection_check_job = dg.define_asset_job("connection_check_job", selection=[connection_check])

inventory_schedule = dg.ScheduleDefinition(
    name="inventory_hourly",
    job=inventory_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh the integration inventory every hour.",
)

process_orders_job = dg.define_asset_job(
    "process_orders_job",
    selection=[pos_orders],
    description="Delivery orders to POS orders; launched by new_orders_sensor.",
    tags={"dagster/max_retries": "0"},
)
