"""Jobs and schedules of the hub's own assets."""

import dagster as dg

from pipelines.assets.inventory import connection_check, integration_inventory

inventory_job = dg.define_asset_job("inventory_job", selection=[integration_inventory])

connection_check_job = dg.define_asset_job("connection_check_job", selection=[connection_check])

inventory_schedule = dg.ScheduleDefinition(
    name="inventory_hourly",
    job=inventory_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh the integration inventory every hour.",
)
